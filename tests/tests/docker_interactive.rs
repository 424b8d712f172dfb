//! `docker run -it` and `docker exec -it` through a real PTY: the CLI runs in a tmux pane,
//! keys are sent with `send-keys` and the screen is read with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::Daemon;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(d: &Daemon, command: &str) -> Self {
        let session = format!("berth-{}", std::process::id() ^ rand_suffix());
        let cmd = format!(
            "env DOCKER_HOST={} DOCKER_CONFIG={} {}",
            d.host(),
            d.scratch().display(),
            command
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "120",
                "-y",
                "40",
                &cmd,
            ])
            .status()
            .expect("tmux");
        assert!(ok.success(), "tmux new-session failed");
        Self { session }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        assert!(
            Command::new("tmux")
                .args(&args)
                .status()
                .expect("tmux")
                .success()
        );
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(Instant::now() < deadline, "{text:?} never appeared:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn resize(&self, cols: u32, rows: u32) {
        let _ = Command::new("tmux")
            .args([
                "resize-window",
                "-t",
                &self.session,
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

#[test]
#[ignore = "needs root"]
fn run_it_gives_a_shell_with_a_tty_and_resize() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let t = Tmux::start(&d, "docker run -it --name tty busybox sh");
    t.wait_for("/ #");
    t.keys(&["tty; echo marker-$((6*7))", "Enter"]);
    let s = t.wait_for("marker-42");
    assert!(s.contains("/dev/pts/"), "{s}");
    t.resize(100, 30);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["stty size", "Enter"]);
    t.wait_for("30 100");
    t.keys(&["exit 6", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "tty"]) != "exited" {
        assert!(Instant::now() < deadline, "container did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "tty"]),
        "6"
    );
}

#[test]
#[ignore = "needs root"]
fn exec_it_gives_a_shell_in_a_running_container() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d.docker_ok(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"]);
    let t = Tmux::start(&d, "docker exec -it target sh");
    t.wait_for("/ #");
    // The marker comes after tty's answer, so the screen holds both once it shows.
    t.keys(&["tty; echo $((1+2))-exec", "Enter"]);
    let s = t.wait_for("3-exec");
    assert!(s.contains("/dev/pts/"), "{s}");
    t.keys(&["exit", "Enter"]);
}

#[test]
#[ignore = "needs root"]
fn detach_keys_leave_the_container_running_and_attach_returns() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let t = Tmux::start(
        &d,
        "sh -c 'docker run -it --name dt busybox sh; echo cli-exit-$?; sleep 60'",
    );
    t.wait_for("/ #");
    t.keys(&["echo before-detach", "Enter"]);
    t.wait_for("before-detach");
    // ctrl-p ctrl-q: the CLI leaves with 0, the shell goes on.
    t.keys(&["C-p", "C-q"]);
    t.wait_for("cli-exit-0");
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "dt"]),
        "running"
    );
    drop(t);
    let t = Tmux::start(
        &d,
        "sh -c 'docker attach dt; echo attach-exit-$?; sleep 60'",
    );
    std::thread::sleep(Duration::from_millis(800));
    t.keys(&["echo again-$((2*21))", "Enter"]);
    t.wait_for("again-42");
    t.keys(&["exit 5", "Enter"]);
    t.wait_for("attach-exit-5");
    // Custom keys on exec: a single ctrl-x detaches (the CLI reports it for exec, as with
    // Docker, and exits 1).
    d.docker_ok(&["start", "dt"]);
    let t2 = Tmux::start(
        &d,
        "sh -c 'docker exec -it --detach-keys ctrl-x dt sh; echo exec-exit-$?; sleep 60'",
    );
    t2.wait_for("/ #");
    t2.keys(&["C-x"]);
    let s = t2.wait_for("exec-exit-1");
    assert!(s.contains("read escape sequence"), "{s}");
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "dt"]),
        "running"
    );
}
