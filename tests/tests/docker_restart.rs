//! Restart policies and daemon restarts: containers outlive the daemon, come back into the
//! lists with their logs, `always` containers are started again, and a daemon killed in the
//! middle of `run`/`rm` restarts into a consistent state.

use std::time::{Duration, Instant};

use berth_tests::{Daemon, eventually};

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root"]
fn restart_policies_count_and_back_off() {
    let d = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    wait_until("two restarts", || {
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ]) == "2 exited"
    });
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.RestartCount}}", "fine"]),
        "0"
    );
    let start = Instant::now();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "busybox",
        "true",
    ]);
    wait_until("four restarts", || {
        d.docker_ok(&["inspect", "-f", "{{.RestartCount}}", "loop"])
            .parse::<u32>()
            .unwrap_or(0)
            >= 4
    });
    // 100 + 200 + 400 ms of back-off at least.
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "{:?}",
        start.elapsed()
    );
    d.docker_ok(&["stop", "loop"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "never",
        "--restart",
        "no",
        "busybox",
        "true",
    ]);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.RestartCount}}", "never"]),
        "0"
    );
}

#[test]
#[ignore = "needs root"]
fn daemon_restart_keeps_containers_running_and_logs_continuing() {
    let mut d = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["create", "--name", "idle", "busybox", "true"]);
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "survivor"]);
    d.docker_ok(&["stop", "-t", "1", "always"]);
    d.stop();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container died with the daemon"
    );
    std::thread::sleep(Duration::from_millis(500));
    d.start_again();
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Pid}}",
            "survivor"
        ]),
        format!("running {pid}")
    );
    let names = d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    for n in ["survivor", "always", "idle"] {
        assert!(names.lines().any(|l| l == n), "{n} missing: {names}");
    }
    wait_until("always container restarted", || {
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "always"]) == "running"
    });
    let before = d.docker_ok(&["logs", "survivor"]).lines().count();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        d.docker_ok(&["logs", "survivor"]).lines().count() > before,
        "logs continue"
    );
    d.docker_ok(&["stop", "-t", "1", "survivor"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "survivor"]),
        "exited"
    );
}

#[test]
#[ignore = "needs root"]
fn daemon_killed_during_run_restarts_consistent() {
    let mut d = daemon();
    for round in 0..5 {
        let mut run = d
            .docker_cmd(&["run", "--rm", "busybox", "sh", "-c", "echo hi"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker run");
        std::thread::sleep(Duration::from_millis(5 + round * 7));
        d.kill();
        let _ = run.wait();
        d.start_again();
        // Every listed container is complete: inspect works and its directory exists.
        let ids = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
        for id in ids.lines() {
            let st = d.docker_ok(&["inspect", "-f", "{{.State.Status}}", id]);
            assert!(!st.is_empty());
            assert!(
                d.root()
                    .join("containers")
                    .join(id)
                    .join("config.v2.json")
                    .exists()
            );
            d.docker_ok(&["rm", "-f", id]);
        }
        // A removed container's files go in the background: allow them a moment.
        let left = || -> Vec<_> {
            std::fs::read_dir(d.root().join("containers"))
                .expect("containers dir")
                .flatten()
                .map(|e| e.file_name())
                .collect()
        };
        eventually(Duration::from_secs(20), || left().is_empty());
        assert!(left().is_empty(), "leftovers on disk: {:?}", left());
    }
}

#[test]
#[ignore = "needs root"]
fn rm_container_that_exited_while_the_daemon_was_down_is_removed_at_start() {
    let mut d = daemon();
    let id = d.docker_ok(&["run", "-d", "--rm", "busybox", "sleep", "1"]);
    let kept = d.docker_ok(&["create", "--rm", "--name", "kept", "busybox", "true"]);
    let pid: i32 = d
        .docker_ok(&["inspect", "-f", "{{.State.Pid}}", &id])
        .parse()
        .expect("pid");
    d.stop();
    // The container's process ends while no daemon runs.
    let gone = || !std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(
        eventually(Duration::from_secs(20), gone),
        "pid {pid} still alive"
    );
    d.start_again();
    let all = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
    assert!(
        !all.contains(&id),
        "the exited --rm container is still listed: {all}"
    );
    // A --rm container that never ran stays, as with dockerd.
    assert!(all.contains(&kept), "{all}");
}
