//! Routing of authenticated requests: health and version, discovery, OpenAPI, and the REST
//! verbs on resource paths (`/api/v1/namespaces/<ns>/<plural>/<name>/<subresource>`).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use hyper::body::Frame;
use hyper::{Method, Request, Response, header};
use serde_json::{Value, json};

use crate::api::{Api, WriteOptions};
use crate::catalog::ResourceType;
use crate::delete::DeleteOptions;
use crate::discovery;
use crate::error::ApiError;
use crate::fields::FieldSource;
use crate::http::{self, Body, Representation};
use crate::list::ListParams;
use crate::patch::PatchType;
use crate::patching::scale_of;
use crate::table;
use crate::watch::{WatchEvent, WatchFormat};

/// The Kubernetes version the server reports.
const KUBE_MINOR: &str = "32";

/// A parsed resource path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePath {
    /// Group (empty for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace of the path, if any.
    pub namespace: Option<String>,
    /// Resource plural.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `finalize`).
    pub subresource: Option<String>,
    /// A legacy `/watch/` path.
    pub watch: bool,
}

/// Parses `/api/v1/...` and `/apis/<g>/<v>/...` resource paths.
pub fn parse_resource_path(path: &str) -> Option<ResourcePath> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return None,
    };
    let mut rest = rest.to_vec();
    let mut parsed = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        ..Default::default()
    };
    if rest.first() == Some(&"watch") {
        parsed.watch = true;
        rest.remove(0);
    }
    let is_namespace_itself = group.is_empty()
        && rest.first() == Some(&"namespaces")
        && (rest.len() <= 2 || (rest.len() == 3 && matches!(rest[2], "status" | "finalize")));
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 && !is_namespace_itself {
        parsed.namespace = Some(rest[1].to_string());
        rest.drain(..2);
    }
    let mut it = rest.into_iter();
    parsed.plural = it.next()?.to_string();
    parsed.name = it.next().map(String::from);
    parsed.subresource = it.next().map(String::from);
    if it.next().is_some() || parsed.name.as_deref() == Some("") {
        return None;
    }
    Some(parsed)
}

/// Static facts about the running server used in responses.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `host:port` clients reach the server at.
    pub address: String,
}

