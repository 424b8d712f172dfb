//! The `berth registry` HTTP server: configuration, the accept loop (plain or rustls TLS),
//! Basic authentication, and routing of `/v2/` paths to the blob, upload, manifest and
//! listing handlers.

mod auth;
mod blobs;
pub mod error;
mod listing;
mod manifests;
mod uploads;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::name::valid_name;
use crate::storage::{Storage, StorageError};
use error::{ApiError, Code};

/// Response body of every handler.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A whole-buffer body.
pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// Largest manifest accepted, in bytes (the spec suggests at least 4 MiB be accepted).
pub const MANIFEST_MAX: usize = 4 << 20;

/// Settings of `berth registry`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Directory holding blobs, manifests and uploads.
    pub root: PathBuf,
    /// Listen address (`host:port`).
    pub addr: String,
    /// htpasswd file with bcrypt entries; when set every request needs Basic credentials.
    pub htpasswd: Option<PathBuf>,
    /// PEM certificate chain; with `tls_key`, serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Realm named in `WWW-Authenticate` challenges.
    pub realm: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/var/lib/berth/registry"),
            addr: "127.0.0.1:5000".into(),
            htpasswd: None,
            tls_cert: None,
            tls_key: None,
            realm: "berth-registry".into(),
        }
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Storage could not be opened.
    #[error("opening registry storage")]
    Storage(#[from] StorageError),
    /// The htpasswd file could not be read.
    #[error("reading htpasswd file {0}")]
    Htpasswd(PathBuf, #[source] std::io::Error),
    /// Certificate or key unusable.
    #[error("loading tls certificate {0}")]
    Tls(PathBuf, #[source] std::io::Error),
    /// Binding the listen address failed.
    #[error("listening on {0}")]
    Bind(String, #[source] std::io::Error),
}

/// An upload in progress: the repository it belongs to and the running digest.
pub(crate) struct Upload {
    repo: String,
    size: u64,
    hasher: crate::name::Hasher,
}

/// Called on a blocking thread once the server has gone quiet (no request in flight and
/// none ended for `IDLE_AFTER`): the binary passes a function that gives memory back.
pub type IdleHook = Arc<dyn Fn() + Send + Sync>;

/// Quiet time after the last request before the [`IdleHook`] runs.
const IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// Requests being handled and how many have ended, to notice an idle server.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    ended: AtomicU64,
}

/// Runs `hook` each time the server becomes idle (once per quiet spell, and once after
/// start).
async fn when_idle(activity: Arc<Activity>, hook: IdleHook, shutdown: CancellationToken) {
    let mut done_at = u64::MAX;
    let mut seen = activity.ended.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(IDLE_AFTER) => {}
        }
        let ended = activity.ended.load(Ordering::Relaxed);
        let quiet = ended == seen && activity.in_flight.load(Ordering::Relaxed) == 0;
        seen = ended;
        if quiet && done_at != ended {
            done_at = ended;
            let hook = hook.clone();
            let _ = tokio::task::spawn_blocking(move || hook()).await;
        }
    }
}

/// Shared by every request.
pub(crate) struct State {
    activity: Arc<Activity>,
    storage: Storage,
    uploads: Mutex<HashMap<String, Upload>>,
    auth: Option<auth::Htpasswd>,
    realm: String,
}

/// Binds `config.addr` and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ServerError> {
    run_with_idle_hook(config, shutdown, None).await
}

/// [`run`], calling `idle` whenever the server has become idle.
pub async fn run_with_idle_hook(
    config: Config,
    shutdown: CancellationToken,
    idle: Option<IdleHook>,
) -> Result<(), ServerError> {
    let listener = TcpListener::bind(&config.addr)
        .await
        .map_err(|e| ServerError::Bind(config.addr.clone(), e))?;
    serve_with_idle_hook(config, listener, shutdown, idle).await
}

/// Serves on an already bound listener until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    serve_with_idle_hook(config, listener, shutdown, None).await
}

/// [`serve`], calling `idle` whenever the server has become idle.
pub async fn serve_with_idle_hook(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    idle: Option<IdleHook>,
) -> Result<(), ServerError> {
    let storage = Storage::open(&config.root)?;
    let auth = match &config.htpasswd {
        Some(p) => Some(auth::Htpasswd::load(p).map_err(|e| ServerError::Htpasswd(p.clone(), e))?),
        None => None,
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(auth::tls_acceptor(c, k)?),
        _ => None,
    };
    let activity = Arc::new(Activity::default());
    if let Some(hook) = idle {
        tokio::spawn(when_idle(activity.clone(), hook, shutdown.clone()));
    }
    let state = Arc::new(State {
        activity,
        storage,
        uploads: Mutex::new(HashMap::new()),
        auth,
        realm: config.realm.clone(),
    });
    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, root = %config.root.display(), tls = tls.is_some(), "registry listening");
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => serve_conn(TokioIo::new(s), state, peer).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                },
                None => serve_conn(TokioIo::new(stream), state, peer).await,
            }
        });
    }
}

