//! The single writer thread of the SQLite backend and its group commit.
//!
//! Every write is queued to one dedicated thread that owns the only writing connection. The
//! thread takes the first queued request, then everything queued while the previous
//! transaction was committing (up to `max_batch`), applies them in order in one transaction
//! and commits it (an fsync of the WAL with `synchronous=FULL`). Only then does it publish the
//! batch's events to watchers and answer each caller, so an acknowledged write is durable and
//! a watcher never sees a write that could still be lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, error, trace};

use super::schema::{Counters, KIND_DELETE, KIND_PUT, SqliteError};
use crate::{Event, KeyValue, StoreError};

/// A write asked of the writer thread.
#[derive(Debug)]
pub(super) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Option<i64>,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
    Compact {
        revision: i64,
    },
}

/// What a successful write did.
#[derive(Debug)]
pub(super) enum Applied {
    /// A create or update at this revision.
    Put { revision: i64 },
    /// A delete at this revision of this last value.
    Delete { revision: i64, kv: KeyValue },
    /// History was compacted.
    Compacted,
}

/// One queued write and where to send its outcome.
pub(super) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Applied, StoreError>>,
}

/// The events of one committed transaction, shared by every watcher.
#[derive(Debug)]
pub(super) struct Committed {
    /// The store revision after the transaction.
    pub revision: i64,
    /// The transaction's events in revision order.
    pub events: Vec<Event>,
}

/// Counters readable without blocking, updated after each commit.
#[derive(Debug, Default)]
pub(super) struct Published {
    revision: AtomicI64,
    compacted: AtomicI64,
}

impl Published {
    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    pub fn compacted(&self) -> i64 {
        self.compacted.load(Ordering::Acquire)
    }

    fn store(&self, counters: Counters) {
        self.compacted.store(counters.compacted, Ordering::Release);
        self.revision.store(counters.revision, Ordering::Release);
    }
}

