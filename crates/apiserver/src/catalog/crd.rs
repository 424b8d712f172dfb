//! CustomResourceDefinitions: reading a CRD object into the resource types it serves, its
//! per-version schema and additionalPrinterColumns, and upstream's CRD validation.

use serde_json::{Value, json};

use super::table::{AGE_DESCRIPTION, NAME_DESCRIPTION, age_cell};
use super::{Cause, ResourceType, ScaleSubresource, jsonpath};

/// One additionalPrinterColumn of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PrinterColumn {
    name: String,
    kind: String,
    format: String,
    description: String,
    priority: i64,
    json_path: String,
}

/// One version of a CRD.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CrdVersion {
    /// `v1`.
    pub name: String,
    /// Served over REST.
    pub served: bool,
    /// The structural schema (`openAPIV3Schema`), if given.
    pub schema: Option<Value>,
    status: bool,
    scale: Option<ScaleSubresource>,
    columns: Vec<PrinterColumn>,
}

/// A registered CRD.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CrdEntry {
    /// `<plural>.<group>`.
    pub name: String,
    /// API group of its resources.
    pub group: String,
    /// Kind of its objects.
    pub kind: String,
    /// Kind of its lists (`<Kind>List` unless set).
    pub list_kind: String,
    /// Lower-case plural.
    pub plural: String,
    singular: String,
    short_names: Vec<String>,
    categories: Vec<String>,
    /// `Namespaced` scope.
    pub namespaced: bool,
    /// Its versions in the CRD's order.
    pub versions: Vec<CrdVersion>,
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.to_string(),
        message,
        field: field.to_string(),
    }
}

/// Upstream's validation of a CustomResourceDefinition's names, group, scope and versions.
pub(super) fn validate(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = text(crd, "/spec/group");
    let plural = text(crd, "/spec/names/plural");
    let name = text(crd, "/metadata/name");
    for (field, value) in [
        ("spec.group", &group),
        ("spec.names.plural", &plural),
        ("spec.names.kind", &text(crd, "/spec/names/kind")),
    ] {
        if value.is_empty() {
            causes.push(cause("FieldValueRequired", field, "Required value".into()));
        }
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if !group.is_empty() && !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: \"{group}\": should be a domain with at least one dot"),
        ));
    }
    match crd.pointer("/spec/scope").and_then(Value::as_str) {
        Some("Namespaced" | "Cluster") => {}
        None => causes.push(cause(
            "FieldValueRequired",
            "spec.scope",
            "Required value".into(),
        )),
        Some(other) => causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        )),
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: \"null\": must have exactly one version marked as storage version"
                .into(),
        ));
    } else if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: []apiextensions.CustomResourceDefinitionVersion: must have exactly one version marked as storage version".into(),
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if version.pointer("/schema/openAPIV3Schema").is_none() {
            causes.push(cause(
                "FieldValueRequired",
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required".into(),
            ));
        }
        if version["name"].as_str().unwrap_or_default().is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                &format!("spec.versions[{i}].name"),
                "Required value".into(),
            ));
        }
    }
    causes
}

impl CrdEntry {
    /// Reads a CRD object, rejecting it with upstream's causes when it is invalid.
    pub(super) fn parse(crd: &Value) -> Result<Self, Vec<Cause>> {
        let causes = validate(crd);
        if !causes.is_empty() {
            return Err(causes);
        }
        let kind = text(crd, "/spec/names/kind");
        let plural = text(crd, "/spec/names/plural");
        let mut list_kind = text(crd, "/spec/names/listKind");
        if list_kind.is_empty() {
            list_kind = format!("{kind}List");
        }
        let mut singular = text(crd, "/spec/names/singular");
        if singular.is_empty() {
            singular = kind.to_ascii_lowercase();
        }
        let versions = crd["spec"]["versions"]
            .as_array()
            .map(|list| list.iter().map(CrdVersion::parse).collect())
            .unwrap_or_default();
        Ok(Self {
            name: text(crd, "/metadata/name"),
            group: text(crd, "/spec/group"),
            kind,
            list_kind,
            plural,
            singular,
            short_names: strings(crd.pointer("/spec/names/shortNames")),
            categories: strings(crd.pointer("/spec/names/categories")),
            namespaced: crd["spec"]["scope"] == "Namespaced",
            versions,
        })
    }

