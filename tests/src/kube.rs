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

/// Environment variable choosing the datastore of [`KubeServer::start`]: `sqlite`, `etcd`
/// or `memory`. Unset: `etcd` in the `kube_etcd` test binary (which runs the kube suites
/// again), else `sqlite`.
pub const BERTH_TEST_DATASTORE: &str = "BERTH_TEST_DATASTORE";

/// The datastore the kube tests of this process run on.
pub fn test_datastore() -> String {
    if let Some(value) = std::env::var_os(BERTH_TEST_DATASTORE) {
        return value.to_string_lossy().into_owned();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    if name.starts_with("kube_etcd") {
        "etcd".into()
    } else {
        "sqlite".into()
    }
}

/// A single-member etcd (Debian's `etcd-server`) in a temporary directory on free loopback
/// ports, killed by PID when dropped.
pub struct Etcd {
    child: Child,
    /// The client URL (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd and waits until it answers, or returns why it cannot.
    pub fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("etcd")
            .arg("--name=berth-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=berth-test={peer_url}"))
            .arg("--log-level=error")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("etcd (Debian package etcd-server) cannot start: {e}"))?;
        let mut etcd = Self {
            child,
            endpoint,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr: SocketAddr = format!("127.0.0.1:{client}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                return Err(format!("etcd exited with {status}: {}", etcd.log()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(etcd);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("etcd did not start: {}", etcd.log()))
    }

    /// etcd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// The process id of etcd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `berth server` with its own data directory.
pub struct KubeServer {
    child: Child,
    /// The data directory (holds `kubeconfig.yaml`, `token`, `ca.crt`).
    pub dir: tempfile::TempDir,
    /// The HTTPS address.
    pub addr: SocketAddr,
    args: Vec<String>,
    /// The etcd the server stores into, with `--datastore etcd` (dropped after the server).
    pub etcd: Option<Etcd>,
}

impl KubeServer {
    /// Starts a server on the datastore of [`test_datastore`] (an etcd of its own for
    /// `etcd`), or returns why it cannot (tests print that and pass).
    pub fn start() -> Result<Self, String> {
        Self::start_on(&test_datastore())
    }

    /// Starts a server on `datastore` (`sqlite`, `etcd`, `memory`).
    pub fn start_on(datastore: &str) -> Result<Self, String> {
        if let Some(why) = missing_prerequisite() {
            return Err(why);
        }
        if datastore != "etcd" {
            return Self::launch(&["--datastore", datastore], None);
        }
        let etcd = Etcd::start()?;
        let endpoint = etcd.endpoint.clone();
        Self::launch(
            &["--datastore", "etcd", "--etcd-endpoints", &endpoint],
            Some(etcd),
        )
    }

    /// Starts a server with extra arguments (for example `--datastore memory`).
    pub fn start_with(extra: &[&str]) -> Result<Self, String> {
        if let Some(why) = missing_prerequisite() {
            return Err(why);
        }
        Self::launch(extra, None)
    }

    fn launch(extra: &[&str], etcd: Option<Etcd>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let child = spawn_server(dir.path(), addr, &args)?;
        let mut server = Self {
            child,
            dir,
            addr,
            args,
            etcd,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and reaps it.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data directory, address and datastore.
    pub fn restart(&mut self) -> Result<(), String> {
        self.child = spawn_server(self.dir.path(), self.addr, &self.args)?;
        self.wait_ready()
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

fn spawn_server(dir: &Path, addr: SocketAddr, args: &[String]) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .map_err(|e| e.to_string())?;
    Command::new(berth_bin())
        .arg("server")
        .arg("--data-dir")
        .arg(dir)
        .arg("--https-listen")
        .arg(addr.to_string())
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", berth_bin().display()))
}

/// Returns `path` as a `&str` for kubectl arguments.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
