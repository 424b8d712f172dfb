//! Table columns and cells compared with `kubectl get` against a real cluster.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::{cells, columns, human_duration};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn names(group: &str, kind: &str, wide: bool) -> Vec<String> {
    columns(group, kind)
        .iter()
        .filter(|c| wide || c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap_or_default().to_uppercase())
        .collect()
}

#[test]
fn catalog_table_ages_format_like_upstream() {
    assert_eq!(human_duration(5), "5s");
    assert_eq!(human_duration(119), "119s");
    assert_eq!(human_duration(182), "3m2s");
    assert_eq!(human_duration(600), "10m");
    assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h5m");
    assert_eq!(human_duration(20 * 3600), "20h");
    assert_eq!(human_duration(2 * 86400 + 3 * 3600), "2d3h");
    assert_eq!(human_duration(30 * 86400), "30d");
    assert_eq!(human_duration(3 * 365 * 86400 + 86400), "3y1d");
    assert_eq!(super::age_cell(None, now()), "<unknown>");
}

#[test]
fn catalog_table_columns_match_kubectl_get() {
    assert_eq!(
        names("", "Pod", false),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(
        names("", "Pod", true)[5..],
        ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    );
    assert_eq!(
        names("apps", "Deployment", true),
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(
        names("", "Service", false),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(names("", "ConfigMap", false), ["NAME", "DATA", "AGE"]);
    assert_eq!(names("", "Secret", false), ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(names("", "Namespace", false), ["NAME", "STATUS", "AGE"]);
    assert_eq!(
        names("batch", "CronJob", false),
        [
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE"
        ]
    );
    assert_eq!(
        names("apiextensions.k8s.io", "CustomResourceDefinition", false),
        ["NAME", "CREATED AT"]
    );
    assert_eq!(names("", "LimitRange", false), ["NAME", "CREATED AT"]);
    assert_eq!(
        names("node.k8s.io", "RuntimeClass", false),
        ["NAME", "HANDLER", "AGE"]
    );
    assert_eq!(names("", "Binding", false), ["NAME", "AGE"]);
    let first = &columns("", "Pod")[0];
    assert_eq!(first["format"], "name");
    assert_eq!(first["type"], "string");
    assert!(
        first["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Name must be unique"))
    );
}

fn row(group: &str, kind: &str, object: Value) -> Vec<Value> {
    cells(group, kind, &object, now())
}

#[test]
fn catalog_table_cells_for_sample_objects() {
    let created = "2025-01-10T11:55:00Z";
    let pod = json!({"metadata": {"name": "web-1", "creationTimestamp": created},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
            {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"finishedAt": "2025-01-10T11:59:00Z"}}}]}});
    assert_eq!(
        row("", "Pod", pod),
        json!([
            "web-1",
            "1/2",
            "CrashLoopBackOff",
            "2 (60s ago)",
            "5m",
            "10.0.0.5",
            "<none>",
            "<none>",
            "<none>"
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    let pending = row(
        "",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{}]}, "status": {"phase": "Pending"}}),
    );
    assert_eq!(
        pending[1..5],
        [
            json!("0/1"),
            json!("Pending"),
            json!("0"),
            json!("<unknown>")
        ]
    );

    let deploy = json!({"metadata": {"name": "web", "creationTimestamp": created},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        row("apps", "Deployment", deploy),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("5m"),
            json!("nginx"),
            json!("nginx:1.27"),
            json!("app=web")
        ]
    );

    let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        "selector": {"app": "web"}}});
    assert_eq!(
        row("", "Service", svc)[1..5],
        [
            json!("NodePort"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP")
        ]
    );

    let cm =
        json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
    assert_eq!(row("", "ConfigMap", cm)[1], json!(3));
    let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
    assert_eq!(row("", "Namespace", ns)[1], json!("Active"));
    let job = json!({"metadata": {"name": "j"}, "spec": {"completions": 1},
        "status": {"succeeded": 1, "startTime": "2025-01-10T11:00:00Z", "completionTime": "2025-01-10T11:00:12Z",
            "conditions": [{"type": "Complete", "status": "True"}]}});
    assert_eq!(
        row("batch", "Job", job)[1..4],
        [json!("Complete"), json!("1/1"), json!("12s")]
    );
    let crd = json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": created}});
    assert_eq!(
        row("apiextensions.k8s.io", "CustomResourceDefinition", crd),
        [json!("widgets.example.com"), json!(created)]
    );
}

#[test]
fn catalog_table_cells_for_less_common_kinds() {
    let csr = json!({"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
        "username": "admin", "expirationSeconds": 86400},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Zm9v"}});
    assert_eq!(
        row("certificates.k8s.io", "CertificateSigningRequest", csr)[2..],
        [
            json!("kubernetes.io/kube-apiserver-client"),
            json!("admin"),
            json!("24h"),
            json!("Approved,Issued")
        ]
    );
    let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [{"port": 80}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
    assert_eq!(
        row("discovery.k8s.io", "EndpointSlice", slice)[1..4],
        [json!("IPv4"), json!("80"), json!("10.0.0.1,10.0.0.2")]
    );
    let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path"});
    assert_eq!(
        row("storage.k8s.io", "StorageClass", sc)[..5],
        [
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("Immediate"),
            json!("false")
        ]
    );
    let binding = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "User", "name": "alice"}]});
    assert_eq!(
        row("rbac.authorization.k8s.io", "RoleBinding", binding)[1..],
        [
            json!("ClusterRole/view"),
            json!("<unknown>"),
            json!("alice"),
            json!(""),
            json!("ns/sa")
        ]
    );
    let event = json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Scheduled",
        "involvedObject": {"kind": "Pod", "name": "web"}, "message": "assigned", "count": 1,
        "lastTimestamp": "2025-01-10T11:59:30Z"});
    assert_eq!(
        row("", "Event", event)[..4],
        [
            json!("30s"),
            json!("Normal"),
            json!("Scheduled"),
            json!("pod/web")
        ]
    );
}
