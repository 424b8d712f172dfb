//! CRD structural schemas (`openAPIV3Schema`): validation with upstream's messages, pruning
//! of unknown fields, and `default`s. The root's `apiVersion`, `kind` and `metadata` are
//! the API server's, so validation and pruning leave them alone.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::{Map, Value};

use super::Cause;

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn is_root_meta(at: &str, key: &str) -> bool {
    at.is_empty() && matches!(key, "apiVersion" | "kind" | "metadata")
}

/// Validates an object against a CRD version's schema.
pub(super) fn validate(schema: &Value, object: &Value, causes: &mut Vec<Cause>) {
    check(schema, object, "", causes);
}

fn type_matches(expected: &str, value: &Value, schema: &Value) -> bool {
    if schema["x-kubernetes-int-or-string"] == true {
        return matches!(value, Value::String(_)) || type_name(value) == "integer";
    }
    match (expected, type_name(value)) {
        ("", _) => true,
        ("number", "integer") => true,
        (e, actual) => e == actual,
    }
}

fn check(schema: &Value, value: &Value, at: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        let expected = schema["type"].as_str().unwrap_or_default();
        if schema["nullable"] != true && !expected.is_empty() && !at.is_empty() {
            causes.push(cause(
                "FieldValueInvalid",
                at,
                format!(
                    "Invalid value: \"null\": {at} in body must be of type {expected}: \"null\""
                ),
            ));
        }
        return;
    }
    let expected = schema["type"].as_str().unwrap_or_default();
    if !type_matches(expected, value, schema) {
        let actual = type_name(value);
        causes.push(cause(
            "FieldValueInvalid",
            at,
            format!(
                "Invalid value: \"{actual}\": {at} in body must be of type {expected}: \"{actual}\""
            ),
        ));
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        let list: Vec<String> = options.iter().map(show).collect();
        causes.push(cause(
            "FieldValueNotSupported",
            at,
            format!(
                "Unsupported value: {}: supported values: {}",
                show(value),
                list.join(", ")
            ),
        ));
    }
    match value {
        Value::String(s) => string(schema, s, value, at, causes),
        Value::Number(n) => number(schema, n.as_f64().unwrap_or_default(), value, at, causes),
        Value::Array(list) => {
            let len = list.len() as u64;
            if let Some(min) = schema["minItems"].as_u64().filter(|m| len < *m) {
                let msg =
                    format!("Invalid value: {len}: {at} in body should have at least {min} items");
                causes.push(cause("FieldValueInvalid", at, msg));
            }
            if let Some(max) = schema["maxItems"].as_u64().filter(|m| len > *m) {
                let msg = format!("Too many: {len}: must have at most {max} items");
                causes.push(cause("FieldValueTooMany", at, msg));
            }
            if let Some(items) = schema.get("items") {
                for (i, item) in list.iter().enumerate() {
                    check(items, item, &format!("{at}[{i}]"), causes);
                }
            }
            list_type(schema, list, at, causes);
        }
        Value::Object(map) => object(schema, map, at, causes),
        _ => {}
    }
}

/// `x-kubernetes-list-type: set` (unique items) and `map` (unique `list-map-keys`).
fn list_type(schema: &Value, list: &[Value], at: &str, causes: &mut Vec<Cause>) {
    let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let identity = |item: &Value| -> Value {
        match schema["x-kubernetes-list-type"].as_str() {
            Some("map") => Value::Array(keys.iter().map(|k| item[*k].clone()).collect()),
            _ => item.clone(),
        }
    };
    if !matches!(
        schema["x-kubernetes-list-type"].as_str(),
        Some("set" | "map")
    ) {
        return;
    }
    let mut seen: Vec<Value> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let id = identity(item);
        if seen.contains(&id) {
            let shown = match schema["x-kubernetes-list-type"].as_str() {
                Some("map") => {
                    let pairs: Vec<String> =
                        keys.iter().map(|k| format!("{k:?}:{}", item[*k])).collect();
                    format!("map[string]interface {{}}{{{}}}", pairs.join(", "))
                }
                _ => show(item),
            };
            let msg = format!("Duplicate value: {shown}");
            causes.push(cause("FieldValueDuplicate", &format!("{at}[{i}]"), msg));
        } else {
            seen.push(id);
        }
    }
}

fn string(schema: &Value, s: &str, value: &Value, at: &str, causes: &mut Vec<Cause>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema["minLength"].as_u64().filter(|m| len < *m) {
        let msg = format!(
            "Invalid value: {}: {at} in body should be at least {min} chars long",
            show(value)
        );
        causes.push(cause("FieldValueInvalid", at, msg));
    }
    if let Some(max) = schema["maxLength"].as_u64().filter(|m| len > *m) {
        let msg = format!("Too long: may not be more than {max} bytes");
        causes.push(cause("FieldValueTooLong", at, msg));
    }
    if let Some(pattern) = schema["pattern"].as_str()
        && !pattern_matches(pattern, s)
    {
        let msg = format!(
            "Invalid value: {}: {at} in body should match '{pattern}'",
            show(value)
        );
        causes.push(cause("FieldValueInvalid", at, msg));
    }
}

