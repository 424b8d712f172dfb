//! `WATCH`: initial events for unset or `0` resourceVersions, store events translated into
//! `ADDED`/`MODIFIED`/`DELETED` as seen through the selectors, `BOOKMARK`s, an `ERROR` with
//! `410 Gone` when the history is compacted, and the request's timeout.

use std::sync::Arc;
use std::time::Duration;

use berth_store::{Event, StoreError};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::Api;
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::list::{ListParams, scan_prefix};
use crate::objects;

/// Interval of bookmarks when the client allows them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);
/// Upstream's default watch timeout (`--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// One watch event as sent on the wire (`{"type": ..., "object": ...}`).
pub type WatchEvent = Value;

fn event(kind: &str, object: Value) -> WatchEvent {
    json!({"type": kind, "object": object})
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

/// Translates one store event into the watch event the client sees, if any.
fn translate(resource: &ResourceType, params: &ListParams, e: &Event) -> Option<WatchEvent> {
    match e {
        Event::Put { kv, prev } => {
            let object = objects::decode(kv, resource).ok()?;
            let now = params.matches(&object);
            let before = prev.as_ref().is_some_and(|p| {
                objects::decode(p, resource)
                    .map(|o| params.matches(&o))
                    .unwrap_or(false)
            });
            match (prev.is_some() && before, now) {
                (true, true) => Some(event("MODIFIED", object)),
                (false, true) => Some(event("ADDED", object)),
                (true, false) => Some(event("DELETED", object)),
                (false, false) => None,
            }
        }
        Event::Delete { kv } => {
            let object = objects::decode(kv, resource).ok()?;
            params.matches(&object).then(|| event("DELETED", object))
        }
        Event::Progress { .. } => None,
    }
}

impl Api {
    /// Starts a watch; the stream ends at the timeout or when the client goes away.
    pub async fn watch(
        self: &Arc<Self>,
        resource: &ResourceType,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<impl Stream<Item = WatchEvent> + Send + 'static, ApiError> {
        let (tx, rx) = mpsc::channel::<WatchEvent>(256);
        let requested = params
            .resource_version
            .as_deref()
            .and_then(|rv| rv.parse::<i64>().ok())
            .filter(|rv| *rv > 0);
        let initial = requested.is_none() || params.send_initial_events;
        let mut from = requested.unwrap_or(0);
        let mut initial_events = Vec::new();
        if initial {
            let mut list_params = params.clone();
            list_params.limit = 0;
            list_params.continue_token = None;
            list_params.resource_version_match = None;
            let list = self.list(resource, namespace, &list_params).await?;
            from = list["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|rv| rv.parse().ok())
                .unwrap_or(0);
            if let Some(items) = list["items"].as_array() {
                initial_events = items.iter().cloned().map(|o| event("ADDED", o)).collect();
            }
        }
        let prefix = scan_prefix(resource, namespace, params);
        let store_watch = self.store().watch(&prefix, from).await;
        let resource = resource.clone();
        let params = params.clone();
        let timeout = params
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
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
            if params.send_initial_events && params.allow_bookmarks {
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
                    _ = ticker.tick(), if params.allow_bookmarks => {
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
                        if let Event::Progress { revision } = &e {
                            last = last.max(*revision);
                            continue;
                        }
                        if let Event::Put { kv, .. } | Event::Delete { kv } = &e {
                            last = last.max(kv.mod_revision);
                        }
                        if let Some(out) = translate(&resource, &params, &e)
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

    fn configmaps() -> ResourceType {
        ResourceType {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            singular: "configmap".into(),
            short_names: vec![],
            namespaced: true,
            verbs: vec![],
            categories: vec![],
            status_subresource: false,
            scale_subresource: None,
            custom: false,
        }
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
        let mut watch = Box::pin(
            api.watch(&configmaps(), Some("default"), &params)
                .await
                .expect("watch"),
        );
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
        let mut watch = Box::pin(
            api.watch(&configmaps(), Some("default"), &ListParams::default())
                .await
                .expect("watch"),
        );
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
        let mut watch = Box::pin(
            api.watch(&configmaps(), Some("default"), &params)
                .await
                .expect("watch"),
        );
        let e = watch.next().await.expect("error event");
        assert_eq!(e["type"], "ERROR");
        assert_eq!(e["object"]["code"], 410);
    }
}
