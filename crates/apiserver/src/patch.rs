//! The patch formats of `PATCH`: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch (in [`strategic`]); server-side apply lives in `apply`.

pub mod strategic;

use serde_json::Value;

/// A patch that cannot be applied (`422`/`400` depending on the cause).
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch document is not what its content type says.
    #[error("the patch is malformed: {0}")]
    Malformed(String),
    /// An operation could not be applied to the object.
    #[error("the patch could not be applied: {0}")]
    Failed(String),
    /// A JSON patch `test` operation did not hold.
    #[error("testing value {path} failed")]
    TestFailed {
        /// The pointer tested.
        path: String,
    },
}

/// The patch types of the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a content type, if it is one.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// RFC 7386: objects merge recursively, `null` removes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| PatchError::Malformed(format!("invalid pointer {pointer:?}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    path: &[String],
    pointer: &str,
) -> Result<&'a mut Value, PatchError> {
    let mut current = doc;
    for token in path {
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError::Failed(format!("path {pointer} does not exist")))?;
    }
    Ok(current)
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), PatchError> {
    let path = tokens(pointer)?;
    let Some((last, parents)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents, pointer)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= items.len())
                    .ok_or_else(|| PatchError::Failed(format!("index out of range: {pointer}")))?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(PatchError::Failed(format!("path {pointer} does not exist"))),
    }
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, PatchError> {
    let path = tokens(pointer)?;
    let Some((last, parents)) = path.split_last() else {
        return Ok(std::mem::take(doc));
    };
    let missing = || PatchError::Failed(format!("path {pointer} does not exist"));
    match parent_mut(doc, parents, pointer)? {
        Value::Object(map) => map.shift_remove(last).ok_or_else(missing),
        Value::Array(items) => {
            let index = last.parse::<usize>().ok().filter(|i| *i < items.len());
            index.map(|i| items.remove(i)).ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

fn lookup<'a>(doc: &'a Value, pointer: &str) -> Result<&'a Value, PatchError> {
    let escaped: String = tokens(pointer)?
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect();
    doc.pointer(&escaped)
        .ok_or_else(|| PatchError::Failed(format!("path {pointer} does not exist")))
}

/// RFC 6902: applies every operation in order, or none.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError::Malformed("a JSON patch must be an array".to_string()))?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op["op"]
            .as_str()
            .ok_or_else(|| PatchError::Malformed("operation without \"op\"".to_string()))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| PatchError::Malformed("operation without \"path\"".to_string()))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::Malformed(format!("{kind} without \"value\"")))
        };
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| PatchError::Malformed(format!("{kind} without \"from\"")))
        };
        match kind {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)?;
            }
            "move" => {
                let moved = remove(&mut doc, from()?)?;
                add(&mut doc, path, moved)?;
            }
            "copy" => {
                let copied = lookup(&doc, from()?)?.clone();
                add(&mut doc, path, copied)?;
            }
            "test" => {
                if *lookup(&doc, path)? != value()? {
                    return Err(PatchError::TestFailed {
                        path: path.to_string(),
                    });
                }
            }
            other => {
                return Err(PatchError::Malformed(format!(
                    "unknown operation {other:?}"
                )));
            }
        }
    }
    *target = doc;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_and_removes() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_applies_all_operations() {
        let mut doc = json!({"metadata": {"labels": {"a/b": "1"}}, "items": [1, 2]});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/items/-", "value": 3},
                {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
                {"op": "copy", "from": "/items/0", "path": "/first"},
                {"op": "move", "from": "/first", "path": "/moved"},
                {"op": "remove", "path": "/items/1"},
                {"op": "test", "path": "/moved", "value": 1},
            ]),
        )
        .expect("patch");
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"a/b": "2"}}, "items": [1, 3], "moved": 1})
        );
    }

    #[test]
    fn failed_test_leaves_document_unchanged() {
        let mut doc = json!({"a": 1});
        let result = json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 5}]),
        );
        assert!(matches!(result, Err(PatchError::TestFailed { .. })));
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn remove_of_missing_path_fails() {
        let mut doc = json!({"a": 1});
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/x"}])).is_err());
    }
}
