//! `LIST` and the query parameters of list and watch: selectors, `limit`/`continue` with
//! tokens that pin the store revision of the first page, `resourceVersion`.

use base64::Engine;
use berth_store::ListOptions;
use serde_json::{Value, json};

use crate::api::Api;
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::objects;
use crate::selector::{FieldSelector, LabelSelector};

/// The list and watch parameters of a request.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit`; 0 is no limit.
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `watch=true` (or a `/watch/` path).
    pub watch: bool,
    /// `allowWatchBookmarks=true`.
    pub allow_bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
}

impl ListParams {
    /// Reads the parameters from the query (`400` for malformed selectors).
    pub fn from_query(query: &[(String, String)]) -> Result<Self, ApiError> {
        let mut params = Self::default();
        for (k, v) in query {
            match k.as_str() {
                "labelSelector" => {
                    params.labels =
                        LabelSelector::parse(v).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                }
                "fieldSelector" => {
                    params.fields =
                        FieldSelector::parse(v).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                }
                "limit" => params.limit = v.parse().unwrap_or(0),
                "continue" if !v.is_empty() => params.continue_token = Some(v.clone()),
                "resourceVersion" if !v.is_empty() => params.resource_version = Some(v.clone()),
                "resourceVersionMatch" => params.resource_version_match = Some(v.clone()),
                "watch" => params.watch = v == "true" || v == "1",
                "allowWatchBookmarks" => params.allow_bookmarks = v == "true",
                "timeoutSeconds" => params.timeout_seconds = v.parse().ok(),
                "sendInitialEvents" => params.send_initial_events = v == "true",
                _ => {}
            }
        }
        Ok(params)
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

fn encode_token(revision: i64, start: &str) -> String {
    let raw = json!({"rv": revision, "start": start}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(token: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::BadRequest(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = value["rv"].as_i64().ok_or_else(bad)?;
    let start = value["start"].as_str().ok_or_else(bad)?.to_string();
    Ok((rv, start))
}

/// The narrowest key prefix for the request: a single name or namespace when the field
/// selector pins one.
pub fn scan_prefix(
    resource: &ResourceType,
    namespace: Option<&str>,
    params: &ListParams,
) -> String {
    let namespace = namespace.or_else(|| {
        resource
            .namespaced
            .then(|| params.fields.equality("metadata.namespace"))
            .flatten()
    });
    match params.fields.equality("metadata.name") {
        Some(name) if namespace.is_some() || !resource.namespaced => {
            objects::key(resource, namespace, name)
        }
        _ => objects::list_prefix(resource, namespace),
    }
}

impl Api {
    /// `LIST`: a `<Kind>List` of the selected objects.
    pub async fn list(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Value, ApiError> {
        let prefix = scan_prefix(resource, namespace, params);
        let (mut revision, mut start_after) = match &params.continue_token {
            Some(token) => {
                let (rv, start) = decode_token(token)?;
                (Some(rv), Some(start))
            }
            None => {
                let exact = params.resource_version_match.as_deref() == Some("Exact");
                let rv = params
                    .resource_version
                    .as_deref()
                    .filter(|_| exact)
                    .and_then(|rv| rv.parse::<i64>().ok());
                (rv, None)
            }
        };
        let filtered = !params.labels.is_empty() || !params.fields.is_empty();
        let mut items = Vec::new();
        let mut more;
        let mut last_key = None;
        let list_revision;
        loop {
            let page = if params.limit == 0 {
                0
            } else if filtered {
                params.limit.max(500)
            } else {
                params.limit - items.len()
            };
            let options = ListOptions {
                limit: page,
                start_after: start_after.clone(),
                revision,
            };
            let result = self.store().list(&prefix, &options).await.map_err(|e| match e {
                berth_store::StoreError::Compacted { .. } => ApiError::Gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                ),
                other => other.into(),
            })?;
            more = result.more;
            revision.get_or_insert(result.revision);
            for kv in &result.items {
                last_key = Some(kv.key.clone());
                let object = objects::decode(kv, resource)?;
                if params.matches(&object) {
                    items.push(object);
                    if params.limit > 0 && items.len() == params.limit {
                        break;
                    }
                }
            }
            if params.limit > 0 && items.len() == params.limit {
                // Whether keys follow the last one taken.
                let taken_all = last_key.as_ref() == result.items.last().map(|kv| &kv.key);
                more = !taken_all || result.more;
                list_revision = revision.unwrap_or(result.revision);
                break;
            }
            if !more || params.limit == 0 {
                list_revision = revision.unwrap_or(result.revision);
                break;
            }
            start_after = last_key.clone();
        }
        let mut metadata = json!({"resourceVersion": list_revision.to_string()});
        if more && let Some(last) = last_key {
            metadata["continue"] = json!(encode_token(list_revision, &last));
        }
        Ok(json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_token(42, "/registry/configmaps/default/a");
        assert_eq!(
            decode_token(&token).expect("decode"),
            (42, "/registry/configmaps/default/a".to_string())
        );
        assert!(decode_token("not-a-token!").is_err());
    }
}
