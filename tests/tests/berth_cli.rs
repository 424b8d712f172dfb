//! The `berth` client verbs give a user without the docker CLI the same verbs, as a client of
//! the daemon's API, with Docker's table layouts.

use std::process::{Command, Output};

use berth_tests::{Daemon, berth_bin, fixtures};

fn berth(d: &Daemon, args: &[&str]) -> Output {
    Command::new(berth_bin())
        .args(args)
        .env("DOCKER_HOST", d.host())
        .output()
        .expect("run berth")
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = berth(d, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn version_talks_to_the_daemon() {
    let d = Daemon::start();
    let out = ok(&d, &["version"]);
    assert!(out.contains("Server: berth"), "{out}");
    assert!(out.contains("API version:      1.47"), "{out}");
    let out = Command::new(berth_bin())
        .args(["version", "--host", "unix:///nonexistent/berth.sock"])
        .output()
        .expect("run berth");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot connect"));
}

#[test]
#[ignore = "needs root"]
fn image_verbs_load_tag_images_save_rmi_import() {
    let d = Daemon::start();
    let tar = fixtures::docker_archive(&fixtures::busybox_rootfs(), "busybox:latest", &[]);
    let path = d.scratch().join("bb.tar");
    std::fs::write(&path, &tar.bytes).expect("write");
    let out = ok(&d, &["load", "-i", path.to_str().expect("path")]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    ok(&d, &["tag", "busybox", "mine:1"]);
    let table = ok(&d, &["images"]);
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{header}"
    );
    assert!(table.contains("mine "), "{table}");
    let short = &tar.image_id.trim_start_matches("sha256:")[..12];
    assert_eq!(ok(&d, &["images", "-q"]).trim(), short);
    let saved = d.scratch().join("saved.tar");
    ok(&d, &["save", "-o", saved.to_str().expect("path"), "mine:1"]);
    assert!(std::fs::metadata(&saved).expect("saved").len() > 1_000_000);
    let out = ok(&d, &["rmi", "mine:1"]);
    assert!(out.contains("Untagged: mine:1"), "{out}");
    let rootfs = d.scratch().join("rootfs.tar");
    std::fs::write(&rootfs, fixtures::busybox_rootfs()).expect("write");
    let out = ok(
        &d,
        &[
            "import",
            "-c",
            "CMD [\"sh\"]",
            rootfs.to_str().expect("path"),
            "imp:2",
        ],
    );
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let inspect = ok(&d, &["inspect", "imp:2"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("json");
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
}

#[test]
#[ignore = "needs root"]
fn container_verbs_run_ps_logs_exec_stop_rm() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let out = berth(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let id = ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "svc",
            "busybox",
            "sh",
            "-c",
            "echo started; sleep 1000",
        ],
    );
    assert_eq!(id.trim().len(), 64);
    let table = ok(&d, &["ps"]);
    assert!(
        table.starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{table}"
    );
    assert!(table.contains("svc"), "{table}");
    let exec = berth(&d, &["exec", "svc", "sh", "-c", "exit 9"]);
    assert_eq!(exec.status.code(), Some(9));
    assert_eq!(ok(&d, &["exec", "svc", "echo", "hi"]), "hi\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(ok(&d, &["logs", "svc"]), "started\n");
    ok(&d, &["stop", "-t", "1", "svc"]);
    ok(&d, &["start", "svc"]);
    ok(&d, &["rm", "-f", "svc"]);
    assert_eq!(ok(&d, &["ps", "-aq"]).trim(), "");
}
