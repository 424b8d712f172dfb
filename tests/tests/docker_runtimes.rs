//! `--runtime runc`/`crun` per daemon and per container, beside the built-in runtime.

use berth_tests::Daemon;

fn have(bin: &str) -> bool {
    std::process::Command::new("which")
        .arg(bin)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
#[ignore = "needs root"]
fn per_container_runtime_choice() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    for rt in ["runc", "crun"] {
        if !have(rt) {
            eprintln!("{rt} is not installed; skipping it");
            continue;
        }
        let out = d.docker_ok(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            "busybox",
            "sh",
            "-c",
            "echo via-$0",
            rt,
        ]);
        assert_eq!(out, format!("via-{rt}"));
    }
    let out = d.docker(&["run", "--rm", "--runtime", "nope", "busybox", "true"]);
    assert!(!out.status.success());
}

#[test]
#[ignore = "needs root"]
fn per_daemon_default_runtime() {
    if !have("runc") {
        eprintln!("runc is not installed; nothing to test");
        return;
    }
    let d = Daemon::start_with(&["--runtime", "runc"]);
    d.load_busybox("busybox:latest");
    assert_eq!(
        d.docker_ok(&["info", "--format", "{{.DefaultRuntime}}"]),
        "runc"
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "busybox", "echo", "ok"]), "ok");
}
