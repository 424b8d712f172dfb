//! Walks over upstream's OpenAPI definitions of built-in kinds: strategic-merge-patch keys
//! (`x-kubernetes-patch-merge-key` and `x-kubernetes-patch-strategy` of each list, found
//! along a field path) and the fields a kind does not have (for strict field validation).
//! The walks run over a compact index built once from `/openapi/v2`, so the 3 MB document is
//! not kept parsed.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// What a property of a definition leads to.
#[derive(Debug, Default)]
struct Property {
    /// The definition of the property (or of its items, or of its map values), if it is
    /// a reference.
    child: Option<String>,
    /// The merge key, when the list merges by key.
    merge_key: Option<String>,
    /// `x-kubernetes-patch-strategy` as written (`merge`, `retainKeys`, `merge,retainKeys`).
    strategy: Option<String>,
    /// A map: every key is allowed, values follow `child`.
    map: bool,
}

/// Definitions by name and the definition of each `group/version/Kind`.
#[derive(Debug, Default)]
struct Index {
    definitions: HashMap<String, HashMap<String, Property>>,
    kinds: HashMap<String, String>,
}

fn reference(schema: &Value) -> Option<String> {
    let target = schema
        .get("$ref")
        .or_else(|| schema.pointer("/items/$ref"))
        .or_else(|| schema.pointer("/additionalProperties/$ref"))
        .or_else(|| schema.pointer("/allOf/0/$ref"))?;
    target
        .as_str()?
        .strip_prefix("#/definitions/")
        .map(str::to_string)
}

fn build() -> Index {
    let mut index = Index::default();
    let Ok(doc) = serde_json::from_slice::<Value>(super::openapi::v2()) else {
        return index;
    };
    let Some(definitions) = doc["definitions"].as_object() else {
        return index;
    };
    for (name, definition) in definitions {
        for gvk in definition["x-kubernetes-group-version-kind"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = format!(
                "{}/{}/{}",
                gvk["group"].as_str().unwrap_or_default(),
                gvk["version"].as_str().unwrap_or_default(),
                gvk["kind"].as_str().unwrap_or_default()
            );
            index.kinds.entry(key).or_insert_with(|| name.clone());
        }
        let mut properties = HashMap::new();
        for (field, schema) in definition["properties"].as_object().into_iter().flatten() {
            let strategy = schema["x-kubernetes-patch-strategy"]
                .as_str()
                .unwrap_or_default();
            let merge_key = schema["x-kubernetes-patch-merge-key"]
                .as_str()
                .filter(|_| strategy.split(',').any(|s| s == "merge"))
                .map(str::to_string);
            let child = reference(schema);
            let map = schema.get("additionalProperties").is_some();
            let strategy = (!strategy.is_empty()).then(|| strategy.to_string());
            properties.insert(
                field.clone(),
                Property {
                    child,
                    merge_key,
                    strategy,
                    map,
                },
            );
        }
        if !properties.is_empty() {
            index.definitions.insert(name.clone(), properties);
        }
    }
    index
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(build)
}

/// The property at `path` in objects of a built-in kind.
fn property(group: &str, version: &str, kind: &str, path: &[&str]) -> Option<&'static Property> {
    let index = index();
    let mut definition = index.kinds.get(&format!("{group}/{version}/{kind}"))?;
    let (last, parents) = path.split_last()?;
    for field in parents {
        definition = index
            .definitions
            .get(definition)?
            .get(*field)?
            .child
            .as_ref()?;
    }
    index.definitions.get(definition)?.get(*last)
}

/// The merge key of the list at `path` in objects of a built-in kind.
pub(super) fn lookup(group: &str, version: &str, kind: &str, path: &[&str]) -> Option<String> {
    property(group, version, kind, path)?.merge_key.clone()
}

/// The patch strategy of the field at `path` in objects of a built-in kind.
pub(super) fn strategy(group: &str, version: &str, kind: &str, path: &[&str]) -> Option<String> {
    property(group, version, kind, path)?.strategy.clone()
}

/// Paths of the fields of `object` that its kind's definition does not have, written as
/// upstream's strict decoding names them (`spec.template.spec.containers[0].imagee`).
pub(super) fn unknown_fields(
    group: &str,
    version: &str,
    kind: &str,
    object: &Value,
) -> Vec<String> {
    let index = index();
    let mut out = Vec::new();
    if let Some(definition) = index.kinds.get(&format!("{group}/{version}/{kind}")) {
        walk(index, definition, object, "", &mut out);
    }
    out
}

