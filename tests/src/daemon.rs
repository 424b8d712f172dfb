//! A `berth daemon` in a temporary root for one test, and the clients driving it (docker
//! CLI, Python SDK, raw HTTP). Dropping it removes its containers, stops it by PID and
//! unmounts whatever is left under its root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::http;

/// The docker CLI under test.
pub const DOCKER: &str = "/usr/local/bin/docker";

/// A running daemon.
pub struct Daemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    /// Command (and arguments) the daemon is started through; empty: none.
    wrapper: Vec<String>,
}

impl Daemon {
    /// Starts a daemon with the default runtime.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a daemon with extra arguments (for example `--runtime runc`).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_wrapped(&[], extra)
    }

    /// Starts a daemon through a wrapper command (for example one that sets up a mount
    /// namespace and then `exec`s its arguments, so that the pid stays the daemon's).
    pub fn start_wrapped(wrapper: &[&str], extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("docker-config")).expect("docker config dir");
        let mut d = Self {
            child: None,
            dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    /// The daemon's root directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// `unix://...` for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The network namespace the daemon manages as its host network (`--network-namespace`).
    pub fn netns(&self) -> PathBuf {
        self.dir.path().join("hostnet")
    }

    /// Scratch directory of the test (removed with the daemon).
    pub fn scratch(&self) -> PathBuf {
        let p = self.dir.path().join("scratch");
        std::fs::create_dir_all(&p).expect("scratch dir");
        p
    }

    /// The daemon's log file.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// PID of the daemon process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("daemon log");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(crate::berth_bin());
                c
            }
            None => Command::new(crate::berth_bin()),
        };
        let child = command
            .arg("--log-level")
            .arg("debug")
            .arg("daemon")
            .arg("--root")
            .arg(self.root())
            .arg("--socket")
            .arg(self.socket())
            .arg("--network-namespace")
            .arg(self.netns())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn berth daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http::request(&self.socket(), "GET", "/_ping", None)
                && r.status == 200
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("berth daemon exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berth daemon did not answer /_ping:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon with SIGTERM (containers keep running) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same root and socket.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts a stopped or killed daemon again.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "daemon still running");
        self.spawn();
    }

    /// A `docker` command with `DOCKER_HOST` set to this daemon.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null());
        c
    }

    /// Runs the docker CLI; returns its output.
    pub fn docker(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = self.docker_cmd(args).output().expect("run docker CLI");
        let took = started.elapsed();
        if took > Duration::from_secs(5) {
            eprintln!("slow docker command ({took:?}): {args:?}");
        }
        out
    }

    /// Runs the docker CLI, asserts success, returns trimmed stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `docker` with stdin from `input`.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .docker_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("docker output");
        let _ = writer.join();
        out
    }

    /// Raw API request.
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> http::Response {
        http::request(&self.socket(), method, path, body).expect("API request")
    }

    /// Runs a Python script from tests/python with `DOCKER_HOST` set and extra args.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python")
            .join(script);
        Command::new("python3")
            .arg(path)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .stdin(Stdio::null())
            .output()
            .expect("run python3")
    }

    /// Runs a Python script of tests/python that ends by printing `OK`; panics with its
    /// output and the daemon log's tail otherwise.
    pub fn python_ok(&self, script: &str, args: &[&str]) {
        let out = self.python(script, args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim_end().ends_with("OK"),
            "python {script} failed ({}):\n{stdout}\n{}\ndaemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 40)
        );
    }

    /// Loads the standard busybox fixture as `name` (for example `busybox:latest`).
    pub fn load_busybox(&self, name: &str) -> String {
        let tar = crate::fixtures::docker_archive(&crate::fixtures::busybox_rootfs(), name, &[]);
        let path = self
            .scratch()
            .join(format!("{}.tar", name.replace([':', '/'], "_")));
        std::fs::write(&path, &tar.bytes).expect("write fixture");
        self.docker_ok(&["load", "-i", path.to_str().expect("utf-8 path")]);
        tar.image_id
    }

    fn cleanup(&mut self) {
        if self.child.is_some() {
            if let Ok(r) = http::request(&self.socket(), "GET", "/containers/json?all=1", None)
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body)
            {
                for c in v.as_array().into_iter().flatten() {
                    if let Some(id) = c["Id"].as_str() {
                        let started = Instant::now();
                        let _ = http::request(
                            &self.socket(),
                            "DELETE",
                            &format!("/containers/{id}?force=1"),
                            None,
                        );
                        if started.elapsed() > Duration::from_secs(5) {
                            eprintln!("slow forced removal of {id}: {:?}", started.elapsed());
                        }
                    }
                }
            }
            self.stop();
        }
        unmount_under(self.dir.path());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Sends a signal to a pid.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we started; no memory is shared.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Unmounts (lazily, deepest first) every mount point under `dir`.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: umount2 with a valid NUL-terminated path; failure is harmless here.
            #[allow(unsafe_code)]
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
