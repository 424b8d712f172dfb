//! Field ownership: `metadata.managedFields` (FieldsV1 sets per manager and operation) kept
//! on every write, and server-side apply (`application/apply-patch+yaml`) with conflicts
//! between managers, `force`, and removal of fields a manager stopped applying.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::catalog::Cause;
use crate::error::ApiError;
use crate::objects;
use crate::patch::strategic::MergeKeys;

/// A field path in FieldsV1 notation (`f:spec`, `k:{"name":"a"}`, `v:"x"`, `.`).
type FieldPath = Vec<String>;

/// Metadata fields that are the server's, never a manager's.
const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// Every owned leaf of an object with its value.
fn leaves(object: &Value, keys: MergeKeys<'_>) -> BTreeMap<FieldPath, Value> {
    let mut out = BTreeMap::new();
    let mut names = Vec::new();
    if let Value::Object(map) = object {
        for (k, v) in map {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if SYSTEM_META.contains(&mk.as_str()) {
                            continue;
                        }
                        names.push(mk.clone());
                        let path = vec!["f:metadata".to_string(), format!("f:{mk}")];
                        walk(mv, path, &mut names, keys, &mut out);
                        names.pop();
                    }
                }
                continue;
            }
            names.push(k.clone());
            walk(v, vec![format!("f:{k}")], &mut names, keys, &mut out);
            names.pop();
        }
    }
    out
}

fn walk(
    value: &Value,
    path: FieldPath,
    names: &mut Vec<String>,
    keys: MergeKeys<'_>,
    out: &mut BTreeMap<FieldPath, Value>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let mut child = path.clone();
                child.push(format!("f:{k}"));
                names.push(k.clone());
                walk(v, child, names, keys, out);
                names.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            match keys(&refs) {
                Some(key) if !key.is_empty() && items.iter().all(Value::is_object) => {
                    for item in items {
                        let mut id = Map::new();
                        id.insert(key.clone(), item.get(&key).cloned().unwrap_or(Value::Null));
                        let mut child = path.clone();
                        child.push(format!("k:{}", Value::Object(id)));
                        let mut marker = child.clone();
                        marker.push(".".into());
                        out.insert(marker, Value::Bool(true));
                        walk(item, child, names, keys, out);
                    }
                }
                Some(_) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
                    for item in items {
                        let mut child = path.clone();
                        child.push(format!("v:{item}"));
                        out.insert(child, item.clone());
                    }
                }
                _ => {
                    out.insert(path, value.clone());
                }
            }
        }
        other => {
            out.insert(path, other.clone());
        }
    }
}

/// A FieldsV1 tree from a set of paths.
fn to_fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for element in path {
            let next = node
                .entry(element.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(map) = next else { break };
            node = map;
        }
    }
    Value::Object(root)
}

/// The set of leaf paths of a FieldsV1 tree.
fn from_fields_v1(tree: &Value) -> BTreeSet<FieldPath> {
    fn go(node: &Map<String, Value>, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        for (k, v) in node {
            path.push(k.clone());
            match v {
                Value::Object(child) if !child.is_empty() => go(child, path, out),
                _ => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    if let Value::Object(map) = tree {
        go(map, &mut Vec::new(), &mut out);
    }
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: String,
    fields: BTreeSet<FieldPath>,
}

fn read_entries(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or("").to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
                    subresource: e["subresource"].as_str().map(String::from),
                    time: e["time"].as_str().unwrap_or("").to_string(),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_entries(object: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    let meta = objects::meta_mut(object);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

fn entry_mut<'a>(
    entries: &'a mut Vec<Entry>,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
) -> &'a mut Entry {
    let position = entries.iter().position(|e| {
        e.manager == manager && e.operation == operation && e.subresource.as_deref() == subresource
    });
    let index = match position {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: manager.to_string(),
                operation: operation.to_string(),
                api_version: api_version.to_string(),
                subresource: subresource.map(String::from),
                time: String::new(),
                fields: BTreeSet::new(),
            });
            entries.len() - 1
        }
    };
    let entry = &mut entries[index];
    entry.api_version = api_version.to_string();
    entry.time = objects::now_rfc3339();
    entry
}

/// Records an `Update` by `manager`: it owns what it changed, others lose those fields.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    keys: MergeKeys<'_>,
) {
    let mut entries = match old {
        Some(old) => read_entries(old),
        None => Vec::new(),
    };
    if manager.is_empty() {
        write_entries(new, &entries);
        return;
    }
    let before = old.map(|o| leaves(o, keys)).unwrap_or_default();
    let after = leaves(new, keys);
    let changed: BTreeSet<FieldPath> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let removed: BTreeSet<FieldPath> = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    for entry in &mut entries {
        entry
            .fields
            .retain(|p| !removed.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let entry = entry_mut(&mut entries, manager, "Update", api_version, subresource);
        entry.fields.extend(changed);
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(new, &entries);
}

fn display(path: &FieldPath) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(f) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = element.strip_prefix("k:") {
            out.push('[');
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(k) {
                let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&parts.join(","));
            }
            out.push(']');
        } else if let Some(v) = element.strip_prefix("v:") {
            out.push_str(&format!("[{v}]"));
        }
    }
    out
}

