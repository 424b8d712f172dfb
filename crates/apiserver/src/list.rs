//! `LIST` and the query parameters of list and watch: selectors, `limit`/`continue` with
//! tokens that pin the store revision of the first page, `resourceVersion`.

use base64::Engine;
use berth_store::{KeyValue, ListOptions};
use serde_json::{Value, json};

use crate::api::Api;
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::objects;
use crate::selector::{FieldSelector, LabelSelector};
use crate::wire::{self, Served};

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

/// The objects a list selected, as stored, with the list's revision and continue token.
#[derive(Debug)]
pub struct ListPage {
    /// The selected keys in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list was read at (its `resourceVersion`).
    pub revision: i64,
    /// `metadata.continue` when more objects follow.
    pub continue_token: Option<String>,
}

impl ListPage {
    fn metadata(&self) -> Value {
        let mut metadata = json!({"resourceVersion": self.revision.to_string()});
        if let Some(token) = &self.continue_token {
            metadata["continue"] = json!(token);
        }
        metadata
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
        let page = self.list_page(resource, namespace, params).await?;
        let metadata = page.metadata();
        let items = page
            .items
            .iter()
            .map(|kv| objects::decode(kv, resource))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// `LIST` answered as JSON bytes: the same document as [`Api::list`] serialized, but
    /// written from the stored bytes (see [`crate::wire`]); objects are parsed only to
    /// apply selectors.
    pub async fn list_json(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Vec<u8>, ApiError> {
        let page = self.list_page(resource, namespace, params).await?;
        let metadata = page.metadata();
        let api_version = resource.api_version();
        let served = Served {
            api_version: &api_version,
            kind: &resource.kind,
        };
        let size: usize = page.items.iter().map(|kv| kv.value.len() + 64).sum();
        let mut out = Vec::with_capacity(size + 256);
        out.extend_from_slice(b"{\"kind\":");
        serde_json::to_writer(&mut out, &format!("{}List", resource.kind))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        out.extend_from_slice(b",\"apiVersion\":");
        serde_json::to_writer(&mut out, &api_version)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        out.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(&mut out, &metadata)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        out.extend_from_slice(b",\"items\":[");
        for (i, kv) in page.items.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if !wire::write_served(&mut out, &kv.value, served, kv.mod_revision) {
                let object = objects::decode(&kv, resource)?;
                serde_json::to_writer(&mut out, &object)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    /// Reads the keys a list selects: pages of the store (at the revision of the first one)
    /// until `limit` objects passed the selectors or the keys end.
    pub async fn list_page(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ListPage, ApiError> {
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
            let page_last = result.items.last().map(|kv| kv.key.clone());
            for kv in result.items {
                last_key = Some(kv.key.clone());
                // Objects are parsed only when a selector has to look into them.
                if !filtered || params.matches(&objects::decode(&kv, resource)?) {
                    items.push(kv);
                    if params.limit > 0 && items.len() == params.limit {
                        break;
                    }
                }
            }
            if params.limit > 0 && items.len() == params.limit {
                // Whether keys follow the last one taken.
                let taken_all = last_key == page_last;
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
        let continue_token = match (more, last_key) {
            (true, Some(last)) => Some(encode_token(list_revision, &last)),
            _ => None,
        };
        Ok(ListPage {
            items,
            revision: list_revision,
            continue_token,
        })
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
