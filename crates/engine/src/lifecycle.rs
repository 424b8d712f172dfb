//! Starting, stopping, killing, pausing, renaming, updating and removing containers, and
//! following their exits (the monitor) to record exit codes and apply `AutoRemove`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_runtime::{ExitStatus, RuntimeError};
use tokio::sync::broadcast;

use crate::container::{Container, Status};
use crate::engine::{Engine, Entry};
use crate::error::{EngineError, Result};
use crate::events::Event;
use crate::model::UpdateRequest;
use crate::{names, signal, spec};

/// Parent of every container's cgroup.
pub const CGROUP_PARENT: &str = "berth";

/// How long a SIGKILLed container may take to be reported gone.
const KILL_GRACE: Duration = Duration::from_secs(30);

impl Engine {
    /// Saves a record after a state change, logging (not failing) on error: used after
    /// the fact, when the in-memory state already changed.
    pub(crate) fn persist(&self, c: &Container) {
        if let Err(e) = self.store.save_state(c) {
            tracing::error!(container = %c.id, error = %e, "persisting container state failed");
        }
    }

    /// Saves a record after a change of its configuration, durably; logs on error.
    pub(crate) fn persist_config(&self, c: &Container) {
        if let Err(e) = self.store.save(c) {
            tracing::error!(container = %c.id, error = %e, "persisting container config failed");
        }
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        {
            let mut c = entry.lock();
            c.manually_stopped = false;
        }
        self.start_locked(&entry).await
    }

