#![allow(dead_code)]
//! Fixtures of the runtime's integration tests: a busybox rootfs built from the host's
//! busybox-static, a state directory and a [`Runtime`] using this crate's shim binary.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_runtime::{
    ContainerConfig, NetworkNamespace, Resources, Runtime, RuntimeConfig, RuntimeKind, User,
};
use tokio::io::AsyncReadExt;

pub const BUSYBOX: &str = "/bin/busybox";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub runtime: Runtime,
    pub kind: RuntimeKind,
}

/// Whether the tests can run: root and busybox present; prints why not.
pub fn usable() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: {BUSYBOX} (busybox-static) is not installed");
        return false;
    }
    true
}

/// The runc runtime if installed.
pub fn runc() -> Option<RuntimeKind> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/sbin",
    ] {
        let path = Path::new(dir).join("runc");
        if path.exists() {
            return Some(RuntimeKind::Oci {
                name: "runc".into(),
                path,
            });
        }
    }
    eprintln!("skipped: runc is not installed");
    None
}

fn build_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    for d in ["etc", "tmp", "proc", "sys", "dev", "mnt", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", bin.join(applet));
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("group");
}

impl Fixture {
    pub fn new(kind: RuntimeKind) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("brt")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        build_rootfs(&rootfs);
        let runtime = Runtime::new(RuntimeConfig {
            state_dir: dir.path().join("state"),
            shim_binary: PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime-shim")),
            default_runtime: RuntimeKind::Builtin,
        })
        .expect("runtime");
        Self {
            dir,
            rootfs,
            runtime,
            kind,
        }
    }

    /// A container running `args` with Docker-like defaults.
    pub fn config(&self, args: &[&str]) -> ContainerConfig {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "t{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        ContainerConfig {
            log_path: self.dir.path().join(format!("{id}-json.log")),
            cgroup_path: format!("berth-test/{id}"),
            id,
            rootfs: self.rootfs.clone(),
            readonly_rootfs: false,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cwd: PathBuf::from("/"),
            user: User::default(),
            hostname: "box".into(),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            mounts: vec![],
            network: NetworkNamespace::New,
            cap_add: vec![],
            cap_drop: vec![],
            privileged: false,
            seccomp: true,
            no_new_privileges: false,
            resources: Resources::default(),
            ulimits: vec![],
            stop_signal: 15,
            runtime: Some(self.kind.clone()),
            annotations: BTreeMap::new(),
        }
    }

    /// Creates, attaches, starts and waits; returns (exit code, stdout, stderr).
    pub async fn run(
        &self,
        config: &ContainerConfig,
    ) -> (berth_runtime::ExitStatus, String, String) {
        let rt = &self.runtime;
        rt.create(config).await.expect("create");
        let streams = rt.attach(&config.id).await.expect("attach");
        rt.start(&config.id).await.expect("start");
        let out = read_all(streams.stdout);
        let err = async {
            match streams.stderr {
                Some(e) => read_all(e).await,
                None => String::new(),
            }
        };
        let (out, err) = tokio::join!(out, err);
        let status = rt.wait(&config.id).await.expect("wait");
        self.remove(&config.id).await;
        (status, out, err)
    }

    /// Kills (if needed) and deletes a container.
    pub async fn remove(&self, id: &str) {
        let _ = self.runtime.kill(id, 9).await;
        let _ = self.runtime.wait(id).await;
        self.runtime.delete(id).await.expect("delete");
    }
}

impl Drop for Fixture {
    /// Kills whatever a failed test left running and waits for its shim to finish (which
    /// removes the container's cgroup), before the temporary directory goes away.
    fn drop(&mut self) {
        use std::io::{BufRead, BufReader, Write};
        let state = self.runtime.config().state_dir.clone();
        let Ok(entries) = std::fs::read_dir(&state) else {
            return;
        };
        for entry in entries.flatten() {
            let sock = entry.path().join("shim.sock");
            for req in [
                &b"{\"op\":\"kill\",\"signal\":9,\"all\":true}\n"[..],
                b"{\"op\":\"wait\"}\n",
            ] {
                if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) {
                    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                    let _ = s.write_all(req);
                    let _ = BufReader::new(s).read_line(&mut String::new());
                }
            }
        }
    }
}

pub async fn read_all(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}
