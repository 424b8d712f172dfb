//! berth-runtime: the containerd role. Runs containers described by an engine-neutral
//! [`ContainerConfig`] through youki's `libcontainer` (built in) or an external OCI runtime
//! binary (runc, crun), each under its own monitor process (the shim) so that containers
//! outlive the daemon.
//!
//! Contract with `berth-engine` (the engine codes against exactly these items):
//! - [`Runtime::create`] spawns the shim (a re-exec of the `berth` binary as
//!   `berth shim ...`, detached from the daemon with `setsid`), which builds the OCI spec,
//!   creates the container (process stopped before `exec`) and opens its I/O; returns once the
//!   container is created.
//! - [`Runtime::attach`] connects to the shim's I/O; every attached client receives output
//!   produced after [`Runtime::start`] if it attached before start, so `docker run` sees all
//!   output. Output is also written by the shim to `ContainerConfig::log_path` in Docker's
//!   json-file format (one JSON object per line: `{"log":"..","stream":"stdout","time":".."}`).
//! - [`Runtime::start`] lets the process run and returns its host pid.
//! - [`Runtime::wait`] resolves when the container has exited, with its [`ExitStatus`] (also
//!   persisted by the shim, so it is known after a daemon restart).
//! - Everything else addresses a container by id; state lives under `RuntimeConfig::state_dir`.
//!
//! Kernel work (fork, setns, pivot_root) happens only in the single-threaded shim, never in the
//! daemon's multi-threaded process.

pub mod cgroups;
mod client;
pub mod executor;
pub mod exit;
pub mod layout;
pub mod protocol;
mod runtime;
mod shim;
pub mod spec;
mod sys;

pub use runtime::Runtime;
pub use sys::trim_resident;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which OCI runtime executes a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum RuntimeKind {
    /// youki's libcontainer, linked into the `berth` binary.
    Builtin,
    /// An OCI runtime command line (`runc`, `crun`): `name` as users write it, `path` resolved.
    Oci {
        /// The name users write (`runc`).
        name: String,
        /// The resolved executable.
        path: PathBuf,
    },
}

/// Configuration of the runtime as a whole.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for per-container runtime state (bundles, shim sockets, exit files).
    pub state_dir: PathBuf,
    /// The `berth` executable re-executed as the shim (`std::env::current_exe()` in the daemon).
    pub shim_binary: PathBuf,
    /// Runtime used when a container does not name one.
    pub default_runtime: RuntimeKind,
}

/// The network namespace a container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "path")]
pub enum NetworkNamespace {
    /// A fresh namespace with only loopback, brought up.
    New,
    /// The host's namespace (`--network host`).
    Host,
    /// An existing namespace: a bind-mounted netns file or `/proc/<pid>/ns/net`.
    Path(PathBuf),
}

/// A mount as the OCI runtime spec describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// `bind`, `tmpfs`, ...
    pub kind: String,
    /// Host path (bind) or a source name (`tmpfs`, `proc`).
    pub source: PathBuf,
    /// Mount options (`ro`, `rbind`, `mode=755`, ...).
    pub options: Vec<String>,
}

/// cgroup limits; `None` leaves the kernel default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<i64>,
    /// Bytes of memory + swap; `-1` unlimited.
    pub memory_swap: Option<i64>,
    /// Billionths of a CPU (`--cpus 1.5` = 1_500_000_000).
    pub nano_cpus: Option<i64>,
    /// Relative weight (`--cpu-shares`).
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per `cpu_period`.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// `0-1`, `0,1`.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes, in the same syntax as `cpuset_cpus`.
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks; `-1` or `0` unlimited.
    pub pids_limit: Option<i64>,
}

/// An rlimit (`--ulimit nofile=1024:2048`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Docker's short name: `nofile`, `nproc`, `core`, ...
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit (clamped to the inherited hard limit).
    pub hard: u64,
}

/// How the process runs as a user: numeric ids, already resolved against the rootfs'
/// /etc/passwd and /etc/group by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
}

