//! `docker run` and friends through the real CLI: exit codes, output, options that shape the
//! process (env, workdir, user, entrypoint, hostname, read-only, tmpfs, binds, labels).

use berth_tests::Daemon;

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d
}

#[test]
#[ignore = "needs root"]
fn run_propagates_exit_codes_and_output() {
    let d = daemon();
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo hello; exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let out = d.docker(&["run", "--rm", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(0));
    let out = d.docker(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --rm: nothing is left behind.
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
}

#[test]
#[ignore = "needs root"]
fn run_keeps_stdout_and_stderr_apart() {
    let d = daemon();
    let out = d.docker(&[
        "run",
        "--name",
        "split",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let logs = d.docker(&["logs", "split"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "err\n");
}

#[test]
#[ignore = "needs root"]
fn run_options_shape_the_process() {
    let d = daemon();
    let envfile = d.scratch().join("env");
    std::fs::write(&envfile, "FROM_FILE=1\n# comment\n").expect("env file");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-e",
        "A=b",
        "--env-file",
        envfile.to_str().expect("path"),
        "-w",
        "/tmp",
        "--hostname",
        "boxy",
        "busybox",
        "sh",
        "-c",
        "echo $A $FROM_FILE $(pwd) $(hostname)",
    ]);
    assert_eq!(out, "b 1 /tmp boxy");
    let id = d.docker_ok(&["run", "--rm", "-u", "app", "busybox", "id"]);
    assert!(
        id.starts_with("uid=1000(app) gid=1000(app) groups="),
        "{id}"
    );
    assert!(id.contains("10(wheel)"), "{id}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-u", "1234:5678", "busybox", "id", "-u"]),
        "1234"
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            "busybox",
            "via",
            "entrypoint"
        ]),
        "via entrypoint"
    );
    let out = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert!(!out.status.success(), "read-only rootfs must refuse writes");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "touch /scratch/x && grep ' /scratch ' /proc/mounts",
    ]);
    assert!(out.contains("tmpfs"), "{out}");
    let host = d.scratch().join("bind");
    std::fs::create_dir_all(&host).expect("bind dir");
    std::fs::write(host.join("in"), "from host").expect("write");
    let spec = format!("{}:/data", host.display());
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", &spec, "busybox", "cat", "/data/in"]),
        "from host"
    );
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo back > /data/out",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).expect("read"),
        "back\n"
    );
    let ro = format!("{}:/data:ro", host.display());
    assert!(
        !d.docker(&["run", "--rm", "-v", &ro, "busybox", "touch", "/data/y"])
            .status
            .success()
    );
    let id = d.docker_ok(&["create", "--label", "team=blue", "busybox", "true"]);
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"team\"}}",
            &id
        ]),
        "blue"
    );
}

#[test]
#[ignore = "needs root"]
fn isolation_pid1_namespaces_and_network_modes() {
    let d = daemon();
    assert_eq!(
        d.docker_ok(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]),
        "1"
    );
    let links = d.docker_ok(&["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(links, "eth0\nlo", "default network is the bridge (issue 3)");
    let none = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none, "lo");
    let out = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(!out.status.success(), "seccomp/capabilities refuse unshare");
    let caps = d.docker_ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(caps.ends_with("0000000000000000"), "{caps}");
}