    /// One resource type per served version.
    pub(super) fn resource_types(&self) -> Vec<ResourceType> {
        let verbs = [
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ];
        self.versions
            .iter()
            .filter(|v| v.served)
            .map(|v| ResourceType {
                group: self.group.clone(),
                version: v.name.clone(),
                kind: self.kind.clone(),
                plural: self.plural.clone(),
                singular: self.singular.clone(),
                short_names: self.short_names.clone(),
                namespaced: self.namespaced,
                verbs: verbs.iter().map(|s| s.to_string()).collect(),
                categories: self.categories.clone(),
                status_subresource: v.status,
                scale_subresource: v.scale.clone(),
                custom: true,
            })
            .collect()
    }
}

impl CrdVersion {
    fn parse(version: &Value) -> Self {
        let scale = version
            .pointer("/subresources/scale")
            .map(|s| ScaleSubresource {
                spec_replicas_path: text(s, "/specReplicasPath"),
                status_replicas_path: text(s, "/statusReplicasPath"),
                label_selector_path: s["labelSelectorPath"].as_str().map(str::to_string),
            });
        let mut columns: Vec<PrinterColumn> = version["additionalPrinterColumns"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| PrinterColumn {
                        name: text(c, "/name"),
                        kind: text(c, "/type"),
                        format: text(c, "/format"),
                        description: text(c, "/description"),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        json_path: text(c, "/jsonPath"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if columns.is_empty() {
            // Upstream's default when a version declares no columns: the object's age.
            columns.push(PrinterColumn {
                name: "Age".into(),
                kind: "date".into(),
                format: String::new(),
                description: AGE_DESCRIPTION.into(),
                priority: 0,
                json_path: ".metadata.creationTimestamp".into(),
            });
        }
        Self {
            name: text(version, "/name"),
            served: version["served"].as_bool().unwrap_or(true),
            schema: version.pointer("/schema/openAPIV3Schema").cloned(),
            status: version.pointer("/subresources/status").is_some(),
            scale,
            columns,
        }
    }

    /// Serves the `status` subresource.
    pub(super) fn has_status(&self) -> bool {
        self.status
    }

    /// Table columns: Name, then the additionalPrinterColumns.
    pub(super) fn column_definitions(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": "Name", "type": "string", "format": "name",
            "description": NAME_DESCRIPTION, "priority": 0,
        })];
        out.extend(self.columns.iter().map(|c| {
            json!({
                "name": c.name, "type": c.kind, "format": c.format,
                "description": c.description, "priority": c.priority,
            })
        }));
        out
    }

    /// Table cells of one custom object, evaluating each column's JSONPath.
    pub(super) fn cells(&self, object: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
        let mut out = vec![object["metadata"]["name"].clone()];
        for column in &self.columns {
            let found = jsonpath::first(object, &column.json_path);
            out.push(match (column.kind.as_str(), found) {
                (_, None | Some(Value::Null)) => Value::Null,
                ("date", Some(Value::String(s))) => Value::String(age_cell(Some(s), now)),
                ("string", Some(Value::String(s))) => Value::String(s.clone()),
                ("string", Some(other)) => Value::String(other.to_string()),
                ("integer", Some(v)) => v
                    .as_i64()
                    .or_else(|| v.as_f64().map(|f| f as i64))
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                ("number", Some(v)) => v.as_f64().map(Value::from).unwrap_or(Value::Null),
                ("boolean", Some(v)) => v.as_bool().map(Value::from).unwrap_or(Value::Null),
                (_, Some(v)) => v.clone(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
