//! The server's background collector: follows every write under `/registry/` and resolves
//! ownerReferences (dependents of a deleted owner are deleted; `orphan` and
//! `foregroundDeletion` finalizers are honoured), terminating namespaces, and pods whose
//! grace period ran out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_store::{Event, KeyValue, ListOptions};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{Api, WriteOptions};
use crate::catalog::ResourceType;
use crate::delete::{DeleteOptions, FOREGROUND, ORPHAN};
use crate::error::ApiError;
use crate::namespaces::{SERVER_MANAGER, finish_namespace};
use crate::objects;
use crate::registry::UpdateMode;

/// What the index knows of one object.
#[derive(Debug, Clone)]
struct Node {
    key: String,
    owners: Vec<String>,
}

/// Work the collector does, possibly later.
#[derive(Debug, Clone)]
enum Work {
    /// Delete this dependent if none of its owners exist.
    Dependent(String),
    /// Strip owner references to this owner from its dependents, then its finalizer.
    Orphan(String),
    /// Delete this owner's dependents, then its finalizer once none is left.
    Foreground(String),
    /// Clean up a terminating namespace.
    Namespace(String),
    /// Remove a pod whose grace period ended.
    Expire(String),
}

struct Collector {
    api: Arc<Api>,
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
    queue: mpsc::UnboundedSender<(Work, Duration)>,
}

/// The metadata the collector reads of every stored object, decoded without building the
/// whole object (every write under `/registry/` passes through here).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Seen {
    metadata: SeenMeta,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SeenMeta {
    name: Option<String>,
    uid: Option<String>,
    deletion_timestamp: Option<String>,
    finalizers: Option<Vec<String>>,
    owner_references: Option<Vec<SeenOwner>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SeenOwner {
    uid: Option<String>,
}

impl SeenOwner {
    /// The owners' uids (references without one are skipped).
    fn uids(refs: Option<Vec<SeenOwner>>) -> Vec<String> {
        refs.unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.uid)
            .collect()
    }
}

impl Seen {
    fn decode(value: &[u8]) -> Option<SeenMeta> {
        serde_json::from_slice::<Seen>(value)
            .ok()
            .map(|seen| seen.metadata)
    }
}

fn options() -> WriteOptions {
    WriteOptions {
        field_manager: SERVER_MANAGER.into(),
        ..Default::default()
    }
}

/// Runs the collector until `cancel` fires.
pub async fn run(api: Arc<Api>, cancel: CancellationToken) {
    loop {
        match run_once(api.clone(), cancel.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector restarts");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn run_once(api: Arc<Api>, cancel: CancellationToken) -> Result<(), ApiError> {
    let (queue, mut work) = mpsc::unbounded_channel::<(Work, Duration)>();
    let mut collector = Collector {
        api: api.clone(),
        nodes: HashMap::new(),
        dependents: HashMap::new(),
        queue,
    };
    let list = api
        .store()
        .list("/registry/", &ListOptions::default())
        .await?;
    for kv in &list.items {
        collector.observe(kv, true);
    }
    let mut events = api.store().watch("/registry/", list.revision).await?;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            event = events.next() => match event {
                Some(Ok(Event::Put { kv, .. })) => collector.observe(&kv, false),
                Some(Ok(Event::Delete { kv })) => collector.forget(&kv),
                Some(Ok(Event::Progress { .. })) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            Some((item, delay)) = work.recv() => {
                if delay.is_zero() {
                    collector.perform(item).await;
                } else {
                    let queue = collector.queue.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = queue.send((item, Duration::ZERO));
                    });
                }
            }
        }
    }
}

impl Collector {
    fn push(&self, work: Work, delay: Duration) {
        // The receiver lives as long as the collector.
        let _ = self.queue.send((work, delay));
    }

