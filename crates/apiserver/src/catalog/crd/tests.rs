//! Serving a CRD through the catalog: discovery entries, schema checks, printer columns,
//! OpenAPI documents.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::super::Catalog;

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                "shortNames": ["wd"], "categories": ["all"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "replicas": {"type": "integer", "minimum": 0},
                        "color": {"type": "string", "default": "blue"}}},
                    "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}
                }}}
            }]
        }
    })
}

#[test]
fn catalog_crd_serves_its_resource() {
    let mut catalog = Catalog::builtin();
    catalog.add_crd(&widget_crd()).expect("valid crd");
    let widget = catalog
        .find("example.com", "v1", "widgets")
        .expect("served")
        .clone();
    assert!(widget.custom && widget.namespaced && widget.status_subresource);
    assert_eq!(widget.short_names, ["wd"]);
    assert_eq!(widget.categories, ["all"]);
    assert_eq!(
        widget
            .scale_subresource
            .as_ref()
            .map(|s| s.spec_replicas_path.as_str()),
        Some(".spec.replicas")
    );
    assert!(catalog.find_kind("example.com", "v1", "Widget").is_some());

    let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default", "creationTimestamp": "2025-01-10T11:00:00Z"},
        "spec": {"replicas": 2, "junk": 1}});
    catalog.default_object(&widget, &mut object);
    catalog.prune(&widget, &mut object);
    assert_eq!(object["spec"], json!({"replicas": 2, "color": "blue"}));
    assert!(catalog.validate(&widget, &object, None).is_empty());
    object["spec"]["replicas"] = json!(-1);
    let causes = catalog.validate(&widget, &object, None);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "spec.replicas");

    let columns: Vec<Value> = catalog
        .table_columns(&widget)
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        columns,
        [
            json!("Name"),
            json!("Replicas"),
            json!("Color"),
            json!("Age")
        ]
    );
    let now = Utc
        .with_ymd_and_hms(2025, 1, 10, 12, 0, 0)
        .single()
        .expect("date");
    object["spec"]["replicas"] = json!(2);
    assert_eq!(
        catalog.table_cells(&widget, &object, now),
        [json!("w1"), json!(2), json!("blue"), json!("60m")]
    );
    assert_eq!(
        catalog.patch_merge_key(&widget, &["spec", "containers"]),
        None
    );

    catalog.remove_crd("widgets.example.com");
    assert!(catalog.find("example.com", "v1", "widgets").is_none());
    assert!(catalog.find("apps", "v1", "deployments").is_some());
}

#[test]
fn catalog_crd_without_columns_prints_name_and_age() {
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]
        .as_object_mut()
        .map(|v| v.remove("additionalPrinterColumns"));
    let mut catalog = Catalog::builtin();
    catalog.add_crd(&crd).expect("valid crd");
    let widget = catalog
        .find("example.com", "v1", "widgets")
        .expect("served")
        .clone();
    let names: Vec<Value> = catalog
        .table_columns(&widget)
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("Name"), json!("Age")]);
}

#[test]
fn catalog_crd_rejects_invalid_definitions() {
    let mut crd = widget_crd();
    crd["metadata"]["name"] = json!("widgets.other.com");
    crd["spec"]["versions"][0]["storage"] = json!(false);
    let causes = Catalog::builtin().add_crd(&crd).expect_err("invalid");
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["metadata.name", "spec.versions"]);
    assert_eq!(
        causes[0].message,
        "Invalid value: \"widgets.other.com\": must be spec.names.plural+\".\"+spec.group"
    );
}

#[test]
fn catalog_crd_appears_in_openapi_documents() {
    let mut catalog = Catalog::builtin();
    catalog.add_crd(&widget_crd()).expect("valid crd");
    let v2: Value = serde_json::from_slice(&catalog.openapi_v2()).expect("v2 json");
    let definition = &v2["definitions"]["com.example.v1.Widget"];
    assert_eq!(
        definition["x-kubernetes-group-version-kind"][0]["kind"],
        "Widget"
    );
    assert!(v2["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());

    let index = catalog.openapi_v3_index();
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .expect("crd group version in index");
    let doc = catalog
        .openapi_v3(url.trim_start_matches("/openapi/v3/"))
        .expect("doc");
    let doc: Value = serde_json::from_slice(&doc).expect("v3 json");
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["com.example.v1.Widget"]["properties"]["spec"].is_object());
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
    let patch =
        &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert!(
        patch["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["name"] == "fieldValidation"))
    );
}

#[test]
fn catalog_crd_scope_is_immutable() {
    let catalog = Catalog::builtin();
    let crds = catalog
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("crds");
    let old = widget_crd();
    assert!(catalog.validate(crds, &old, None).is_empty());
    let mut new = old.clone();
    new["spec"]["scope"] = json!("Cluster");
    let causes = catalog.validate(crds, &new, Some(&old));
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "spec.scope");
    assert_eq!(
        causes[0].message,
        "Invalid value: \"Cluster\": field is immutable"
    );
}
