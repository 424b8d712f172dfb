//! Creating a container's process ahead of its start. `docker run` sends create, then attach
//! and wait, then start, and between the create's response and the start request the client
//! works for some milliseconds. Right after a create the engine already does what a start
//! does up to the runtime's create (rootfs mount, network, shim, the container's init
//! waiting for start), under the container's operation lock; the start that follows only lets
//! the init run. The record stays `created` throughout, as the API reports it.
//!
//! A start takes the work only if the container's configuration and networks are still the
//! ones it was done for; otherwise, and when no start comes within [`TTL`], it is undone. A
//! daemon that dies meanwhile finds a created runtime container under a `created` record at
//! restore, which it deletes, as it releases the sandbox of every container not running.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::container::{Container, Status};
use crate::engine::{Engine, Entry};

/// How long a container created ahead waits for its start before it is undone.
const TTL: Duration = Duration::from_secs(10);

/// How long a killed init may take to be reported gone.
const WAIT_END: Duration = Duration::from_secs(10);

/// At most this many containers wait created ahead (a `docker create` of many containers
/// does not hold a shim and a network namespace for each).
const LIMIT: usize = 4;

static WAITING: AtomicUsize = AtomicUsize::new(0);
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// A container created ahead of its start.
#[derive(Debug)]
pub struct Prestart {
    /// What it was created from (see [`fingerprint`]).
    fingerprint: String,
    /// Tells this one from a later one of the same container.
    serial: u64,
}

impl Drop for Prestart {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The container's configuration, name and networks, as the runtime's create used them.
fn fingerprint(engine: &Engine, c: &Container) -> String {
    let mut f = c.clone();
    f.state = Default::default();
    f.manually_stopped = false;
    format!(
        "{}{:?}",
        serde_json::to_string(&f).unwrap_or_default(),
        engine.networking().attachments_of(&c.id)
    )
}

impl Engine {
    /// Right after a create: creates the container's process in the background.
    pub(crate) fn spawn_prestart(self: &Arc<Self>, entry: Arc<Entry>) {
        if WAITING.fetch_add(1, Ordering::SeqCst) >= LIMIT {
            WAITING.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let _op = entry.op.lock().await;
            let c = entry.snapshot();
            let fresh = c.state.status == Status::Created
                && !c.has_been_started
                && entry.prestart_slot().is_none();
            if !fresh {
                WAITING.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let cid = c.id.clone();
            let made = match engine
                .with_images(move |s| Ok(s.mount_snapshot(&cid)?))
                .await
            {
                Ok(_) => engine.create_process(&c).await,
                Err(e) => Err(e),
            };
            if let Err(e) = made {
                // The start does it again and reports the error.
                tracing::debug!(container = %c.id, error = %e, "creating ahead of start failed");
                WAITING.fetch_sub(1, Ordering::SeqCst);
                engine.undo_process(&c.id).await;
                return;
            }
            let serial = SERIAL.fetch_add(1, Ordering::SeqCst);
            *entry.prestart_slot() = Some(Prestart {
                fingerprint: fingerprint(&engine, &c),
                serial,
            });
            let engine = engine.clone();
            let entry = entry.clone();
            tokio::spawn(async move {
                tokio::time::sleep(TTL).await;
                let _op = entry.op.lock().await;
                let expired = {
                    let mut slot = entry.prestart_slot();
                    if slot.as_ref().is_some_and(|p| p.serial == serial) {
                        slot.take()
                    } else {
                        None
                    }
                };
                if expired.is_some() {
                    let id = entry.lock().id.clone();
                    engine.undo_process(&id).await;
                }
            });
        });
    }

    /// At start, with the operation lock held: whether the container's process was created
    /// ahead for its current configuration. A stale one is undone.
    pub(crate) async fn take_prestart(&self, entry: &Entry, c: &Container) -> bool {
        let Some(p) = entry.prestart_slot().take() else {
            return false;
        };
        if p.fingerprint == fingerprint(self, c) {
            return true;
        }
        self.undo_process(&c.id).await;
        false
    }

    /// Ends a container's process created ahead and releases its network.
    pub(crate) async fn undo_process(&self, id: &str) {
        self.end_created(id).await;
        self.net_release(id).await;
    }

    /// Ends a runtime container that was created and never started: its init, waiting for
    /// start, is killed, then the runtime deletes it (it refuses to while the init lives).
    pub(crate) async fn end_created(&self, id: &str) {
        if self.runtime.kill(id, crate::signal::SIGKILL).await.is_ok() {
            let _ = tokio::time::timeout(WAIT_END, self.runtime.wait(id)).await;
        }
        let _ = self.runtime.delete(id).await;
    }
}