/// Removes the field at a FieldsV1 path from an object.
fn remove_path(object: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if let Some(name) = first.strip_prefix("f:") {
        let Value::Object(map) = object else { return };
        if rest.is_empty() || rest == ["."] {
            map.shift_remove(name);
        } else if let Some(child) = map.get_mut(name) {
            remove_path(child, rest);
        }
    } else if let Some(id) = first.strip_prefix("k:") {
        let Value::Array(items) = object else { return };
        let Ok(Value::Object(id)) = serde_json::from_str::<Value>(id) else {
            return;
        };
        let found = items
            .iter()
            .position(|item| id.iter().all(|(k, v)| item.get(k) == Some(v)));
        if let Some(i) = found {
            if rest.is_empty() || rest == ["."] {
                items.remove(i);
            } else {
                remove_path(&mut items[i], rest);
            }
        }
    } else if let Some(v) = first.strip_prefix("v:") {
        let Value::Array(items) = object else { return };
        if let Ok(value) = serde_json::from_str::<Value>(v) {
            items.retain(|i| *i != value);
        }
    }
}

/// Server-side apply of `applied` by `manager` onto `live` (`None` creates). Returns the
/// object to store, with `managedFields` updated, or the conflicts.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
    keys: MergeKeys<'_>,
) -> Result<Value, ApiError> {
    let applied_leaves = leaves(applied, keys);
    let mut entries = live.map(read_entries).unwrap_or_default();
    let live_leaves = live.map(|l| leaves(l, keys)).unwrap_or_default();
    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for (path, value) in &applied_leaves {
        if live_leaves.get(path).is_some_and(|v| v == value) {
            continue;
        }
        for entry in &entries {
            let mine = entry.manager == manager && entry.operation == "Apply";
            if !mine && entry.fields.contains(path) && live_leaves.contains_key(path) {
                conflicts.push((entry.manager.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Cause> = conflicts
            .iter()
            .map(|(m, p)| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with \"{m}\""),
                field: display(p),
            })
            .collect();
        let message = if causes.len() == 1 {
            format!(
                "Apply failed with 1 conflict: conflict with \"{}\": {}",
                conflicts[0].0, causes[0].field
            )
        } else {
            let lines: Vec<String> = causes
                .iter()
                .map(|c| format!("{}: {}", c.message, c.field))
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                causes.len(),
                lines.join("\n")
            )
        };
        return Err(ApiError::ApplyConflict { message, causes });
    }
    let applied_set: BTreeSet<FieldPath> = applied_leaves.keys().cloned().collect();
    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    let previous: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| e.manager == manager && e.operation == "Apply")
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    for path in previous.difference(&applied_set) {
        let shared = entries
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.fields.contains(path));
        if !shared {
            remove_path(&mut result, path);
        }
    }
    for entry in &mut entries {
        let mine = entry.manager == manager && entry.operation == "Apply";
        if !mine && force {
            entry
                .fields
                .retain(|p| !conflicts.iter().any(|(m, c)| *m == entry.manager && c == p));
        }
    }
    let mut body = applied.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    crate::patch::strategic::apply(&mut result, &body, keys)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let entry = entry_mut(&mut entries, manager, "Apply", api_version, None);
    entry.fields = applied_set;
    entries.retain(|e| !e.fields.is_empty());
    write_entries(&mut result, &entries);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_keys(_: &[&str]) -> Option<String> {
        None
    }

    #[test]
    fn apply_conflicts_with_other_manager_unless_forced() {
        let mut live = json!({"metadata": {"name": "a"}, "data": {"k": "1"}});
        record_update(None, &mut live, "editor", "v1", None, &no_keys);
        let applied = json!({"metadata": {"name": "a"}, "data": {"k": "2"}});
        let err = server_side_apply(Some(&live), &applied, "kubectl", "v1", false, &no_keys)
            .expect_err("conflict");
        assert!(err.to_string().contains(".data.k"), "{err}");
        let forced = server_side_apply(Some(&live), &applied, "kubectl", "v1", true, &no_keys)
            .expect("forced");
        assert_eq!(forced["data"]["k"], "2");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("managed")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["kubectl"]);
    }

    #[test]
    fn fields_no_longer_applied_are_removed() {
        let first = json!({"metadata": {"name": "a"}, "data": {"a": "1", "b": "2"}});
        let live = server_side_apply(None, &first, "m", "v1", false, &no_keys).expect("create");
        let second = json!({"metadata": {"name": "a"}, "data": {"a": "1"}});
        let result =
            server_side_apply(Some(&live), &second, "m", "v1", false, &no_keys).expect("apply");
        assert_eq!(result["data"], json!({"a": "1"}));
    }

    #[test]
    fn fields_v1_round_trips() {
        let mut o = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}});
        record_update(None, &mut o, "m", "v1", None, &no_keys);
        let fields = &o["metadata"]["managedFields"][0]["fieldsV1"];
        assert_eq!(
            fields,
            &json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:x": {}}})
        );
    }
}