/// Starts the writer thread; it ends when every sender of its queue is dropped.
pub(super) fn spawn(
    conn: Connection,
    counters: Counters,
    published: Arc<Published>,
    events: broadcast::Sender<Arc<Committed>>,
    max_batch: usize,
) -> Result<mpsc::Sender<Request>, SqliteError> {
    published.store(counters);
    let (tx, rx) = mpsc::channel();
    let mut writer = Writer {
        conn,
        counters,
        published,
        events,
        max_batch: max_batch.max(1),
    };
    std::thread::Builder::new()
        .name("berth-store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(SqliteError::Spawn)?;
    Ok(tx)
}

struct Writer {
    conn: Connection,
    counters: Counters,
    published: Arc<Published>,
    events: broadcast::Sender<Arc<Committed>>,
    max_batch: usize,
}

/// The outcome of applying one batch inside its transaction.
struct Batch {
    results: Vec<Result<Applied, StoreError>>,
    events: Vec<Event>,
    counters: Counters,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut ops = Vec::with_capacity(16);
            let mut replies = Vec::with_capacity(16);
            ops.push(first.op);
            replies.push(first.reply);
            while ops.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(request) => {
                        ops.push(request.op);
                        replies.push(request.reply);
                    }
                    Err(_) => break,
                }
            }
            self.commit(ops, replies);
        }
        debug!(revision = self.counters.revision, "sqlite writer stopped");
    }

    fn commit(&mut self, ops: Vec<Op>, replies: Vec<oneshot::Sender<Result<Applied, StoreError>>>) {
        let size = ops.len();
        match self.apply(ops) {
            Ok(batch) => {
                trace!(
                    size,
                    revision = batch.counters.revision,
                    "committed write batch"
                );
                self.counters = batch.counters;
                self.published.store(batch.counters);
                if !batch.events.is_empty() {
                    // No receiver is not an error: nobody watches right now.
                    let _ = self.events.send(Arc::new(Committed {
                        revision: batch.counters.revision,
                        events: batch.events,
                    }));
                }
                for (reply, result) in replies.into_iter().zip(batch.results) {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                error!(size, error = %err, "sqlite write batch failed; rolled back");
                let message = StoreError::from(err).to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Backend(message.clone())));
                }
            }
        }
    }

    fn apply(&mut self, ops: Vec<Op>) -> Result<Batch, SqliteError> {
        let mut counters = self.counters;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            let result = match op {
                Op::Create { key, value } => {
                    let revision = counters.revision + 1;
                    // The UNIQUE key makes an existing key a no-op, saving a lookup.
                    let inserted = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO keys (key, value, create_revision, mod_revision)
                             VALUES (?1, ?2, ?3, ?3)",
                        )?
                        .execute(params![key.as_bytes(), value, revision])?;
                    if inserted == 0 {
                        Err(StoreError::AlreadyExists(key))
                    } else {
                        insert_event(&tx, revision, &key, KIND_PUT, &value, revision, None)?;
                        counters.revision = revision;
                        events.push(Event::Put {
                            kv: KeyValue {
                                key,
                                value,
                                create_revision: revision,
                                mod_revision: revision,
                            },
                            prev: None,
                        });
                        Ok(Applied::Put { revision })
                    }
                }
                Op::Update {
                    key,
                    value,
                    expected,
                } => match checked(&tx, key, expected)? {
                    Err(err) => Err(err),
                    Ok(prev) => {
                        let revision = counters.revision + 1;
                        insert_event(
                            &tx,
                            revision,
                            &prev.key,
                            KIND_PUT,
                            &value,
                            prev.create_revision,
                            Some((&prev.value, prev.mod_revision)),
                        )?;
                        tx.prepare_cached(
                            "UPDATE keys SET value = ?2, mod_revision = ?3 WHERE key = ?1",
                        )?
                        .execute(params![
                            prev.key.as_bytes(),
                            value,
                            revision
                        ])?;
                        counters.revision = revision;
                        events.push(Event::Put {
                            kv: KeyValue {
                                key: prev.key.clone(),
                                value,
                                create_revision: prev.create_revision,
                                mod_revision: revision,
                            },
                            prev: Some(prev),
                        });
                        Ok(Applied::Put { revision })
                    }
                },
                Op::Delete { key, expected } => match checked(&tx, key, expected)? {
                    Err(err) => Err(err),
                    Ok(last) => {
                        let revision = counters.revision + 1;
                        // A delete keeps the last value in `value`, its revision as prev.
                        tx.prepare_cached(
                            "INSERT INTO events (revision, key, kind, value, create_revision,
                                                 prev_value, prev_mod_revision)
                             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
                        )?
                        .execute(params![
                            revision,
                            last.key.as_bytes(),
                            KIND_DELETE,
                            last.value,
                            last.create_revision,
                            last.mod_revision
                        ])?;
                        tx.prepare_cached("DELETE FROM keys WHERE key = ?1")?
                            .execute(params![last.key.as_bytes()])?;
                        counters.revision = revision;
                        let kv = KeyValue {
                            mod_revision: revision,
                            ..last
                        };
                        events.push(Event::Delete { kv: kv.clone() });
                        Ok(Applied::Delete { revision, kv })
                    }
                },
                Op::Compact { revision } => {
                    if revision > counters.revision {
                        Err(StoreError::Backend(format!(
                            "cannot compact at future revision {revision}; current is {}",
                            counters.revision
                        )))
                    } else {
                        if revision > counters.compacted {
                            let deleted = tx
                                .prepare_cached("DELETE FROM events WHERE revision <= ?1")?
                                .execute(params![revision])?;
                            counters.compacted = revision;
                            debug!(revision, deleted, "compacted sqlite history");
                        }
                        Ok(Applied::Compacted)
                    }
                }
            };
            results.push(result);
        }
        if counters != self.counters {
            let mut stmt = tx.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?;
            stmt.execute(params!["revision", counters.revision])?;
            stmt.execute(params!["compacted", counters.compacted])?;
        }
        tx.commit()?;
        Ok(Batch {
            results,
            events,
            counters,
        })
    }
}

/// The current row of `key`, if any.
fn current(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    conn.prepare_cached("SELECT value, create_revision, mod_revision FROM keys WHERE key = ?1")?
        .query_row(params![key.as_bytes()], |row| {
            Ok(KeyValue {
                key: key.to_owned(),
                value: row.get(0)?,
                create_revision: row.get(1)?,
                mod_revision: row.get(2)?,
            })
        })
        .optional()
}

/// The current row of `key` if it exists and matches `expected`, else the caller's error.
fn checked(
    conn: &Connection,
    key: String,
    expected: Option<i64>,
) -> rusqlite::Result<Result<KeyValue, StoreError>> {
    Ok(match current(conn, &key)? {
        None => Err(StoreError::NotFound(key)),
        Some(kv) => match expected {
            Some(expected) if expected != kv.mod_revision => Err(StoreError::Conflict {
                key,
                expected,
                actual: kv.mod_revision,
            }),
            _ => Ok(kv),
        },
    })
}

fn insert_event(
    conn: &Connection,
    revision: i64,
    key: &str,
    kind: i64,
    value: &[u8],
    create_revision: i64,
    prev: Option<(&[u8], i64)>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (revision, key, kind, value, create_revision,
                             prev_value, prev_mod_revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        revision,
        key.as_bytes(),
        kind,
        value,
        create_revision,
        prev.map(|p| p.0),
        prev.map(|p| p.1)
    ])?;
    Ok(())
}