/// Whether `s` matches an ECMA-262-style pattern; compiled patterns are cached, and a pattern
/// the regex engine rejects is not enforced (upstream rejects it when the CRD is created).
fn pattern_matches(pattern: &str, s: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = match cache.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let compiled = cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok());
    compiled.as_ref().is_none_or(|re| re.is_match(s))
}

fn number(schema: &Value, n: f64, value: &Value, at: &str, causes: &mut Vec<Cause>) {
    let shown = show(value);
    if let Some(min) = schema["minimum"].as_f64() {
        let exclusive = schema["exclusiveMinimum"] == true;
        if n < min || exclusive && n <= min {
            let relation = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let msg = format!(
                "Invalid value: {shown}: {at} in body should be {relation} {}",
                schema["minimum"]
            );
            causes.push(cause("FieldValueInvalid", at, msg));
        }
    }
    if let Some(max) = schema["maximum"].as_f64() {
        let exclusive = schema["exclusiveMaximum"] == true;
        if n > max || exclusive && n >= max {
            let relation = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            let msg = format!(
                "Invalid value: {shown}: {at} in body should be {relation} {}",
                schema["maximum"]
            );
            causes.push(cause("FieldValueInvalid", at, msg));
        }
    }
}

fn object(schema: &Value, map: &Map<String, Value>, at: &str, causes: &mut Vec<Cause>) {
    for key in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(key) && !is_root_meta(at, key) {
            causes.push(cause(
                "FieldValueRequired",
                &join(at, key),
                "Required value".into(),
            ));
        }
    }
    let properties = schema["properties"].as_object();
    for (key, value) in map {
        if is_root_meta(at, key) {
            continue;
        }
        if let Some(property) = properties.and_then(|p| p.get(key)) {
            check(property, value, &join(at, key), causes);
        } else if let Some(additional) =
            schema.get("additionalProperties").filter(|a| a.is_object())
        {
            check(additional, value, &join(at, key), causes);
        }
    }
}

/// Drops fields the schema does not declare, unless `x-kubernetes-preserve-unknown-fields`.
pub(super) fn prune(schema: &Value, object: &mut Value) {
    prune_at(schema, object, true);
}

fn prune_at(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            let embedded = root || schema["x-kubernetes-embedded-resource"] == true;
            let properties = schema["properties"].as_object();
            let additional = schema.get("additionalProperties");
            map.retain(|key, _| {
                preserve
                    || embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                    || properties.is_some_and(|p| p.contains_key(key))
                    || additional.is_some_and(|a| a.is_object() || a == true)
            });
            for (key, child) in map.iter_mut() {
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(property) = properties.and_then(|p| p.get(key)) {
                    prune_at(property, child, false);
                } else if let Some(additional) = additional.filter(|a| a.is_object()) {
                    prune_at(additional, child, false);
                }
            }
        }
        Value::Array(list) => {
            if let Some(items) = schema.get("items") {
                list.iter_mut()
                    .for_each(|item| prune_at(items, item, false));
            }
        }
        _ => {}
    }
}

/// Paths of the fields pruning would drop (for strict field validation).
pub(super) fn unknown_fields(schema: &Value, object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_unknown(schema, object, "", true, &mut out);
    out
}

fn collect_unknown(schema: &Value, value: &Value, at: &str, root: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if schema["x-kubernetes-preserve-unknown-fields"] == true {
                return;
            }
            let embedded = root || schema["x-kubernetes-embedded-resource"] == true;
            let properties = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let path = join(at, key);
                if let Some(property) = properties.and_then(|p| p.get(key)) {
                    collect_unknown(property, child, &path, false, out);
                } else if let Some(additional) = additional {
                    collect_unknown(additional, child, &path, false, out);
                } else if schema.get("additionalProperties") != Some(&Value::Bool(true)) {
                    out.push(path);
                }
            }
        }
        Value::Array(list) => {
            if let Some(items) = schema.get("items") {
                for (i, item) in list.iter().enumerate() {
                    collect_unknown(items, item, &format!("{at}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Fills in the schema's `default`s for absent fields (and null ones that are not nullable).
pub(super) fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, property) in schema["properties"].as_object().into_iter().flatten() {
                let Some(default) = property.get("default") else {
                    continue;
                };
                let missing = match map.get(key) {
                    None => true,
                    Some(Value::Null) => property["nullable"] != true,
                    Some(_) => false,
                };
                if missing {
                    map.insert(key.clone(), default.clone());
                }
            }
            for (key, child) in map.iter_mut() {
                if let Some(property) = schema["properties"].get(key) {
                    apply_defaults(property, child);
                } else if let Some(additional) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    apply_defaults(additional, child);
                }
            }
        }
        Value::Array(list) => {
            if let Some(items) = schema.get("items") {
                list.iter_mut().for_each(|item| apply_defaults(items, item));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