async fn serve_conn<I>(io: I, state: Arc<State>, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection(io, svc).await {
        tracing::debug!(%peer, error = %e, "connection ended with error");
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let span = tracing::debug_span!("request", method = %req.method(), path = %req.uri().path());
    let activity = state.activity.clone();
    activity.in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = async {
        let realm = state.realm.clone();
        let mut resp = match route(state, req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(code = ?e.code, detail = %e.detail, "refused");
                e.into_response(&realm)
            }
        };
        resp.headers_mut().insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        tracing::debug!(status = resp.status().as_u16(), "answered");
        resp
    }
    .instrument(span)
    .await;
    activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    activity.ended.fetch_add(1, Ordering::Relaxed);
    resp
}

/// What a `/v2/<name>/...` path addresses.
enum Target<'a> {
    Blob(&'a str),
    Upload(&'a str),
    Manifest(&'a str),
    Tags,
}

async fn route(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    auth::check(&state, &req).await?;
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix("/v2/") else {
        if path == "/v2" {
            return Ok(empty(StatusCode::OK));
        }
        return Err(ApiError::new(Code::Unsupported, "not a /v2/ path"));
    };
    if rest.is_empty() {
        return Ok(empty(StatusCode::OK));
    }
    if rest == "_catalog" {
        return listing::catalog(&state, &req);
    }
    let (name, target) = split_target(rest)
        .ok_or_else(|| ApiError::new(Code::Unsupported, format!("no route for {path}")))?;
    if !valid_name(name) {
        return Err(ApiError::new(Code::NameInvalid, name));
    }
    let name = name.to_string();
    let method = req.method().clone();
    match (target, &method) {
        (Target::Tags, &Method::GET) => listing::tags(&state, &name, &req),
        (Target::Blob(d), &Method::GET | &Method::HEAD) => {
            let d = d.to_string();
            blobs::get(&state, &name, &d, &req).await
        }
        (Target::Blob(d), &Method::DELETE) => blobs::delete(&state, &name, d),
        (Target::Upload(id), _) => {
            let id = id.to_string();
            uploads::handle(state, name, id, req).await
        }
        (Target::Manifest(r), &Method::GET | &Method::HEAD) => {
            manifests::get(&state, &name, r, method == Method::HEAD)
        }
        (Target::Manifest(r), &Method::PUT) => {
            let r = r.to_string();
            manifests::put(&state, &name, &r, req).await
        }
        (Target::Manifest(r), &Method::DELETE) => manifests::delete(&state, &name, r),
        _ => Err(ApiError::new(Code::Unsupported, format!("{method} {path}"))),
    }
}

/// Splits `<name>/<kind>/<arg>` at the last keyword, since names may contain `/`.
fn split_target(rest: &str) -> Option<(&str, Target<'_>)> {
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some((name, Target::Tags));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or(rest.strip_suffix("/blobs/uploads"))
    {
        return Some((name, Target::Upload("")));
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        return Some((&rest[..i], Target::Upload(&rest[i + 15..])));
    }
    if let Some(i) = rest.rfind("/manifests/") {
        return Some((&rest[..i], Target::Manifest(&rest[i + 11..])));
    }
    if let Some(i) = rest.rfind("/blobs/") {
        return Some((&rest[..i], Target::Blob(&rest[i + 7..])));
    }
    None
}

/// An empty response with `status`.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// Sets a header from a string built at runtime (names, digests: always valid ASCII here).
pub(crate) fn set(resp: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Decoded `key=value` pairs of a query string.
pub(crate) fn query<B>(req: &Request<B>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs blocking storage work off the runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_last_keyword() {
        assert!(matches!(
            split_target("a/blobs/b/blobs/sha256:x"),
            Some(("a/blobs/b", Target::Blob("sha256:x")))
        ));
        assert!(matches!(
            split_target("a/b/manifests/latest"),
            Some(("a/b", Target::Manifest("latest")))
        ));
        assert!(matches!(
            split_target("a/blobs/uploads/"),
            Some(("a", Target::Upload("")))
        ));
        assert!(matches!(
            split_target("a/blobs/uploads/xyz"),
            Some(("a", Target::Upload("xyz")))
        ));
        assert!(matches!(
            split_target("x/tags/list"),
            Some(("x", Target::Tags))
        ));
        assert!(split_target("x/other").is_none());
        assert_eq!(percent_decode("sha256%3Aab+c"), "sha256:ab c");
    }
}
