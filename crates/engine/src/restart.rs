//! Restart policies (`no`, `on-failure[:N]`, `always`, `unless-stopped`) with Docker's
//! back-off, and the daemon start-up: reloading records, reconciling them with the runtime,
//! cleaning up interrupted creates and removals, and starting `always` containers.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_runtime::ContainerState;

use crate::container::{Container, Status};
use crate::engine::{Engine, Entry};
use crate::error::Result;

/// First back-off delay (Docker's restart manager).
const BACKOFF_START_MS: u64 = 100;
/// Longest back-off delay.
const BACKOFF_MAX_MS: u64 = 60_000;
/// A run at least this long resets the back-off.
const RESET_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// How long a killed init that never started may take to be reported gone.
const KILLED_GONE: Duration = Duration::from_secs(10);

/// Whether the policy restarts a container that exited with `code`.
pub fn should_restart(c: &Container, code: i32) -> bool {
    if c.manually_stopped {
        return false;
    }
    let p = &c.host_config.restart_policy;
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0
                && (p.maximum_retry_count == 0
                    || i64::from(c.restart_count) < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// Next back-off delay from the previous one and how long the container ran.
pub fn next_backoff(previous_ms: u64, ran: chrono::TimeDelta) -> u64 {
    let prev = if ran >= RESET_AFTER { 0 } else { previous_ms };
    if prev == 0 {
        BACKOFF_START_MS
    } else {
        (prev * 2).min(BACKOFF_MAX_MS)
    }
}

impl Engine {
    /// After an exit: schedules a restart if the policy asks for one.
    pub(crate) async fn maybe_restart(self: &Arc<Self>, entry: Arc<Entry>, c: Container) {
        if !should_restart(&c, c.state.exit_code) {
            return;
        }
        let ran = match (c.state.started_at, c.state.finished_at) {
            (Some(s), Some(f)) => f.signed_duration_since(s),
            _ => chrono::TimeDelta::zero(),
        };
        let delay = next_backoff(entry.backoff_ms.load(Ordering::SeqCst), ran);
        entry.backoff_ms.store(delay, Ordering::SeqCst);
        let snapshot = {
            let mut g = entry.lock();
            g.state.status = Status::Restarting;
            g.restart_count += 1;
            g.clone()
        };
        self.persist(&snapshot);
        tracing::info!(container = %c.id, delay_ms = delay, "restarting per policy");
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let _op = entry.op.lock().await;
            let still = {
                let g = entry.lock();
                g.state.status == Status::Restarting && !g.manually_stopped
            };
            if !still {
                return;
            }
            if let Err(e) = engine.start_locked(&entry).await {
                tracing::warn!(container = %c.id, error = %e, "restart failed");
            }
        });
    }

    /// Reloads containers after a daemon start and reconciles them with the runtime.
    pub async fn restore(self: &Arc<Self>) -> Result<()> {
        let loaded = self.store.load()?;
        for id in &loaded.leftovers {
            tracing::info!(container = %id, "cleaning up an interrupted create or removal");
            self.discard(id).await;
        }
        let known: HashSet<String> = loaded.containers.iter().map(|c| c.id.clone()).collect();
        if let Ok(ids) = self.runtime.list().await {
            for id in ids.iter().filter(|id| !known.contains(*id)) {
                tracing::info!(container = %id, "removing runtime state without a record");
                self.discard(id).await;
            }
        }
        let mut entries = Vec::new();
        {
            let mut reg = self.registry();
            for c in loaded.containers {
                reg.names.insert(c.name.clone(), c.id.clone());
                let e = Entry::new(c.clone());
                reg.by_id.insert(c.id.clone(), e.clone());
                entries.push(e);
            }
        }
        for entry in entries {
            self.reconcile(entry).await;
        }
        Ok(())
    }

    async fn discard(&self, id: &str) {
        let _ = self.runtime.kill(id, crate::signal::SIGKILL).await;
        let _ = self.runtime.delete(id).await;
        self.remove_files(id).await;
    }

    async fn reconcile(self: &Arc<Self>, entry: Arc<Entry>) {
        let c = entry.snapshot();
        let state = self
            .runtime
            .state(&c.id)
            .await
            .unwrap_or(ContainerState::Unknown);
        let was_alive = c.state.status.is_alive() || c.state.status == Status::Restarting;
        let updated = {
            let mut g = entry.lock();
            match state {
                ContainerState::Running { pid } | ContainerState::Paused { pid } => {
                    g.state.status = if matches!(state, ContainerState::Paused { .. }) {
                        Status::Paused
                    } else {
                        Status::Running
                    };
                    g.state.pid = pid;
                    g.has_been_started = true;
                    if g.state.started_at.is_none() {
                        g.state.started_at = Some(chrono::Utc::now());
                    }
                }
                ContainerState::Exited(st) if was_alive => {
                    g.state.status = Status::Exited;
                    g.state.pid = 0;
                    g.state.exit_code = st.code;
                    g.state.oom_killed = st.oom_killed;
                    g.state.finished_at = Some(st.finished_at);
                }
                ContainerState::Created { .. }
                | ContainerState::Unknown
                | ContainerState::Exited(_)
                    if was_alive =>
                {
                    g.state.status = Status::Exited;
                    g.state.pid = 0;
                    g.state.exit_code = 255;
                    g.state.finished_at = Some(chrono::Utc::now());
                }
                _ => {}
            }
            g.clone()
        };
        if matches!(state, ContainerState::Created { .. }) {
            // The runtime refuses to delete a container whose init still waits for start.
            if self
                .runtime
                .kill(&c.id, crate::signal::SIGKILL)
                .await
                .is_ok()
            {
                let _ = tokio::time::timeout(KILLED_GONE, self.runtime.wait(&c.id)).await;
            }
            let _ = self.runtime.delete(&c.id).await;
        }
        if updated != c {
            self.persist(&updated);
        }
        if updated.state.status.is_alive() {
            let generation = entry.generation.fetch_add(1, Ordering::SeqCst) + 1;
            self.spawn_monitor(entry, generation);
            return;
        }
        if was_alive && updated.host_config.auto_remove {
            // As dockerd does at start: a `--rm` container that exited meanwhile goes.
            self.auto_remove(&updated.id).await;
            return;
        }
        let policy = updated.host_config.restart_policy.name.as_str();
        let start = policy == "always" || (policy == "unless-stopped" && !updated.manually_stopped);
        if start && updated.has_been_started {
            let engine = self.clone();
            tokio::spawn(async move {
                let _op = entry.op.lock().await;
                {
                    let mut g = entry.lock();
                    g.manually_stopped = false;
                }
                if let Err(e) = engine.start_locked(&entry).await {
                    tracing::warn!(container = %updated.id, error = %e, "start at daemon start failed");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_resets() {
        let short = chrono::TimeDelta::seconds(1);
        assert_eq!(next_backoff(0, short), 100);
        assert_eq!(next_backoff(100, short), 200);
        assert_eq!(next_backoff(400, short), 800);
        assert_eq!(next_backoff(800, chrono::TimeDelta::seconds(11)), 100);
        assert_eq!(next_backoff(BACKOFF_MAX_MS, short), BACKOFF_MAX_MS);
    }
}
