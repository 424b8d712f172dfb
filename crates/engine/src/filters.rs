//! The `filters` query parameter (`{"status":{"exited":true}}` or the older
//! `{"status":["exited"]}`) and the glob matching of `reference` filters.

use std::collections::BTreeMap;

use crate::error::{EngineError, Result};

/// Parsed filters: key to accepted values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the JSON of a `filters` parameter; empty text is no filter.
    pub fn parse(text: Option<&str>) -> Result<Self> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| EngineError::InvalidArgument(format!("invalid filter: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| EngineError::InvalidArgument("invalid filter: not an object".into()))?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let values: Vec<String> = match v {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    )));
                }
            };
            out.insert(k.clone(), values);
        }
        Ok(Self(out))
    }

    /// Values of a key, if the key is present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// Rejects keys outside `allowed` with Docker's message.
    pub fn only(&self, allowed: &[&str]) -> Result<()> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{k}'"
                )));
            }
        }
        Ok(())
    }

    /// `label=key` or `label=key=value` against a set of labels; every value must match.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        let Some(wanted) = self.get("label") else {
            return true;
        };
        wanted.iter().all(|w| match w.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
            None => labels.contains_key(w.as_str()),
        })
    }
}

/// Go's `path.Match` subset used by Docker's reference filter: `*` (not crossing `/`), `?`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => {
                let mut i = 0;
                loop {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if i >= t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some((b'?', rest)) => !t.is_empty() && t[0] != b'/' && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_filter_shapes() {
        let f =
            Filters::parse(Some(r#"{"status":{"exited":true},"name":["web"]}"#)).expect("parse");
        assert_eq!(f.get("status"), Some(&["exited".to_string()][..]));
        assert_eq!(f.get("name"), Some(&["web".to_string()][..]));
        assert!(Filters::parse(Some("{")).is_err());
        assert!(f.only(&["status"]).is_err());
    }

    #[test]
    fn labels_and_globs() {
        let f = Filters::parse(Some(r#"{"label":{"a=1":true,"b":true}}"#)).expect("parse");
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(!f.labels_match(&l));
        l.insert("b".to_string(), "x".to_string());
        assert!(f.labels_match(&l));
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("busy*", "library/busybox"));
        assert!(glob_match("b?sybox", "busybox"));
    }
}
