//! Starts `/usr/bin/etcd` for a test: a temp data dir, free loopback ports, stopped by PID.

// Shared by several test binaries; each uses a different part.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_store::Store;
use berth_store::etcd::EtcdStore;

/// The etcd binary the tests use.
pub const ETCD: &str = "/usr/bin/etcd";

/// A running etcd server owned by a test.
pub struct EtcdServer {
    child: Option<Child>,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

impl EtcdServer {
    /// Starts etcd in `data_dir`, or returns `None` (after saying why) when etcd is missing.
    pub async fn start(data_dir: &Path) -> Option<Self> {
        if !Path::new(ETCD).exists() {
            eprintln!("skipping: {ETCD} is not installed (apt-get install etcd-server)");
            return None;
        }
        let mut server = EtcdServer {
            child: None,
            data_dir: data_dir.to_path_buf(),
            client_port: free_port(),
            peer_port: free_port(),
        };
        server.spawn().await;
        Some(server)
    }

    /// The client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.data_dir.with_extension("log")).expect("etcd log");
        let child = Command::new(ETCD)
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.data_dir.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--experimental-watch-progress-notify-interval=1s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(store) = EtcdStore::connect(&[self.endpoint()]).await
                && store.revision().await.is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "etcd did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills etcd with SIGKILL (by PID) and starts it again on the same data dir and ports.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL to this PID only.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}
