//! `Table` responses (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), which is how
//! `kubectl get` prints columns, and `PartialObjectMetadata` views.

use serde_json::{Value, json};

use crate::catalog::{Catalog, ResourceType};
use crate::objects::meta_str;

/// Upstream's short duration (`45s`, `5m`, `3h`, `2d`, `1y`) as `kubectl get` shows ages.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=599 => {
            let (m, rest) = (s / 60, s % 60);
            if rest == 0 {
                format!("{m}m")
            } else {
                format!("{m}m{rest}s")
            }
        }
        600..=10_799 => format!("{}m", s / 60),
        10_800..=28_799 => {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            if m == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{m}m")
            }
        }
        28_800..=172_799 => format!("{}h", s / 3600),
        172_800..=691_199 => {
            let (d, h) = (s / 86_400, (s % 86_400) / 3600);
            if h == 0 {
                format!("{d}d")
            } else {
                format!("{d}d{h}h")
            }
        }
        691_200..=63_071_999 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

fn age(object: &Value, now: chrono::DateTime<chrono::Utc>) -> Value {
    let created = meta_str(object, "creationTimestamp")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    match created {
        Some(t) => json!(human_duration(
            (now - t.with_timezone(&chrono::Utc)).num_seconds()
        )),
        None => json!("<unknown>"),
    }
}

fn default_columns() -> Vec<Value> {
    vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
        json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}),
    ]
}

/// The `PartialObjectMetadata` of an object.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A `PartialObjectMetadataList` of a list response.
pub fn partial_metadata_list(list: &Value) -> Value {
    let items: Vec<Value> = list["items"]
        .as_array()
        .map(|items| items.iter().map(partial_metadata).collect())
        .unwrap_or_default();
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list.get("metadata").cloned().unwrap_or(json!({})),
        "items": items,
    })
}

/// A Table of `objects` with the list metadata `metadata`; `include_object` is the
/// `includeObject` parameter (`None`, `Metadata` (default) or `Object`).
pub fn table(
    catalog: &Catalog,
    resource: &ResourceType,
    objects: &[Value],
    metadata: Value,
    include_object: Option<&str>,
) -> Value {
    let now = chrono::Utc::now();
    let mut columns = catalog.table_columns(resource);
    let custom_cells = !columns.is_empty();
    if !custom_cells {
        columns = default_columns();
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let cells = if custom_cells {
                catalog.table_cells(resource, object, now)
            } else {
                vec![
                    json!(meta_str(object, "name").unwrap_or("")),
                    age(object, now),
                ]
            };
            let mut row = json!({"cells": cells});
            match include_object {
                Some("None") => {}
                Some("Object") => row["object"] = object.clone(),
                _ => row["object"] = partial_metadata(object),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(4 * 86_400), "4d");
    }

    #[test]
    fn default_table_has_name_and_age() {
        let rt = ResourceType::configmaps();
        let object =
            json!({"metadata": {"name": "a", "creationTimestamp": "2020-01-01T00:00:00Z"}});
        let t = table(&Catalog::default(), &rt, &[object], json!({}), None);
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