    fn observe(&mut self, kv: &KeyValue, initial: bool) {
        let Some(meta) = Seen::decode(&kv.value) else {
            return;
        };
        let Some(uid) = meta.uid else {
            return;
        };
        let owners = SeenOwner::uids(meta.owner_references);
        if let Some(old) = self.nodes.get(&uid) {
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(owner) {
                    set.remove(&uid);
                }
            }
        }
        for owner in &owners {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert(uid.clone());
        }
        let has_owners = !owners.is_empty();
        self.nodes.insert(
            uid.clone(),
            Node {
                key: kv.key.clone(),
                owners,
            },
        );
        if has_owners && !initial {
            self.push(Work::Dependent(uid.clone()), Duration::ZERO);
        }
        if meta.deletion_timestamp.is_some() {
            let finalizers = meta.finalizers.unwrap_or_default();
            if finalizers.iter().any(|f| f == ORPHAN) {
                self.push(Work::Orphan(uid.clone()), Duration::ZERO);
            }
            if finalizers.iter().any(|f| f == FOREGROUND) {
                self.push(Work::Foreground(uid.clone()), Duration::ZERO);
            }
            if kv.key.starts_with("/registry/namespaces/") {
                let name = meta.name.clone().unwrap_or_default();
                self.push(Work::Namespace(name), Duration::ZERO);
            }
            if kv.key.starts_with("/registry/pods/") && finalizers.is_empty() {
                let at = meta
                    .deletion_timestamp
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                let wait = at
                    .map(|t| {
                        (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds()
                    })
                    .unwrap_or(0)
                    .max(0);
                let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
                self.push(Work::Expire(kv.key.clone()), wait);
            }
        }
        if initial && has_owners {
            self.push(Work::Dependent(uid), Duration::from_millis(100));
        }
    }

    fn forget(&mut self, kv: &KeyValue) {
        let Some(uid) = Seen::decode(&kv.value).and_then(|meta| meta.uid) else {
            return;
        };
        if let Some(node) = self.nodes.remove(&uid) {
            for owner in &node.owners {
                if let Some(set) = self.dependents.get_mut(owner) {
                    set.remove(&uid);
                }
                if self.nodes.contains_key(owner) {
                    // A foreground owner waits for this dependent.
                    self.push(Work::Foreground(owner.clone()), Duration::ZERO);
                }
            }
        }
        if let Some(dependents) = self.dependents.remove(&uid) {
            for dependent in dependents {
                self.push(Work::Dependent(dependent), Duration::ZERO);
            }
        }
    }

