//! Isolation and limits through the real docker CLI, checked from inside the container:
//! namespaces, overlay rootfs, masked and read-only /proc, capabilities, privileged mode,
//! no-new-privileges, seccomp, memory (OOM kill), CPU quota and set, pids limit, ulimits.

use berth_tests::Daemon;

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d
}

fn status_field(d: &Daemon, opts: &[&str], field: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "grep", field, "/proc/self/status"]);
    let line = d.docker_ok(&args);
    line.split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "needs root"]
fn namespaces_rootfs_and_proc_are_isolated() {
    let d = daemon();
    for ns in ["mnt", "uts", "ipc", "pid"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("host ns");
        let inside = d.docker_ok(&[
            "run",
            "--rm",
            "busybox",
            "readlink",
            &format!("/proc/self/ns/{ns}"),
        ]);
        assert_ne!(inside, host.to_string_lossy(), "{ns} namespace is shared");
    }
    let root = d.docker_ok(&["run", "--rm", "busybox", "grep", " / ", "/proc/mounts"]);
    assert!(root.starts_with("overlay / overlay"), "{root}");
    // Masked paths are empty, /proc/sys is read-only.
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "wc -c < /proc/keys; ls /sys/firmware | wc -l"
        ]),
        "0\n0"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo x > /proc/sys/kernel/domainname",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
}

#[test]
#[ignore = "needs root"]
fn capabilities_privileged_no_new_privileges_and_seccomp() {
    let d = daemon();
    // Docker's default set.
    assert_eq!(status_field(&d, &[], "CapEff"), "00000000a80425fb");
    // NET_ADMIN is bit 12.
    assert_eq!(
        status_field(&d, &["--cap-add", "NET_ADMIN"], "CapEff"),
        "00000000a80435fb"
    );
    assert_eq!(
        status_field(&d, &["--cap-drop", "CHOWN"], "CapEff"),
        "00000000a80425fa"
    );
    // Privileged: every capability this host can give, no seccomp, mount works.
    let bounding = std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .expect("CapBnd");
    assert_eq!(status_field(&d, &["--privileged"], "CapEff"), bounding);
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "sh",
            "-c",
            "mount -t tmpfs none /tmp && echo mounted"
        ]),
        "mounted"
    );
    // A privileged container gets the host's device nodes (same numbers and mode), and may
    // use them.
    if let Ok(meta) = std::fs::metadata("/dev/loop0") {
        use std::os::unix::fs::MetadataExt;
        let mode = format!("{:o}", meta.mode() & 0o7777);
        assert_eq!(
            d.docker_ok(&[
                "run",
                "--rm",
                "--privileged",
                "busybox",
                "sh",
                "-c",
                "stat -c '%F %t:%T %a' /dev/loop0 && head -c 0 /dev/loop0 && echo opened"
            ]),
            format!("block special file 7:0 {mode}\nopened")
        );
    }
    let out = d.docker(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/tmp",
    ]);
    assert!(!out.status.success(), "mount is refused without privileges");
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "0");
    assert_eq!(
        status_field(&d, &["--security-opt", "no-new-privileges"], "NoNewPrivs"),
        "1"
    );
    assert_eq!(status_field(&d, &[], "Seccomp:"), "2");
    assert_eq!(
        status_field(&d, &["--security-opt", "seccomp=unconfined"], "Seccomp:"),
        "0"
    );
}

/// A static program that tries `clone(CLONE_NEWUSER)` and prints the outcome, compiled with
/// the host's C compiler; `None` (with the reason printed) when there is none.
fn clone_probe(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    berth_tests::fixtures::static_c_program(
        dir,
        "clone_newuser",
        r#"#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid < 0) { puts(strerror(errno)); return 1; }
    waitpid(pid, 0, 0);
    puts("allowed");
    return 0;
}
"#,
    )
}

#[test]
#[ignore = "needs root"]
fn seccomp_filter_refuses_namespaces_in_run_and_exec() {
    let d = daemon();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = clone_probe(dir.path()).expect("a static C toolchain (cc, libc6-dev)");
    let mount = format!("{}:/probe:ro", probe.display());
    // Docker's profile allows clone only without namespace flags when CAP_SYS_ADMIN is
    // missing; with it, the kernel decides.
    let out = d.docker(&["run", "--rm", "-v", &mount, "busybox", "/probe"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Operation not permitted",
        "{out:?}"
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--cap-add",
            "SYS_ADMIN",
            "-v",
            &mount,
            "busybox",
            "/probe"
        ]),
        "allowed"
    );
    // The filter is loaded once, and loading it leaves no capability behind.
    d.docker_ok(&[
        "run", "-d", "--name", "sc", "-v", &mount, "busybox", "sleep", "300",
    ]);
    let status = d.docker_ok(&["exec", "sc", "cat", "/proc/self/status"]);
    for (field, want) in [
        ("CapPrm:", "00000000a80425fb"),
        ("CapEff:", "00000000a80425fb"),
        ("CapBnd:", "00000000a80425fb"),
        ("Seccomp:", "2"),
        ("Seccomp_filters:", "1"),
    ] {
        let got = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(str::trim);
        assert_eq!(got, Some(want), "{field} of an exec:\n{status}");
    }
    let out = d.docker(&["exec", "sc", "/probe"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Operation not permitted",
        "{out:?}"
    );
    let init = d.docker_ok(&["exec", "sc", "cat", "/proc/1/status"]);
    assert!(init.contains("CapPrm:\t00000000a80425fb"), "{init}");
    assert!(init.contains("Seccomp_filters:\t1"), "{init}");
    d.docker_ok(&["rm", "-f", "sc"]);
}

#[test]
#[ignore = "needs root"]
fn memory_cpu_pids_and_ulimits_are_enforced() {
    let d = daemon();
    let out = d.docker(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            "hog"
        ]),
        "true 137"
    );
    let cpu = d.docker_ok(&[
        "run", "--rm", "--cpus", "0.5", "--cpuset-cpus", "0", "busybox", "sh", "-c",
        "grep Cpus_allowed_list /proc/self/status; \
         cat /sys/fs/cgroup/cpu.max 2>/dev/null || \
         echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)",
    ]);
    assert!(cpu.starts_with("Cpus_allowed_list:\t0\n"), "{cpu}");
    assert!(cpu.ends_with("50000 100000"), "{cpu}");
    // A fork bomb hits the pids limit; the daemon and the container stay controllable.
    let out = d.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 60); do sleep 30 & done; echo survived",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("can't fork"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=100:200",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn"
        ]),
        "100\n200"
    );
}
