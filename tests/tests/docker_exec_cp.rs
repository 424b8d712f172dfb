//! `docker exec`, `cp` both ways, `export`, `diff` and `commit` through the real CLI.

use berth_tests::Daemon;

fn daemon_with_container() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d.docker_ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    d
}

#[test]
#[ignore = "needs root"]
fn exec_exit_codes_env_user_workdir() {
    let d = daemon_with_container();
    let out = d.docker(&["exec", "box", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        d.docker_ok(&["exec", "-e", "X=1", "box", "sh", "-c", "echo $X"]),
        "1"
    );
    assert_eq!(
        d.docker_ok(&["exec", "-u", "app", "box", "id", "-un"]),
        "app"
    );
    assert_eq!(d.docker_ok(&["exec", "-w", "/etc", "box", "pwd"]), "/etc");
    let out = d.docker(&["exec", "box", "sh", "-c", "echo o; echo e >&2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "o\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "e\n");
    let input = d.docker_stdin(&["exec", "-i", "box", "cat"], b"piped in\n");
    assert_eq!(String::from_utf8_lossy(&input.stdout), "piped in\n");
    d.docker_ok(&["exec", "-d", "box", "sh", "-c", "echo bg > /tmp/bg"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(d.docker_ok(&["exec", "box", "cat", "/tmp/bg"]), "bg");
    let out = d.docker(&["exec", "box", "nope"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
#[ignore = "needs root"]
fn cp_both_directions_export_diff_commit() {
    let d = daemon_with_container();
    let host = d.scratch().join("upload.txt");
    std::fs::write(&host, "uploaded").expect("write");
    d.docker_ok(&["cp", host.to_str().expect("path"), "box:/tmp/"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/upload.txt"]),
        "uploaded"
    );
    d.docker_ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /srv/d && echo inside > /srv/d/f",
    ]);
    let dst = d.scratch().join("down");
    d.docker_ok(&["cp", "box:/srv/d", dst.to_str().expect("path")]);
    assert_eq!(
        std::fs::read_to_string(dst.join("f")).expect("read"),
        "inside\n"
    );
    let diff = d.docker_ok(&["diff", "box"]);
    assert!(diff.lines().any(|l| l == "A /srv/d/f"), "{diff}");
    assert!(diff.lines().any(|l| l == "C /tmp"), "{diff}");
    let export = d.scratch().join("export.tar");
    d.docker_ok(&["export", "-o", export.to_str().expect("path"), "box"]);
    let tar = std::fs::read(&export).expect("export");
    let mut names = Vec::new();
    for e in tar::Archive::new(tar.as_slice()).entries().expect("tar") {
        names.push(
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string(),
        );
    }
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "srv/d/f"),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "bin/busybox")
    );
    let id = d.docker_ok(&[
        "commit",
        "--author",
        "tester",
        "--message",
        "snap",
        "--change",
        r#"CMD ["cat","/srv/d/f"]"#,
        "box",
        "committed:1",
    ]);
    assert!(id.starts_with("sha256:"));
    assert_eq!(
        d.docker_ok(&["image", "inspect", "-f", "{{.Author}}", "committed:1"]),
        "tester"
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "committed:1"]), "inside");
}

/// Feeds `lines` to the stdin of `docker ARGS` one at a time, 100 ms apart, and returns
/// what it printed; gives up after 30 s (a stalled stream must fail, not hang the suite).
fn streamed(d: &Daemon, args: &[&str], lines: usize) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = d
        .docker_cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker runs");
    let mut stdin = child.stdin.take().expect("stdin");
    for i in 0..lines {
        stdin
            .write_all(format!("line-{i}\n").as_bytes())
            .expect("write");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(stdin);
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(out) => out.expect("docker output"),
        Err(_) => {
            berth_tests::daemon::signal(pid, 9);
            panic!("docker {args:?} stalled with its input streamed");
        }
    };
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A program that splices its stdin into its stdout (busybox cat uses sendfile) holds the
/// stdout pipe's lock while it waits for input; input arriving bit by bit must still flow.
#[test]
#[ignore = "needs root"]
fn stdin_streamed_bit_by_bit_reaches_cat() {
    let d = daemon_with_container();
    let want: String = (0..8).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(streamed(&d, &["exec", "-i", "box", "cat"], 8), want);
    assert_eq!(
        streamed(&d, &["run", "-i", "--rm", "busybox", "cat"], 8),
        want
    );
}
