//! How objects live in the store: keys (`/registry/<group>/<plural>/<namespace>/<name>`),
//! encoding (JSON without `resourceVersion`, which is the store revision) and the metadata
//! helpers every verb uses.

use berth_store::KeyValue;
use rand::Rng;
use serde_json::{Map, Value};

use crate::catalog::ResourceType;
use crate::error::ApiError;

/// `configmaps` or `deployments.apps`, as upstream names resources in messages.
pub fn qualified(resource: &ResourceType) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// The key prefix of every object of a resource (all versions share it).
pub fn resource_prefix(resource: &ResourceType) -> String {
    if resource.group.is_empty() {
        format!("/registry/{}/", resource.plural)
    } else {
        format!("/registry/{}/{}/", resource.group, resource.plural)
    }
}

/// The key prefix of a resource's objects in one namespace (or all, when `None`).
pub fn list_prefix(resource: &ResourceType, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if resource.namespaced => format!("{}{ns}/", resource_prefix(resource)),
        _ => resource_prefix(resource),
    }
}

/// The key of one object.
pub fn key(resource: &ResourceType, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if resource.namespaced => format!("{}{ns}/{name}", resource_prefix(resource)),
        _ => format!("{}{name}", resource_prefix(resource)),
    }
}

/// Parses a stored value and sets `resourceVersion`, `apiVersion` and `kind` as served.
pub fn decode(kv: &KeyValue, resource: &ResourceType) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    finish(&mut object, resource, kv.mod_revision);
    Ok(object)
}

/// Sets the served `apiVersion`, `kind` and `resourceVersion` of an object read at `revision`.
pub fn finish(object: &mut Value, resource: &ResourceType, revision: i64) {
    if let Value::Object(map) = object {
        map.insert("apiVersion".into(), Value::String(resource.api_version()));
        map.insert("kind".into(), Value::String(resource.kind.clone()));
    }
    set_meta(
        object,
        "resourceVersion",
        Value::String(revision.to_string()),
    );
}

/// The bytes to store: the object without `resourceVersion`.
pub fn encode(object: &Value) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&Stored(object)).map_err(|e| ApiError::Internal(e.to_string()))
}

/// An object serialized as stored: `metadata.resourceVersion` left out, without copying
/// the object to remove it.
struct Stored<'a>(&'a Value);

/// Metadata without `resourceVersion`.
struct StoredMeta<'a>(&'a Map<String, Value>);

impl serde::Serialize for Stored<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(fields) = self.0 else {
            return self.0.serialize(serializer);
        };
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (name, value) in fields {
            match value {
                Value::Object(meta) if name == "metadata" => {
                    map.serialize_entry(name, &StoredMeta(meta))?;
                }
                _ => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}

impl serde::Serialize for StoredMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let kept = self.0.iter().filter(|(name, _)| *name != "resourceVersion");
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in kept {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// The object's `metadata`, created when missing.
pub fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = Value::Object(Map::new());
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// Sets `metadata.<field>`.
pub fn set_meta(object: &mut Value, field: &str, value: Value) {
    meta_mut(object).insert(field.to_string(), value);
}

/// `metadata.finalizers`.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces `metadata.finalizers` (removing the field when empty).
pub fn set_finalizers(object: &mut Value, list: &[String]) {
    let meta = meta_mut(object);
    if list.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert(
            "finalizers".into(),
            Value::Array(list.iter().cloned().map(Value::String).collect()),
        );
    }
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The current time as upstream writes timestamps (`2024-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    // Not `format`: parsing its pattern costs more than the rest of a create's metadata.
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A name for `generateName`: the prefix plus five random characters from upstream's
/// alphabet (no vowels, no confusable digits).
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// The object without `metadata` and `status` (what `generation` tracks).
pub fn spec_part(object: &Value) -> Value {
    match object {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Reads a JSON path like `.spec.replicas`.
pub fn read_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = object;
    for segment in path.trim_start_matches('.').split('.') {
        current = current.get(segment)?;
    }
    Some(current)
}

/// Writes a JSON path like `.spec.replicas`, creating objects on the way.
pub fn write_path(object: &mut Value, path: &str, value: Value) {
    let segments: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut current = object;
    for (i, segment) in segments.iter().enumerate() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        if i + 1 == segments.len() {
            map.insert((*segment).to_string(), value);
            return;
        }
        current = map
            .entry((*segment).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rt(group: &str, plural: &str, namespaced: bool) -> ResourceType {
        ResourceType {
            group: group.into(),
            version: "v1".into(),
            kind: "K".into(),
            plural: plural.into(),
            singular: String::new(),
            short_names: vec![],
            namespaced,
            verbs: vec![],
            categories: vec![],
            status_subresource: false,
            scale_subresource: None,
            custom: false,
        }
    }

    #[test]
    fn keys_follow_registry_layout() {
        assert_eq!(
            key(&rt("", "configmaps", true), Some("default"), "a"),
            "/registry/configmaps/default/a"
        );
        assert_eq!(
            key(&rt("apps", "deployments", true), Some("ns"), "d"),
            "/registry/apps/deployments/ns/d"
        );
        assert_eq!(
            key(&rt("", "nodes", false), Some("x"), "n"),
            "/registry/nodes/n"
        );
        assert_eq!(list_prefix(&rt("", "pods", true), None), "/registry/pods/");
    }

    #[test]
    fn paths_read_and_write() {
        let mut o = json!({});
        write_path(&mut o, ".spec.replicas", json!(3));
        assert_eq!(read_path(&o, ".spec.replicas"), Some(&json!(3)));
    }

    #[test]
    fn generated_names_keep_prefix() {
        let name = generate_name("web-");
        assert!(name.starts_with("web-") && name.len() == 9);
    }

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2024-01-02T03:04:05Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        chrono::DateTime::parse_from_rfc3339(&now).expect("RFC 3339");
    }

    #[test]
    fn encoding_leaves_out_only_the_resource_version() {
        let object = json!({
            "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7", "labels": {"resourceVersion": "x"}},
            "data": {"resourceVersion": "kept"}
        });
        let stored: Value =
            serde_json::from_slice(&encode(&object).expect("encodes")).expect("JSON");
        assert_eq!(
            stored,
            json!({
                "kind": "ConfigMap",
                "metadata": {"name": "a", "labels": {"resourceVersion": "x"}},
                "data": {"resourceVersion": "kept"}
            })
        );
        assert_eq!(encode(&json!([1])).expect("encodes"), b"[1]");
    }
}
