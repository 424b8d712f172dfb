//! Table columns and cells as upstream's printers produce them, so `kubectl get` prints the
//! same columns as on a real cluster; ages formatted like upstream's `HumanDuration`.

mod batch;
mod cluster;
mod core_v1;
mod secondary;
mod workloads;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Description of the Name column (ObjectMeta's `name` documentation).
pub(super) const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// Description of the Age column (ObjectMeta's `creationTimestamp` documentation).
pub(super) const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One column: name, type, format, priority (1: `-o wide` only), description.
pub(super) type Column = (&'static str, &'static str, &'static str, i64, &'static str);

/// The Name column.
pub(super) const NAME: Column = ("Name", "string", "name", 0, NAME_DESCRIPTION);
/// The Age column.
pub(super) const AGE: Column = ("Age", "string", "", 0, AGE_DESCRIPTION);

/// Computes one object's cells against the current time.
pub(super) type CellsFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

/// How one kind is printed.
pub(super) struct Printer {
    /// Column definitions in order.
    pub columns: &'static [Column],
    /// Cells, one per column.
    pub cells: CellsFn,
}

const DEFAULT_COLUMNS: &[Column] = &[NAME, AGE];

fn default_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), age(obj, now)]
}

fn printer(group: &str, kind: &str) -> Printer {
    workloads::printer(group, kind)
        .or_else(|| batch::printer(group, kind))
        .or_else(|| core_v1::printer(group, kind))
        .or_else(|| cluster::printer(group, kind))
        .or_else(|| secondary::printer(group, kind))
        .unwrap_or(Printer {
            columns: DEFAULT_COLUMNS,
            cells: default_cells,
        })
}

/// Column definitions for a built-in kind.
pub(super) fn columns(group: &str, kind: &str) -> Vec<Value> {
    printer(group, kind)
        .columns
        .iter()
        .map(|(name, kind, format, priority, description)| {
            json!({
                "name": name, "type": kind, "format": format,
                "description": description, "priority": priority,
            })
        })
        .collect()
}

/// Cells of one object of a built-in kind.
pub(super) fn cells(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    (printer(group, kind).cells)(obj, now)
}

/// Upstream's `duration.HumanDuration`.
pub(super) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let (years, d) = (days / 365, days % 365);
    if hours < 24 * 365 * 8 && d != 0 {
        return format!("{years}y{d}d");
    }
    format!("{years}y")
}

/// Upstream's `translateTimestampSince`: age of an RFC 3339 timestamp, `<unknown>` without.
pub(super) fn age_cell(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    match timestamp.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => human_duration((now - t.with_timezone(&Utc)).num_seconds()),
        None => "<unknown>".into(),
    }
}

/// The object's name cell.
pub(super) fn name(obj: &Value) -> Value {
    obj["metadata"]["name"].clone()
}

/// The Age cell from `metadata.creationTimestamp`.
pub(super) fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    Value::String(age_cell(obj["metadata"]["creationTimestamp"].as_str(), now))
}

/// A string at a JSON pointer, or `""`.
pub(super) fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A string at a JSON pointer, or `<none>` when absent or empty.
pub(super) fn or_none(obj: &Value, pointer: &str) -> Value {
    match text(obj, pointer) {
        "" => Value::String("<none>".into()),
        s => Value::String(s.into()),
    }
}

/// An integer at a JSON pointer, or 0.
pub(super) fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The number of entries of an object or array at a JSON pointer.
pub(super) fn count(obj: &Value, pointer: &str) -> i64 {
    match obj.pointer(pointer) {
        Some(Value::Object(map)) => map.len() as i64,
        Some(Value::Array(list)) => list.len() as i64,
        _ => 0,
    }
}

/// A string map as `k=v,k2=v2` sorted by key (upstream's `labels.FormatLabels`), `<none>`.
pub(super) fn format_labels(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// A LabelSelector as upstream's `metav1.FormatLabelSelector` prints it.
pub(super) fn format_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        pairs.sort();
        parts.extend(pairs);
    }
    for expr in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expr["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expr["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match expr["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// The array at a JSON pointer, or empty.
pub(super) fn list<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The strings of the array at a JSON pointer.
pub(super) fn strings(obj: &Value, pointer: &str) -> Vec<String> {
    list(obj, pointer)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The string, or `<none>` when empty.
pub(super) fn none_if_empty(s: String) -> Value {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests;
