//! The write verbs over the store: create, update (also of the `status` subresource) and
//! the common preparation of objects (system metadata, defaulting, validation, managed
//! fields). Get lives here too; list, watch, patch and delete have their own modules.

use berth_store::{KeyValue, StoreError};
use serde_json::{Value, json};

use crate::api::{Api, WriteOptions};
use crate::apply;
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::objects::{self, meta_mut, meta_str, set_meta};

fn not_found(resource: &ResourceType, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: objects::qualified(resource),
        name: name.to_string(),
    }
}

fn conflict(resource: &ResourceType, name: &str) -> ApiError {
    ApiError::Conflict {
        resource: objects::qualified(resource),
        name: name.to_string(),
        message: "the object has been modified; please apply your changes to the latest version and try again".to_string(),
    }
}

impl Api {
    /// Reads the stored key of an object, `404` when missing.
    pub async fn current(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<KeyValue, ApiError> {
        self.store()
            .get(&objects::key(resource, namespace, name))
            .await?
            .ok_or_else(|| not_found(resource, name))
    }

    /// `GET` of one object.
    pub async fn get(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let kv = self.current(resource, namespace, name).await?;
        objects::decode(&kv, resource)
    }

    /// Refuses creation in a namespace that is missing or terminating, like upstream;
    /// returns the namespace's `mod_revision` (remembered for guarded creates).
    pub async fn check_namespace(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<i64, ApiError> {
        let key = format!("/registry/namespaces/{namespace}");
        let Some(kv) = self.store().get(&key).await? else {
            return Err(ApiError::NotFound {
                resource: "namespaces".into(),
                name: namespace.into(),
            });
        };
        let ns: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if objects::is_deleting(&ns) {
            return Err(ApiError::Forbidden {
                message: format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    objects::qualified(resource)
                ),
                cause: Some("NamespaceTerminating".into()),
            });
        }
        self.set_active_namespace(namespace, Some(kv.mod_revision));
        Ok(kv.mod_revision)
    }

    /// Creates `key` in `namespace` with one store write guarded by the namespace's
    /// revision when it is known active; a guard that moved means the namespace changed
    /// (possibly now terminating), so it is checked again.
    async fn create_in_namespace(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<i64, ApiError> {
        let guard = format!("/registry/namespaces/{namespace}");
        let mut revision = match self.active_namespace(namespace) {
            Some(revision) => revision,
            None => self.check_namespace(resource, namespace, name).await?,
        };
        for _ in 0..8 {
            match self
                .store()
                .create_guarded(key, value.clone(), &guard, revision)
                .await
            {
                Err(StoreError::Conflict { key: moved, .. }) if moved == guard => {
                    self.set_active_namespace(namespace, None);
                    revision = self.check_namespace(resource, namespace, name).await?;
                }
                Err(StoreError::AlreadyExists(_)) => {
                    return Err(ApiError::AlreadyExists {
                        resource: objects::qualified(resource),
                        name: name.to_string(),
                    });
                }
                other => return other.map_err(ApiError::from),
            }
        }
        Err(ApiError::Conflict {
            resource: objects::qualified(resource),
            name: name.to_string(),
            message: "the namespace keeps changing; try again".into(),
        })
    }

    /// Defaulting, pruning and validation through the catalog (`422` on failure).
    pub fn admit(
        &self,
        resource: &ResourceType,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let causes = {
            let catalog = self.catalog();
            catalog.prune(resource, object);
            catalog.default_object(resource, object);
            catalog.validate(resource, object, old)
        };
        if causes.is_empty() {
            return Ok(());
        }
        Err(ApiError::Invalid {
            kind: resource.kind.clone(),
            name: meta_str(object, "name").unwrap_or("").to_string(),
            group: resource.group.clone(),
            causes,
        })
    }

    /// `POST`: creates an object in `namespace` (the body's namespace must match).
    pub async fn create(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        mut object: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        check_type(resource, &object)?;
        if !object.is_object() {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        }
        let body_ns = meta_str(&object, "namespace").unwrap_or("").to_string();
        if resource.namespaced {
            let ns = namespace.unwrap_or("");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            set_meta(&mut object, "namespace", Value::String(ns.to_string()));
        } else {
            meta_mut(&mut object).remove("namespace");
        }
        let name = match meta_str(&object, "name").filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => match meta_str(&object, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => objects::generate_name(prefix),
                None => {
                    return Err(ApiError::Invalid {
                        kind: resource.kind.clone(),
                        name: String::new(),
                        group: resource.group.clone(),
                        causes: vec![crate::catalog::Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    });
                }
            },
        };
        {
            let meta = meta_mut(&mut object);
            meta.insert("name".into(), Value::String(name.clone()));
            meta.insert(
                "uid".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            meta.insert(
                "creationTimestamp".into(),
                Value::String(objects::now_rfc3339()),
            );
            meta.insert("generation".into(), json!(1));
            for field in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(field);
            }
            if !options.apply {
                meta.remove("managedFields");
            }
        }
        if resource.status_subresource
            && let Value::Object(map) = &mut object
        {
            map.remove("status");
            if resource.group.is_empty() && resource.kind == "Pod" {
                map.insert("status".into(), json!({"phase": "Pending"}));
            }
        }
        if resource.group.is_empty() && resource.kind == "Namespace" {
            prepare_namespace(&mut object);
        }
        self.admit(resource, &mut object, None)?;
        if !options.apply {
            let catalog = self.catalog();
            let keys = |p: &[&str]| catalog.patch_merge_key(resource, p);
            apply::record_update(
                None,
                &mut object,
                &options.field_manager,
                &resource.api_version(),
                None,
                &keys,
            );
        }
        if resource.namespaced && self.active_namespace(namespace.unwrap_or("")).is_none() {
            let ns = namespace.unwrap_or("");
            self.check_namespace(resource, ns, &name).await?;
        }
        if resource.kind == "CustomResourceDefinition" && !options.dry_run {
            self.register_crd(&mut object)?;
        }
        if options.dry_run {
            return Ok(object);
        }
        let key = objects::key(resource, namespace, &name);
        let value = objects::encode(&object)?;
        let revision = if resource.namespaced {
            let ns = namespace.unwrap_or("");
            self.create_in_namespace(resource, ns, &name, &key, value)
                .await?
        } else {
            match self.store().create(&key, value).await {
                Ok(revision) => revision,
                Err(StoreError::AlreadyExists(_)) => {
                    return Err(ApiError::AlreadyExists {
                        resource: objects::qualified(resource),
                        name,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };
        tracing::debug!(key = %key, revision, "created");
        objects::finish(&mut object, resource, revision);
        Ok(object)
    }

    /// `PUT`: replaces an object (or only its status with `subresource` = `status`).
    pub async fn update(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        object: Value,
        subresource: Option<&str>,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        check_type(resource, &object)?;
        if let Some(body_name) = meta_str(&object, "name")
            && body_name != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let kv = self.current(resource, namespace, name).await?;
        if let Some(rv) = meta_str(&object, "resourceVersion").filter(|rv| !rv.is_empty())
            && rv != kv.mod_revision.to_string()
        {
            return Err(conflict(resource, name));
        }
        self.write_update(
            resource,
            &kv,
            object,
            subresource,
            options,
            UpdateMode::Client,
        )
        .await
    }

    /// Turns a requested new state into the stored one (system metadata kept, status or
    /// spec taken from the right side, generation, admission) and writes it only if the key
    /// is still at `kv`'s revision. A store conflict is `409` for [`UpdateMode::Client`],
    /// otherwise [`ApiError::Store`] with a conflict so the caller can retry.
    pub async fn write_update(
        &self,
        resource: &ResourceType,
        kv: &KeyValue,
        requested: Value,
        subresource: Option<&str>,
        options: &WriteOptions,
        mode: UpdateMode,
    ) -> Result<Value, ApiError> {
        let old = objects::decode(kv, resource)?;
        let name = meta_str(&old, "name").unwrap_or("").to_string();
        let mut new = match subresource {
            Some("status") => {
                let mut new = old.clone();
                if let Value::Object(map) = &mut new {
                    match requested.get("status") {
                        Some(status) => map.insert("status".into(), status.clone()),
                        None => map.remove("status"),
                    };
                }
                new
            }
            _ => {
                let mut new = requested;
                if resource.status_subresource
                    && let Value::Object(map) = &mut new
                {
                    match old.get("status") {
                        Some(status) => map.insert("status".into(), status.clone()),
                        None => map.remove("status"),
                    };
                }
                new
            }
        };
        {
            let old_meta = old.get("metadata").cloned().unwrap_or(Value::Null);
            let meta = meta_mut(&mut new);
            let mut system = vec![
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "generation",
            ];
            if mode != UpdateMode::Delete || objects::is_deleting(&old) {
                system.extend(["deletionTimestamp", "deletionGracePeriodSeconds"]);
            }
            for field in system {
                match old_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            meta.remove("resourceVersion");
            if objects::is_deleting(&old) {
                // Finalizers can only be removed from an object being deleted.
                let old_finalizers = old_meta.get("finalizers").cloned();
                if let (Some(Value::Array(now)), Some(Value::Array(before))) =
                    (meta.get("finalizers").cloned(), old_finalizers)
                {
                    let kept: Vec<Value> = now.into_iter().filter(|f| before.contains(f)).collect();
                    meta.insert("finalizers".into(), Value::Array(kept));
                }
            }
        }
        if objects::spec_part(&old) != objects::spec_part(&new) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut new, "generation", json!(generation + 1));
        }
        if resource.group.is_empty() && resource.kind == "Namespace" {
            prepare_namespace(&mut new);
        }
        self.admit(resource, &mut new, Some(&old))?;
        let mut old_for_fields = old.clone();
        meta_mut(&mut old_for_fields).remove("resourceVersion");
        if !options.apply {
            let catalog = self.catalog();
            let keys = |p: &[&str]| catalog.patch_merge_key(resource, p);
            apply::record_update(
                Some(&old_for_fields),
                &mut new,
                &options.field_manager,
                &resource.api_version(),
                subresource,
                &keys,
            );
        }
        if resource.kind == "CustomResourceDefinition" && !options.dry_run {
            self.register_crd(&mut new)?;
        }
        if options.dry_run {
            objects::finish(&mut new, resource, kv.mod_revision);
            return Ok(new);
        }
        let namespace_finalizers = new
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
            && resource.group.is_empty()
            && resource.kind == "Namespace";
        if objects::is_deleting(&new)
            && objects::finalizers(&new).is_empty()
            && !namespace_finalizers
        {
            // The last finalizer is gone: the deletion completes now.
            return self.remove(resource, kv, new).await;
        }
        let unchanged = {
            let mut a = old_for_fields;
            let mut b = new.clone();
            strip_volatile(&mut a);
            strip_volatile(&mut b);
            a == b
        };
        if unchanged {
            // Upstream does not write (nor bump resourceVersion) for a no-op update.
            return Ok(old);
        }
        let revision = match self
            .store()
            .update(&kv.key, objects::encode(&new)?, Some(kv.mod_revision))
            .await
        {
            Ok(revision) => revision,
            Err(StoreError::Conflict { .. }) if mode == UpdateMode::Client => {
                return Err(conflict(resource, &name));
            }
            Err(StoreError::NotFound(_)) => return Err(not_found(resource, &name)),
            Err(e) => return Err(ApiError::Store(e)),
        };
        objects::finish(&mut new, resource, revision);
        Ok(new)
    }

    /// Deletes the key now (no finalizers left) and runs the after-delete hooks.
    pub async fn remove(
        &self,
        resource: &ResourceType,
        kv: &KeyValue,
        mut last: Value,
    ) -> Result<Value, ApiError> {
        let name = meta_str(&last, "name").unwrap_or("").to_string();
        let revision = match self.store().delete(&kv.key, Some(kv.mod_revision)).await {
            Ok((revision, _)) => revision,
            Err(StoreError::Conflict { .. }) => return Err(conflict(resource, &name)),
            Err(StoreError::NotFound(_)) => return Err(not_found(resource, &name)),
            Err(e) => return Err(e.into()),
        };
        tracing::debug!(key = %kv.key, revision, "deleted");
        if resource.kind == "CustomResourceDefinition" {
            self.unregister_crd(&last).await;
        }
        objects::finish(&mut last, resource, revision);
        Ok(last)
    }
}

/// Who asks for an update, which decides how conflicts surface and what may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// A client's `PUT`: a stale revision is `409 Conflict`.
    Client,
    /// A patch or a background task: a stale revision is returned for a retry.
    Retry,
    /// A deletion: may set `deletionTimestamp`; stale revisions are retried.
    Delete,
}

/// `managedFields` timestamps change on every write; they do not make an update real.
fn strip_volatile(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
}

/// A namespace always has the `kubernetes` finalizer and a phase.
fn prepare_namespace(object: &mut Value) {
    let deleting = objects::is_deleting(object);
    if let Value::Object(map) = object {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Value::Object(spec) = spec
            && !spec.contains_key("finalizers")
            && !deleting
        {
            spec.insert("finalizers".into(), json!(["kubernetes"]));
        }
        let phase = if deleting { "Terminating" } else { "Active" };
        let status = map.entry("status").or_insert_with(|| json!({}));
        if let Value::Object(status) = status {
            status.insert("phase".into(), json!(phase));
        }
    }
}

/// The body's `apiVersion`/`kind`, when given, must be the resource's.
pub fn check_type(resource: &ResourceType, object: &Value) -> Result<(), ApiError> {
    if let Some(kind) = object.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != resource.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str)
        && !api_version.is_empty()
    {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group != resource.group {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                resource.api_version()
            )));
        }
    }
    Ok(())
}
