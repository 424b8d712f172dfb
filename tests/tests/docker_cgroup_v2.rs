//! The engine on a pure cgroup v2 layout. This machine boots in hybrid mode, so the daemon
//! runs in its own mount namespace where /sys/fs/cgroup is the cgroup2 hierarchy alone. Every
//! controller is still bound to the v1 hierarchies here, so the cgroup2 tree has none
//! enabled: this shows detection, placement, device rules (an eBPF program, core v2), pause
//! (cgroup.freeze is core v2), stats and cleanup; resource limits on v2 need a host booted
//! with cgroup v2.

use std::path::Path;

use berth_tests::Daemon;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

const WRAPPER: &str = "mount --make-rprivate / && umount -R /sys/fs/cgroup && \
     mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"";

#[test]
#[ignore = "needs root"]
fn containers_run_on_a_cgroup2_only_layout() {
    if !Path::new(UNIFIED).join("cgroup.procs").exists() {
        println!("SKIPPED: no cgroup2 hierarchy at {UNIFIED} to present as a pure v2 layout");
        return;
    }
    let d = Daemon::start_wrapped(&["unshare", "-m", "sh", "-c", WRAPPER, "sh"], &[]);
    d.load_busybox("busybox:latest");
    assert_eq!(d.docker_ok(&["info", "-f", "{{.CgroupVersion}}"]), "2");
    let own = d.docker_ok(&["run", "--rm", "busybox", "cat", "/proc/self/cgroup"]);
    assert!(
        own.ends_with("0::/"),
        "the container sees its own cgroup namespace root: {own}"
    );
    // Device rules hold on cgroup v2 too (an eBPF program on the container's cgroup): the
    // default devices work, and a node the rules leave out cannot be opened although
    // CAP_MKNOD lets the container make it.
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo ok > /dev/null && head -c 3 /dev/zero | wc -c && mknod /tmp/tun c 10 200 && cat /tmp/tun",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(stdout.trim(), "3", "{stderr}");
    assert!(
        stderr.contains("can't open '/tmp/tun': Operation not permitted"),
        "{stderr}"
    );
    let id = d.docker_ok(&["run", "-d", "--name", "v2", "busybox", "sleep", "1000"]);
    // The container's cgroup exists in the v2 hierarchy (seen from the host at UNIFIED).
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "v2"]);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let v2_path = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("v2 entry")
        .to_string();
    assert!(v2_path.ends_with(&id), "{cg}");
    let dir = Path::new(UNIFIED).join(v2_path.trim_start_matches('/'));
    assert!(dir.join("cgroup.procs").exists(), "{}", dir.display());
    d.docker_ok(&["pause", "v2"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("cgroup.freeze"))
            .expect("freeze")
            .trim(),
        "1"
    );
    d.docker_ok(&["unpause", "v2"]);
    let stats = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "v2",
    ]);
    assert!(stats.starts_with("v2 "), "{stats}");
    d.docker_ok(&["rm", "-f", "v2"]);
    assert!(!dir.exists(), "cgroup {} left behind", dir.display());
    // The daemon's parent cgroup stays, as Docker's does; the test removes it when empty.
    drop(d);
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}
