//! berth-store: the versioned key-value store with watch that the API server needs, with an
//! embedded SQLite backend (default) and an etcd backend (several servers).
//!
//! Contract with `berth-apiserver` (it codes against exactly these items):
//! - Every write gets a new, strictly increasing store revision (etcd semantics); a key's
//!   `mod_revision` is the revision of its last write and becomes the object's
//!   `resourceVersion`.
//! - Writes are durable when they return (SQLite: WAL with `synchronous=FULL`, or a group
//!   commit that acknowledges only after fsync).
//! - `watch(prefix, from)` delivers every event with revision > `from` in order, then live
//!   events; if `from` is older than the compacted history it fails with
//!   [`StoreError::Compacted`] (the API server answers `410 Gone`).
//! - Values are opaque bytes (the API server stores JSON).
//! - Backends: `sqlite::SqliteStore::open(path).await` (one file, created if missing) and
//!   `etcd::EtcdStore::connect(&endpoints).await`; both implement [`Store`] and are used as
//!   `Arc<dyn Store>`.
//! - Compaction: after `compact(r)`, lists at a revision >= `r` and watches from >= `r` still
//!   work; below `r` they fail with [`StoreError::Compacted`] on both backends.
//!   [`compaction::run_compactor`] compacts periodically for the server.
//! - Watch streams send [`Event::Progress`] when idle (SQLite: after
//!   `SqliteConfig::progress_interval_ms`; etcd: its progress notifications).

use std::pin::Pin;

use futures::Stream;

pub mod compaction;
pub mod etcd;
mod range;
pub mod sqlite;

/// A stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, for example `/registry/configmaps/default/settings`.
    pub key: String,
    /// The opaque value (the API server stores JSON).
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Revision of the last write of the key.
    pub mod_revision: i64,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// Keys in ascending order.
    pub items: Vec<KeyValue>,
    /// The store revision the list was read at.
    pub revision: i64,
    /// More keys follow the last one returned.
    pub more: bool,
}

/// What a list reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// At most this many items; 0 is no limit.
    pub limit: usize,
    /// Start strictly after this key (continue tokens).
    pub start_after: Option<String>,
    /// Read at this past revision (consistent pagination); `None` is the latest.
    pub revision: Option<i64>,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Created or updated; `prev` is the previous value when it was an update.
    Put {
        /// The key as written.
        kv: KeyValue,
        /// The key before this write, if it existed.
        prev: Option<KeyValue>,
    },
    /// Deleted; `kv.mod_revision` is the deletion's revision and `kv.value` the last value.
    Delete {
        /// The key as it was deleted.
        kv: KeyValue,
    },
    /// No change, but the store has reached this revision (used for watch bookmarks).
    Progress {
        /// Every event up to this revision has been delivered.
        revision: i64,
    },
}

impl Event {
    /// The key a change carries (as written, or as it was deleted); `None` for progress.
    pub fn kv(&self) -> Option<&KeyValue> {
        match self {
            Event::Put { kv, .. } | Event::Delete { kv } => Some(kv),
            Event::Progress { .. } => None,
        }
    }

    /// The revision of the change, or the one progress has reached.
    pub fn revision(&self) -> i64 {
        match self {
            Event::Put { kv, .. } | Event::Delete { kv } => kv.mod_revision,
            Event::Progress { revision } => *revision,
        }
    }
}

/// A stream of watch events; ends only when the store shuts down or an error occurs.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// Errors of store operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create found the key present.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// The key does not exist.
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's current revision is not the expected one (optimistic concurrency).
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        /// The key written.
        key: String,
        /// The mod_revision the caller expected.
        expected: i64,
        /// The key's mod_revision in the store.
        actual: i64,
    },
    /// The requested revision has been compacted.
    #[error("revision {requested} is compacted; oldest available is {compacted}")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The oldest revision still readable.
        compacted: i64,
    },
    /// The backend failed (I/O, SQLite, etcd connection); the message says how.
    #[error("store backend failed: {0}")]
    Backend(String),
}

/// A versioned key-value store with watch.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Lists keys under a prefix in key order.
    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, StoreError>;
    /// Counts keys under a prefix.
    async fn count(&self, prefix: &str) -> Result<i64, StoreError>;
    /// Creates a key that must not exist; returns the new revision. Concurrent creates may
    /// share a revision (etcd writes them in one transaction).
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError>;
    /// Creates `key` (absent) only while `guard`, another key, is still at `mod_revision`
    /// `guard_revision`: the API server creates an object in a namespace it saw active at
    /// that revision in one write. A moved or missing guard is [`StoreError::Conflict`] on
    /// `guard`. Backends with transactions do it atomically; this default reads the guard
    /// first.
    async fn create_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        guard: &str,
        guard_revision: i64,
    ) -> Result<i64, StoreError> {
        match self.get(guard).await? {
            Some(kv) if kv.mod_revision == guard_revision => self.create(key, value).await,
            other => Err(StoreError::Conflict {
                key: guard.to_owned(),
                expected: guard_revision,
                actual: other.map_or(0, |kv| kv.mod_revision),
            }),
        }
    }
    /// Replaces a key's value; with `expected` set, only if its mod_revision matches.
    /// Returns the new revision.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<i64>,
    ) -> Result<i64, StoreError>;
    /// Deletes a key; with `expected` set, only if its mod_revision matches. Returns the
    /// deletion's revision and the last value.
    async fn delete(&self, key: &str, expected: Option<i64>)
    -> Result<(i64, KeyValue), StoreError>;
    /// Events under `prefix` with revision > `from`, then live ones.
    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchStream, StoreError>;
    /// The latest revision.
    async fn revision(&self) -> Result<i64, StoreError>;
    /// Forgets history at or below `revision`.
    async fn compact(&self, revision: i64) -> Result<(), StoreError>;
}
