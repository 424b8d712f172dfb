//! The `PATCH` verb (JSON, merge, strategic merge, server-side apply) with retries on
//! concurrent writes, and the `scale` subresource (autoscaling/v1 `Scale`).

use berth_store::StoreError;
use serde_json::{Value, json};

use crate::api::{Api, WriteOptions};
use crate::apply;
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::fields::FieldSource;
use crate::objects::{self, meta_str};
use crate::patch::{self, PatchError, PatchType, strategic};
use crate::registry::UpdateMode;
use crate::selector::LabelSelector;

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::Malformed(m) => ApiError::BadRequest(m),
        other => ApiError::Invalid {
            kind: String::new(),
            name: String::new(),
            group: String::new(),
            causes: vec![crate::catalog::Cause {
                reason: "FieldValueInvalid".into(),
                message: other.to_string(),
                field: String::new(),
            }],
        },
    }
}

/// The `Scale` view of an object with a scale subresource.
pub fn scale_of(resource: &ResourceType, object: &Value) -> Result<Value, ApiError> {
    let Some(scale) = &resource.scale_subresource else {
        return Err(ApiError::NotFound {
            resource: objects::qualified(resource),
            name: String::new(),
        });
    };
    let replicas = objects::read_path(object, &scale.spec_replicas_path)
        .cloned()
        .unwrap_or(json!(0));
    let status_replicas = objects::read_path(object, &scale.status_replicas_path)
        .cloned()
        .unwrap_or(json!(0));
    let selector = scale
        .label_selector_path
        .as_deref()
        .and_then(|p| objects::read_path(object, p))
        .or_else(|| objects::read_path(object, ".spec.selector"))
        .map(|s| match s {
            Value::String(text) => text.clone(),
            other => LabelSelector::from_object(other).to_text(),
        });
    let meta = object.get("metadata").cloned().unwrap_or(json!({}));
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(field) {
            metadata[field] = v.clone();
        }
    }
    let mut status = json!({"replicas": status_replicas});
    if let Some(selector) = selector {
        status["selector"] = json!(selector);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": replicas},
        "status": status,
    }))
}

/// The object with the replicas of a `Scale` written into it.
fn with_scale(resource: &ResourceType, object: &Value, scale: &Value) -> Result<Value, ApiError> {
    let Some(sub) = &resource.scale_subresource else {
        return Err(ApiError::MethodNotAllowed);
    };
    let replicas = scale
        .pointer("/spec/replicas")
        .cloned()
        .filter(Value::is_i64)
        .ok_or_else(|| ApiError::BadRequest("Scale spec.replicas must be an integer".into()))?;
    if replicas.as_i64().unwrap_or(0) < 0 {
        return Err(ApiError::Invalid {
            kind: "Scale".into(),
            name: meta_str(object, "name").unwrap_or("").into(),
            group: "autoscaling".into(),
            causes: vec![crate::catalog::Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            }],
        });
    }
    let mut new = object.clone();
    objects::write_path(&mut new, &sub.spec_replicas_path, replicas);
    Ok(new)
}