/// Everything needed to run one container, independent of Docker's or Kubernetes' API types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// 64-hex container id.
    pub id: String,
    /// Mounted root filesystem (the overlay's merged dir).
    pub rootfs: PathBuf,
    /// Mount the root filesystem read-only.
    pub readonly_rootfs: bool,
    /// argv; the engine has already combined entrypoint and cmd.
    pub args: Vec<String>,
    /// `KEY=value`, PATH included.
    pub env: Vec<String>,
    /// Absolute; created if missing.
    pub cwd: PathBuf,
    /// The user the process runs as.
    pub user: User,
    /// Hostname in the container's UTS namespace.
    pub hostname: String,
    /// Allocate a PTY (`-t`); stdout and stderr are then one stream.
    pub tty: bool,
    /// Keep stdin open for attach (`-i`).
    pub open_stdin: bool,
    /// Close stdin after the first attached client detaches (`docker run -i` semantics).
    pub stdin_once: bool,
    /// Mounts added after the defaults (`/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`,
    /// `/sys`, cgroup).
    pub mounts: Vec<Mount>,
    /// The network namespace the container joins.
    pub network: NetworkNamespace,
    /// Capabilities added to / dropped from Docker's default set, as `CAP_NET_ADMIN` or
    /// `NET_ADMIN` or `ALL`.
    pub cap_add: Vec<String>,
    /// Capabilities removed from Docker's default set.
    pub cap_drop: Vec<String>,
    /// All capabilities, all devices, no seccomp, no masked paths.
    pub privileged: bool,
    /// Docker's default seccomp profile unless `false` (`--security-opt seccomp=unconfined`).
    pub seccomp: bool,
    /// Set `no_new_privs` (setuid binaries gain nothing).
    pub no_new_privileges: bool,
    /// cgroup limits.
    pub resources: Resources,
    /// rlimits of the process.
    pub ulimits: Vec<Ulimit>,
    /// Signal sent by `stop` (`SIGTERM` unless the image says otherwise).
    pub stop_signal: i32,
    /// Where the shim writes the json-file log.
    pub log_path: PathBuf,
    /// cgroup path relative to the controllers' roots, for example `berth/<id>`.
    pub cgroup_path: String,
    /// Runtime for this container; `None` is `RuntimeConfig::default_runtime`.
    pub runtime: Option<RuntimeKind>,
    /// OCI annotations / labels passed through.
    pub annotations: BTreeMap<String, String>,
}

/// Configuration of a process started in a running container (`docker exec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecConfig {
    /// Exec id (64 hex).
    pub id: String,
    /// argv of the process.
    pub args: Vec<String>,
    /// `KEY=value` added to (or replacing) the container's environment.
    pub env: Vec<String>,
    /// Working directory; the container's when `None`.
    pub cwd: Option<PathBuf>,
    /// User; the container's when `None`.
    pub user: Option<User>,
    /// Allocate a PTY.
    pub tty: bool,
    /// Keep stdin open for attached clients.
    pub open_stdin: bool,
    /// Every capability.
    pub privileged: bool,
}

/// How a container or exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code, or 128 + signal number when killed by a signal.
    pub code: i32,
    /// The memory cgroup's OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// When the shim saw the exit.
    pub finished_at: chrono::DateTime<chrono::Utc>,
}

/// What the runtime knows of a container right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created, process not yet started.
    Created {
        /// Host pid of the init process.
        pid: u32,
    },
    /// The process runs.
    Running {
        /// Host pid of the init process.
        pid: u32,
    },
    /// Every process is frozen.
    Paused {
        /// Host pid of the init process.
        pid: u32,
    },
    /// The process has exited.
    Exited(ExitStatus),
    /// No shim and no exit record (for example the machine rebooted).
    Unknown,
}

/// Resource usage from the container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Total CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Host CPU time in nanoseconds (from /proc/stat), for percentage computation.
    pub system_cpu_usage_ns: u64,
    /// CPUs available to the host.
    pub online_cpus: u32,
    /// Bytes used, page cache included.
    pub memory_usage: u64,
    /// Memory limit in bytes (the host's memory when unlimited).
    pub memory_limit: u64,
    /// Cache or inactive file bytes, subtracted from usage by the docker CLI.
    pub memory_cache: u64,
    /// Tasks in the cgroup.
    pub pids_current: u64,
    /// Task limit; 0 when unlimited.
    pub pids_limit: u64,
}

/// Byte streams of an attached client.
pub struct AttachStreams {
    /// Writes go to the process' stdin (if `open_stdin`).
    pub stdin: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    /// stdout, or the PTY's output when `tty`.
    pub stdout: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    /// stderr; `None` when `tty`.
    pub stderr: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
}

/// Errors of runtime operations.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no such container: {0}")]
    /// No such container (or exec).
    NotFound(String),
    #[error("container {0} is not running")]
    /// The container is not running.
    NotRunning(String),
    /// The OCI runtime refused to create or start the container; the message is what the
    /// user sees (for example `exec: "nope": executable file not found in $PATH`).
    #[error("OCI runtime create failed: {message}")]
    Create {
        /// What users see.
        message: String,
        /// The executable does not exist.
        exec_not_found: bool,
    },
    #[error("shim of container {id} failed")]
    /// The shim could not be spawned or talked to.
    Shim {
        /// The container.
        id: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    /// Anything else.
    Other(String),
    #[error(transparent)]
    /// A file-system error on the state directory.
    Io(#[from] std::io::Error),
}

/// Entry point of the shim process: `berth shim <args...>` calls this and exits with its
/// result. Single-threaded: no tokio runtime may be running in this process.
pub fn shim_main(args: &[String]) -> i32 {
    shim::main(args)
}
