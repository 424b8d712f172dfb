//! The Python `docker` package drives berth's networks, volumes and published ports
//! unchanged (script: tests/python/sdk_network_volume.py).

use berth_tests::Daemon;

#[test]
#[ignore = "needs root"]
fn python_sdk_networks_volumes_and_ports() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let hostnet = d
        .root()
        .parent()
        .expect("root has a parent")
        .join("hostnet");
    let out = d.python(
        "sdk_network_volume.py",
        &[hostnet.to_str().expect("utf-8 path")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "python failed ({}):\n{stdout}\n{}\ndaemon log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        berth_tests::daemon::tail(&d.log(), 40)
    );
}
