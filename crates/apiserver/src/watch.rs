//! `WATCH`: initial events for unset or `0` resourceVersions, store events translated into
//! `ADDED`/`MODIFIED`/`DELETED` as seen through the selectors, `BOOKMARK`s, an `ERROR` with
//! `410 Gone` when the history is compacted, and the request's timeout.
//!
//! A watch of plain JSON gets its object events as finished lines written from the stored
//! bytes ([`WatchFormat::JsonLines`], see [`crate::wire`]): with a hundred watchers, each
//! event is copied a hundred times, never parsed and re-serialized a hundred times.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use berth_store::{Event, KeyValue, StoreError, WatchStream};
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::Api;
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::list::{ListParams, scan_prefix};
use crate::objects;
use crate::wire::{self, Served};

/// Interval of bookmarks when the client allows them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);
/// Upstream's default watch timeout (`--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// One watch event: a value (`{"type": ..., "object": ...}`) the caller still represents
/// and serializes, or a finished line of JSON ending in a newline.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The event as a value.
    Value(Value),
    /// The event serialized, newline included.
    Line(Bytes),
}

impl WatchEvent {
    /// The event as a value (parsing a line).
    pub fn into_value(self) -> Value {
        match self {
            WatchEvent::Value(value) => value,
            WatchEvent::Line(line) => serde_json::from_slice(&line).unwrap_or(Value::Null),
        }
    }
}

/// How a watch delivers object events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFormat {
    /// As values (for Table, metadata-only or YAML representations).
    Values,
    /// As finished JSON lines of the objects as served.
    JsonLines,
}

fn event(kind: &str, object: Value) -> WatchEvent {
    WatchEvent::Value(json!({"type": kind, "object": object}))
}

fn bookmark(resource: &ResourceType, revision: i64, initial_end: bool) -> WatchEvent {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event(
        "BOOKMARK",
        json!({"kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata}),
    )
}

fn gone(message: &str) -> WatchEvent {
    let (_, status) = ApiError::Gone(message.to_string()).status();
    event("ERROR", status)
}

/// Turns store values into the events of one watch.
struct Translator {
    resource: ResourceType,
    api_version: String,
    params: ListParams,
    format: WatchFormat,
}

impl Translator {
    fn new(resource: ResourceType, params: ListParams, format: WatchFormat) -> Self {
        Translator {
            api_version: resource.api_version(),
            resource,
            params,
            format,
        }
    }

    fn filtered(&self) -> bool {
        !self.params.labels.is_empty() || !self.params.fields.is_empty()
    }

    /// Whether the stored object passes the selectors (parsed only if there are any).
    fn matches(&self, kv: &KeyValue) -> bool {
        !self.filtered()
            || objects::decode(kv, &self.resource)
                .map(|o| self.params.matches(&o))
                .unwrap_or(false)
    }

    /// The event `kind` of the stored object `kv`.
    fn event(&self, kind: &str, kv: &KeyValue) -> Option<WatchEvent> {
        if self.format == WatchFormat::JsonLines {
            let mut line = Vec::with_capacity(kv.value.len() + 96);
            line.extend_from_slice(b"{\"type\":\"");
            line.extend_from_slice(kind.as_bytes());
            line.extend_from_slice(b"\",\"object\":");
            let served = Served {
                api_version: &self.api_version,
                kind: &self.resource.kind,
            };
            if wire::write_served(&mut line, &kv.value, served, kv.mod_revision) {
                line.extend_from_slice(b"}\n");
                return Some(WatchEvent::Line(Bytes::from(line)));
            }
        }
        let object = objects::decode(kv, &self.resource).ok()?;
        Some(event(kind, object))
    }

    /// The watch event the client sees for one store event, if any.
    fn translate(&self, e: &Event) -> Option<WatchEvent> {
        match e {
            Event::Put { kv, prev } => {
                let now = self.matches(kv);
                let before = prev.as_ref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => self.event("MODIFIED", kv),
                    (false, true) => self.event("ADDED", kv),
                    (true, false) => self.event("DELETED", kv),
                    (false, false) => None,
                }
            }
            Event::Delete { kv } => self.matches(kv).then(|| self.event("DELETED", kv))?,
            Event::Progress { .. } => None,
        }
    }
}

/// The revision of a change event.
fn change_revision(event: &Result<Event, StoreError>) -> Option<i64> {
    Some(event.as_ref().ok()?.kv()?.mod_revision)
}

/// A store watch opened at `from - 1` for a client resuming from `from`: the events at
/// `from` are dropped when there is one (the client has it), and all passed on when several
/// changes share `from` (the etcd store writes concurrent creates in one transaction, and a
/// client cut off between two of them must not lose the second).
fn resumed(events: WatchStream, from: i64) -> WatchStream {
    struct Resume {
        events: WatchStream,
        queue: VecDeque<Result<Event, StoreError>>,
        from: Option<i64>,
    }
    let state = Resume {
        events,
        queue: VecDeque::new(),
        from: Some(from),
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.queue.pop_front() {
                return Some((event, s));
            }
            let event = s.events.next().await?;
            let Some(from) = s.from.take() else {
                return Some((event, s));
            };
            if change_revision(&event) != Some(from) {
                return Some((event, s));
            }
            // A revision's events come from the store together.
            let mut shared = vec![event];
            while let Some(Some(next)) = s.events.next().now_or_never() {
                if change_revision(&next) == Some(from) {
                    shared.push(next);
                } else {
                    s.queue.push_back(next);
                    break;
                }
            }
            if shared.len() > 1 {
                shared.extend(s.queue.drain(..));
                s.queue = shared.into();
            }
        }
    }))
}

