//! A small JSONPath evaluator for the simple paths of additionalPrinterColumns
//! (`.spec.replicas`, `.status.conditions[0].type`, `.metadata.labels['app.kubernetes.io/name']`,
//! `.status.conditions[?(@.type=="Ready")].status`, `.items[*].name`).

use serde_json::Value;

/// One step of a path.
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    /// `[?(@.<field path>=="<value>")]`.
    Filter(Vec<String>, String),
}

/// Splits a path into steps; `None` when it is not of the supported subset.
fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                if after.starts_with('[') {
                    rest = after;
                    continue;
                }
                return None;
            }
            steps.push(if &after[..end] == "*" {
                Step::Wildcard
            } else {
                Step::Field(after[..end].to_string())
            });
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let (inner, tail) = bracket(after)?;
            steps.push(parse_bracket(inner)?);
            rest = tail;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Field(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    Some(steps)
}

/// The text inside a bracket (quotes respected) and what follows the closing `]`.
fn bracket(after: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (i, c) in after.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some((&after[..i], &after[i + 1..])),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

fn parse_bracket(inner: &str) -> Option<Step> {
    let inner = inner.trim();
    if inner == "*" {
        return Some(Step::Wildcard);
    }
    if let Some(name) = unquote(inner) {
        return Some(Step::Field(name.to_string()));
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        let (lhs, rhs) = filter.split_once("==")?;
        let field = lhs.trim().strip_prefix("@.")?;
        let fields = field.split('.').map(str::to_string).collect();
        return Some(Step::Filter(fields, unquote(rhs)?.to_string()));
    }
    inner.parse().ok().map(Step::Index)
}

fn matches_filter(item: &Value, fields: &[String], want: &str) -> bool {
    let mut at = item;
    for f in fields {
        match at.get(f) {
            Some(v) => at = v,
            None => return false,
        }
    }
    match at {
        Value::String(s) => s == want,
        other => *other == want,
    }
}

/// Every value the path selects, in document order.
pub(super) fn evaluate<'a>(object: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![object];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            match (step, value) {
                (Step::Field(name), Value::Object(map)) => next.extend(map.get(name)),
                (Step::Index(i), Value::Array(list)) => {
                    let i = if *i < 0 { list.len() as i64 + i } else { *i };
                    next.extend(usize::try_from(i).ok().and_then(|i| list.get(i)));
                }
                (Step::Wildcard, Value::Array(list)) => next.extend(list.iter()),
                (Step::Wildcard, Value::Object(map)) => next.extend(map.values()),
                (Step::Filter(fields, want), Value::Array(list)) => {
                    next.extend(list.iter().filter(|v| matches_filter(v, fields, want)))
                }
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// The first value the path selects.
pub(super) fn first<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    evaluate(object, path).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalog_jsonpath_follows_fields_indexes_and_filters() {
        let obj = json!({
            "spec": {"replicas": 3},
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Ready", "status": "False"}
            ]}
        });
        assert_eq!(first(&obj, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(first(&obj, "{.spec.replicas}"), Some(&json!(3)));
        assert_eq!(
            first(&obj, ".metadata.labels['app.kubernetes.io/name']"),
            Some(&json!("web"))
        );
        assert_eq!(
            first(&obj, ".status.conditions[1].type"),
            Some(&json!("Ready"))
        );
        assert_eq!(
            first(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("False"))
        );
        assert_eq!(evaluate(&obj, ".status.conditions[*].type").len(), 2);
        assert_eq!(
            first(&obj, ".status.conditions[-1].status"),
            Some(&json!("False"))
        );
        assert_eq!(first(&obj, ".spec.missing"), None);
    }
}
