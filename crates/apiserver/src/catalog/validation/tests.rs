//! Validation causes compared with upstream's messages.

use serde_json::{Value, json};

use super::super::{Catalog, Cause};

fn check(plural: &str, object: Value, old: Option<Value>) -> Vec<Cause> {
    let catalog = Catalog::builtin();
    let group = match plural {
        "deployments" | "statefulsets" | "daemonsets" | "replicasets" => "apps",
        "jobs" | "cronjobs" => "batch",
        _ => "",
    };
    let resource = catalog
        .find(group, "v1", plural)
        .expect("built-in resource");
    catalog.validate(resource, &object, old.as_ref())
}

fn fields(causes: &[Cause]) -> Vec<&str> {
    causes.iter().map(|c| c.field.as_str()).collect()
}

fn deployment(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "default"}, "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
}

#[test]
fn catalog_validation_rejects_bad_names_with_upstreams_message() {
    let causes = check("configmaps", json!({"metadata": {"name": "Foo"}}), None);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "metadata.name");
    assert_eq!(causes[0].reason, "FieldValueInvalid");
    assert_eq!(
        causes[0].message,
        "Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    let causes = check("configmaps", json!({"metadata": {}}), None);
    assert_eq!(
        causes[0].message,
        "Required value: name or generateName is required"
    );
    assert!(
        check(
            "configmaps",
            json!({"metadata": {"generateName": "cm-"}}),
            None
        )
        .is_empty()
    );
    let svc = check(
        "services",
        json!({"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}),
        None,
    );
    assert!(svc[0].message.contains("a DNS-1035 label must consist"));
    let ns = check("namespaces", json!({"metadata": {"name": "a.b"}}), None);
    assert!(ns[0].message.contains("RFC 1123 label"));
}

#[test]
fn catalog_validation_checks_labels_and_annotations() {
    let causes = check(
        "configmaps",
        json!({"metadata": {"name": "c", "labels": {"bad key": "x", "ok": "bad value"},
            "annotations": {"/nope": ""}}}),
        None,
    );
    assert_eq!(
        fields(&causes),
        ["metadata.labels", "metadata.labels", "metadata.annotations"]
    );
    assert!(
        causes[1]
            .message
            .starts_with("Invalid value: \"bad value\": a valid label must be")
    );
}

#[test]
fn catalog_validation_requires_pod_containers_and_images() {
    let causes = check("pods", json!({"metadata": {"name": "p"}, "spec": {}}), None);
    assert_eq!(
        causes,
        [Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: "spec.containers".into(),
        }]
    );
    let causes = check(
        "pods",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a"}, {"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}
        ]}}),
        None,
    );
    assert_eq!(
        fields(&causes),
        [
            "spec.containers[0].image",
            "spec.containers[1].name",
            "spec.containers[1].ports[0].containerPort"
        ]
    );
    assert_eq!(causes[1].message, "Duplicate value: \"a\"");
    assert_eq!(
        causes[2].message,
        "Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
}

#[test]
fn catalog_validation_deployment_selector_must_match_template() {
    assert!(
        check(
            "deployments",
            deployment("web", json!({"app": "web"})),
            None
        )
        .is_empty()
    );
    let causes = check(
        "deployments",
        deployment("web", json!({"app": "other"})),
        None,
    );
    assert_eq!(causes[0].field, "spec.template.metadata.labels");
    assert_eq!(
        causes[0].message,
        "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
    );
    let mut negative = deployment("web", json!({"app": "web"}));
    negative["spec"]["replicas"] = json!(-1);
    let causes = check("deployments", negative, None);
    assert_eq!(
        causes[0].message,
        "Invalid value: -1: must be greater than or equal to 0"
    );
    let mut no_selector = deployment("web", json!({"app": "web"}));
    no_selector["spec"]
        .as_object_mut()
        .map(|s| s.remove("selector"));
    assert_eq!(
        fields(&check("deployments", no_selector, None)),
        ["spec.selector"]
    );
}

#[test]
fn catalog_validation_immutable_fields_on_update() {
    let old = deployment("web", json!({"app": "web", "tier": "x"}));
    let mut new = old.clone();
    new["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
    let causes = check("deployments", new, Some(old));
    assert_eq!(fields(&causes), ["spec.selector"]);
    assert_eq!(
        causes[0].message,
        "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"x\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );

    let old_cm = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
    let new_cm = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "2"}});
    let causes = check("configmaps", new_cm, Some(old_cm));
    assert_eq!(causes[0].field, "data");
    assert_eq!(
        causes[0].message,
        "Forbidden: field is immutable when `immutable` is set"
    );

    let svc = |ip: &str| json!({"metadata": {"name": "s"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    let causes = check("services", svc("10.0.0.2"), Some(svc("10.0.0.1")));
    assert_eq!(fields(&causes), ["spec.clusterIP"]);
    assert!(check("services", svc(""), Some(svc("10.0.0.1"))).is_empty());
}

#[test]
fn catalog_validation_service_ports_and_job_restart_policy() {
    let causes = check(
        "services",
        json!({"metadata": {"name": "s"}, "spec": {}}),
        None,
    );
    assert_eq!(fields(&causes), ["spec.ports"]);
    let causes = check(
        "services",
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 0, "name": "a"}, {"port": 81}]}}),
        None,
    );
    assert_eq!(
        fields(&causes),
        ["spec.ports[0].port", "spec.ports[1].name"]
    );
    let job = json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {
        "restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}}});
    let causes = check("jobs", job, None);
    assert_eq!(causes[0].field, "spec.template.spec.restartPolicy");
    assert_eq!(
        causes[0].message,
        "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );
}

#[test]
fn catalog_validation_claims_and_ingresses() {
    let catalog = Catalog::builtin();
    let pvc = catalog
        .find("", "v1", "persistentvolumeclaims")
        .expect("pvc");
    let causes = catalog.validate(
        pvc,
        &json!({"metadata": {"name": "data"}, "spec": {}}),
        None,
    );
    assert_eq!(
        fields(&causes),
        ["spec.accessModes", "spec.resources[storage]"]
    );
    assert_eq!(
        causes[0].message,
        "Required value: at least 1 access mode is required"
    );
    let ing = catalog
        .find("networking.k8s.io", "v1", "ingresses")
        .expect("ingresses");
    let object = json!({"metadata": {"name": "web"}, "spec": {"rules": [{"http": {"paths": [
        {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    let causes = catalog.validate(ing, &object, None);
    assert_eq!(fields(&causes), ["spec.rules[0].http.paths[0].pathType"]);
    assert_eq!(
        causes[0].message,
        "Required value: pathType must be specified"
    );
}
