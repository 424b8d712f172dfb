//! CRD structural schema validation, pruning and defaults.

use serde_json::{Value, json};

use super::{apply_defaults, prune, validate};

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
            "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 5},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "port": {"x-kubernetes-int-or-string": true},
            "note": {"type": "string", "nullable": true}
        }},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
    }})
}

fn messages(object: Value) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    validate(&schema(), &object, &mut causes);
    causes.into_iter().map(|c| (c.field, c.message)).collect()
}

#[test]
fn catalog_schema_accepts_a_valid_object() {
    let object = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 3, "color": "green", "name": "abc", "tags": ["a"], "labels": {"x": "y"},
            "free": {"anything": [1, {"goes": true}]}, "port": "http", "note": null}});
    assert_eq!(messages(object), []);
}

#[test]
fn catalog_schema_reports_upstream_messages() {
    let got = messages(json!({"spec": {"size": "big"}}));
    assert_eq!(
        got,
        [(
            "spec.size".to_string(),
            "Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
                .to_string()
        )]
    );
    let got = messages(json!({"spec": {}}));
    assert_eq!(
        got,
        [("spec.size".to_string(), "Required value".to_string())]
    );
    let got = messages(
        json!({"spec": {"size": 11, "color": "blue", "name": "A", "tags": ["a", "b", "c"],
        "labels": {"k": 1}, "port": 1.5, "note": null}}),
    );
    let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.size",
            "spec.color",
            "spec.name",
            "spec.name",
            "spec.tags",
            "spec.labels.k",
            "spec.port"
        ]
    );
    assert_eq!(
        got[0].1,
        "Invalid value: 11: spec.size in body should be less than or equal to 10"
    );
    assert_eq!(
        got[1].1,
        "Unsupported value: \"blue\": supported values: \"red\", \"green\""
    );
    assert_eq!(
        got[2].1,
        "Invalid value: \"A\": spec.name in body should be at least 2 chars long"
    );
    assert_eq!(
        got[3].1,
        "Invalid value: \"A\": spec.name in body should match '^[a-z]+$'"
    );
    assert_eq!(got[4].1, "Too many: 3: must have at most 2 items");
    let got = messages(json!({"spec": {"size": 0}}));
    assert_eq!(
        got[0].1,
        "Invalid value: 0: spec.size in body should be greater than or equal to 1"
    );
}

#[test]
fn catalog_schema_prunes_unknown_fields() {
    let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "extra": 1, "spec": {"size": 1, "unknown": true, "labels": {"a": "b"}, "free": {"kept": 1},
            "tags": ["x"]}, "status": {"ready": true, "junk": 2}});
    prune(&schema(), &mut object);
    assert_eq!(
        object,
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1, "labels": {"a": "b"}, "free": {"kept": 1}, "tags": ["x"]},
            "status": {"ready": true}})
    );
}

#[test]
fn catalog_schema_names_unknown_fields() {
    let object = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "extra": 1, "spec": {"size": 1, "unknown": true, "free": {"kept": 1}, "labels": {"a": "b"}}});
    assert_eq!(
        super::unknown_fields(&schema(), &object),
        ["extra", "spec.unknown"]
    );
}

#[test]
fn catalog_schema_applies_defaults() {
    let mut object = json!({"spec": {"size": 1}});
    apply_defaults(&schema(), &mut object);
    assert_eq!(object["spec"]["color"], "red");
    let mut object = json!({"spec": {"size": 1, "color": "green"}});
    apply_defaults(&schema(), &mut object);
    assert_eq!(object["spec"]["color"], "green");
}

#[test]
fn catalog_schema_rejects_duplicates_in_sets_and_maps() {
    let schema = json!({"type": "object", "properties": {
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}
    }});
    let mut causes = Vec::new();
    validate(
        &schema,
        &json!({"tags": ["a", "b", "a"], "ports": [{"name": "x", "port": 1}, {"name": "x", "port": 2}]}),
        &mut causes,
    );
    let got: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.field.as_str(), c.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("tags[2]", "Duplicate value: \"a\""),
            (
                "ports[1]",
                "Duplicate value: map[string]interface {}{\"name\":\"x\"}"
            ),
        ]
    );
}
