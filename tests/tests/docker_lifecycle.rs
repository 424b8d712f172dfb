//! Container lifecycle verbs through the real docker CLI: create/start/stop/kill/restart/rm,
//! ps filters, inspect, logs options, wait, rename, pause, top, stats, update.

use std::time::{Duration, Instant};

use berth_tests::Daemon;

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d
}

#[test]
#[ignore = "needs root"]
fn create_start_stop_kill_restart_rm() {
    let d = daemon();
    // PID 1 of a PID namespace only gets signals it handles (as with Docker): trap them.
    let id = d.docker_ok(&[
        "create",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; trap 'exit 10' USR1; while true; do sleep 0.1; done",
    ]);
    assert_eq!(id.len(), 64);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "created"
    );
    d.docker_ok(&["start", "web"]);
    let pid: u32 = d
        .docker_ok(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .parse()
        .expect("pid");
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());
    // The handled SIGTERM ends it quickly.
    let t = Instant::now();
    d.docker_ok(&["stop", "-t", "5", "web"]);
    assert!(t.elapsed() < Duration::from_secs(4));
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ]),
        "exited 0"
    );
    // A process ignoring SIGTERM is killed after -t.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 1; done",
    ]);
    let t = Instant::now();
    d.docker_ok(&["stop", "-t", "1", "stubborn"]);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "stubborn"]),
        "137"
    );
    d.docker_ok(&["start", "web"]);
    d.docker_ok(&["kill", "-s", "USR1", "web"]);
    assert_eq!(d.docker_ok(&["wait", "web"]), "10");
    d.docker_ok(&["restart", "-t", "1", "web"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Running}}", "web"]),
        "true"
    );
    let out = d.docker(&["rm", "web"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container is running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.docker_ok(&["rm", "-f", "web"]);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || pid == 0);
    let out = d.docker(&["inspect", "web"]);
    assert!(!out.status.success());
    // Name conflicts are refused with Docker's message.
    d.docker_ok(&["create", "--name", "taken", "busybox", "true"]);
    let out = d.docker(&["create", "--name", "taken", "busybox", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is already in use by container"));
    d.docker_ok(&["container", "prune", "-f"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
}

#[test]
#[ignore = "needs root"]
fn ps_filters_and_table() {
    let d = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "alive",
        "--label",
        "tier=front",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = d.docker(&["run", "--name", "done", "busybox", "sh", "-c", "exit 2"]);
    assert_eq!(out.status.code(), Some(2));
    let running = d.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(running, "alive");
    let all = d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(all.contains("alive Up"), "{all}");
    assert!(all.contains("done Exited (2)"), "{all}");
    assert_eq!(
        d.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}"
        ]),
        "done"
    );
    assert_eq!(
        d.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "label=tier=front",
            "--format",
            "{{.Names}}"
        ]),
        "alive"
    );
    assert_eq!(
        d.docker_ok(&["ps", "-a", "--filter", "name=don", "--format", "{{.Names}}"]),
        "done"
    );
    let anc = d.docker_ok(&["ps", "-a", "--filter", "ancestor=busybox", "-q"]);
    assert_eq!(anc.lines().count(), 2);
    let table = d.docker_ok(&["ps"]);
    assert!(table.starts_with("CONTAINER ID"), "{table}");
}

#[test]
#[ignore = "needs root"]
fn inspect_shows_state_config_hostconfig_mounts() {
    let d = daemon();
    let host = d.scratch();
    let spec = format!("{}:/mnt:ro", host.display());
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ins",
        "-v",
        &spec,
        "--memory",
        "64m",
        "--restart",
        "on-failure:2",
        "busybox",
        "sleep",
        "1000",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["inspect", "ins"])).expect("json");
    let c = &v[0];
    assert_eq!(c["Name"], "/ins");
    assert_eq!(c["State"]["Running"], true);
    assert!(c["State"]["Pid"].as_u64().expect("pid") > 0);
    assert_eq!(c["State"]["OOMKilled"], false);
    assert_eq!(c["Config"]["Cmd"][1], "1000");
    assert_eq!(c["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(c["Mounts"][0]["Destination"], "/mnt");
    assert_eq!(c["Mounts"][0]["RW"], false);
    assert!(c["NetworkSettings"]["SandboxKey"].as_str().is_some());
    assert!(
        c["GraphDriver"]["Data"]["MergedDir"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        c["LogPath"]
            .as_str()
            .is_some_and(|p| p.ends_with("-json.log"))
    );
}

#[test]
#[ignore = "needs root"]
fn logs_follow_tail_since_timestamps() {
    let d = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo late; sleep 1000",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        d.docker_ok(&["logs", "--tail", "2", "chatty"]),
        "line5\nlate"
    );
    let ts = d.docker_ok(&["logs", "-t", "--tail", "1", "chatty"]);
    assert!(ts.ends_with(" late") && ts.contains('T'), "{ts}");
    let future = d.docker_ok(&["logs", "--since", "2100-01-01T00:00:00Z", "chatty"]);
    assert_eq!(future, "");
    let follow = d
        .docker_cmd(&["logs", "-f", "chatty"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("logs -f");
    std::thread::sleep(Duration::from_millis(500));
    d.docker_ok(&["stop", "-t", "1", "chatty"]);
    let out = follow.wait_with_output().expect("follow output");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("line1\nline2"),
        "follow ends when the container stops"
    );
}

#[test]
#[ignore = "needs root"]
fn wait_rename_pause_top_stats_update() {
    let d = daemon();
    d.docker_ok(&["run", "-d", "--name", "aa", "busybox", "sleep", "1000"]);
    // Docker's names have at least two characters.
    let out = d.docker(&["rename", "aa", "b"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid container name"));
    d.docker_ok(&["rename", "aa", "b1"]);
    assert_eq!(d.docker_ok(&["ps", "--format", "{{.Names}}"]), "b1");
    d.docker_ok(&["pause", "b1"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "b1"]),
        "paused"
    );
    d.docker_ok(&["unpause", "b1"]);
    let top = d.docker_ok(&["top", "b1"]);
    assert!(top.contains("sleep 1000"), "{top}");
    let stats = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}}",
        "b1",
    ]);
    assert!(stats.starts_with("b1 "), "{stats}");
    d.docker_ok(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--cpus",
        "0.5",
        "b1",
    ]);
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            "b1"
        ]),
        "134217728 500000000"
    );
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ww",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    assert_eq!(d.docker_ok(&["wait", "ww"]), "7");
}