fn header_str(req: &Request<hyper::body::Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Handles one authenticated request.
pub async fn handle(
    api: Arc<Api>,
    info: Arc<ServerInfo>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    match route(&api, &info, req).await {
        Ok(response) => response,
        Err(e) => http::error_response(&e),
    }
}

fn ok_text() -> Response<Body> {
    http::raw_response(200, "text/plain; charset=utf-8", b"ok".to_vec())
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-berth.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

async fn route(
    api: &Arc<Api>,
    info: &ServerInfo,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let accept = header_str(&req, header::ACCEPT).map(String::from);
    match path.trim_end_matches('/') {
        "/healthz" | "/livez" | "/readyz" => return Ok(ok_text()),
        p if p.starts_with("/healthz/")
            || p.starts_with("/livez/")
            || p.starts_with("/readyz/") =>
        {
            return Ok(ok_text());
        }
        "/version" => return Ok(http::json_response(200, &version())),
        "/api" | "/apis" => {
            let core = path.trim_end_matches('/') == "/api";
            if let Some(v) = discovery::wants_aggregated(accept.as_deref()) {
                let api_version = format!("apidiscovery.k8s.io/{v}");
                let doc = discovery::aggregated(&api.catalog(), core, &api_version);
                let content_type = format!(
                    "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
                );
                return Ok(http::raw_response(
                    200,
                    &content_type,
                    serde_json::to_vec(&doc).unwrap_or_default(),
                ));
            }
            let doc = if core {
                discovery::core_versions(&info.address)
            } else {
                discovery::group_list(&api.catalog())
            };
            return Ok(http::json_response(200, &doc));
        }
        "/openapi/v2" => {
            let accepts_json = accept
                .as_deref()
                .is_none_or(|a| a.contains("json") || a.contains("*/*"));
            if !accepts_json {
                return Err(ApiError::NotAcceptable("application/json".into()));
            }
            let doc = api.catalog().openapi_v2();
            return Ok(http::raw_response(200, "application/json", doc));
        }
        "/openapi/v3" => {
            let index = api.catalog().openapi_v3_index();
            return Ok(http::json_response(200, &index));
        }
        _ => {}
    }
    if let Some(doc_path) = path.strip_prefix("/openapi/v3/") {
        let doc = api.catalog().openapi_v3(doc_path);
        return match doc {
            Some(doc) => Ok(http::raw_response(200, "application/json", doc)),
            None => Err(ApiError::NotFound {
                resource: String::new(),
                name: String::new(),
            }),
        };
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", version] => {
            let doc = discovery::resource_list(&api.catalog(), "", version);
            return doc
                .map(|d| http::json_response(200, &d))
                .ok_or(ApiError::NotFound {
                    resource: String::new(),
                    name: String::new(),
                });
        }
        ["apis", group] => {
            let doc = discovery::group(&api.catalog(), group);
            return doc
                .map(|d| http::json_response(200, &d))
                .ok_or(ApiError::NotFound {
                    resource: String::new(),
                    name: String::new(),
                });
        }
        ["apis", group, version] => {
            let doc = discovery::resource_list(&api.catalog(), group, version);
            return doc
                .map(|d| http::json_response(200, &d))
                .ok_or(ApiError::NotFound {
                    resource: String::new(),
                    name: String::new(),
                });
        }
        _ => {}
    }
    let Some(target) = parse_resource_path(&path) else {
        return Err(ApiError::NotFound {
            resource: String::new(),
            name: String::new(),
        });
    };
    let Some(resource) = api.resource(&target.group, &target.version, &target.plural) else {
        return Err(ApiError::NotFound {
            resource: String::new(),
            name: String::new(),
        });
    };
    if !resource.namespaced && target.namespace.is_some() {
        return Err(ApiError::NotFound {
            resource: String::new(),
            name: String::new(),
        });
    }
    resource_request(api, &resource, target, req, accept.as_deref()).await
}

fn write_options(query: &[(String, String)], user_agent: Option<&str>) -> WriteOptions {
    let manager = http::query_value(query, "fieldManager")
        .map(String::from)
        .unwrap_or_else(|| {
            user_agent
                .and_then(|ua| ua.split('/').next())
                .unwrap_or("")
                .to_string()
        });
    WriteOptions {
        dry_run: http::query_value(query, "dryRun") == Some("All"),
        field_manager: manager,
        force: http::query_value(query, "force") == Some("true"),
        apply: false,
        field_validation: crate::api::FieldValidation::parse(http::query_value(
            query,
            "fieldValidation",
        )),
        warnings: Default::default(),
    }
}

fn represent(
    api: &Api,
    resource: &ResourceType,
    representation: Representation,
    value: &Value,
    include_object: Option<&str>,
) -> Value {
    let is_list = value.get("items").is_some_and(Value::is_array);
    match representation {
        Representation::Table if value["kind"] != "Status" => {
            let objects: Vec<Value> = if is_list {
                value["items"].as_array().cloned().unwrap_or_default()
            } else {
                vec![value.clone()]
            };
            let metadata = if is_list {
                value["metadata"].clone()
            } else {
                json!({"resourceVersion": value.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""))})
            };
            table::table(&api.catalog(), resource, &objects, metadata, include_object)
        }
        Representation::Metadata if is_list => table::partial_metadata_list(value),
        Representation::Metadata if value["kind"] != "Status" => table::partial_metadata(value),
        _ => value.clone(),
    }
}

fn respond(representation: Representation, code: u16, value: &Value) -> Response<Body> {
    if representation == Representation::Yaml {
        let text = serde_yaml::to_string(value).unwrap_or_default();
        return http::raw_response(code, "application/yaml", text.into_bytes());
    }
    http::json_response(code, value)
}

