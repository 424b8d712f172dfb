//! The embedded SQLite backend (the default store): one database file in WAL mode, one
//! writer thread with group commit, a pool of reader connections used from blocking tasks,
//! and watches fed from memory with history replayed from disk.

mod checkpoint;
mod reader;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};
use tracing::info;

pub use self::schema::SqliteError;
use self::writer::{Applied, Committed, Op, Published, Request};
use crate::{KeyValue, ListOptions, ListResult, Store, StoreError, WatchStream};

/// Tuning of the SQLite backend.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// Most writes committed in one transaction by the group commit (count).
    pub max_batch: usize,
    /// Idle reader connections kept open for reuse (count).
    pub readers: usize,
    /// Committed transactions buffered in memory for watchers (count); a watcher further
    /// behind catches up from the events table. The buffer keeps its last transactions
    /// (values included) while any watch is open, so it is part of the server's footprint.
    pub watch_buffer: usize,
    /// A watch that delivered nothing for this long gets a `Progress` event (milliseconds);
    /// 0 turns progress events off.
    pub progress_interval_ms: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            max_batch: 1024,
            readers: 8,
            watch_buffer: 1024,
            progress_interval_ms: 5_000,
        }
    }
}

/// A [`Store`] in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writes: mpsc::Sender<Request>,
    readers: Arc<reader::Readers>,
    published: Arc<Published>,
    live: broadcast::Sender<Arc<Committed>>,
    progress: Option<Duration>,
    /// Dropping it stops the checkpointer thread.
    _checkpointer: mpsc::Sender<()>,
    /// Held while open: this store is the file's only writer.
    _lock: std::fs::File,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("revision", &self.published.revision())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in the file at `path` with the default configuration.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteConfig::default()).await
    }

    /// Opens (or creates) the store in the file at `path`.
    pub async fn open_with(
        path: impl AsRef<Path>,
        config: SqliteConfig,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let opening = path.clone();
        let (lock, conn, counters) = tokio::task::spawn_blocking(move || {
            let lock = schema::lock(&opening)?;
            let (conn, counters) = schema::open_writer(&opening)?;
            Ok::<_, SqliteError>((lock, conn, counters))
        })
        .await
        .map_err(SqliteError::from)??;
        info!(
            path = %path.display(),
            revision = counters.revision,
            compacted = counters.compacted,
            "opened sqlite store"
        );
        let published = Arc::new(Published::default());
        let (live, _) = broadcast::channel(config.watch_buffer.max(16));
        let writes = writer::spawn(
            conn,
            counters,
            Arc::clone(&published),
            live.clone(),
            config.max_batch,
        )?;
        let checkpointer = checkpoint::spawn(path.clone(), Arc::clone(&published))?;
        Ok(SqliteStore {
            _checkpointer: checkpointer,
            _lock: lock,
            readers: Arc::new(reader::Readers::new(path.clone(), config.readers)),
            path,
            writes,
            published,
            live,
            progress: (config.progress_interval_ms > 0)
                .then(|| Duration::from_millis(config.progress_interval_ms)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, op: Op) -> Result<Applied, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Request { op, reply })
            .map_err(|_| SqliteError::WriterStopped)?;
        answer.await.map_err(|_| SqliteError::WriterStopped)?
    }
}

fn unexpected(applied: Applied) -> StoreError {
    StoreError::Backend(format!("sqlite writer answered {applied:?} out of turn"))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.readers
            .run(move |conn| Ok(reader::get(conn, &key)?))
            .await
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, StoreError> {
        let prefix = prefix.to_owned();
        let options = options.clone();
        self.readers
            .run(move |conn| reader::list(conn, &prefix, &options))
            .await
    }

    async fn count(&self, prefix: &str) -> Result<i64, StoreError> {
        let prefix = prefix.to_owned();
        self.readers
            .run(move |conn| Ok(reader::count(conn, &prefix)?))
            .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError> {
        let op = Op::Create {
            key: key.to_owned(),
            value,
        };
        match self.write(op).await? {
            Applied::Put { revision } => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<i64>,
    ) -> Result<i64, StoreError> {
        let op = Op::Update {
            key: key.to_owned(),
            value,
            expected,
        };
        match self.write(op).await? {
            Applied::Put { revision } => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<i64>,
    ) -> Result<(i64, KeyValue), StoreError> {
        let op = Op::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.write(op).await? {
            Applied::Delete { revision, kv } => Ok((revision, kv)),
            other => Err(unexpected(other)),
        }
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchStream, StoreError> {
        // Subscribe first: everything committed later reaches this receiver, everything
        // committed earlier is in the history the watch task reads next.
        let live = self.live.subscribe();
        let compacted = self.published.compacted();
        if from < compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted,
            });
        }
        Ok(watch::start(
            Arc::clone(&self.readers),
            live,
            prefix.to_owned(),
            from,
            self.progress,
        ))
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        Ok(self.published.revision())
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        match self.write(Op::Compact { revision }).await? {
            Applied::Compacted => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
