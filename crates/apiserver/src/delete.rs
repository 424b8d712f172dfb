//! `DELETE` of one object and of collections: preconditions, grace periods, finalizers and
//! the propagation policies (Orphan and Foreground leave the object with a finalizer that
//! the garbage collector resolves; Background deletes now and the collector follows).

use serde_json::{Value, json};

use crate::api::{Api, WriteOptions};
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::list::ListParams;
use crate::objects::{self, meta_mut, meta_str};
use crate::registry::UpdateMode;

/// The `orphan` finalizer: dependents lose their owner reference before the owner goes.
pub const ORPHAN: &str = "orphan";
/// The `foregroundDeletion` finalizer: dependents are deleted before the owner goes.
pub const FOREGROUND: &str = "foregroundDeletion";

/// The fields of a `DeleteOptions` body (or query) the server honours.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `propagationPolicy` (`Orphan`, `Background`, `Foreground`), or the legacy
    /// `orphanDependents`.
    pub propagation: Option<String>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body; query parameters override it.
    pub fn from_parts(body: Option<&Value>, query: &[(String, String)]) -> Self {
        let mut options = Self::default();
        if let Some(body) = body {
            options.grace_period_seconds = body["gracePeriodSeconds"].as_i64();
            options.uid = body["preconditions"]["uid"].as_str().map(String::from);
            options.resource_version = body["preconditions"]["resourceVersion"]
                .as_str()
                .map(String::from);
            options.propagation = body["propagationPolicy"].as_str().map(String::from);
            if options.propagation.is_none() {
                options.propagation = match body["orphanDependents"].as_bool() {
                    Some(true) => Some("Orphan".into()),
                    Some(false) => Some("Background".into()),
                    None => None,
                };
            }
        }
        for (k, v) in query {
            match k.as_str() {
                "gracePeriodSeconds" => options.grace_period_seconds = v.parse().ok(),
                "propagationPolicy" => options.propagation = Some(v.clone()),
                "orphanDependents" if v == "true" => options.propagation = Some("Orphan".into()),
                _ => {}
            }
        }
        options
    }
}

/// The `Status` upstream answers when an object is gone at once.
pub fn success_status(resource: &ResourceType, object: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": meta_str(object, "name").unwrap_or(""),
            "group": resource.group,
            "kind": resource.plural,
            "uid": meta_str(object, "uid").unwrap_or(""),
        }
    })
}

impl Api {
    /// `DELETE` of one object; returns the object while deletion is pending (finalizers,
    /// grace period) or the success `Status` once it is gone.
    pub async fn delete(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
        write: &WriteOptions,
    ) -> Result<Value, ApiError> {
        for _ in 0..8 {
            let kv = self.current(resource, namespace, name).await?;
            let object = objects::decode(&kv, resource)?;
            let failed = |message: String| ApiError::Conflict {
                resource: objects::qualified(resource),
                name: name.to_string(),
                message,
            };
            if let Some(uid) = &options.uid {
                let actual = meta_str(&object, "uid").unwrap_or("");
                if uid != actual {
                    return Err(failed(format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    )));
                }
            }
            if let Some(rv) = &options.resource_version
                && *rv != kv.mod_revision.to_string()
            {
                return Err(failed(format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                )));
            }
            let mut finalizers = objects::finalizers(&object);
            let extra = match options.propagation.as_deref() {
                Some("Orphan") => Some(ORPHAN),
                Some("Foreground") => Some(FOREGROUND),
                _ => None,
            };
            if let Some(f) = extra
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_string());
            }
            let is_namespace = resource.group.is_empty() && resource.kind == "Namespace";
            let graceful = graceful_seconds(resource, &object, options);
            if finalizers.is_empty() && !is_namespace && graceful.is_none() {
                if write.dry_run {
                    return Ok(success_status(resource, &object));
                }
                return match self.remove(resource, &kv, object).await {
                    Ok(last) => Ok(success_status(resource, &last)),
                    Err(ApiError::Conflict { .. }) => continue,
                    Err(e) => Err(e),
                };
            }
            if objects::is_deleting(&object) && objects::finalizers(&object) == finalizers {
                return Ok(object);
            }
            let mut pending = object.clone();
            objects::set_finalizers(&mut pending, &finalizers);
            if !objects::is_deleting(&pending) {
                let grace = graceful.unwrap_or(0);
                let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
                let meta = meta_mut(&mut pending);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            match self
                .write_update(resource, &kv, pending, None, write, UpdateMode::Delete)
                .await
            {
                Ok(updated) => return Ok(updated),
                Err(ApiError::Store(berth_store::StoreError::Conflict { .. })) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::Conflict {
            resource: objects::qualified(resource),
            name: name.to_string(),
            message: "the object kept changing during deletion".into(),
        })
    }

    /// `DELETE` of a collection: deletes every object the list parameters select.
    pub async fn delete_collection(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        params: &ListParams,
        options: &DeleteOptions,
        write: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let list = self.list(resource, namespace, params).await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        for item in &items {
            let name = meta_str(item, "name").unwrap_or("");
            let ns = meta_str(item, "namespace");
            match self.delete(resource, ns, name, options, write).await {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
    }
}

/// Pods bound to a node wait their grace period (for the node agent) before they go.
fn graceful_seconds(
    resource: &ResourceType,
    object: &Value,
    options: &DeleteOptions,
) -> Option<i64> {
    if !(resource.group.is_empty() && resource.kind == "Pod") {
        return None;
    }
    let bound = object
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        object.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    let grace = options.grace_period_seconds.unwrap_or_else(|| {
        object
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    (bound && !finished && grace > 0).then_some(grace)
}
