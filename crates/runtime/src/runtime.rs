//! [`Runtime`]: the daemon's handle. Creating a container spawns its shim; everything else
//! is a request on the shim's socket, or, once the shim has gone, the persisted exit record.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::cgroups::{self, Hierarchies};
use crate::client;
use crate::layout::{self, Layout};
use crate::protocol::{Reply, Request, StreamKind};
use crate::{
    AttachStreams, ContainerConfig, ContainerState, ExecConfig, ExitStatus, Resources,
    RuntimeConfig, RuntimeError, Stats,
};

/// Handle on the runtime; cheap to clone.
#[derive(Debug, Clone)]
pub struct Runtime {
    config: RuntimeConfig,
    standby: Arc<Standby>,
}

/// A shim started ahead of the next container (`berth shim --standby`), so that creating a
/// container does not wait for the executable to load and initialise (about 1.5 ms here).
/// It exits when the daemon closes its stdin without handing it an id.
#[derive(Debug, Default)]
struct Standby {
    ready: Mutex<Option<Child>>,
    refilling: AtomicBool,
}

fn shim_error(id: &str, source: std::io::Error) -> RuntimeError {
    RuntimeError::Shim {
        id: id.to_string(),
        source,
    }
}

fn unexpected(id: &str, reply: Option<Reply>) -> RuntimeError {
    match reply {
        Some(Reply::Error { kind, message }) => Reply::into_error(kind, message, id),
        Some(other) => RuntimeError::Other(format!("unexpected shim reply {other:?}")),
        None => RuntimeError::NotRunning(id.to_string()),
    }
}

