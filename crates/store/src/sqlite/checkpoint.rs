//! The checkpointer thread of the SQLite backend: copies committed WAL frames into the main
//! database file in the background.
//!
//! SQLite would otherwise checkpoint inside the commit that crosses its threshold, stalling
//! that commit (and every write queued behind it) for a copy and an fsync of the database
//! file. A passive checkpoint runs beside the writer without blocking it; once every frame is
//! copied and no reader still needs them, the writer starts the WAL over from its beginning.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::schema::{self, SqliteError};
use super::writer::Published;

/// How often the checkpointer looks at the writer's progress.
const TICK: Duration = Duration::from_millis(100);
/// Longest time committed frames wait for a quiet moment before they are copied anyway.
const AT_LEAST_EVERY: Duration = Duration::from_secs(5);

/// Starts the checkpointer; it stops when the returned sender is dropped.
///
/// A checkpoint fsyncs the database file, and on the same disk that fsync delays the WAL
/// fsync of a commit running beside it, which a watcher sees as a late event. So it runs
/// after a tick without new commits, or when frames have waited [`AT_LEAST_EVERY`] through
/// a steady stream of writes.
pub(super) fn spawn(
    path: PathBuf,
    published: Arc<Published>,
) -> Result<mpsc::Sender<()>, SqliteError> {
    let conn = schema::open_checkpointer(&path)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("berth-store-checkpoint".into())
        .spawn(move || {
            let mut checkpointed = published.revision();
            let mut seen = checkpointed;
            let mut last = Instant::now();
            // Any message, or the store dropping the sender, stops the thread.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                let revision = published.revision();
                let quiet = revision == seen;
                seen = revision;
                if revision == checkpointed || !(quiet || last.elapsed() >= AT_LEAST_EVERY) {
                    continue;
                }
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                });
                last = Instant::now();
                match result {
                    Ok((log, copied)) => {
                        // Frames still needed by a reader are copied on a later round.
                        if copied >= log {
                            checkpointed = revision;
                        }
                        if log > 0 {
                            debug!(log, copied, "checkpointed wal");
                        }
                    }
                    Err(err) => {
                        warn!(path = %path.display(), error = %err, "wal checkpoint failed")
                    }
                }
            }
            debug!(path = %path.display(), "sqlite checkpointer stopped");
        })
        .map_err(SqliteError::Spawn)?;
    Ok(stop)
}
