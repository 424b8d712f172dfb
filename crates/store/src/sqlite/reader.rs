//! Reads of the SQLite backend: a small pool of read-only connections used from blocking
//! tasks, and the queries for get, list (latest or at a past revision), count and history.
//!
//! Each read runs in one read transaction, so the revision it reports and the rows it returns
//! come from the same snapshot (WAL readers see the last commit before they started).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::schema::{self, Counters, KIND_DELETE, SqliteError};
use crate::range::prefix_end;
use crate::{Event, KeyValue, ListOptions, ListResult, StoreError};

/// Read-only connections, opened on demand and kept for reuse.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl Readers {
    pub fn new(path: PathBuf, keep: usize) -> Self {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// Runs `read` on a pooled connection in a blocking task.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let out = read(&mut conn);
            readers.give_back(conn);
            out
        })
        .await
        .map_err(SqliteError::from)?
    }

    fn take(&self) -> Result<Connection, SqliteError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.keep {
            idle.push(conn);
        }
    }
}

/// A key range in SQL: `key >= lo` (or `key > lo`) and, if bounded, `key < hi`.
struct KeyRange {
    lo: Vec<u8>,
    lo_exclusive: bool,
    hi: Option<Vec<u8>>,
}

impl KeyRange {
    fn new(prefix: &str, start_after: Option<&str>) -> Self {
        let hi = prefix_end(prefix.as_bytes());
        match start_after {
            Some(after) if after.as_bytes() >= prefix.as_bytes() => KeyRange {
                lo: after.as_bytes().to_vec(),
                lo_exclusive: true,
                hi,
            },
            _ => KeyRange {
                lo: prefix.as_bytes().to_vec(),
                lo_exclusive: false,
                hi,
            },
        }
    }

    /// The SQL condition, using `?1` and `?2`.
    fn condition(&self) -> &'static str {
        match (self.lo_exclusive, self.hi.is_some()) {
            (false, false) => "key >= ?1",
            (true, false) => "key > ?1",
            (false, true) => "key >= ?1 AND key < ?2",
            (true, true) => "key > ?1 AND key < ?2",
        }
    }

    /// `?1` and `?2` followed by `extra` as `?3`, `?4`..., cut to what `stmt` uses (an
    /// unbounded range leaves `?2` unused, and SQLite counts only up to the highest index).
    fn params(&self, stmt: &rusqlite::Statement<'_>, extra: &[i64]) -> Vec<Value> {
        let mut values = vec![
            Value::Blob(self.lo.clone()),
            Value::Blob(self.hi.clone().unwrap_or_default()),
        ];
        values.extend(extra.iter().map(|v| Value::Integer(*v)));
        values.truncate(stmt.parameter_count());
        values
    }
}

fn sql_limit(limit: usize) -> i64 {
    // One more than asked to learn whether more follow; -1 is SQLite's "no limit".
    if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
    }
}

fn key_of(row: &Row<'_>, index: usize) -> rusqlite::Result<String> {
    let bytes: Vec<u8> = row.get(index)?;
    String::from_utf8(bytes).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Blob, err.into())
    })
}

fn kv_of(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_of(row, 0)?,
        value: row.get(1)?,
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    })
}

/// Reads one key.
pub(super) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>, SqliteError> {
    let kv = conn
        .prepare_cached(
            "SELECT key, value, create_revision, mod_revision FROM keys WHERE key = ?1",
        )?
        .query_row(params![key.as_bytes()], kv_of)
        .optional()?;
    Ok(kv)
}

/// Counts the current keys under `prefix`.
pub(super) fn count(conn: &mut Connection, prefix: &str) -> Result<i64, SqliteError> {
    let range = KeyRange::new(prefix, None);
    let sql = format!("SELECT COUNT(*) FROM keys WHERE {}", range.condition());
    let mut stmt = conn.prepare_cached(&sql)?;
    let params = range.params(&stmt, &[]);
    let count = stmt.query_row(rusqlite::params_from_iter(params), |row| row.get(0))?;
    Ok(count)
}

/// Lists keys under `prefix`, at the latest revision or at `options.revision`.
pub(super) fn list(
    conn: &mut Connection,
    prefix: &str,
    options: &ListOptions,
) -> Result<ListResult, StoreError> {
    let tx = conn.transaction().map_err(SqliteError::from)?;
    let counters = schema::read_counters(&tx).map_err(SqliteError::from)?;
    let range = KeyRange::new(prefix, options.start_after.as_deref());
    let limit = sql_limit(options.limit);
    // As in etcd, a revision of 0 (or below) means the latest.
    let at = options
        .revision
        .filter(|r| *r > 0)
        .unwrap_or(counters.revision);
    if at > counters.revision {
        return Err(StoreError::Backend(format!(
            "revision {at} is in the future; current is {}",
            counters.revision
        )));
    }
    let mut items = if at == counters.revision {
        latest(&tx, &range, limit)?
    } else {
        if at < counters.compacted {
            return Err(StoreError::Compacted {
                requested: at,
                compacted: counters.compacted,
            });
        }
        past(&tx, &range, limit, at)?
    };
    let more = options.limit > 0 && items.len() > options.limit;
    if more {
        items.truncate(options.limit);
    }
    Ok(ListResult {
        items,
        revision: at,
        more,
    })
}

