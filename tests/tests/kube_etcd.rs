//! The Kubernetes API suites again, on a real etcd: each server gets an etcd of its own
//! (Debian's `etcd-server`, in a temporary directory on free loopback ports, killed by PID
//! afterwards). The harness picks etcd for this test binary by its name (see
//! `berth_tests::kube::test_datastore`); `BERTH_TEST_DATASTORE` overrides it.

#[path = "kube_access.rs"]
mod access;
#[path = "kube_kubectl.rs"]
mod kubectl;
#[path = "kube_lifecycle.rs"]
mod lifecycle;
#[path = "kube_python.rs"]
mod python;

#[test]
fn objects_land_in_the_etcd_the_test_started() {
    if berth_tests::kube::test_datastore() != "etcd" {
        eprintln!("skipping: BERTH_TEST_DATASTORE chooses another datastore");
        return;
    }
    let s = match berth_tests::kube::KubeServer::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    s.ok(&["create", "configmap", "in-etcd", "--from-literal=k=v"]);
    let etcd = s
        .etcd
        .as_ref()
        .expect("an etcd-backed server owns its etcd");
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &etcd.endpoint, "get", "--print-value-only"])
        .arg("/registry/configmaps/default/in-etcd")
        .output()
        .expect("etcdctl (Debian package etcd-client) runs");
    let value = String::from_utf8_lossy(&out.stdout);
    assert!(value.contains("\"in-etcd\""), "etcd holds {value:?}");
}
