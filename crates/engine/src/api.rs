//! The Docker Engine API: request routing (with or without a `/v1.NN` prefix) to the
//! handlers in `api/containers.rs`, `api/images.rs` and `api/system.rs`.

pub mod build;
pub mod containers;
pub mod distribution;
pub mod http;
pub mod images;
pub mod networks;
pub mod stream;
pub mod system;
pub mod volumes;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use tracing::Instrument;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use http::{Body, Query};

/// Splits `/v1.47/containers/json` into the API version and the path without prefix.
pub fn strip_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !ver.is_empty() && ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return (Some(ver), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

fn version_tuple(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// Checks a requested API version against what the daemon supports.
pub fn check_version(v: &str) -> Result<()> {
    let want = version_tuple(v);
    if want > version_tuple(crate::system::API_VERSION) {
        return Err(EngineError::InvalidArgument(format!(
            "client version {v} is too new. Maximum supported API version is {}",
            crate::system::API_VERSION
        )));
    }
    if want < version_tuple(crate::system::MIN_API_VERSION) {
        return Err(EngineError::InvalidArgument(format!(
            "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            crate::system::MIN_API_VERSION
        )));
    }
    Ok(())
}

/// Serves one request; never fails (errors become Docker error responses).
pub async fn handle(engine: Arc<Engine>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let span = tracing::debug_span!("request", %method, path = %raw_path);
    let resp = match route(engine, req).instrument(span).await {
        Ok(r) => r,
        Err(e) => http::error(&e),
    };
    tracing::debug!(%method, path = %raw_path, status = resp.status().as_u16(), "handled");
    http::with_headers(resp)
}

async fn route(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let (version, path) = strip_version(req.uri().path());
    if let Some(v) = version {
        check_version(v)?;
    }
    let path = path.to_string();
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(http::decode_path)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (s.first().copied().unwrap_or(""), &method) {
        ("_ping", _) => Ok(system::ping(&method)),
        ("version", &Method::GET) => Ok(http::json(200, &crate::system::version())),
        ("info", &Method::GET) => Ok(http::json(200, &engine.info().await)),
        ("events", &Method::GET) => system::events(&engine, &query),
        ("containers", _) => containers::route(engine, req, &method, &s[1..], &query).await,
        ("exec", _) => containers::route_exec(engine, req, &method, &s[1..], &query).await,
        ("images", _) => images::route(engine, req, &method, &path, &query).await,
        ("commit", &Method::POST) => images::commit(engine, req, &query).await,
        ("build", &Method::POST) => build::build(engine, req, &query).await,
        ("networks", _) => networks::route(engine, req, &method, &s[1..], &query).await,
        ("volumes", _) => volumes::route(engine, req, &method, &s[1..], &query).await,
        ("auth", &Method::POST) => distribution::auth(engine, req).await,
        _ => Err(not_found()),
    }
}

/// Docker's answer for unknown routes.
pub fn not_found() -> EngineError {
    EngineError::NotFound("page not found".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_any_version_prefix() {
        assert_eq!(
            strip_version("/v1.47/containers/json"),
            (Some("1.47"), "/containers/json")
        );
        assert_eq!(strip_version("/v1.24/_ping"), (Some("1.24"), "/_ping"));
        assert_eq!(
            strip_version("/containers/json"),
            (None, "/containers/json")
        );
        assert_eq!(strip_version("/volumes"), (None, "/volumes"));
        assert!(check_version("1.47").is_ok());
        assert!(check_version("1.12").is_err());
        assert!(check_version("1.99").is_err());
    }
}
