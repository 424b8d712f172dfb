//! Upstream validation of built-in objects with upstream's causes: object metadata (names,
//! labels, annotations, immutable identity) for every resource, then per kind: pod specs in
//! `validation/pod.rs`, workloads in `validation/workloads.rs`, the rest in
//! `validation/core.rs`.

mod core;
mod pod;
mod workloads;

use serde_json::Value;

use super::{Cause, ResourceType, crd, names};

/// How the value of an invalid field is shown, like upstream's `field.Invalid`.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// `FieldValueRequired`: `Required value`, with an optional detail.
pub(super) fn required(field: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    Cause {
        reason: "FieldValueRequired".into(),
        message,
        field: field.into(),
    }
}

/// `FieldValueInvalid`: `Invalid value: <value>: <detail>`.
pub(super) fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {detail}", show(value)),
        field: field.into(),
    }
}

/// `FieldValueNotSupported`: `Unsupported value: <value>: supported values: "a", "b"`.
pub(super) fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: {}: supported values: {}",
            show(value),
            list.join(", ")
        ),
        field: field.into(),
    }
}

/// `FieldValueForbidden`: `Forbidden: <detail>`.
pub(super) fn forbidden(field: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {detail}"),
        field: field.into(),
    }
}

/// `FieldValueDuplicate`: `Duplicate value: <value>`.
pub(super) fn duplicate(field: &str, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {}", show(value)),
        field: field.into(),
    }
}

/// `FieldValueNotFound`: `Not found: <value>`.
pub(super) fn not_found(field: &str, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueNotFound".into(),
        message: format!("Not found: {}", show(value)),
        field: field.into(),
    }
}

/// An immutable field that changed.
pub(super) fn immutable(field: &str, value: &Value) -> Cause {
    invalid(field, value, "field is immutable")
}

/// A number that must be at least `min`.
pub(super) fn at_least(causes: &mut Vec<Cause>, obj: &Value, pointer: &str, min: i64) {
    if let Some(n) = obj.pointer(pointer).and_then(Value::as_i64)
        && n < min
    {
        let detail = format!("must be greater than or equal to {min}");
        causes.push(invalid(&field_of(pointer), &Value::from(n), &detail));
    }
}

/// `spec/template/spec` as `spec.template.spec`.
pub(super) fn field_of(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// The name rule of a built-in kind.
fn name_rule(resource: &ResourceType) -> fn(&str) -> Vec<String> {
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Service") => names::dns1035_label,
        ("", "Namespace") => names::dns1123_label,
        ("rbac.authorization.k8s.io", _) => names::path_segment_name,
        _ => names::dns1123_subdomain,
    }
}

/// Object metadata: name or generateName, namespace, labels, annotations; on update the
/// identity fields that may not change.
pub(super) fn metadata(resource: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    let generate = meta["generateName"].as_str().unwrap_or_default();
    let rule = name_rule(resource);
    if name.is_empty() && generate.is_empty() {
        causes.push(required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if name.is_empty() {
        // A trailing dash is fine in a prefix: a random suffix follows it.
        let masked = match generate.strip_suffix('-') {
            Some(stem) => format!("{stem}a"),
            None => generate.to_string(),
        };
        for msg in rule(&masked) {
            causes.push(invalid(
                "metadata.generateName",
                &meta["generateName"],
                &msg,
            ));
        }
    } else {
        for msg in rule(name) {
            causes.push(invalid("metadata.name", &meta["name"], &msg));
        }
    }
    if resource.kind == "CronJob" && resource.group == "batch" && name.len() > 52 {
        causes.push(invalid(
            "metadata.name",
            &meta["name"],
            "must be no more than 52 characters",
        ));
    }
    let namespace = meta["namespace"].as_str().unwrap_or_default();
    if resource.namespaced && !namespace.is_empty() {
        for msg in names::dns1123_label(namespace) {
            causes.push(invalid("metadata.namespace", &meta["namespace"], &msg));
        }
    } else if !resource.namespaced && !namespace.is_empty() {
        causes.push(forbidden("metadata.namespace", "not allowed on this type"));
    }
    labels(&meta["labels"], "metadata.labels", &mut causes);
    annotations(&meta["annotations"], &mut causes);
    if let Some(old) = old {
        for key in ["name", "namespace", "uid", "creationTimestamp"] {
            let (new_value, old_value) = (&meta[key], &old["metadata"][key]);
            if !old_value.is_null() && !new_value.is_null() && new_value != old_value {
                causes.push(immutable(&format!("metadata.{key}"), new_value));
            }
        }
    }
    causes
}

/// Label keys and values of a string map at `field`.
pub(super) fn labels(map: &Value, field: &str, causes: &mut Vec<Cause>) {
    for (key, value) in map.as_object().into_iter().flatten() {
        for msg in names::qualified_name(key) {
            causes.push(invalid(field, &Value::String(key.clone()), &msg));
        }
        let text = value.as_str().unwrap_or_default();
        for msg in names::label_value(text) {
            causes.push(invalid(field, value, &msg));
        }
    }
}

/// Annotation keys and their total size (256 KiB).
fn annotations(map: &Value, causes: &mut Vec<Cause>) {
    let mut size = 0;
    for (key, value) in map.as_object().into_iter().flatten() {
        for msg in names::qualified_name(&key.to_ascii_lowercase()) {
            causes.push(invalid(
                "metadata.annotations",
                &Value::String(key.clone()),
                &msg,
            ));
        }
        size += key.len() + value.as_str().map_or(0, str::len);
    }
    const MAX: usize = 256 * 1024;
    if size > MAX {
        causes.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: must have at most {MAX} bytes"),
            field: "metadata.annotations".into(),
        });
    }
}

/// Kind-specific validation of a built-in object.
pub(super) fn builtin(
    resource: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
) {
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => pod::pod(obj, old, causes),
        ("", "PodTemplate") => pod::template(obj, "/template", causes),
        ("apps", _) | ("", "ReplicationController") | ("batch", _) => {
            workloads::validate(&resource.kind, obj, old, causes)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            causes.extend(crd::validate(obj));
            if let Some(old) = old {
                for (field, pointer) in
                    [("spec.scope", "/spec/scope"), ("spec.group", "/spec/group")]
                {
                    let value = obj.pointer(pointer).unwrap_or(&Value::Null);
                    if old.pointer(pointer).is_some_and(|o| o != value) {
                        causes.push(immutable(field, value));
                    }
                }
            }
        }
        _ => core::validate(&resource.group, &resource.kind, obj, old, causes),
    }
}

#[cfg(test)]
mod tests;
