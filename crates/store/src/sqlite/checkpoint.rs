//! The checkpointer thread of the SQLite backend: copies committed WAL frames into the main
//! database file in the background.
//!
//! SQLite would otherwise checkpoint inside the commit that crosses its threshold, stalling
//! that commit (and every write queued behind it) for a copy and an fsync of the database
//! file. A passive checkpoint runs beside the writer without blocking it; once every frame is
//! copied and no reader still needs them, the writer starts the WAL over from its beginning.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tracing::{debug, warn};

use super::schema::{self, SqliteError};

/// How often the checkpointer runs.
const EVERY: Duration = Duration::from_millis(500);

/// Starts the checkpointer; it stops when the returned sender is dropped.
pub(super) fn spawn(path: PathBuf) -> Result<mpsc::Sender<()>, SqliteError> {
    let conn = schema::open_checkpointer(&path)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("berth-store-checkpoint".into())
        .spawn(move || {
            // Any message, or the store dropping the sender, stops the thread.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                });
                match result {
                    Ok((log, copied)) if log > 0 => debug!(log, copied, "checkpointed wal"),
                    Ok(_) => {}
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