impl Api {
    /// `PATCH` of an object, its `status` or its `scale`.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        subresource: Option<&str>,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let document: Value = match patch_type {
            PatchType::Apply => serde_yaml::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?,
            _ => serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?,
        };
        if patch_type == PatchType::Strategic && resource.custom {
            return Err(ApiError::UnsupportedMediaType);
        }
        if patch_type == PatchType::Apply {
            crate::registry::check_type(resource, &document)?;
            if document.get("kind").is_none() || document.get("apiVersion").is_none() {
                return Err(ApiError::BadRequest(
                    "apiVersion and kind must be set in an apply patch".into(),
                ));
            }
        }
        if patch_type == PatchType::Apply && subresource.is_none() {
            self.check_fields(resource, &document, options, FieldSource::Apply)?;
        }
        let key = objects::key(resource, namespace, name);
        for attempt in 0..16 {
            let Some(kv) = self.store().get(&key).await? else {
                if patch_type != PatchType::Apply || subresource.is_some() {
                    return Err(ApiError::NotFound {
                        resource: objects::qualified(resource),
                        name: name.to_string(),
                    });
                }
                let created = {
                    let catalog = self.catalog();
                    let keys = |p: &[&str]| catalog.patch_merge_key(resource, p);
                    apply::server_side_apply(
                        None,
                        &document,
                        &options.field_manager,
                        &resource.api_version(),
                        options.force,
                        &keys,
                    )?
                };
                let mut created = created;
                objects::set_meta(&mut created, "name", json!(name));
                let apply_options = WriteOptions {
                    apply: true,
                    ..options.clone()
                };
                match self
                    .create(resource, namespace, created, &apply_options)
                    .await
                {
                    Err(ApiError::AlreadyExists { .. }) => continue,
                    other => return other,
                }
            };
            let old = objects::decode(&kv, resource)?;
            let mut write_options = options.clone();
            let (new, write_sub) = if subresource == Some("scale") {
                let mut scale = scale_of(resource, &old)?;
                self.apply_patch(resource, &mut scale, &document, patch_type)?;
                (with_scale(resource, &old, &scale)?, None)
            } else if patch_type == PatchType::Apply {
                write_options.apply = true;
                let catalog = self.catalog();
                let keys = |p: &[&str]| catalog.patch_merge_key(resource, p);
                let new = apply::server_side_apply(
                    Some(&old),
                    &document,
                    &options.field_manager,
                    &resource.api_version(),
                    options.force,
                    &keys,
                )?;
                (new, subresource)
            } else {
                let mut new = old.clone();
                self.apply_patch(resource, &mut new, &document, patch_type)?;
                if attempt == 0 && subresource != Some("scale") {
                    self.check_fields(resource, &new, options, FieldSource::Patch(body))?;
                }
                (new, subresource)
            };
            if let Some(rv) = meta_str(&new, "resourceVersion")
                && rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::Conflict {
                    resource: objects::qualified(resource),
                    name: name.to_string(),
                    message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                });
            }
            match self
                .write_update(
                    resource,
                    &kv,
                    new,
                    write_sub,
                    &write_options,
                    UpdateMode::Retry,
                )
                .await
            {
                Err(ApiError::Store(StoreError::Conflict { .. })) => continue,
                Ok(written) if subresource == Some("scale") => return scale_of(resource, &written),
                other => return other,
            }
        }
        Err(ApiError::Conflict {
            resource: objects::qualified(resource),
            name: name.to_string(),
            message: "too many concurrent writes; try again".into(),
        })
    }

    fn apply_patch(
        &self,
        resource: &ResourceType,
        target: &mut Value,
        document: &Value,
        patch_type: PatchType,
    ) -> Result<(), ApiError> {
        match patch_type {
            PatchType::Json => patch::json_patch(target, document).map_err(patch_error),
            PatchType::Merge | PatchType::Apply => {
                patch::merge_patch(target, document);
                Ok(())
            }
            PatchType::Strategic => {
                let catalog = self.catalog();
                let keys = |p: &[&str]| catalog.patch_merge_key(resource, p);
                strategic::apply(target, document, &keys).map_err(patch_error)
            }
        }
    }

    /// `PUT` of the `scale` subresource.
    pub async fn update_scale(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        scale: &Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let kv = self.current(resource, namespace, name).await?;
        if let Some(rv) = meta_str(scale, "resourceVersion").filter(|rv| !rv.is_empty())
            && rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::Conflict {
                resource: objects::qualified(resource),
                name: name.to_string(),
                message: "the object has been modified; please apply your changes to the latest version and try again".into(),
            });
        }
        let old = objects::decode(&kv, resource)?;
        let new = with_scale(resource, &old, scale)?;
        let written = self
            .write_update(resource, &kv, new, None, options, UpdateMode::Client)
            .await?;
        scale_of(resource, &written)
    }
}
