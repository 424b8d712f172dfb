//! Serving stored objects as JSON without building `serde_json::Value` trees: the stored
//! bytes are copied as they are, with only what differs between the stored and the served
//! form rewritten (`apiVersion`, `kind` and `metadata.resourceVersion`, see
//! [`crate::objects::finish`]). Lists and watch events of plain JSON requests use it; a
//! stored value this cannot handle (not an object, `metadata` missing or not an object) is
//! served through the `Value` path instead.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A member name, borrowed from the input unless it holds escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// The members of a JSON object in their order, values left unparsed.
struct Members<'a>(Vec<(Name<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(name) = map.next_key::<Name<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((name, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl<'a> Members<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(n, _)| n.0 == name).map(|(_, v)| *v)
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `"name":value` (with a leading comma unless it is the first member).
fn write_member(out: &mut Vec<u8>, first: &mut bool, name: &str, value: impl FnOnce(&mut Vec<u8>)) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    write_string(out, name);
    out.push(b':');
    value(out);
}

/// What [`write_served`] writes into each object.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// `apiVersion` as served.
    pub api_version: &'a str,
    /// `kind`.
    pub kind: &'a str,
}

/// Appends the stored object `value` as served at `revision` to `out`, like
/// [`crate::objects::decode`] followed by serialization (same members, same order). Returns
/// false, leaving `out` untouched, when the value is not an object with an object `metadata`.
pub fn write_served(out: &mut Vec<u8>, value: &[u8], served: Served<'_>, revision: i64) -> bool {
    let Some(members) = Members::parse(value) else {
        return false;
    };
    let Some(metadata) = members
        .get("metadata")
        .and_then(|m| Members::parse(m.get().as_bytes()))
    else {
        return false;
    };
    let rv = revision.to_string();
    out.reserve(value.len() + 64);
    out.push(b'{');
    let mut first = true;
    let (mut has_version, mut has_kind) = (false, false);
    for (name, raw) in &members.0 {
        match name.0.as_ref() {
            "apiVersion" => {
                has_version = true;
                write_member(out, &mut first, "apiVersion", |o| {
                    write_string(o, served.api_version);
                });
            }
            "kind" => {
                has_kind = true;
                write_member(out, &mut first, "kind", |o| write_string(o, served.kind));
            }
            "metadata" => write_member(out, &mut first, "metadata", |o| {
                write_metadata(o, &metadata, &rv);
            }),
            other => write_member(out, &mut first, other, |o| {
                o.extend_from_slice(raw.get().as_bytes());
            }),
        }
    }
    if !has_version {
        write_member(out, &mut first, "apiVersion", |o| {
            write_string(o, served.api_version);
        });
    }
    if !has_kind {
        write_member(out, &mut first, "kind", |o| write_string(o, served.kind));
    }
    out.push(b'}');
    true
}

fn write_metadata(out: &mut Vec<u8>, metadata: &Members<'_>, rv: &str) {
    out.push(b'{');
    let mut first = true;
    let mut has_rv = false;
    for (name, raw) in &metadata.0 {
        if name.0 == "resourceVersion" {
            has_rv = true;
            write_member(out, &mut first, "resourceVersion", |o| write_string(o, rv));
        } else {
            write_member(out, &mut first, &name.0, |o| {
                o.extend_from_slice(raw.get().as_bytes());
            });
        }
    }
    if !has_rv {
        write_member(out, &mut first, "resourceVersion", |o| write_string(o, rv));
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ResourceType;
    use berth_store::KeyValue;
    use serde_json::json;

    fn both(stored: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let resource = ResourceType::configmaps();
        let kv = KeyValue {
            key: "/registry/configmaps/default/a".into(),
            value: stored.to_vec(),
            create_revision: 3,
            mod_revision: 17,
        };
        let decoded = crate::objects::decode(&kv, &resource).expect("decode");
        let mut out = Vec::new();
        let served = Served {
            api_version: "v1",
            kind: "ConfigMap",
        };
        assert!(write_served(&mut out, stored, served, 17), "fast path");
        (serde_json::to_vec(&decoded).expect("json"), out)
    }

    #[test]
    fn served_bytes_equal_the_value_path() {
        let stored = serde_json::to_vec(&json!({
            "metadata": {"name": "a", "namespace": "default", "labels": {"x\"y": "1"}},
            "data": {"k": "v\n\u{e9}"},
            "kind": "ConfigMap",
            "apiVersion": "v1beta1",
        }))
        .expect("json");
        let (value_path, fast) = both(&stored);
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&value_path)
        );
    }

    #[test]
    fn missing_type_members_are_appended() {
        let (value_path, fast) =
            both(br#"{"metadata":{"name":"a","resourceVersion":"1"},"x\u0041":[1,2]}"#);
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&value_path)
        );
    }

    #[test]
    fn values_without_object_metadata_are_left_to_the_value_path() {
        let served = Served {
            api_version: "v1",
            kind: "ConfigMap",
        };
        let mut out = b"[".to_vec();
        assert!(!write_served(&mut out, b"[1]", served, 1));
        assert!(!write_served(&mut out, br#"{"metadata":3}"#, served, 1));
        assert!(!write_served(&mut out, b"{\"a\":", served, 1));
        assert_eq!(out, b"[");
    }
}
