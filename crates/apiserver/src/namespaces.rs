//! Namespace lifecycle: the four namespaces that always exist, and the cleanup of a deleted
//! namespace (delete its contents, wait until they are gone, then remove it).

use std::sync::Arc;

use berth_store::ListOptions;
use serde_json::{Value, json};

use crate::api::{Api, WriteOptions};
use crate::delete::DeleteOptions;
use crate::error::ApiError;
use crate::objects;
use crate::registry::UpdateMode;

/// Namespaces created at start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The field manager of the server's own writes.
pub const SERVER_MANAGER: &str = "berth-apiserver";

/// Creates the system namespaces that are missing.
pub async fn ensure_system_namespaces(api: &Api) -> Result<(), ApiError> {
    let Some(resource) = api.resource("", "v1", "namespaces") else {
        tracing::warn!("the catalog serves no namespaces; system namespaces not created");
        return Ok(());
    };
    let options = WriteOptions {
        field_manager: SERVER_MANAGER.into(),
        ..Default::default()
    };
    for name in SYSTEM_NAMESPACES {
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match api.create(&resource, None, object, &options).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes the contents of a terminating namespace; once nothing is left, removes it.
/// Returns whether the namespace is gone (otherwise the caller retries later).
pub async fn finish_namespace(api: &Arc<Api>, name: &str) -> Result<bool, ApiError> {
    let Some(ns_resource) = api.resource("", "v1", "namespaces") else {
        return Ok(true);
    };
    let Some(kv) = api
        .store()
        .get(&format!("/registry/namespaces/{name}"))
        .await?
    else {
        return Ok(true);
    };
    let namespace = objects::decode(&kv, &ns_resource)?;
    if !objects::is_deleting(&namespace) {
        return Ok(true);
    }
    let options = WriteOptions {
        field_manager: SERVER_MANAGER.into(),
        ..Default::default()
    };
    let mut remaining = 0usize;
    for resource in api.stored_resources(true) {
        let prefix = objects::list_prefix(&resource, Some(name));
        let list = api.store().list(&prefix, &ListOptions::default()).await?;
        for kv in &list.items {
            remaining += 1;
            let Ok(object) = objects::decode(kv, &resource) else {
                continue;
            };
            if objects::is_deleting(&object) {
                continue;
            }
            let object_name = objects::meta_str(&object, "name").unwrap_or("").to_string();
            let delete = DeleteOptions {
                grace_period_seconds: Some(0),
                propagation: Some("Background".into()),
                ..Default::default()
            };
            match api
                .delete(&resource, Some(name), &object_name, &delete, &options)
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(namespace = name, object = %object_name, error = %e, "namespace cleanup failed")
                }
            }
        }
    }
    if remaining > 0 {
        // Deleted now or pending finalizers: check again on the next pass.
        let left: i64 = {
            let mut n = 0;
            for resource in api.stored_resources(true) {
                n += api
                    .store()
                    .count(&objects::list_prefix(&resource, Some(name)))
                    .await?;
            }
            n
        };
        if left > 0 {
            return Ok(false);
        }
    }
    let mut finished = namespace.clone();
    if let Some(spec) = finished.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("finalizers".into(), json!([]));
    }
    match api
        .write_update(
            &ns_resource,
            &kv,
            finished,
            None,
            &options,
            UpdateMode::Retry,
        )
        .await
    {
        Ok(_) => {}
        Err(ApiError::NotFound { .. }) => return Ok(true),
        Err(ApiError::Store(berth_store::StoreError::Conflict { .. })) => return Ok(false),
        Err(e) => return Err(e),
    }
    // With spec and metadata finalizers empty the update removed the namespace, unless
    // other metadata finalizers hold it.
    Ok(api.store().get(&kv.key).await?.is_none())
}
