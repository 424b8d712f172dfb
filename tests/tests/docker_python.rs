//! The Python `docker` package drives berth unchanged (script: tests/python/sdk_basics.py).

use berth_tests::{Daemon, fixtures};

#[test]
#[ignore = "needs root"]
fn python_sdk_runs_containers_and_loads_images() {
    let d = Daemon::start();
    let tar = fixtures::docker_archive(&fixtures::busybox_rootfs(), "busybox:latest", &[]);
    let path = d.scratch().join("busybox.tar");
    std::fs::write(&path, &tar.bytes).expect("write fixture");
    d.python_ok("sdk_basics.py", &[path.to_str().expect("path")]);
}