fn walk(index: &Index, definition: &str, value: &Value, at: &str, out: &mut Vec<String>) {
    // Definitions without properties (Quantity, IntOrString, RawExtension, FieldsV1, Time)
    // accept anything.
    let (Some(properties), Value::Object(map)) = (index.definitions.get(definition), value) else {
        return;
    };
    for (key, child_value) in map {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        let Some(property) = properties.get(key) else {
            out.push(path);
            continue;
        };
        let Some(child) = &property.child else {
            continue;
        };
        match child_value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(index, child, item, &format!("{path}[{i}]"), out);
                }
            }
            Value::Object(entries) if property.map => {
                for (name, entry) in entries {
                    walk(index, child, entry, &format!("{path}.{name}"), out);
                }
            }
            other => walk(index, child, other, &path, out),
        }
    }
}

/// Removes the fields [`unknown_fields`] names (upstream's decoding into typed objects
/// drops them).
pub(super) fn prune_unknown(group: &str, version: &str, kind: &str, object: &mut Value) {
    let index = index();
    if let Some(definition) = index.kinds.get(&format!("{group}/{version}/{kind}")) {
        prune_walk(index, definition, object);
    }
}

fn prune_walk(index: &Index, definition: &str, value: &mut Value) {
    let (Some(properties), Value::Object(map)) = (index.definitions.get(definition), value) else {
        return;
    };
    map.retain(|key, _| properties.contains_key(key));
    for (key, child_value) in map.iter_mut() {
        let Some(child) = properties
            .get(key)
            .and_then(|p| p.child.as_ref().map(|c| (p, c)))
        else {
            continue;
        };
        let (property, child) = child;
        match child_value {
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| prune_walk(index, child, item)),
            Value::Object(entries) if property.map => entries
                .values_mut()
                .for_each(|entry| prune_walk(index, child, entry)),
            other => prune_walk(index, child, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_merge_keys_follow_pod_templates() {
        let key = |group, kind, path: &[&str]| lookup(group, "v1", kind, path);
        assert_eq!(
            key("", "Pod", &["spec", "containers"]).as_deref(),
            Some("name")
        );
        assert_eq!(
            key("", "Pod", &["spec", "containers", "ports"]).as_deref(),
            Some("containerPort")
        );
        assert_eq!(
            key("", "Pod", &["spec", "volumes"]).as_deref(),
            Some("name")
        );
        assert_eq!(
            key(
                "apps",
                "Deployment",
                &["spec", "template", "spec", "initContainers"]
            )
            .as_deref(),
            Some("name")
        );
        assert_eq!(
            key(
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers", "env"]
            )
            .as_deref(),
            Some("name")
        );
        assert_eq!(
            key(
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers", "volumeMounts"]
            )
            .as_deref(),
            Some("mountPath")
        );
        assert_eq!(
            key("", "Pod", &["spec", "imagePullSecrets"]).as_deref(),
            Some("name")
        );
        assert_eq!(
            key("", "Service", &["spec", "ports"]).as_deref(),
            Some("port")
        );
        assert_eq!(
            key("", "Pod", &["metadata", "ownerReferences"]).as_deref(),
            Some("uid")
        );
        // Replaced lists have no key.
        assert_eq!(key("", "Pod", &["spec", "containers", "args"]), None);
        assert_eq!(key("", "Pod", &["spec", "tolerations"]), None);
        assert_eq!(key("", "Pod", &["spec", "nope", "containers"]), None);
        assert_eq!(
            strategy("apps", "v1", "Deployment", &["spec", "strategy"]).as_deref(),
            Some("retainKeys")
        );
        assert_eq!(
            strategy("", "v1", "Pod", &["metadata", "finalizers"]).as_deref(),
            Some("merge")
        );
        assert_eq!(
            strategy("", "v1", "Pod", &["spec", "volumes"]).as_deref(),
            Some("merge,retainKeys")
        );
        assert_eq!(strategy("", "v1", "Pod", &["spec", "tolerations"]), None);
    }

    #[test]
    fn catalog_definitions_find_unknown_fields() {
        let deploy = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"any": "key"}, "colour": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
                    {"name": "c", "image": "nginx", "imagee": "typo",
                     "resources": {"limits": {"cpu": "1"}}, "ports": [{"containerPort": 80, "hostport": 1}]}
                ]}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}}, "extra": true}
        });
        assert_eq!(
            unknown_fields("apps", "v1", "Deployment", &deploy),
            [
                "metadata.colour",
                "spec.template.spec.containers[0].imagee",
                "spec.template.spec.containers[0].ports[0].hostport",
                "spec.extra",
            ]
        );
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "v"}});
        assert!(unknown_fields("", "v1", "ConfigMap", &cm).is_empty());
        let mut pruned = deploy.clone();
        prune_unknown("apps", "v1", "Deployment", &mut pruned);
        assert!(unknown_fields("apps", "v1", "Deployment", &pruned).is_empty());
        assert_eq!(
            pruned["metadata"],
            serde_json::json!({"name": "web", "labels": {"any": "key"}})
        );
        assert_eq!(
            pruned["spec"]["template"]["spec"]["containers"][0]["resources"],
            deploy["spec"]["template"]["spec"]["containers"][0]["resources"]
        );
    }
}
