//! A `berth registry` process for end-to-end tests: own root and port, JSON debug log (one
//! line per request, so tests can assert which blobs were fetched), SIGKILL and restart on
//! the same root and port, and a TCP proxy that cuts its first long transfer (a server dying
//! mid-transfer, deterministically).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running `berth registry`, killed on drop.
pub struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    htpasswd: Option<PathBuf>,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Registry {
    /// Starts a registry without authentication.
    pub fn start() -> Self {
        Self::start_with_users(&[])
    }

    /// Starts a registry requiring one of `users` (name, password), bcrypt htpasswd written
    /// with Apache's `htpasswd -B`.
    pub fn start_with_users(users: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-reg-")
            .tempdir()
            .expect("temporary directory");
        let htpasswd = (!users.is_empty()).then(|| {
            let mut text = String::new();
            for (u, p) in users {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .expect("htpasswd (apache2-utils, see scripts/deps) must be installed");
                assert!(out.status.success(), "htpasswd failed");
                text.push_str(String::from_utf8_lossy(&out.stdout).trim());
                text.push('\n');
            }
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, text).expect("write htpasswd");
            path
        });
        let mut r = Self {
            child: None,
            dir,
            port: free_port(),
            htpasswd,
        };
        r.spawn();
        r
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The log (JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// PID of the registry process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .expect("registry log");
        let mut cmd = Command::new(crate::berth_bin());
        cmd.args([
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "registry",
            "--root",
        ])
        .arg(self.root())
        .args(["--addr", &self.host()]);
        if let Some(h) = &self.htpasswd {
            cmd.arg("--htpasswd").arg(h);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn berth registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "berth registry did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs the registry, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed registry again on the same root and port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "registry still running");
        self.spawn();
    }

    /// Request lines of the log: `METHOD PATH` for each request served.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "answered")
            .map(|v| {
                format!(
                    "{} {}",
                    v["span"]["method"].as_str().unwrap_or(""),
                    v["span"]["path"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback TCP proxy to `target` whose first connection that moves more than `cut_after`
/// bytes from the server is dropped there (or, started with [`Self::start_stalling`], stops
/// forwarding until [`Self::release`]); later connections are forwarded whole.
pub struct CuttingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Set once a connection has been cut (or stalled).
    pub cut: Arc<AtomicBool>,
    /// For a stalling proxy: set to let the stalled connection go on.
    release: Option<Arc<AtomicBool>>,
}

impl CuttingProxy {
    /// Starts the proxy.
    pub fn start(target: u16, cut_after: u64) -> Self {
        Self::start_with(target, cut_after, None)
    }

    /// Starts a proxy whose first connection past `stall_after` bytes holds the rest of the
    /// response back until [`Self::release`] (or the proxy is dropped).
    pub fn start_stalling(target: u16, stall_after: u64) -> Self {
        Self::start_with(target, stall_after, Some(Arc::new(AtomicBool::new(false))))
    }

    /// Lets a stalled connection go on.
    pub fn release(&self) {
        if let Some(r) = &self.release {
            r.store(true, Ordering::SeqCst);
        }
    }

    fn start_with(target: u16, cut_after: u64, release: Option<Arc<AtomicBool>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let (s2, c2, r2) = (stop.clone(), cut.clone(), release.clone());
        std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (cut, release) = (c2.clone(), r2.clone());
                std::thread::spawn(move || pipe(client, server, cut, cut_after, release));
            }
        });
        Self {
            port,
            stop,
            cut,
            release,
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.release();
    }
}

fn pipe(
    client: TcpStream,
    server: TcpStream,
    cut: Arc<AtomicBool>,
    cut_after: u64,
    release: Option<Arc<AtomicBool>>,
) {
    let (mut c_read, mut s_write) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let moved = AtomicU64::new(0);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let total = moved.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > cut_after && !cut.swap(true, Ordering::SeqCst) {
            if let Some(release) = &release {
                while !release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if c_write.write_all(&buf[..n]).is_err() {
                    break;
                }
                continue;
            }
            let _ = c_write.shutdown(Shutdown::Both);
            let _ = s_read.shutdown(Shutdown::Both);
            break;
        }
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// Whether `path` holds any file (recursively) — for leftover checks.
pub fn has_files_named(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name().to_string_lossy().starts_with(prefix)
                || (e.file_type().is_ok_and(|t| t.is_dir()) && has_files_named(&e.path(), prefix))
        })
}
