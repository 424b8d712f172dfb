//! The Python `docker` package drives berth's networks, volumes and published ports
//! unchanged (script: tests/python/sdk_network_volume.py).

use berth_tests::Daemon;

#[test]
#[ignore = "needs root"]
fn python_sdk_networks_volumes_and_ports() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let hostnet = d.netns();
    d.python_ok(
        "sdk_network_volume.py",
        &[hostnet.to_str().expect("utf-8 path")],
    );
}
