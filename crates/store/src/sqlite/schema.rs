//! The on-disk layout of the SQLite backend: pragmas, tables and the persisted counters, and
//! the errors of this backend.
//!
//! Tables:
//! - `meta(name, value)`: `revision` (the last committed store revision) and `compacted`
//!   (history at or below it is gone).
//! - `keys(key, value, create_revision, mod_revision)`: the current keys.
//! - `events(revision, key, kind, value, create_revision, prev_value, prev_mod_revision)`: one
//!   row per revision, the watch history. A put stores the new value and, when it replaced a
//!   key, the old value and its mod_revision; a delete stores the last value in `value` and
//!   its mod_revision in `prev_mod_revision`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

/// `events.kind` of a put.
pub(super) const KIND_PUT: i64 = 0;
/// `events.kind` of a delete.
pub(super) const KIND_DELETE: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS keys (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    kind INTEGER NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_value BLOB,
    prev_mod_revision INTEGER
);
";

/// Failures of the SQLite backend.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The database file could not be opened or prepared.
    #[error("cannot open sqlite store {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("sqlite statement failed")]
    Statement(#[from] rusqlite::Error),
    /// Another live process (or store in this process) has the file open for writing.
    #[error("sqlite store {path} is in use by another process")]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The lock file beside the database could not be created.
    #[error("cannot create lock file {path}")]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A stored key is not UTF-8 (the file was written by something else).
    #[error("stored key is not utf-8")]
    KeyEncoding(#[from] std::string::FromUtf8Error),
    /// The writer thread is gone (the store is shutting down or panicked).
    #[error("sqlite writer thread stopped")]
    WriterStopped,
    /// A blocking read task panicked or was cancelled.
    #[error("sqlite reader task failed")]
    Reader(#[from] tokio::task::JoinError),
    /// The writer thread could not be started.
    #[error("cannot start sqlite writer thread")]
    Spawn(#[source] std::io::Error),
}

impl From<SqliteError> for StoreError {
    fn from(err: SqliteError) -> Self {
        // StoreError::Backend carries a string, so the source chain is flattened here.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        StoreError::Backend(message)
    }
}

/// The counters persisted in `meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counters {
    /// The last committed revision.
    pub revision: i64,
    /// History at or below this revision is compacted.
    pub compacted: i64,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Readers never block the writer and the writer never blocks readers in WAL mode;
    // synchronous=FULL makes every COMMIT fsync the WAL, so an acknowledged write survives
    // a crash of the process or the machine.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Opens the writer's connection, creating the file and tables if missing, and reads the
/// counters.
pub(super) fn open_writer(path: &Path) -> Result<(Connection, Counters), SqliteError> {
    let open = |path: &Path| -> rusqlite::Result<(Connection, Counters)> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        // Checkpoints run on their own thread (see `checkpoint.rs`), not inside commits.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.execute_batch(SCHEMA)?;
        let counters = read_counters(&conn)?;
        // The counter is written in the same transaction as every event, but take the
        // maximum anyway so revisions stay monotonic whatever happened to the file.
        let max_event: Option<i64> = conn
            .query_row("SELECT MAX(revision) FROM events", [], |row| row.get(0))
            .optional()?
            .flatten();
        let revision = counters.revision.max(max_event.unwrap_or(0));
        Ok((
            conn,
            Counters {
                revision,
                ..counters
            },
        ))
    };
    open(path).map_err(|source| SqliteError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Takes the exclusive lock that makes this process the file's only writer: revisions are
/// counted in memory by one writer thread, so a second writer would reuse them. The lock is a
/// `flock` on `<path>-lock`, released when the returned file is dropped or the process dies.
pub(super) fn lock(path: &Path) -> Result<std::fs::File, SqliteError> {
    let mut name = path.as_os_str().to_owned();
    name.push("-lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| SqliteError::LockFile {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SqliteError::InUse {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(SqliteError::LockFile {
            path: lock_path,
            source,
        }),
    }
}

/// Opens the checkpointer's connection.
pub(super) fn open_checkpointer(path: &Path) -> Result<Connection, SqliteError> {
    let open = |path: &Path| -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        Ok(conn)
    };
    open(path).map_err(|source| SqliteError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens a read-only connection for the reader pool.
pub(super) fn open_reader(path: &Path) -> Result<Connection, SqliteError> {
    let open = |path: &Path| -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    };
    open(path).map_err(|source| SqliteError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `meta` (inside the caller's transaction, if any).
pub(super) fn read_counters(conn: &Connection) -> rusqlite::Result<Counters> {
    let mut stmt = conn.prepare_cached("SELECT name, value FROM meta")?;
    let mut rows = stmt.query([])?;
    let mut counters = Counters {
        revision: 0,
        compacted: 0,
    };
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let value: i64 = row.get(1)?;
        match name.as_str() {
            "revision" => counters.revision = value,
            "compacted" => counters.compacted = value,
            _ => {}
        }
    }
    Ok(counters)
}
