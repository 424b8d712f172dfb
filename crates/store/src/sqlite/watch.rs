//! Watches of the SQLite backend: history replayed from the `events` table, then live events
//! fanned out from memory.
//!
//! Each watch is a task that subscribes to the writer's broadcast of committed batches
//! *before* reading history, then replays `events` after `from` in chunks. Every event of a
//! batch committed before the history snapshot is in the snapshot, every later one is in the
//! broadcast, and events at or below the revision already covered are skipped, so there is no
//! gap and no duplicate. A watcher that falls behind the broadcast buffer catches up from the
//! table the same way; if the history it needs was compacted meanwhile it gets `Compacted`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, trace};

use super::reader::{self, Readers};
use super::writer::Committed;
use crate::range::has_prefix;
use crate::{Event, StoreError, WatchStream};

/// Events read from history per read transaction.
const REPLAY_CHUNK: usize = 1000;
/// Events queued per watcher before the watch task waits for its consumer.
const QUEUE: usize = 256;

/// Starts a watch task and returns its stream.
pub(super) fn start(
    readers: Arc<Readers>,
    live: broadcast::Receiver<Arc<Committed>>,
    prefix: String,
    from: i64,
    progress: Option<Duration>,
) -> WatchStream {
    let (out, rx) = mpsc::channel(QUEUE);
    let watcher = Watcher {
        readers,
        live,
        prefix,
        covered: from,
        out,
        progress,
    };
    tokio::spawn(watcher.run());
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

struct Watcher {
    readers: Arc<Readers>,
    live: broadcast::Receiver<Arc<Committed>>,
    prefix: String,
    /// Every matching event at or below this revision has been sent.
    covered: i64,
    out: mpsc::Sender<Result<Event, StoreError>>,
    progress: Option<Duration>,
}

/// Why a watch task stopped early.
enum Stop {
    /// The consumer dropped the stream.
    Gone,
    /// The store failed or the history is compacted; the consumer is told.
    Failed(StoreError),
}

impl From<StoreError> for Stop {
    fn from(err: StoreError) -> Self {
        Stop::Failed(err)
    }
}

impl Watcher {
    async fn run(mut self) {
        match self.pump().await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(err)) => {
                debug!(prefix = %self.prefix, covered = self.covered, error = %err, "watch failed");
                let _ = self.out.send(Err(err)).await;
            }
        }
    }

    async fn pump(&mut self) -> Result<(), Stop> {
        self.replay().await?;
        let far = Duration::from_secs(86_400 * 365);
        let idle = self.progress.unwrap_or(far);
        let mut deadline = Instant::now() + idle;
        loop {
            let received = tokio::select! {
                received = self.live.recv() => received,
                () = self.out.closed() => return Err(Stop::Gone),
                () = sleep_until(deadline) => {
                    let revision = self.covered;
                    self.send(Event::Progress { revision }).await?;
                    deadline = Instant::now() + idle;
                    continue;
                }
            };
            match received {
                Ok(batch) => {
                    if batch.revision <= self.covered {
                        continue;
                    }
                    for event in &batch.events {
                        if let Some(kv) = event.kv()
                            && kv.mod_revision > self.covered
                            && has_prefix(&kv.key, &self.prefix)
                        {
                            self.send(event.clone()).await?;
                            deadline = Instant::now() + idle;
                        }
                    }
                    self.covered = batch.revision;
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    trace!(prefix = %self.prefix, skipped, "watcher lagged; replaying history");
                    self.replay().await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    /// Sends every event in history after `covered`, advancing `covered` to the snapshot.
    async fn replay(&mut self) -> Result<(), Stop> {
        loop {
            let prefix = self.prefix.clone();
            let after = self.covered;
            let (events, counters) = self
                .readers
                .run(move |conn| {
                    reader::history(conn, &prefix, after, REPLAY_CHUNK).map_err(StoreError::from)
                })
                .await?;
            if after < counters.compacted {
                return Err(Stop::Failed(StoreError::Compacted {
                    requested: after,
                    compacted: counters.compacted,
                }));
            }
            let full = events.len() == REPLAY_CHUNK;
            for event in events {
                let revision = event.revision();
                self.send(event).await?;
                self.covered = revision;
            }
            if !full {
                self.covered = self.covered.max(counters.revision);
                return Ok(());
            }
        }
    }

    async fn send(&self, event: Event) -> Result<(), Stop> {
        self.out.send(Ok(event)).await.map_err(|_| Stop::Gone)
    }
}