async fn resource_request(
    api: &Arc<Api>,
    resource: &ResourceType,
    target: ResourcePath,
    req: Request<hyper::body::Incoming>,
    accept: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let query = http::parse_query(req.uri().query());
    let content_type = header_str(&req, header::CONTENT_TYPE).map(String::from);
    let user_agent = header_str(&req, header::USER_AGENT).map(String::from);
    let representation = http::negotiate(accept)?;
    let include_object = http::query_value(&query, "includeObject").map(String::from);
    let options = write_options(&query, user_agent.as_deref());
    let warnings = options.warnings.clone();
    let ns = target.namespace.as_deref();
    let sub = target.subresource.as_deref();
    if let Some(sub) = sub {
        let allowed = match sub {
            "status" => resource.status_subresource,
            "scale" => resource.scale_subresource.is_some(),
            "finalize" => resource.kind == "Namespace" && resource.group.is_empty(),
            "token" => resource.kind == "ServiceAccount" && resource.group.is_empty(),
            _ => false,
        };
        if !allowed {
            return Err(ApiError::NotFound {
                resource: String::new(),
                name: String::new(),
            });
        }
    }
    if resource.namespaced && ns.is_none() && target.name.is_some() {
        return Err(ApiError::NotFound {
            resource: String::new(),
            name: String::new(),
        });
    }
    let body = http::read_body(req.into_body()).await?;
    let mut response = resource_verb(
        api,
        resource,
        &target,
        &method,
        &query,
        content_type,
        representation,
        include_object,
        options,
        &body,
    )
    .await?;
    // RFC 7234 warn-code 299 (miscellaneous persistent warning), as upstream sends them.
    for warning in warnings
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = header::HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
async fn resource_verb(
    api: &Arc<Api>,
    resource: &ResourceType,
    target: &ResourcePath,
    method: &Method,
    query: &[(String, String)],
    content_type: Option<String>,
    representation: Representation,
    include_object: Option<String>,
    options: WriteOptions,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let ns = target.namespace.as_deref();
    let sub = target.subresource.as_deref();
    let query = query.to_vec();
    let shown = |value: &Value| {
        represent(
            api,
            resource,
            representation,
            value,
            include_object.as_deref(),
        )
    };
    match (method, target.name.as_deref()) {
        (&Method::GET, None) => {
            let params = ListParams::from_query(&query)?;
            if params.watch || target.watch {
                return watch_response(api, resource, ns, &params, representation, include_object)
                    .await;
            }
            if representation == Representation::Json {
                let bytes = api.list_json(resource, ns, &params).await?;
                return Ok(http::raw_response(200, "application/json", bytes));
            }
            let list = api.list(resource, ns, &params).await?;
            Ok(respond(representation, 200, &shown(&list)))
        }
        (&Method::GET, Some(name)) => {
            if target.watch {
                let mut params = ListParams::from_query(&query)?;
                params.fields =
                    crate::selector::FieldSelector::parse(&format!("metadata.name={name}"))
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                return watch_response(api, resource, ns, &params, representation, include_object)
                    .await;
            }
            let object = api.get(resource, ns, name).await?;
            if sub == Some("scale") {
                return Ok(respond(representation, 200, &scale_of(resource, &object)?));
            }
            Ok(respond(representation, 200, &shown(&object)))
        }
        (&Method::POST, Some(name)) if sub == Some("token") => {
            let request = http::decode_body(content_type.as_deref(), body)?;
            let answer = api
                .token_request(resource, ns.unwrap_or("default"), name, &request)
                .await?;
            Ok(respond(representation, 201, &answer))
        }
        (&Method::POST, None) => {
            if resource.namespaced && ns.is_none() {
                return Err(ApiError::MethodNotAllowed);
            }
            let object = http::decode_body(content_type.as_deref(), body)?;
            api.check_fields(resource, &object, &options, FieldSource::Body)?;
            let created = api.create(resource, ns, object, &options).await?;
            Ok(respond(representation, 201, &created))
        }
        (&Method::PUT, Some(name)) => {
            let object = http::decode_body(content_type.as_deref(), body)?;
            if matches!(sub, None | Some("status")) {
                api.check_fields(resource, &object, &options, FieldSource::Body)?;
            }
            let updated = match sub {
                Some("scale") => {
                    api.update_scale(resource, ns, name, &object, &options)
                        .await?
                }
                Some("finalize") => {
                    let finalizers = object
                        .pointer("/spec/finalizers")
                        .cloned()
                        .unwrap_or(json!([]));
                    let patch = serde_json::to_vec(&json!({"spec": {"finalizers": finalizers}}))
                        .map_err(|e| ApiError::Internal(e.to_string()))?;
                    api.patch(resource, ns, name, PatchType::Merge, &patch, None, &options)
                        .await?
                }
                _ => {
                    api.update(resource, ns, name, object, sub, &options)
                        .await?
                }
            };
            Ok(respond(representation, 200, &updated))
        }
        (&Method::PATCH, Some(name)) => {
            let patch_type = content_type
                .as_deref()
                .and_then(PatchType::from_content_type)
                .ok_or(ApiError::UnsupportedMediaType)?;
            let patched = api
                .patch(resource, ns, name, patch_type, body, sub, &options)
                .await?;
            Ok(respond(representation, 200, &patched))
        }
        (&Method::DELETE, Some(name)) => {
            let body_value: Option<Value> = if body.is_empty() {
                None
            } else {
                Some(http::decode_body(content_type.as_deref(), body)?)
            };
            let mut options = options;
            if let Some(b) = &body_value
                && b["dryRun"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|x| x == "All"))
            {
                options.dry_run = true;
            }
            let delete = DeleteOptions::from_parts(body_value.as_ref(), &query);
            let result = api.delete(resource, ns, name, &delete, &options).await?;
            Ok(respond(representation, 200, &result))
        }
        (&Method::DELETE, None) => {
            let params = ListParams::from_query(&query)?;
            let body_value: Option<Value> = if body.is_empty() {
                None
            } else {
                Some(http::decode_body(content_type.as_deref(), body)?)
            };
            let delete = DeleteOptions::from_parts(body_value.as_ref(), &query);
            let result = api
                .delete_collection(resource, ns, &params, &delete, &options)
                .await?;
            Ok(respond(representation, 200, &result))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn watch_response(
    api: &Arc<Api>,
    resource: &ResourceType,
    namespace: Option<&str>,
    params: &ListParams,
    representation: Representation,
    include_object: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let format = if representation == Representation::Json {
        WatchFormat::JsonLines
    } else {
        WatchFormat::Values
    };
    let events = api.watch(resource, namespace, params, format).await?;
    let api = api.clone();
    let resource = resource.clone();
    let stream = events.map(move |event| {
        let mut event = match event {
            WatchEvent::Line(line) => return Ok(Frame::data(line)),
            WatchEvent::Value(event) => event,
        };
        let kind = event["type"].as_str().unwrap_or("").to_string();
        if kind != "BOOKMARK" && kind != "ERROR" {
            let object = event["object"].take();
            event["object"] = represent(
                &api,
                &resource,
                representation,
                &object,
                include_object.as_deref(),
            );
        }
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(line)))
    });
    let body = http_body_util::BodyExt::boxed(http_body_util::StreamBody::new(stream));
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::TRANSFER_ENCODING,
        header::HeaderValue::from_static("chunked"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_parse() {
        let p = parse_resource_path("/api/v1/namespaces/default/configmaps/a").expect("path");
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!(p.plural, "configmaps");
        assert_eq!(p.name.as_deref(), Some("a"));
        let p = parse_resource_path("/api/v1/namespaces/kube-system").expect("ns");
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let p = parse_resource_path("/api/v1/namespaces/x/finalize").expect("finalize");
        assert_eq!(p.subresource.as_deref(), Some("finalize"));
        let p =
            parse_resource_path("/apis/apps/v1/namespaces/d/deployments/web/scale").expect("scale");
        assert_eq!(p.subresource.as_deref(), Some("scale"));
        let p = parse_resource_path("/api/v1/watch/namespaces/d/pods").expect("watch");
        assert!(p.watch);
        assert!(parse_resource_path("/apis/apps/v1").is_none());
    }
}