impl Runtime {
    /// Opens (creating if needed) the state directory; state a removal left in the trash
    /// (the daemon stopped before deleting it) is deleted now.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(&config.state_dir)?;
        layout::remove_tree(&config.state_dir.join(layout::TRASH))?;
        Ok(Self {
            config,
            standby: Arc::default(),
        })
    }

    fn shim_command(&self) -> Command {
        let mut cmd = Command::new(&self.config.shim_binary);
        cmd.arg("shim")
            .arg("--state-dir")
            .arg(&self.config.state_dir);
        cmd
    }

    /// Starts a standby shim shortly, unless one is ready or on its way. The delay keeps
    /// its loading off the start that just took the last one.
    fn refill_standby(&self) {
        if self.standby.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let spawned = this
                .shim_command()
                .arg("--standby")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn();
            match spawned {
                Ok(child) => {
                    let mut ready = this.standby.ready.lock().unwrap_or_else(|p| p.into_inner());
                    if ready.is_none() {
                        *ready = Some(child);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot start a standby shim"),
            }
            this.standby.refilling.store(false, Ordering::Release);
        });
    }

    /// The shim for container `id`: the standby one, told its id (it opens its log
    /// itself), or a new one logging to the container's shim log.
    async fn shim_for(&self, id: &str, layout: &Layout) -> std::io::Result<Child> {
        let standby = self
            .standby
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.refill_standby();
        if let Some(mut child) = standby
            && let Some(mut stdin) = child.stdin.take()
            && stdin.write_all(format!("{id}\n").as_bytes()).await.is_ok()
        {
            return Ok(child);
        }
        let log = std::fs::File::create(layout.shim_log())?;
        self.shim_command()
            .arg("--id")
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    fn layout(&self, id: &str) -> Result<Layout, RuntimeError> {
        if !layout::valid_id(id) {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        Ok(Layout::new(&self.config.state_dir, id))
    }

    /// Sends `req` to the shim of `id`. When the shim is gone: `NotRunning` if the container
    /// has an exit record, `NotFound` otherwise.
    async fn call(&self, id: &str, req: &Request) -> Result<Reply, RuntimeError> {
        let layout = self.layout(id)?;
        match client::call(&layout.socket(), req).await {
            Ok(Some(Reply::Error { kind, message })) => Err(Reply::into_error(kind, message, id)),
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(RuntimeError::NotRunning(id.to_string())),
            Err(_) if layout.config().exists() => Err(RuntimeError::NotRunning(id.to_string())),
            Err(_) => Err(RuntimeError::NotFound(id.to_string())),
        }
    }

    fn read_config(&self, id: &str) -> Result<ContainerConfig, RuntimeError> {
        let path = self.layout(id)?.config();
        let data = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::NotFound(id.to_string()),
            _ => RuntimeError::Io(e),
        })?;
        serde_json::from_slice(&data)
            .map_err(|e| RuntimeError::Other(format!("{}: {e}", path.display())))
    }

    /// Spawns the shim and creates the container; the process waits for [`Runtime::start`].
    pub async fn create(&self, config: &ContainerConfig) -> Result<(), RuntimeError> {
        let id = config.id.as_str();
        let layout = self.layout(id)?;
        if layout.dir().exists() {
            // A shim that still answers for a live container owns the id; one that only
            // lingers for its last clients after the exit does not.
            let live = matches!(
                client::call(&layout.socket(), &Request::State).await,
                Ok(Some(Reply::State { state })) if !matches!(state, ContainerState::Exited(_))
            );
            if live {
                return Err(RuntimeError::Other(format!(
                    "container {id} already exists"
                )));
            }
            std::fs::remove_dir_all(layout.dir())?;
        }
        std::fs::create_dir_all(layout.dir())?;
        let mut config = config.clone();
        if config.runtime.is_none() {
            config.runtime = Some(self.config.default_runtime.clone());
        }
        let data = serde_json::to_vec(&config).map_err(|e| RuntimeError::Other(e.to_string()))?;
        crate::exit::write_atomic(&layout.config(), &data)?;
        let mut child = self
            .shim_for(id, &layout)
            .await
            .map_err(|e| shim_error(id, e))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .await
                .map_err(|e| shim_error(id, e))?;
        }
        // The shim keeps running; tokio reaps it in the background when it exits.
        drop(child);
        let result = match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Pid { pid }) => {
                tracing::debug!(container = %id, pid, "container created");
                return Ok(());
            }
            Ok(Reply::Error { kind, message }) => Reply::into_error(kind, message, id),
            _ => {
                let diag = std::fs::read_to_string(layout.shim_log()).unwrap_or_default();
                shim_error(
                    id,
                    std::io::Error::other(format!("shim exited before reporting: {}", diag.trim())),
                )
            }
        };
        let _ = std::fs::remove_dir_all(layout.dir());
        Err(result)
    }

    /// Connects a client to the container's stdio.
    pub async fn attach(&self, id: &str) -> Result<AttachStreams, RuntimeError> {
        self.attach_to(id, None).await
    }

    async fn attach_to(
        &self,
        id: &str,
        exec_id: Option<&str>,
    ) -> Result<AttachStreams, RuntimeError> {
        let socket = self.layout(id)?.socket();
        let open = |stream| client::attach(&socket, exec_id, stream);
        // One round trip for the three streams (a container's start waits for them).
        let (stdout, stderr, stdin) = tokio::join!(
            open(StreamKind::Stdout),
            open(StreamKind::Stderr),
            open(StreamKind::Stdin)
        );
        let stdout = match stdout {
            Ok(Ok(a)) => a,
            Ok(Err(reply)) => return Err(unexpected(id, reply)),
            Err(_) => return Err(self.gone(id)),
        };
        let stderr = match stderr {
            Ok(Ok(a)) => Some(a),
            _ => None,
        };
        let stdin = match stdin {
            Ok(Ok(a)) => Some(a),
            _ => None,
        };
        Ok(AttachStreams {
            stdin: stdin
                .map(|a| Box::new(a.writer) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>),
            stdout: Box::new(stdout.reader),
            stderr: stderr
                .map(|a| Box::new(a.reader) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        })
    }

    fn gone(&self, id: &str) -> RuntimeError {
        match self.layout(id) {
            Ok(l) if l.config().exists() => RuntimeError::NotRunning(id.to_string()),
            _ => RuntimeError::NotFound(id.to_string()),
        }
    }

    /// Starts the created container's process; returns its host pid.
    pub async fn start(&self, id: &str) -> Result<u32, RuntimeError> {
        match self.call(id, &Request::Start).await? {
            Reply::Pid { pid } => Ok(pid),
            other => Err(unexpected(id, Some(other))),
        }
    }

    fn recorded_exit(&self, id: &str) -> Result<Option<ExitStatus>, RuntimeError> {
        Ok(crate::exit::read(&self.layout(id)?.exit())?)
    }

    /// Resolves when the container has exited.
    pub async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        let layout = self.layout(id)?;
        match client::call(&layout.socket(), &Request::Wait).await {
            Ok(Some(Reply::Exit { exit })) => Ok(exit),
            Ok(Some(other)) => Err(unexpected(id, Some(other))),
            // The shim is gone (or went away while we waited): it wrote the record first.
            Ok(None) | Err(_) => self.recorded_exit(id)?.ok_or_else(|| self.gone(id)),
        }
    }

    /// Current state, from the shim or its persisted exit record.
    pub async fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let layout = self.layout(id)?;
        match client::call(&layout.socket(), &Request::State).await {
            Ok(Some(Reply::State { state })) => Ok(state),
            Ok(Some(other)) => Err(unexpected(id, Some(other))),
            Ok(None) | Err(_) => match self.recorded_exit(id)? {
                Some(exit) => Ok(ContainerState::Exited(exit)),
                None if layout.config().exists() => Ok(ContainerState::Unknown),
                None => Err(RuntimeError::NotFound(id.to_string())),
            },
        }
    }

    /// Sends a signal to the container's init process.
    pub async fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        self.call(id, &Request::Kill { signal, all: false })
            .await
            .map(|_| ())
    }

    /// Freezes every process of the container.
    pub async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(id, &Request::Pause).await.map(|_| ())
    }

    /// Thaws a paused container.
    pub async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(id, &Request::Resume).await.map(|_| ())
    }

    async fn running_cgroup(&self, id: &str) -> Result<String, RuntimeError> {
        match self.state(id).await? {
            ContainerState::Running { .. }
            | ContainerState::Paused { .. }
            | ContainerState::Created { .. } => Ok(self.read_config(id)?.cgroup_path),
            _ => Err(RuntimeError::NotRunning(id.to_string())),
        }
    }

    /// Changes cgroup limits of a running container.
    pub async fn update(&self, id: &str, resources: &Resources) -> Result<(), RuntimeError> {
        let cgroup = self.running_cgroup(id).await?;
        let resources = resources.clone();
        blocking(move || {
            let h = Hierarchies::probe()?;
            cgroups::apply_update(&h, &cgroup, &resources)
        })
        .await
    }

    /// Reads cgroup statistics.
    pub async fn stats(&self, id: &str) -> Result<Stats, RuntimeError> {
        let cgroup = self.running_cgroup(id).await?;
        blocking(move || cgroups::read_stats(&Hierarchies::probe()?, &cgroup)).await
    }

    /// Host pids of every process in the container (for `top`).
    pub async fn processes(&self, id: &str) -> Result<Vec<u32>, RuntimeError> {
        let cgroup = self.running_cgroup(id).await?;
        blocking(move || cgroups::processes(&Hierarchies::probe()?, &cgroup)).await
    }

    /// Resizes the PTY of the container (`exec_id: None`) or of one exec.
    pub async fn resize(
        &self,
        id: &str,
        exec_id: Option<&str>,
        rows: u16,
        cols: u16,
    ) -> Result<(), RuntimeError> {
        let req = Request::Resize {
            exec_id: exec_id.map(str::to_string),
            rows,
            cols,
        };
        self.call(id, &req).await.map(|_| ())
    }

    /// Prepares an exec in a running container (not started yet).
    pub async fn exec_create(&self, id: &str, exec: &ExecConfig) -> Result<(), RuntimeError> {
        let req = Request::ExecCreate { exec: exec.clone() };
        self.call(id, &req).await.map(|_| ())
    }

    /// Connects to an exec's stdio (before or after start, as for containers).
    pub async fn exec_attach(
        &self,
        id: &str,
        exec_id: &str,
    ) -> Result<AttachStreams, RuntimeError> {
        self.attach_to(id, Some(exec_id)).await
    }

    /// Starts a prepared exec; returns its host pid.
    pub async fn exec_start(&self, id: &str, exec_id: &str) -> Result<u32, RuntimeError> {
        let req = Request::ExecStart {
            exec_id: exec_id.to_string(),
        };
        match self.call(id, &req).await? {
            Reply::Pid { pid } => Ok(pid),
            other => Err(unexpected(id, Some(other))),
        }
    }

    /// Resolves when the exec has exited.
    pub async fn exec_wait(&self, id: &str, exec_id: &str) -> Result<ExitStatus, RuntimeError> {
        let req = Request::ExecWait {
            exec_id: exec_id.to_string(),
        };
        match self.call(id, &req).await? {
            Reply::Exit { exit } => Ok(exit),
            other => Err(unexpected(id, Some(other))),
        }
    }

    /// Removes the runtime state of an exited container (the shim has gone).
    pub async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        let layout = self.layout(id)?;
        if !layout.dir().exists() {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        // The shim writes the exit record once the container has ended: then there is no
        // need to ask a shim that may be closing down (its answer waits for that).
        if self.recorded_exit(id)?.is_none() {
            match self.state(id).await? {
                ContainerState::Exited(_) | ContainerState::Unknown => {}
                _ => {
                    return Err(RuntimeError::Other(format!(
                        "container {id} is still running; kill it first"
                    )));
                }
            }
        }
        let dir = layout.dir().to_owned();
        let trash = self.config.state_dir.join(layout::TRASH);
        let target = trash.join(id);
        // Renamed away at once, deleted in the background: deleting a directory tree frees
        // its blocks, which a filesystem mounted with `discard` trims synchronously, 2-5 ms
        // here on the path of every `docker run --rm`.
        let moved = blocking(move || {
            layout::remove_tree(&target)?;
            std::fs::create_dir_all(&trash)?;
            std::fs::rename(&dir, &target).map(|()| target)
        })
        .await;
        match moved {
            Ok(target) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = std::fs::remove_dir_all(&target) {
                        tracing::warn!(path = %target.display(), error = %e, "removing runtime state failed");
                    }
                });
                Ok(())
            }
            Err(_) => {
                let dir = layout.dir().to_owned();
                blocking(move || std::fs::remove_dir_all(&dir)).await
            }
        }
    }

    /// Ids of containers with runtime state (used by the engine after a restart).
    pub async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let dir = self.config.state_dir.clone();
        blocking(move || list_dir(&dir)).await
    }
}

fn list_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if layout::valid_id(&name) && entry.path().join(layout::CONFIG).exists() {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, RuntimeError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(RuntimeError::Other(e.to_string())),
        Err(e) => Err(RuntimeError::Other(format!("blocking task failed: {e}"))),
    }
}
