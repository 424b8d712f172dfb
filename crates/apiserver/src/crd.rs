//! CustomResourceDefinitions: storing one serves its resources (through
//! [`Catalog::add_crd`](crate::catalog::Catalog::add_crd)) and sets its status conditions;
//! deleting one stops serving them and deletes its custom objects. At start, every stored
//! CRD is served again.

use berth_store::ListOptions;
use serde_json::{Value, json};

use crate::api::Api;
use crate::error::ApiError;
use crate::objects::{self, meta_str};

/// Where CRDs are stored.
const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

fn condition(kind: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message})
}

impl Api {
    /// Serves a CRD about to be stored and sets its status (`NamesAccepted`, `Established`).
    pub fn register_crd(&self, crd: &mut Value) -> Result<(), ApiError> {
        let result = self.catalog_mut().add_crd(crd);
        if let Err(causes) = result {
            return Err(ApiError::Invalid {
                kind: "CustomResourceDefinition".into(),
                name: meta_str(crd, "name").unwrap_or("").to_string(),
                group: "apiextensions.k8s.io".into(),
                causes,
            });
        }
        let now = objects::now_rfc3339();
        let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let stored: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|v| v["storage"].as_bool() == Some(true))
                    .map(|v| v["name"].clone())
                    .collect()
            })
            .unwrap_or_default();
        if let Value::Object(map) = crd {
            map.insert(
                "status".into(),
                json!({
                    "conditions": [
                        condition("NamesAccepted", "NoConflicts", "no conflicts found", &now),
                        condition("Established", "InitialNamesAccepted", "the initial names have been accepted", &now),
                    ],
                    "acceptedNames": names,
                    "storedVersions": stored,
                }),
            );
        }
        Ok(())
    }

    /// Stops serving a deleted CRD and deletes its custom objects.
    pub async fn unregister_crd(&self, crd: &Value) {
        let name = meta_str(crd, "name").unwrap_or("").to_string();
        self.catalog_mut().remove_crd(&name);
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("");
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        if group.is_empty() || plural.is_empty() {
            return;
        }
        let prefix = format!("/registry/{group}/{plural}/");
        match self.store().list(&prefix, &ListOptions::default()).await {
            Ok(list) => {
                for kv in list.items {
                    if let Err(e) = self.store().delete(&kv.key, None).await {
                        tracing::warn!(key = %kv.key, error = %e, "deleting a custom object failed");
                    }
                }
            }
            Err(e) => tracing::warn!(crd = %name, error = %e, "listing custom objects failed"),
        }
    }

    /// Serves every stored CRD (at start).
    pub async fn load_crds(&self) -> Result<(), ApiError> {
        let list = self
            .store()
            .list(CRD_PREFIX, &ListOptions::default())
            .await?;
        for kv in list.items {
            let Ok(crd) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if let Err(causes) = self.catalog_mut().add_crd(&crd) {
                tracing::warn!(key = %kv.key, ?causes, "stored CRD is not served");
            }
        }
        Ok(())
    }
}