    /// Starts with the operation lock held.
    pub(crate) async fn start_locked(self: &Arc<Self>, entry: &Arc<Entry>) -> Result<()> {
        let c = entry.snapshot();
        match c.state.status {
            Status::Running => {
                return Err(EngineError::NotModified("container already started".into()));
            }
            Status::Paused => {
                return Err(EngineError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ));
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container is marked for removal and cannot be started: {}",
                    c.id
                )));
            }
            _ => {}
        }
        let id = c.id.clone();
        let cid = id.clone();
        self.with_images(move |s| Ok(s.mount_snapshot(&cid)?))
            .await?;
        let config = self.net_setup(&c).await.and_then(|(net, mounts)| {
            let mut config = spec::container_config(&c, net, CGROUP_PARENT)?;
            config.mounts.extend(mounts);
            Ok(config)
        });
        let result = async {
            let config = config?;
            if c.has_been_started || matches!(c.state.status, Status::Restarting | Status::Exited) {
                let _ = self.runtime.delete(&id).await;
            }
            self.runtime.create(&config).await?;
            let pending: Vec<_> = std::mem::take(
                &mut *entry
                    .pending_attach
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            );
            for tx in pending {
                match self.runtime.attach(&id).await {
                    Ok(streams) => {
                        let _ = tx.send(streams);
                    }
                    Err(e) => tracing::warn!(container = %id, error = %e, "attach at start failed"),
                }
            }
            Ok::<u32, EngineError>(self.runtime.start(&id).await?)
        }
        .await;
        let pid = match result {
            Ok(pid) => pid,
            Err(e) => {
                let code = match &e {
                    EngineError::Runtime(RuntimeError::Create {
                        exec_not_found: true,
                        ..
                    }) => 127,
                    EngineError::Runtime(RuntimeError::Create { message, .. })
                        if message.contains("permission denied") =>
                    {
                        126
                    }
                    _ => 128,
                };
                let snapshot = {
                    let mut c = entry.lock();
                    c.state.error = e.message();
                    c.state.exit_code = code;
                    if c.state.status == Status::Restarting {
                        c.state.status = Status::Exited;
                    }
                    c.clone()
                };
                entry
                    .pending_attach
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                let _ = self.runtime.delete(&id).await;
                self.net_release(&id).await;
                self.persist(&snapshot);
                self.container_event(
                    &snapshot,
                    "die",
                    &[("exitCode", code.to_string())],
                    Some(code),
                );
                if snapshot.host_config.auto_remove {
                    // As dockerd does, a container that fails to start under `--rm` is removed
                    // (the CLI waits for condition=removed). The removal takes the operation
                    // lock this caller holds, so it runs once this start has returned.
                    let engine = self.clone();
                    tokio::spawn(async move { engine.auto_remove(&id).await });
                }
                return Err(e);
            }
        };
        let generation = entry.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let snapshot = {
            let mut c = entry.lock();
            c.state.status = Status::Running;
            c.state.pid = pid;
            c.state.exit_code = 0;
            c.state.error.clear();
            c.state.oom_killed = false;
            c.state.started_at = Some(chrono::Utc::now());
            c.has_been_started = true;
            c.clone()
        };
        self.persist(&snapshot);
        self.container_event(&snapshot, "start", &[], None);
        tracing::info!(container = %id, pid, "started");
        self.spawn_monitor(entry.clone(), generation);
        Ok(())
    }

    /// Removes a `--rm` container once it has exited or failed to start.
    pub(crate) async fn auto_remove(self: &Arc<Self>, id: &str) {
        if let Err(e) = self.remove(id, true).await {
            tracing::warn!(container = %id, error = %e, "auto-remove failed");
        }
    }

    /// Follows the current run of a container until it exits.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, entry: Arc<Entry>, generation: u64) {
        let engine = self.clone();
        tokio::spawn(async move { engine.monitor(entry, generation).await });
    }

    async fn monitor(self: Arc<Self>, entry: Arc<Entry>, generation: u64) {
        let id = entry.lock().id.clone();
        let status = match self.runtime.wait(&id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "waiting for the container failed");
                ExitStatus {
                    code: 255,
                    oom_killed: false,
                    finished_at: chrono::Utc::now(),
                }
            }
        };
        if entry.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let snapshot = {
            let mut c = entry.lock();
            if !matches!(c.state.status, Status::Running | Status::Paused) {
                return;
            }
            c.state.status = Status::Exited;
            c.state.pid = 0;
            c.state.exit_code = status.code;
            c.state.oom_killed = status.oom_killed;
            c.state.finished_at = Some(status.finished_at);
            c.clone()
        };
        // An `AutoRemove` record is removed right below; a crash before that finds it
        // running with an exited shim, which the next start reconciles the same way.
        if !snapshot.host_config.auto_remove {
            self.persist(&snapshot);
        }
        self.net_release(&id).await;
        tracing::info!(container = %id, code = status.code, "exited");
        if status.oom_killed {
            self.container_event(&snapshot, "oom", &[], None);
        }
        self.container_event(
            &snapshot,
            "die",
            &[("exitCode", status.code.to_string())],
            Some(status.code),
        );
        if snapshot.host_config.auto_remove {
            self.auto_remove(&id).await;
            return;
        }
        self.maybe_restart(entry, snapshot).await;
    }

    /// Waits until the container is no longer alive or `timeout` passes; true if it exited.
    async fn wait_exit(
        entry: &Entry,
        rx: &mut broadcast::Receiver<Arc<Event>>,
        timeout: Option<Duration>,
    ) -> bool {
        let id = entry.lock().id.clone();
        let wait = async {
            loop {
                if !entry.lock().state.status.is_alive() {
                    return;
                }
                match rx.recv().await {
                    Ok(ev) if ev.id == id && ev.action == "die" => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, wait).await.is_ok(),
            None => {
                wait.await;
                true
            }
        }
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop(
        self: &Arc<Self>,
        name: &str,
        signal: Option<i32>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        let c = entry.snapshot();
        if c.state.status == Status::Restarting {
            let c = {
                let mut g = entry.lock();
                g.manually_stopped = true;
                g.state.status = Status::Exited;
                g.clone()
            };
            self.persist(&c);
            return Ok(());
        }
        if !c.state.status.is_alive() {
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        self.stop_locked(&entry, signal, timeout).await?;
        self.container_event(&entry.snapshot(), "stop", &[], None);
        Ok(())
    }

    pub(crate) async fn stop_locked(
        &self,
        entry: &Arc<Entry>,
        signal: Option<i32>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = {
            let mut c = entry.lock();
            c.manually_stopped = true;
            c.clone()
        };
        self.persist(&c);
        let sig = signal.unwrap_or_else(|| spec::stop_signal(&c));
        let t = timeout.or(c.config.stop_timeout).unwrap_or(10);
        let mut rx = self.events.subscribe();
        if t != 0 {
            self.signal(&c, sig).await;
            let limit = (t > 0).then(|| Duration::from_secs(t as u64));
            if Self::wait_exit(entry, &mut rx, limit).await {
                return Ok(());
            }
        }
        self.signal(&c, signal::SIGKILL).await;
        if Self::wait_exit(entry, &mut rx, Some(KILL_GRACE)).await {
            Ok(())
        } else {
            Err(EngineError::Internal(format!(
                "container {} did not exit after SIGKILL",
                c.id
            )))
        }
    }

    /// Sends a signal (thawing a paused container so it can act on it) and records the event.
    async fn signal(&self, c: &Container, sig: i32) {
        if let Err(e) = self.runtime.kill(&c.id, sig).await {
            tracing::debug!(container = %c.id, error = %e, "signal failed");
        }
        if c.state.status == Status::Paused {
            let _ = self.runtime.resume(&c.id).await;
        }
        self.container_event(c, "kill", &[("signal", sig.to_string())], None);
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, name: &str, sig: i32) -> Result<()> {
        let entry = self.lookup(name)?;
        let c = {
            let mut c = entry.lock();
            if !c.state.status.is_alive() {
                return Err(EngineError::Conflict(format!(
                    "Cannot kill container: {name}: container {} is not running",
                    c.id
                )));
            }
            if sig == signal::SIGKILL || sig == spec::stop_signal(&c) {
                c.manually_stopped = true;
            }
            c.clone()
        };
        self.persist(&c);
        self.runtime.kill(&c.id, sig).await?;
        self.container_event(&c, "kill", &[("signal", sig.to_string())], None);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        signal: Option<i32>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        if entry.lock().state.status.is_alive() {
            self.stop_locked(&entry, signal, timeout).await?;
        }
        {
            let mut c = entry.lock();
            c.manually_stopped = false;
            if c.state.status == Status::Restarting {
                c.state.status = Status::Exited;
            }
        }
        self.start_locked(&entry).await?;
        self.container_event(&entry.snapshot(), "restart", &[], None);
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool) -> Result<()> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        let c = entry.snapshot();
        if c.state.status.is_alive() || c.state.status == Status::Restarting {
            if !force {
                let why = if c.state.status == Status::Paused {
                    "container is paused: unpause and then stop the container before attempting removal or force remove"
                } else {
                    "container is running: stop the container before removing or force remove"
                };
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": {why}",
                    c.name
                )));
            }
            entry.lock().manually_stopped = true;
            if c.state.status.is_alive() {
                let mut rx = self.events.subscribe();
                self.signal(&c, signal::SIGKILL).await;
                if !Self::wait_exit(&entry, &mut rx, Some(KILL_GRACE)).await {
                    return Err(EngineError::Internal(format!(
                        "could not kill running container {}, cannot remove",
                        c.id
                    )));
                }
            }
        }
        let c = {
            let mut c = entry.lock();
            c.state.status = Status::Removing;
            c.clone()
        };
        self.store.begin_remove(&c.id)?;
        {
            let mut reg = self.registry();
            reg.by_id.remove(&c.id);
            if reg.names.get(&c.name) == Some(&c.id) {
                reg.names.remove(&c.name);
            }
        }
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.container_id != c.id);
        let _ = self.runtime.delete(&c.id).await;
        self.net_forget(&c).await;
        self.container_event(&c, "destroy", &[], Some(c.state.exit_code));
        tracing::info!(container = %c.id, "removed");
        // The container is gone for every client; its files (the snapshot, whose unmount
        // syncs the upper filesystem, and the record's directory) go in the background.
        // A crash before they are gone leaves the trash directory, which the next start
        // removes as a leftover.
        let engine = self.clone();
        tokio::spawn(async move { engine.remove_files(&c.id).await });
        Ok(())
    }

    /// Deletes a removed container's snapshot and directory.
    pub(crate) async fn remove_files(&self, id: &str) {
        let cid = id.to_string();
        if let Err(e) = self
            .with_images(move |s| Ok(s.remove_snapshot(&cid)?))
            .await
        {
            tracing::warn!(container = %id, error = %e, "removing snapshot failed");
        }
        if let Err(e) = self.store.finish_remove(id) {
            tracing::warn!(container = %id, error = %e, "removing container directory failed");
        }
    }

    /// `POST /containers/{id}/wait`: subscribes now and returns a future of the exit code, so
    /// the caller can send response headers before the container exits.
    pub fn wait(
        &self,
        name: &str,
        condition: &str,
    ) -> Result<impl std::future::Future<Output = i32> + Send + 'static> {
        let entry = self.lookup(name)?;
        let mut rx = self.events.subscribe();
        let c = entry.snapshot();
        let (action, immediate) = match condition {
            "" | "not-running" => (
                "die",
                !(c.state.status.is_alive() || c.state.status == Status::Restarting),
            ),
            "next-exit" => ("die", false),
            "removed" => ("destroy", false),
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid condition: \"{other}\""
                )));
            }
        };
        let id = c.id.clone();
        let code = c.state.exit_code;
        Ok(async move {
            if immediate {
                return code;
            }
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.id == id && ev.action == action => {
                        return ev.exit_code.unwrap_or(0);
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return -1,
                }
            }
        })
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn pause(&self, name: &str, pause: bool) -> Result<()> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        let c = entry.snapshot();
        match (pause, c.state.status) {
            (_, s) if !s.is_alive() => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )));
            }
            (true, Status::Paused) => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )));
            }
            (false, Status::Running) => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not paused",
                    c.id
                )));
            }
            _ => {}
        }
        if pause {
            self.runtime.pause(&c.id).await?;
        } else {
            self.runtime.resume(&c.id).await?;
        }
        let c = {
            let mut c = entry.lock();
            c.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
            c.clone()
        };
        self.persist(&c);
        self.container_event(&c, if pause { "pause" } else { "unpause" }, &[], None);
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let entry = self.lookup(name)?;
        let new_name = names::validate(new_name)?;
        let c = {
            let mut reg = self.registry();
            let mut c = entry.lock();
            if c.name == new_name {
                return Err(EngineError::InvalidArgument(
                    "Renaming a container with the same name as its current name".into(),
                ));
            }
            if let Some(other) = reg.names.get(&new_name) {
                return Err(EngineError::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            reg.names.remove(&c.name);
            reg.names.insert(new_name.clone(), c.id.clone());
            let old = std::mem::replace(&mut c.name, new_name);
            (c.clone(), old)
        };
        self.persist_config(&c.0);
        self.container_event(&c.0, "rename", &[("oldName", format!("/{}", c.1))], None);
        Ok(())
    }

    /// `POST /containers/{id}/update`.
    pub async fn update(&self, name: &str, req: UpdateRequest) -> Result<Vec<String>> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        let mut hc = entry.lock().host_config.clone();
        let set = |v: Option<i64>, f: &mut i64| {
            if let Some(v) = v {
                *f = v;
            }
        };
        set(req.memory, &mut hc.memory);
        set(req.memory_swap, &mut hc.memory_swap);
        set(req.nano_cpus, &mut hc.nano_cpus);
        set(req.cpu_shares, &mut hc.cpu_shares);
        set(req.cpu_period, &mut hc.cpu_period);
        set(req.cpu_quota, &mut hc.cpu_quota);
        if let Some(v) = req.cpuset_cpus {
            hc.cpuset_cpus = v;
        }
        if let Some(v) = req.cpuset_mems {
            hc.cpuset_mems = v;
        }
        if req.pids_limit.is_some() {
            hc.pids_limit = req.pids_limit;
        }
        if let Some(p) = req.restart_policy {
            hc.restart_policy = p;
        }
        if hc.memory > 0 && hc.memory_swap > 0 && hc.memory_swap < hc.memory {
            return Err(EngineError::InvalidArgument(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        crate::create::validate_host_config(&hc)?;
        let c = entry.snapshot();
        if c.state.status.is_alive() {
            self.runtime.update(&c.id, &spec::resources(&hc)).await?;
        }
        let c = {
            let mut c = entry.lock();
            c.host_config = hc;
            c.clone()
        };
        self.persist_config(&c);
        self.container_event(&c, "update", &[], None);
        Ok(Vec::new())
    }
}