fn latest(conn: &Connection, range: &KeyRange, limit: i64) -> Result<Vec<KeyValue>, SqliteError> {
    let sql = format!(
        "SELECT key, value, create_revision, mod_revision FROM keys
         WHERE {} ORDER BY key LIMIT ?3",
        range.condition()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let params = range.params(&stmt, &[limit]);
    let rows = stmt.query_map(rusqlite::params_from_iter(params), kv_of)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The keys as they were at revision `at`: current keys untouched since `at`, plus the state
/// before the first later event of every key changed since (recorded in that event).
fn past(
    conn: &Connection,
    range: &KeyRange,
    limit: i64,
    at: i64,
) -> Result<Vec<KeyValue>, SqliteError> {
    let sql = format!(
        "SELECT key, value, create_revision, mod_revision FROM keys
         WHERE {} AND mod_revision <= ?4 ORDER BY key LIMIT ?3",
        range.condition()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let params = range.params(&stmt, &[limit, at]);
    let rows = stmt.query_map(rusqlite::params_from_iter(params), kv_of)?;
    let mut items: Vec<KeyValue> = rows.collect::<rusqlite::Result<_>>()?;
    // SQLite takes bare columns from the row that holds MIN(revision).
    let sql = format!(
        "SELECT key, MIN(revision), kind, value, create_revision, prev_value, prev_mod_revision
         FROM events WHERE revision > ?3 AND {} GROUP BY key",
        range.condition()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let params = range.params(&stmt, &[at]);
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        let Some(prev_mod_revision) = row.get::<_, Option<i64>>(6)? else {
            continue; // created after `at`
        };
        let kind: i64 = row.get(2)?;
        let value: Vec<u8> = if kind == KIND_DELETE {
            row.get(3)?
        } else {
            row.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default()
        };
        items.push(KeyValue {
            key: key_of(row, 0)?,
            value,
            create_revision: row.get(4)?,
            mod_revision: prev_mod_revision,
        });
    }
    items.sort_by(|a, b| a.key.cmp(&b.key));
    if limit > 0 {
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(items)
}

/// Events under `prefix` with revision > `after`, at most `limit`, and the snapshot's
/// counters.
pub(super) fn history(
    conn: &mut Connection,
    prefix: &str,
    after: i64,
    limit: usize,
) -> Result<(Vec<Event>, Counters), SqliteError> {
    let tx = conn.transaction()?;
    let counters = schema::read_counters(&tx)?;
    let range = KeyRange::new(prefix, None);
    let sql = format!(
        "SELECT revision, key, kind, value, create_revision, prev_value, prev_mod_revision
         FROM events WHERE revision > ?3 AND {} ORDER BY revision LIMIT ?4",
        range.condition()
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let params = range.params(&stmt, &[after, limit]);
    let rows = stmt.query_map(rusqlite::params_from_iter(params), event_of)?;
    let events = rows.collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    Ok((events, counters))
}

fn event_of(row: &Row<'_>) -> rusqlite::Result<Event> {
    let revision: i64 = row.get(0)?;
    let key = key_of(row, 1)?;
    let kind: i64 = row.get(2)?;
    let value: Vec<u8> = row.get(3)?;
    let create_revision: i64 = row.get(4)?;
    let kv = KeyValue {
        key,
        value,
        create_revision,
        mod_revision: revision,
    };
    if kind == KIND_DELETE {
        return Ok(Event::Delete { kv });
    }
    let prev = match row.get::<_, Option<i64>>(6)? {
        Some(mod_revision) => Some(KeyValue {
            key: kv.key.clone(),
            value: row.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
            create_revision,
            mod_revision,
        }),
        None => None,
    };
    Ok(Event::Put { kv, prev })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_starts_after_continue_key_inside_prefix() {
        let range = KeyRange::new("/a/", Some("/a/x"));
        assert!(range.lo_exclusive);
        assert_eq!(range.lo, b"/a/x");
        assert_eq!(range.hi.as_deref(), Some(b"/a0".as_slice()));
    }

    #[test]
    fn range_ignores_continue_key_before_prefix() {
        let range = KeyRange::new("/b/", Some("/a/x"));
        assert!(!range.lo_exclusive);
        assert_eq!(range.lo, b"/b/");
        assert_eq!(range.condition(), "key >= ?1 AND key < ?2");
    }

    #[test]
    fn sql_limit_asks_one_more() {
        assert_eq!(sql_limit(0), -1);
        assert_eq!(sql_limit(10), 11);
    }
}
