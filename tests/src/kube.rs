//! Harness for the Kubernetes API tests: starts `berth server` in a temporary data
//! directory on a free loopback port, and runs the real `kubectl` and the Python
//! `kubernetes` package against it.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the `berth` binary to test.
pub const BERTH_BIN: &str = "BERTH_BIN";

/// The `berth` binary: `$BERTH_BIN`, else `<dir of the test executable>/../berth`.
pub fn berth_bin() -> PathBuf {
    if let Some(path) = std::env::var_os(BERTH_BIN) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable is in a directory");
    deps.parent().unwrap_or(deps).join("berth")
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Why the tests cannot run here, if they cannot.
pub fn missing_prerequisite() -> Option<String> {
    if !berth_bin().exists() {
        return Some(format!(
            "{} not found; build it with `cargo build -p berth` or set {BERTH_BIN}",
            berth_bin().display()
        ));
    }
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        return Some("kubectl is not installed".into());
    }
    None
}

/// A running `berth server` with its own data directory.
pub struct KubeServer {
    child: Child,
    /// The data directory (holds `kubeconfig.yaml`, `token`, `ca.crt`).
    pub dir: tempfile::TempDir,
    /// The HTTPS address.
    pub addr: SocketAddr,
}

impl KubeServer {
    /// Starts a server, or returns why it cannot (tests print that and pass).
    pub fn start() -> Result<Self, String> {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments (for example `--datastore etcd`).
    pub fn start_with(extra: &[&str]) -> Result<Self, String> {
        if let Some(why) = missing_prerequisite() {
            return Err(why);
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let log =
            std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
        let child = Command::new(berth_bin())
            .arg("server")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--https-listen")
            .arg(addr.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", berth_bin().display()))?;
        let mut server = Self { child, dir, addr };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("berth server exited with {status}: {}", self.log()));
            }
            if self.kubeconfig().exists()
                && TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    // The system namespaces are created right after the listener starts.
                    let ns = self.kubectl(&["get", "namespace", "default"]);
                    if ns.status.success() {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("berth server did not become ready: {}", self.log()))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    /// The bearer token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("token"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// `kubectl --kubeconfig <dir>/kubeconfig.yaml <args>`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_env(args, &[], None)
    }

    /// kubectl with environment variables and optional standard input.
    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("kubectl starts");
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        child.wait_with_output().expect("kubectl runs")
    }

    /// kubectl that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must fail; returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// kubectl with YAML on standard input (`apply -f -`, `create -f -`), must succeed.
    pub fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        let out = self.kubectl_env(args, &[], Some(input));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl ... -o json` parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).expect("kubectl printed JSON")
    }

    /// Runs a Python script with `KUBECONFIG` set; returns its output (or why it cannot run).
    pub fn python(&self, script: &str) -> Result<Output, String> {
        let probe = Command::new("python3")
            .args(["-c", "import kubernetes"])
            .output()
            .map_err(|e| format!("python3 missing: {e}"))?;
        if !probe.status.success() {
            return Err("the Python kubernetes package is not installed".into());
        }
        let path = self.dir.path().join("script.py");
        std::fs::write(&path, script).map_err(|e| e.to_string())?;
        Command::new("python3")
            .arg(&path)
            .env("KUBECONFIG", self.kubeconfig())
            .output()
            .map_err(|e| e.to_string())
    }

    /// Writes a file in the data directory and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        // SIGTERM by PID, then wait; SIGKILL if it does not stop.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill with a PID this harness started and has not yet reaped.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// Returns `path` as a `&str` for kubectl arguments.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