    /// The resource type, namespace and name a key belongs to.
    fn locate(&self, key: &str) -> Option<(ResourceType, Option<String>, String)> {
        let rest = key.strip_prefix("/registry/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let catalog = self.api.catalog();
        let find = |group: &str, plural: &str| {
            catalog
                .resources()
                .iter()
                .find(|r| r.group == group && r.plural == plural)
                .cloned()
        };
        let (resource, tail) = match find("", parts.first()?) {
            Some(r) => (r, &parts[1..]),
            None => (find(parts.first()?, parts.get(1)?)?, parts.get(2..)?),
        };
        match (resource.namespaced, tail) {
            (true, [ns, name]) => Some((resource, Some((*ns).to_string()), (*name).to_string())),
            (false, [name]) => Some((resource, None, (*name).to_string())),
            _ => None,
        }
    }

    async fn perform(&mut self, work: Work) {
        let result = match &work {
            Work::Dependent(uid) => self.collect_dependent(uid).await,
            Work::Orphan(uid) => self.orphan(uid).await,
            Work::Foreground(uid) => self.foreground(uid).await,
            Work::Namespace(name) => match finish_namespace(&self.api, name).await {
                Ok(true) => Ok(()),
                Ok(false) => {
                    self.push(work.clone(), Duration::from_millis(500));
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Work::Expire(key) => self.expire(key).await,
        };
        match result {
            Ok(()) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => {
                tracing::debug!(?work, error = %e, "collector work retried");
                self.push(work, Duration::from_secs(1));
            }
        }
    }

    async fn collect_dependent(&self, uid: &str) -> Result<(), ApiError> {
        let Some(node) = self.nodes.get(uid) else {
            return Ok(());
        };
        if node.owners.is_empty() || node.owners.iter().any(|o| self.nodes.contains_key(o)) {
            return Ok(());
        }
        let Some((resource, ns, name)) = self.locate(&node.key) else {
            return Ok(());
        };
        tracing::debug!(key = %node.key, "deleting dependent of a deleted owner");
        let delete = DeleteOptions {
            uid: Some(uid.to_string()),
            propagation: Some("Background".into()),
            ..Default::default()
        };
        match self
            .api
            .delete(&resource, ns.as_deref(), &name, &delete, &options())
            .await
        {
            Ok(_) | Err(ApiError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Rewrites an object through `change`, retrying on concurrent writes.
    async fn rewrite(&self, key: &str, change: impl Fn(&mut Value)) -> Result<(), ApiError> {
        let Some((resource, _, _)) = self.locate(key) else {
            return Ok(());
        };
        for _ in 0..8 {
            let Some(kv) = self.api.store().get(key).await? else {
                return Ok(());
            };
            let mut object = objects::decode(&kv, &resource)?;
            change(&mut object);
            match self
                .api
                .write_update(&resource, &kv, object, None, &options(), UpdateMode::Retry)
                .await
            {
                Err(ApiError::Store(berth_store::StoreError::Conflict { .. })) => continue,
                other => return other.map(|_| ()),
            }
        }
        Ok(())
    }

    fn remove_finalizer(object: &mut Value, finalizer: &str) {
        let kept: Vec<String> = objects::finalizers(object)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        objects::set_finalizers(object, &kept);
    }

    async fn orphan(&self, uid: &str) -> Result<(), ApiError> {
        let dependents: Vec<String> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for dependent in dependents {
            let Some(node) = self.nodes.get(&dependent) else {
                continue;
            };
            let owner = uid.to_string();
            self.rewrite(&node.key, move |object| {
                let meta = objects::meta_mut(object);
                if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                    refs.retain(|r| r["uid"].as_str() != Some(owner.as_str()));
                    if refs.is_empty() {
                        meta.remove("ownerReferences");
                    }
                }
            })
            .await?;
        }
        let Some(node) = self.nodes.get(uid) else {
            return Ok(());
        };
        self.rewrite(&node.key, |object| Self::remove_finalizer(object, ORPHAN))
            .await
    }

    async fn foreground(&self, uid: &str) -> Result<(), ApiError> {
        let Some(owner) = self.nodes.get(uid) else {
            return Ok(());
        };
        let Some(kv) = self.api.store().get(&owner.key).await? else {
            return Ok(());
        };
        let object: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if !objects::is_deleting(&object)
            || !objects::finalizers(&object).iter().any(|f| f == FOREGROUND)
        {
            return Ok(());
        }
        let dependents: Vec<String> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if dependents.is_empty() {
            return self
                .rewrite(&owner.key, |o| Self::remove_finalizer(o, FOREGROUND))
                .await;
        }
        for dependent in dependents {
            let Some(node) = self.nodes.get(&dependent) else {
                continue;
            };
            let Some((resource, ns, name)) = self.locate(&node.key) else {
                continue;
            };
            let delete = DeleteOptions {
                propagation: Some("Foreground".into()),
                ..Default::default()
            };
            match self
                .api
                .delete(&resource, ns.as_deref(), &name, &delete, &options())
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn expire(&self, key: &str) -> Result<(), ApiError> {
        let Some((resource, _, _)) = self.locate(key) else {
            return Ok(());
        };
        let Some(kv) = self.api.store().get(key).await? else {
            return Ok(());
        };
        let object = objects::decode(&kv, &resource)?;
        if !objects::is_deleting(&object) || !objects::finalizers(&object).is_empty() {
            return Ok(());
        }
        self.api.remove(&resource, &kv, object).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_reads_only_the_collectors_metadata() {
        let value = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web", "uid": "u1", "deletionTimestamp": "2024-01-02T03:04:05Z",
                "finalizers": ["orphan"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "o1"}],
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        });
        let meta = Seen::decode(&serde_json::to_vec(&value).expect("JSON")).expect("decodes");
        assert_eq!(meta.uid.as_deref(), Some("u1"));
        assert_eq!(meta.name.as_deref(), Some("web"));
        assert_eq!(
            meta.deletion_timestamp.as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(meta.finalizers, Some(vec!["orphan".to_string()]));
        assert_eq!(SeenOwner::uids(meta.owner_references), ["o1"]);
        let live = Seen::decode(br#"{"metadata":{"uid":"u2","deletionTimestamp":null}}"#)
            .expect("decodes");
        assert!(live.deletion_timestamp.is_none());
        assert!(Seen::decode(b"not json").is_none());
    }
}