impl Api {
    /// The store's events after `from` for a client that has seen `from` (see [`resumed`]).
    async fn resume(&self, prefix: &str, from: i64) -> Result<WatchStream, StoreError> {
        match self.store().watch(prefix, from - 1).await {
            Ok(events) => Ok(resumed(events, from)),
            // `from` itself may be the oldest revision kept.
            Err(StoreError::Compacted { .. }) => self.store().watch(prefix, from).await,
            Err(e) => Err(e),
        }
    }

    /// Starts a watch; the stream ends at the timeout or when the client goes away.
    pub async fn watch(
        self: &Arc<Self>,
        resource: &ResourceType,
        namespace: Option<&str>,
        params: &ListParams,
        format: WatchFormat,
    ) -> Result<impl Stream<Item = WatchEvent> + Send + 'static, ApiError> {
        let (tx, rx) = mpsc::channel::<WatchEvent>(256);
        let requested = params
            .resource_version
            .as_deref()
            .and_then(|rv| rv.parse::<i64>().ok())
            .filter(|rv| *rv > 0);
        let initial = requested.is_none() || params.send_initial_events;
        let mut from = requested.unwrap_or(0);
        let translator = Translator::new(resource.clone(), params.clone(), format);
        let mut initial_events = Vec::new();
        if initial {
            let mut list_params = params.clone();
            list_params.limit = 0;
            list_params.continue_token = None;
            list_params.resource_version_match = None;
            let page = self.list_page(resource, namespace, &list_params).await?;
            from = page.revision;
            initial_events = page
                .items
                .iter()
                .filter_map(|kv| translator.event("ADDED", kv))
                .collect();
        }
        let prefix = scan_prefix(resource, namespace, params);
        let store_watch = if initial {
            self.store().watch(&prefix, from).await
        } else {
            self.resume(&prefix, from).await
        };
        let resource = resource.clone();
        let timeout = params
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        let (send_initial_events, allow_bookmarks) =
            (params.send_initial_events, params.allow_bookmarks);
        tokio::spawn(async move {
            let mut events = match store_watch {
                Ok(events) => events,
                Err(StoreError::Compacted { .. }) => {
                    let _ = tx
                        .send(gone(&format!("too old resource version: {from}")))
                        .await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watch failed to start");
                    return;
                }
            };
            for e in initial_events {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            let mut last = from;
            if send_initial_events && allow_bookmarks {
                let _ = tx.send(bookmark(&resource, last, true)).await;
            }
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = &mut deadline => return,
                    _ = tx.closed() => return,
                    _ = ticker.tick(), if allow_bookmarks => {
                        if tx.send(bookmark(&resource, last, false)).await.is_err() {
                            return;
                        }
                    }
                    next = events.next() => {
                        let e = match next {
                            Some(Ok(e)) => e,
                            Some(Err(StoreError::Compacted { .. })) => {
                                let _ = tx.send(gone("too old resource version")).await;
                                return;
                            }
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "watch ended by the store");
                                return;
                            }
                            None => return,
                        };
                        last = last.max(e.revision());
                        if matches!(e, Event::Progress { .. }) {
                            continue;
                        }
                        if let Some(out) = translator.translate(&e)
                            && tx.send(out).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::memory::MemoryStore;
    use berth_store::Store;

    fn put_at(key: &str, revision: i64) -> Result<Event, StoreError> {
        Ok(Event::Put {
            kv: KeyValue {
                key: key.into(),
                value: Vec::new(),
                create_revision: revision,
                mod_revision: revision,
            },
            prev: None,
        })
    }

    async fn resumed_keys(events: Vec<Result<Event, StoreError>>, from: i64) -> Vec<String> {
        resumed(Box::pin(futures::stream::iter(events)), from)
            .filter_map(|e| async move {
                match e {
                    Ok(Event::Put { kv, .. }) => Some(kv.key),
                    _ => None,
                }
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_resumed_watch_skips_the_one_change_seen_and_repeats_a_shared_revision() {
        let alone = vec![put_at("a", 5), put_at("b", 6), put_at("c", 6)];
        assert_eq!(resumed_keys(alone, 5).await, ["b", "c"]);
        let shared = vec![put_at("a", 5), put_at("b", 5), put_at("c", 6)];
        assert_eq!(resumed_keys(shared, 5).await, ["a", "b", "c"]);
        // Nothing at the revision resumed from: everything passes.
        let later = vec![put_at("b", 6), put_at("c", 7)];
        assert_eq!(resumed_keys(later, 5).await, ["b", "c"]);
    }

    /// A watch of the ConfigMaps in `default`, as event values.
    async fn watch_configmaps(
        api: &Arc<Api>,
        params: &ListParams,
        format: WatchFormat,
    ) -> std::pin::Pin<Box<dyn Stream<Item = serde_json::Value> + Send>> {
        let events = api
            .watch(&ResourceType::configmaps(), Some("default"), params, format)
            .await
            .expect("watch");
        Box::pin(events.map(WatchEvent::into_value))
    }

    async fn put(store: &MemoryStore, name: &str, app: &str) -> i64 {
        let key = format!("/registry/configmaps/default/{name}");
        let body =
            json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": app}}});
        let bytes = serde_json::to_vec(&body).expect("json");
        match store.get(&key).await.expect("get") {
            Some(_) => store.update(&key, bytes, None).await.expect("update"),
            None => store.create(&key, bytes).await.expect("create"),
        }
    }

    #[tokio::test]
    async fn selector_transitions_become_added_and_deleted() {
        let store = Arc::new(MemoryStore::new());
        let rv = put(&store, "a", "web").await;
        let api = Api::new(store.clone(), Catalog::default(), String::new());
        let params = ListParams {
            labels: crate::selector::LabelSelector::parse("app=db").expect("selector"),
            resource_version: Some(rv.to_string()),
            ..Default::default()
        };
        let mut watch = watch_configmaps(&api, &params, WatchFormat::JsonLines).await;
        put(&store, "a", "db").await;
        put(&store, "a", "db").await;
        put(&store, "a", "web").await;
        let kinds: Vec<String> = [
            watch.next().await.expect("1"),
            watch.next().await.expect("2"),
            watch.next().await.expect("3"),
        ]
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect();
        assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
    }

    #[tokio::test]
    async fn unset_resource_version_sends_initial_state() {
        let store = Arc::new(MemoryStore::new());
        put(&store, "a", "web").await;
        let api = Api::new(store.clone(), Catalog::default(), String::new());
        let mut watch = watch_configmaps(&api, &ListParams::default(), WatchFormat::Values).await;
        let first = watch.next().await.expect("initial");
        assert_eq!(first["type"], "ADDED");
        assert_eq!(first["object"]["metadata"]["name"], "a");
    }

    #[tokio::test]
    async fn compacted_history_yields_gone() {
        let store = Arc::new(MemoryStore::new());
        let rv = put(&store, "a", "web").await;
        put(&store, "a", "x").await;
        store.compact(rv + 1).await.expect("compact");
        let api = Api::new(store.clone(), Catalog::default(), String::new());
        let params = ListParams {
            resource_version: Some((rv - 1).to_string()),
            ..Default::default()
        };
        let mut watch = watch_configmaps(&api, &params, WatchFormat::JsonLines).await;
        let e = watch.next().await.expect("error event");
        assert_eq!(e["type"], "ERROR");
        assert_eq!(e["object"]["code"], 410);
    }
}
