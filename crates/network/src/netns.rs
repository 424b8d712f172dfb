//! Network namespaces: a dedicated thread that lives in the host network namespace and runs
//! every kernel request (so `setns` never touches a tokio worker), and the bind-mounted
//! sandbox namespaces under the netns directory.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use tracing::debug;

use crate::netlink::{Netlink, NetlinkError};

/// Failure of a namespace operation.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A namespace file could not be opened or created.
    #[error("namespace file {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A namespace syscall failed.
    #[error("{op} for {path}")]
    Sys {
        /// What was tried.
        op: &'static str,
        /// The namespace concerned.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Configuring the namespace through netlink failed.
    #[error("netlink in namespace {path}")]
    Netlink {
        /// The namespace concerned.
        path: PathBuf,
        /// The failure.
        #[source]
        source: NetlinkError,
    },
    /// The namespace thread has gone away.
    #[error("network namespace thread stopped")]
    Stopped,
}

type Job = Box<dyn FnOnce(&Host) + Send>;

/// What a job on the namespace thread can use: the host namespace and a netlink socket in it.
pub struct Host {
    /// The host network namespace, to return to after visiting a sandbox.
    pub ns: File,
    /// A netlink socket in the host namespace.
    pub netlink: Netlink,
}

/// The handle of the namespace thread.
pub struct NsThread {
    tx: mpsc::Sender<Job>,
}

impl NsThread {
    /// Starts the thread; with `host_netns`, it first enters that namespace (tests use a
    /// throw-away namespace this way), otherwise it stays in the process's namespace.
    pub fn spawn(host_netns: Option<PathBuf>) -> Result<Self, NetnsError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("berth-netns".into())
            .spawn(move || {
                let host = match enter_host(host_netns) {
                    Ok(h) => {
                        let _ = ready_tx.send(Ok(()));
                        h
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(&host);
                }
            })
            .map_err(|source| NetnsError::File {
                path: PathBuf::from("thread"),
                source,
            })?;
        ready_rx.recv().map_err(|_| NetnsError::Stopped)??;
        Ok(NsThread { tx })
    }

    /// Queues `f` on the namespace thread without waiting.
    pub fn submit(&self, f: impl FnOnce(&Host) + Send + 'static) -> Result<(), NetnsError> {
        self.tx.send(Box::new(f)).map_err(|_| NetnsError::Stopped)
    }

    /// Runs `f` on the namespace thread and waits for its result.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send + 'static,
        F: FnOnce(&Host) -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Box::new(move |h| {
                let _ = tx.send(f(h));
            }))
            .map_err(|_| NetnsError::Stopped)?;
        rx.recv().map_err(|_| NetnsError::Stopped)
    }
}

fn enter_host(host_netns: Option<PathBuf>) -> Result<Host, NetnsError> {
    if let Some(path) = host_netns {
        let f = open(&path)?;
        setns(f.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Sys {
            op: "setns",
            path,
            source,
        })?;
    }
    let self_ns = PathBuf::from("/proc/thread-self/ns/net");
    let ns = open(&self_ns)?;
    let netlink = Netlink::open().map_err(|source| NetnsError::Netlink {
        path: self_ns,
        source,
    })?;
    Ok(Host { ns, netlink })
}

fn open(path: &Path) -> Result<File, NetnsError> {
    File::open(path).map_err(|source| NetnsError::File {
        path: path.to_owned(),
        source,
    })
}

/// Runs `f` inside the namespace at `path` with a netlink socket opened there, then returns
/// the thread to the host namespace. Only call on the namespace thread.
pub fn within<T>(
    host: &Host,
    path: &Path,
    f: impl FnOnce(&Netlink) -> Result<T, NetlinkError>,
) -> Result<T, NetnsError> {
    let target = open(path)?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Sys {
        op: "setns",
        path: path.to_owned(),
        source,
    })?;
    let result = Netlink::open().and_then(|nl| f(&nl));
    setns(host.ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Sys {
        op: "setns back to host",
        path: path.to_owned(),
        source,
    })?;
    result.map_err(|source| NetnsError::Netlink {
        path: path.to_owned(),
        source,
    })
}

/// Creates a new network namespace bind-mounted at `path` with `lo` up. Only call on the
/// namespace thread.
pub fn create(host: &Host, path: &Path) -> Result<(), NetnsError> {
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| NetnsError::File {
            path: path.to_owned(),
            source,
        })?;
    let sys = |op, source| NetnsError::Sys {
        op,
        path: path.to_owned(),
        source,
    };
    let made = (|| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| sys("unshare", e))?;
        let bound = mount(
            Some("/proc/thread-self/ns/net"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| sys("bind mount", e));
        let lo = Netlink::open().and_then(|nl| nl.set_up(1));
        setns(host.ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| sys("setns back", e))?;
        bound?;
        lo.map_err(|source| NetnsError::Netlink {
            path: path.to_owned(),
            source,
        })
    })();
    if made.is_err() {
        let _ = umount2(path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(path);
    }
    debug!(?path, ok = made.is_ok(), "created network namespace");
    made
}

/// Unmounts and removes the namespace at `path`; a missing one is not an error.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(source) => {
            return Err(NetnsError::Sys {
                op: "unmount",
                path: path.to_owned(),
                source,
            });
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `NSFS_MAGIC` of statfs(2): the file is a bind-mounted namespace.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Makes `path` a persistent network namespace (bind-mounted, `lo` up) unless it already is
/// one: how a daemon gets a private namespace to manage that survives its restarts.
pub fn ensure_persistent(path: &Path) -> Result<(), NetnsError> {
    let is_ns = nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 == NSFS_MAGIC)
        .unwrap_or(false);
    if is_ns {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    let p = path.to_owned();
    // A throw-away thread unshares so no other thread of the caller changes namespace.
    thread::spawn(move || {
        let self_ns = PathBuf::from("/proc/thread-self/ns/net");
        let host = Host {
            ns: open(&self_ns)?,
            netlink: Netlink::open().map_err(|source| NetnsError::Netlink {
                path: self_ns,
                source,
            })?,
        };
        create(&host, &p)
    })
    .join()
    .map_err(|_| NetnsError::Stopped)?
}
