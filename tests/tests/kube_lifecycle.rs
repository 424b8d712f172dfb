//! Watches with `kubectl get -w`, finalizers, and deletion propagation: ownerReferences are
//! garbage collected, `--cascade=orphan` keeps dependents, `--cascade=foreground` deletes
//! them before the owner.

use std::process::{Command, Stdio};
use std::time::Duration;

use berth_tests::eventually;
use berth_tests::kube::KubeServer;

fn server() -> Option<KubeServer> {
    match KubeServer::start() {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("skipping: {why}");
            None
        }
    }
}

fn dependent(owner: &str, uid: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\ndata:\n  a: b\n"
    )
}

#[test]
fn kubectl_watch_sees_changes() {
    let Some(s) = server() else { return };
    s.ok(&["create", "configmap", "before"]);
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args([
            "get",
            "configmaps",
            "-w",
            "-o",
            "name",
            "--request-timeout=20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl -w starts");
    std::thread::sleep(Duration::from_millis(1500));
    s.ok(&["create", "configmap", "during"]);
    s.ok(&["delete", "configmap", "before"]);
    std::thread::sleep(Duration::from_millis(1500));
    // Stop the watch by its PID.
    let _ = child.kill();
    let out = child.wait_with_output().expect("kubectl output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("configmap/before"), "{text}");
    assert!(text.contains("configmap/during"), "{text}");
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let Some(s) = server() else { return };
    s.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n",
    );
    s.ok(&["delete", "cm", "held", "--wait=false"]);
    let o = s.json(&["get", "cm", "held"]);
    assert!(o["metadata"]["deletionTimestamp"].is_string(), "{o}");
    s.ok(&[
        "patch",
        "cm",
        "held",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let gone = eventually(Duration::from_secs(5), || {
        !s.kubectl(&["get", "cm", "held"]).status.success()
    });
    assert!(gone, "configmap with removed finalizer still exists");
}

#[test]
fn owner_references_cascade() {
    let Some(s) = server() else { return };
    for owner in ["bg", "orph", "fg"] {
        s.ok(&["create", "configmap", owner]);
        let uid = s.ok(&["get", "cm", owner, "-o", "jsonpath={.metadata.uid}"]);
        s.ok_stdin(
            &["apply", "-f", "-"],
            &dependent(owner, &uid, &format!("{owner}-child")),
        );
    }
    s.ok(&["delete", "cm", "bg"]);
    let gone = eventually(Duration::from_secs(10), || {
        !s.kubectl(&["get", "cm", "bg-child"]).status.success()
    });
    assert!(gone, "background deletion left the dependent");

    s.ok(&["delete", "cm", "orph", "--cascade=orphan"]);
    assert!(eventually(Duration::from_secs(10), || !s
        .kubectl(&["get", "cm", "orph"])
        .status
        .success()));
    let child = s.json(&["get", "cm", "orph-child"]);
    assert!(child["metadata"]["ownerReferences"].is_null(), "{child}");

    s.ok(&[
        "delete",
        "cm",
        "fg",
        "--cascade=foreground",
        "--timeout=20s",
    ]);
    assert!(!s.kubectl(&["get", "cm", "fg-child"]).status.success());
    assert!(!s.kubectl(&["get", "cm", "fg"]).status.success());
}

#[test]
fn bad_input_gets_status_errors() {
    let Some(s) = server() else { return };
    let err = s.fails(&["get", "--raw", "/api/v1/namespaces/default/nothings"]);
    assert!(
        err.contains("NotFound") || err.contains("not found") || err.contains("could not find"),
        "{err}"
    );
    let wrong_ns =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: kube-system\n";
    let err = String::from_utf8_lossy(
        &s.kubectl_env(&["create", "-n", "default", "-f", "-"], &[], Some(wrong_ns))
            .stderr,
    )
    .into_owned();
    assert!(err.contains("does not match the namespace"), "{err}");
    let big = "a".repeat(4 * 1024 * 1024);
    let huge =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  a: {big}\n");
    let out = s.kubectl_env(&["create", "-f", "-"], &[], Some(&huge));
    assert!(!out.status.success());
    let invalid = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n";
    let out = s.kubectl_env(&["create", "-f", "-"], &[], Some(invalid));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    // The server still answers.
    s.ok(&["get", "ns", "default"]);
}
