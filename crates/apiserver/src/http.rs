//! HTTP plumbing of the API server: response bodies, JSON and Status responses, bounded
//! body reading, query strings, and the media types clients ask for and send.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::{Response, StatusCode, header};
use serde_json::Value;

use crate::error::ApiError;

/// The body of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// Upstream's default request body limit (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A JSON response.
pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    raw_response(code, "application/json", bytes)
}

/// A response with a content type.
pub fn raw_response(code: u16, content_type: &str, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// The `Status` response of an error (the one place errors become wire responses).
pub fn error_response(error: &ApiError) -> Response<Body> {
    let (code, status) = error.status();
    if code >= 500 {
        tracing::error!(error = %error, "request failed");
    }
    json_response(code, &status)
}

/// Reads a request body of at most [`MAX_BODY_BYTES`] (`413` beyond).
pub async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Err(e) => Err(ApiError::BadRequest(format!(
            "reading the body failed: {e}"
        ))),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded `key=value` pairs of a query string.
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

/// The first value of a query parameter.
pub fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What representation the client accepts for objects and lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// Plain JSON objects.
    Json,
    /// `as=Table` (meta.k8s.io v1 or v1beta1).
    Table,
    /// `as=PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
    /// YAML.
    Yaml,
}

/// Picks the representation from the `Accept` header: the first alternative the server can
/// produce; protobuf-only requests get `406`.
pub fn negotiate(accept: Option<&str>) -> Result<Representation, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Representation::Json);
    };
    for alternative in accept.split(',') {
        let mut parts = alternative.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        let as_param = params
            .iter()
            .find_map(|p| p.strip_prefix("as="))
            .unwrap_or("");
        match media {
            "application/json" | "*/*" | "application/*" => {
                return Ok(match as_param {
                    "Table" => Representation::Table,
                    "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                        Representation::Metadata
                    }
                    _ => Representation::Json,
                });
            }
            "application/yaml" => return Ok(Representation::Yaml),
            _ => {}
        }
    }
    Err(ApiError::NotAcceptable(
        "application/json, application/yaml".into(),
    ))
}

/// Decodes a request body according to its `Content-Type` (JSON, YAML, or protobuf for the
/// kinds [`crate::protobuf`] knows; others are `415`).
pub fn decode_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .unwrap_or("application/json")
        .trim();
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the object provided is unrecognized or malformed: {e}"
            ))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}"))),
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=true"));
        assert_eq!(
            query_value(&q, "labelSelector"),
            Some("app=web,tier in (a)")
        );
        assert_eq!(query_value(&q, "watch"), Some("true"));
    }

    #[test]
    fn kubectl_accept_headers_negotiate() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(table)).expect("table"),
            Representation::Table
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")).expect("json"),
            Representation::Json
        );
        assert!(negotiate(Some("application/vnd.kubernetes.protobuf")).is_err());
    }

    #[test]
    fn unknown_bodies_are_refused() {
        assert!(matches!(
            decode_body(Some("application/cbor"), b""),
            Err(ApiError::UnsupportedMediaType)
        ));
    }
}
