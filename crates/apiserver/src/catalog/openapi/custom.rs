//! OpenAPI for custom resources: a definition per served CRD version for `/openapi/v2`, and
//! a generated `/openapi/v3/apis/<group>/<version>` document with the paths and schemas
//! kubectl reads (`explain`, and the `fieldValidation` parameter that makes `apply` validate
//! on the server).

use serde_json::{Map, Value, json};

use super::super::crd::CrdEntry;

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// Upstream's definition name: reversed group, version, kind (`com.example.v1.Widget`).
fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

/// The object schema of one CRD version, with apiVersion, kind and metadata filled in;
/// `refs` is the reference prefix (`#/definitions/` or `#/components/schemas/`).
fn object_schema(crd: &CrdEntry, version: &str, schema: Option<&Value>, refs: &str) -> Value {
    let mut out = match schema {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    out.insert("type".into(), "object".into());
    let mut properties = match out.remove("properties") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}),
    );
    properties.insert(
        "kind".into(),
        json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}),
    );
    properties.insert(
        "metadata".into(),
        json!({"allOf": [{"$ref": format!("{refs}{META}ObjectMeta")}], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}),
    );
    out.insert("properties".into(), Value::Object(properties));
    out.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": crd.group, "version": version, "kind": crd.kind}]),
    );
    Value::Object(out)
}

/// Removes keywords OpenAPI v2 does not have (`nullable`, `anyOf`, `oneOf`, `not`).
fn to_v2(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for keyword in ["nullable", "anyOf", "oneOf", "not"] {
                map.remove(keyword);
            }
            map.values_mut().for_each(to_v2);
        }
        Value::Array(list) => list.iter_mut().for_each(to_v2),
        _ => {}
    }
}

/// The `/openapi/v2` definitions of a CRD's served versions.
pub(super) fn v2_definitions(crd: &CrdEntry) -> Vec<(String, Value)> {
    crd.versions
        .iter()
        .filter(|v| v.served)
        .map(|v| {
            let mut schema = object_schema(crd, &v.name, v.schema.as_ref(), "#/definitions/");
            to_v2(&mut schema);
            (definition_name(&crd.group, &v.name, &crd.kind), schema)
        })
        .collect()
}

fn operation(action: &str, gvk: &Value, response: &str, write: bool) -> Value {
    let mut parameters = vec![
        json!({"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
    ];
    if write {
        for name in ["fieldManager", "fieldValidation"] {
            parameters.push(json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}));
        }
    }
    json!({
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": response}},
            "application/yaml": {"schema": {"$ref": response}},
        }}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    })
}

/// The `/openapi/v3/apis/<group>/<version>` document of the CRDs serving that version.
pub(super) fn v3_document(crds: &[&CrdEntry], version: &str) -> Value {
    let mut schemas: Map<String, Value> = super::meta_schemas().clone();
    let mut paths = Map::new();
    for crd in crds {
        let Some(v) = crd.versions.iter().find(|v| v.name == version && v.served) else {
            continue;
        };
        let name = definition_name(&crd.group, version, &crd.kind);
        let list_name = definition_name(&crd.group, version, &crd.list_kind);
        schemas.insert(
            name.clone(),
            object_schema(crd, version, v.schema.as_ref(), "#/components/schemas/"),
        );
        schemas.insert(
            list_name.clone(),
            json!({
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}},
                    "kind": {"type": "string"},
                    "metadata": {"allOf": [{"$ref": format!("#/components/schemas/{META}ListMeta")}]},
                },
                "x-kubernetes-group-version-kind": [{"group": crd.group, "version": version, "kind": crd.list_kind}],
            }),
        );
        let gvk = json!({"group": crd.group, "version": version, "kind": crd.kind});
        let object = format!("#/components/schemas/{name}");
        let list = format!("#/components/schemas/{list_name}");
        let status = format!("#/components/schemas/{META}Status");
        let base = if crd.namespaced {
            format!(
                "/apis/{}/{version}/namespaces/{{namespace}}/{}",
                crd.group, crd.plural
            )
        } else {
            format!("/apis/{}/{version}/{}", crd.group, crd.plural)
        };
        paths.insert(
            base.clone(),
            json!({
                "get": operation("list", &gvk, &list, false),
                "post": operation("post", &gvk, &object, true),
                "delete": operation("deletecollection", &gvk, &status, false),
            }),
        );
        let item = json!({
            "get": operation("get", &gvk, &object, false),
            "put": operation("put", &gvk, &object, true),
            "patch": operation("patch", &gvk, &object, true),
            "delete": operation("delete", &gvk, &status, false),
        });
        paths.insert(format!("{base}/{{name}}"), item.clone());
        if crd
            .versions
            .iter()
            .any(|x| x.name == version && x.has_status())
        {
            paths.insert(format!("{base}/{{name}}/status"), item);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}
