//! The Python `docker` package drives berth unchanged (script: tests/python/sdk_basics.py).

use berth_tests::{Daemon, fixtures};

#[test]
#[ignore = "needs root"]
fn python_sdk_runs_containers_and_loads_images() {
    let d = Daemon::start();
    let tar = fixtures::docker_archive(&fixtures::busybox_rootfs(), "busybox:latest", &[]);
    let path = d.scratch().join("busybox.tar");
    std::fs::write(&path, &tar.bytes).expect("write fixture");
    let out = d.python("sdk_basics.py", &[path.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "python failed ({}):\n{stdout}\n{}\ndaemon log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        berth_tests::daemon::tail(&d.log(), 40)
    );
}
