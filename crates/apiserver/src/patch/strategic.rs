//! Strategic merge patch: a merge patch in which lists with a merge key (containers by
//! `name`, ports by `containerPort`, ...) merge item by item, and the directives `$patch`
//! (`replace`, `delete`, `merge`), `$retainKeys`, `$deleteFromPrimitiveList/<field>` and
//! `$setElementOrder/<field>` are honoured.

use serde_json::{Map, Value};

use super::PatchError;

/// Finds the merge key of the list at a path of field names from the object root.
pub type MergeKeys<'a> = &'a dyn Fn(&[&str]) -> Option<String>;

/// Applies a strategic merge patch to `target`.
pub fn apply(target: &mut Value, patch: &Value, keys: MergeKeys<'_>) -> Result<(), PatchError> {
    let Value::Object(patch_map) = patch else {
        return Err(PatchError::Malformed(
            "a strategic merge patch must be an object".to_string(),
        ));
    };
    let mut path = Vec::new();
    merge_map(target, patch_map, keys, &mut path)
}

fn merge_map(
    target: &mut Value,
    patch: &Map<String, Value>,
    keys: MergeKeys<'_>,
    path: &mut Vec<String>,
) -> Result<(), PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.remove("$patch");
            strip_directives(&mut replaced);
            *target = Value::Object(replaced);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::Malformed(format!(
                "unknown patch directive {other:?}"
            )));
        }
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return Ok(());
    };
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        map.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) =
                (map.get_mut(field), value.as_array())
            {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if value.is_null() {
            map.shift_remove(key);
            continue;
        }
        path.push(key.clone());
        let entry = map.entry(key.clone()).or_insert(Value::Null);
        match value {
            Value::Object(child) => {
                merge_map(entry, child, keys, path)?;
                if entry.is_null() {
                    map.shift_remove(key);
                }
            }
            Value::Array(items) => {
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                let merge_key = keys(&refs);
                merge_list(entry, items, merge_key.as_deref(), keys, path)?;
            }
            other => *entry = other.clone(),
        }
        path.pop();
    }
    Ok(())
}

fn strip_directives(map: &mut Map<String, Value>) {
    map.retain(|k, _| !k.starts_with('$'));
    for value in map.values_mut() {
        if let Value::Object(child) = value {
            strip_directives(child);
        }
    }
}

fn merge_list(
    target: &mut Value,
    patch: &[Value],
    merge_key: Option<&str>,
    keys: MergeKeys<'_>,
    path: &mut Vec<String>,
) -> Result<(), PatchError> {
    let replace_all = patch
        .iter()
        .any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace"));
    let Some(merge_key) = merge_key.filter(|_| !replace_all) else {
        let mut items: Vec<Value> = patch
            .iter()
            .filter(|item| item.get("$patch").is_none())
            .cloned()
            .collect();
        for item in &mut items {
            if let Value::Object(map) = item {
                strip_directives(map);
            }
        }
        *target = Value::Array(items);
        return Ok(());
    };
    if !target.is_array() {
        *target = Value::Array(Vec::new());
    }
    let Value::Array(current) = target else {
        return Ok(());
    };
    for item in patch {
        let Value::Object(item_map) = item else {
            // A list of primitives with merge strategy: union of values.
            if !current.contains(item) {
                current.push(item.clone());
            }
            continue;
        };
        let key_value = item_map.get(merge_key).cloned();
        let position = key_value
            .as_ref()
            .and_then(|kv| current.iter().position(|c| c.get(merge_key) == Some(kv)));
        if item_map.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = position {
                current.remove(i);
            }
            continue;
        }
        match position {
            Some(i) => merge_map(&mut current[i], item_map, keys, path)?,
            None => {
                let mut fresh = Value::Object(Map::new());
                merge_map(&mut fresh, item_map, keys, path)?;
                current.push(fresh);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(path: &[&str]) -> Option<String> {
        match path.last() {
            Some(&"containers") => Some("name".to_string()),
            Some(&"ports") => Some("containerPort".to_string()),
            Some(&"finalizers") => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn containers_merge_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}});
        apply(&mut pod, &patch, &keys).expect("patch");
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}])
        );
    }

    #[test]
    fn patch_directives_delete_and_replace() {
        let mut pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                      "nodeSelector": {"x": "1", "y": "2"}}});
        let patch = json!({"spec": {
            "containers": [{"name": "a", "$patch": "delete"}],
            "nodeSelector": {"$patch": "replace", "z": "3"}}});
        apply(&mut pod, &patch, &keys).expect("patch");
        assert_eq!(pod["spec"]["containers"], json!([{"name": "b"}]));
        assert_eq!(pod["spec"]["nodeSelector"], json!({"z": "3"}));
    }

    #[test]
    fn lists_without_merge_key_are_replaced() {
        let mut obj = json!({"spec": {"args": ["a", "b"]}});
        apply(&mut obj, &json!({"spec": {"args": ["c"]}}), &keys).expect("patch");
        assert_eq!(obj["spec"]["args"], json!(["c"]));
    }

    #[test]
    fn delete_from_primitive_list() {
        let mut obj = json!({"metadata": {"finalizers": ["a", "b"]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        apply(&mut obj, &patch, &keys).expect("patch");
        assert_eq!(obj["metadata"]["finalizers"], json!(["b"]));
    }
}
