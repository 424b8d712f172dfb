//! An in-memory [`Store`] with etcd semantics (revisions, history, compaction, watch), for
//! unit tests of the request side and for `berth server --datastore memory`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_store::{Event, KeyValue, ListOptions, ListResult, Store, StoreError, WatchStream};
use futures::StreamExt;
use tokio::sync::broadcast;

/// Keys, the event history since the last compaction, and live watchers.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
}

struct Inner {
    revision: i64,
    compacted: i64,
    keys: BTreeMap<String, KeyValue>,
    history: VecDeque<Event>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 1.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(65_536);
        Self {
            inner: Mutex::new(Inner {
                revision: 1,
                compacted: 0,
                keys: BTreeMap::new(),
                history: VecDeque::new(),
            }),
            events,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".to_string()))
    }

    fn publish(&self, inner: &mut Inner, event: Event) {
        inner.history.push_back(event.clone());
        // No receiver is not an error: nobody watches.
        let _ = self.events.send(event);
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.lock()?.keys.get(key).cloned())
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, StoreError> {
        let inner = self.lock()?;
        // Past revisions are not kept as snapshots here: pages of a list are read at the
        // latest revision unless the requested one is compacted.
        if let Some(revision) = options.revision
            && revision <= inner.compacted
        {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted: inner.compacted,
            });
        }
        let start = options
            .start_after
            .clone()
            .map(std::ops::Bound::Excluded)
            .unwrap_or(std::ops::Bound::Included(prefix.to_string()));
        let mut items = Vec::new();
        let mut more = false;
        for (key, kv) in inner.keys.range((start, std::ops::Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if options.limit > 0 && items.len() == options.limit {
                more = true;
                break;
            }
            items.push(kv.clone());
        }
        Ok(ListResult {
            items,
            revision: inner.revision,
            more,
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64, StoreError> {
        let inner = self.lock()?;
        let n = inner
            .keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .count();
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError> {
        let mut inner = self.lock()?;
        if inner.keys.contains_key(key) {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        inner.revision += 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: inner.revision,
            mod_revision: inner.revision,
        };
        inner.keys.insert(key.to_string(), kv.clone());
        let revision = inner.revision;
        self.publish(&mut inner, Event::Put { kv, prev: None });
        Ok(revision)
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<i64>,
    ) -> Result<i64, StoreError> {
        let mut inner = self.lock()?;
        let Some(prev) = inner.keys.get(key).cloned() else {
            return Err(StoreError::NotFound(key.to_string()));
        };
        if let Some(expected) = expected
            && expected != prev.mod_revision
        {
            return Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                actual: prev.mod_revision,
            });
        }
        inner.revision += 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: prev.create_revision,
            mod_revision: inner.revision,
        };
        inner.keys.insert(key.to_string(), kv.clone());
        let revision = inner.revision;
        self.publish(
            &mut inner,
            Event::Put {
                kv,
                prev: Some(prev),
            },
        );
        Ok(revision)
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<i64>,
    ) -> Result<(i64, KeyValue), StoreError> {
        let mut inner = self.lock()?;
        let Some(prev) = inner.keys.get(key).cloned() else {
            return Err(StoreError::NotFound(key.to_string()));
        };
        if let Some(expected) = expected
            && expected != prev.mod_revision
        {
            return Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                actual: prev.mod_revision,
            });
        }
        inner.keys.remove(key);
        inner.revision += 1;
        let revision = inner.revision;
        let kv = KeyValue {
            mod_revision: revision,
            ..prev.clone()
        };
        self.publish(&mut inner, Event::Delete { kv });
        Ok((revision, prev))
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchStream, StoreError> {
        let inner = self.lock()?;
        if from < inner.compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted: inner.compacted,
            });
        }
        let prefix = prefix.to_string();
        let past: Vec<Event> = inner
            .history
            .iter()
            .filter(|e| e.revision() > from && e.kv().is_some_and(|kv| kv.key.starts_with(&prefix)))
            .cloned()
            .collect();
        let last = past
            .last()
            .map(Event::revision)
            .unwrap_or(from)
            .max(inner.revision);
        // Subscribing under the lock: no write can slip between history and live events.
        let receiver = self.events.subscribe();
        drop(inner);
        let live = futures::stream::unfold(receiver, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((Ok(event), rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((
                    Err(StoreError::Backend(format!(
                        "watcher fell behind by {n} events"
                    ))),
                    rx,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .filter(move |event| {
            let keep = match event {
                Ok(e) => {
                    e.revision() > last && e.kv().is_some_and(|kv| kv.key.starts_with(&prefix))
                }
                Err(_) => true,
            };
            futures::future::ready(keep)
        });
        Ok(Box::pin(
            futures::stream::iter(past.into_iter().map(Ok)).chain(live),
        ))
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        Ok(self.lock()?.revision)
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        while inner
            .history
            .front()
            .is_some_and(|e| e.revision() <= revision)
        {
            inner.history.pop_front();
        }
        inner.compacted = inner.compacted.max(revision);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watch_replays_history_then_live_events() {
        let store = MemoryStore::new();
        let r1 = store.create("/a/1", b"x".to_vec()).await.expect("create");
        let mut watch = store.watch("/a/", r1 - 1).await.expect("watch");
        store
            .update("/a/1", b"y".to_vec(), Some(r1))
            .await
            .expect("update");
        store
            .create("/b/1", b"z".to_vec())
            .await
            .expect("create other prefix");
        store.delete("/a/1", None).await.expect("delete");
        let first = watch.next().await.expect("event").expect("ok");
        assert!(matches!(first, Event::Put { prev: None, .. }));
        let second = watch.next().await.expect("event").expect("ok");
        assert!(matches!(second, Event::Put { prev: Some(_), .. }));
        let third = watch.next().await.expect("event").expect("ok");
        assert!(matches!(third, Event::Delete { .. }));
    }

    #[tokio::test]
    async fn compacted_watch_fails() {
        let store = MemoryStore::new();
        let r = store.create("/a/1", b"x".to_vec()).await.expect("create");
        store
            .update("/a/1", b"y".to_vec(), None)
            .await
            .expect("update");
        store.compact(r + 1).await.expect("compact");
        assert!(matches!(
            store.watch("/a/", r - 1).await,
            Err(StoreError::Compacted { .. })
        ));
    }

    #[tokio::test]
    async fn update_checks_expected_revision() {
        let store = MemoryStore::new();
        let r = store.create("/a/1", b"x".to_vec()).await.expect("create");
        assert!(matches!(
            store.update("/a/1", b"y".to_vec(), Some(r - 1)).await,
            Err(StoreError::Conflict { .. })
        ));
    }
}
