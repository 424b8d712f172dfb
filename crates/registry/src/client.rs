//! The registry client: where a reference's registry is ([`Endpoint`]), HTTP with the
//! challenge-driven authentication of [`auth`], and the pull and push flows that move
//! images between a registry and the local [`berth_image::ImageStore`].

pub mod auth;
mod follow;
mod pull;
mod push;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use auth::{Credentials, DockerConfig};
use berth_image::Reference;
pub use pull::{CONCURRENT_DOWNLOADS, PullReport};
pub use push::PushReport;

/// Request body of the client.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Largest manifest or token response read, in bytes.
const SMALL_MAX: usize = 4 << 20;

/// A pull, push or login failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection or HTTP exchange failed.
    #[error("request to {url} failed")]
    Http {
        /// What was requested.
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The registry answered with an unexpected status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// What was requested.
        url: String,
        /// The status.
        status: u16,
        /// The start of the error body (the spec's error JSON).
        body: String,
    },
    /// Credentials missing or refused.
    #[error("unauthorized at {0}")]
    Unauthorized(String),
    /// Content did not match its digest.
    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// Manifest, config or layer.
        what: String,
        /// The digest the reference or descriptor named.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// A manifest the client cannot use.
    #[error("manifest {0}")]
    Manifest(String),
    /// The image store refused.
    #[error("image store")]
    Image(#[from] berth_image::ImageError),
    /// Local file handling failed.
    #[error("local i/o")]
    Io(#[from] std::io::Error),
}

/// A step of a pull or push, for Docker-style progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest was resolved.
    Resolved {
        /// Manifest digest.
        digest: String,
    },
    /// The image manifest (after any index) lists these layers, base first.
    Layers {
        /// Digest and size of each layer blob.
        layers: Vec<(String, u64)>,
    },
    /// A layer or config is already where it needs to be.
    Exists {
        /// Blob digest.
        digest: String,
    },
    /// Bytes of a blob moved so far.
    Transferring {
        /// Blob digest.
        digest: String,
        /// Bytes so far.
        current: u64,
        /// Total bytes, when known.
        total: u64,
    },
    /// A blob was downloaded or uploaded and verified.
    Done {
        /// Blob digest.
        digest: String,
    },
    /// A blob was mounted from another repository instead of uploaded.
    Mounted {
        /// Blob digest.
        digest: String,
    },
    /// A layer will be downloaded; `waiting` when it queues behind the concurrent ones.
    Queued {
        /// Blob digest.
        digest: String,
        /// Whether it waits for a download slot.
        waiting: bool,
    },
    /// Bytes of a downloaded layer blob unpacked into the image store so far.
    Unpacking {
        /// Blob digest.
        digest: String,
        /// Blob bytes unpacked so far.
        current: u64,
        /// Blob size.
        total: u64,
    },
    /// A layer is unpacked and recorded in the image store.
    Unpacked {
        /// Blob digest.
        digest: String,
    },
}

/// Progress callback.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// Settings of the client.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClientConfig {
    /// Registries (`host[:port]`) reached over plain HTTP besides localhost.
    pub insecure_registries: Vec<String>,
}

/// Where a repository is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host[:port]` to connect to.
    pub host: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
}

impl Endpoint {
    /// Resolves a reference: `docker.io` means `registry-1.docker.io`; loopback hosts and
    /// listed insecure registries use HTTP, everything else HTTPS.
    pub fn resolve(reference: &Reference, config: &ClientConfig) -> Self {
        let mut ep = Self::registry(&reference.domain, config);
        ep.repository = reference.path.clone();
        ep
    }

    /// The endpoint of a registry itself (`docker login 127.0.0.1:5000`): `server` may be
    /// `host[:port]`, a URL (`https://index.docker.io/v1/`) or `docker.io`; the repository
    /// is empty.
    pub fn registry(server: &str, config: &ClientConfig) -> Self {
        let bare_server = server
            .strip_prefix("https://")
            .or_else(|| server.strip_prefix("http://"))
            .unwrap_or(server);
        let domain = bare_server.split('/').next().unwrap_or(bare_server);
        let host = match domain {
            berth_image::reference::DEFAULT_DOMAIN | "index.docker.io" | "" => {
                "registry-1.docker.io".to_string()
            }
            d => d.to_string(),
        };
        let bare = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let plain = matches!(bare, "localhost" | "127.0.0.1" | "[::1]")
            || bare.starts_with("127.")
            || config
                .insecure_registries
                .iter()
                .any(|r| *r == host || *r == domain);
        Self {
            scheme: if plain { "http" } else { "https" },
            host,
            repository: String::new(),
        }
    }

    /// `scheme://host` without a trailing slash.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// URL of `/v2/<repository>/<rest>`.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base(), self.repository)
    }
}

/// A registry client; cheap to share, it caches tokens per registry and scope.
pub struct RegistryClient {
    http: HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    config: ClientConfig,
    auth: auth::AuthCache,
}

impl RegistryClient {
    /// A client with `credentials` (from a docker config file) for the registries they name.
    pub fn new(config: ClientConfig, credentials: DockerConfig) -> Result<Self, ClientError> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| ClientError::Http {
                url: "tls setup".into(),
                source: Box::new(e),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
            config,
            auth: auth::AuthCache::new(credentials),
        })
    }

    /// The endpoint of `reference` under this client's settings.
    pub fn endpoint(&self, reference: &Reference) -> Endpoint {
        Endpoint::resolve(reference, &self.config)
    }

    /// Sends one request as built, without authentication handling.
    pub(crate) async fn raw(&self, req: Request<Body>) -> Result<Response<Incoming>, ClientError> {
        let url = req.uri().to_string();
        self.http.request(req).await.map_err(|e| ClientError::Http {
            url,
            source: Box::new(e),
        })
    }
}

/// An empty request body.
pub(crate) fn no_body() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A whole-buffer request body.
pub(crate) fn bytes_body(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

/// Reads a small response body (manifest, token, error), bounded.
pub(crate) async fn read_small(resp: Response<Incoming>) -> Result<Bytes, ClientError> {
    Limited::new(resp.into_body(), SMALL_MAX)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Http {
            url: "response body".into(),
            source: e,
        })
}

/// Turns a non-success response into [`ClientError::Status`].
pub(crate) async fn expect(
    url: &str,
    resp: Response<Incoming>,
    ok: &[StatusCode],
) -> Result<Response<Incoming>, ClientError> {
    if ok.contains(&resp.status()) {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    if status == 401 {
        return Err(ClientError::Unauthorized(url.to_string()));
    }
    let body = read_small(resp).await.unwrap_or_default();
    Err(ClientError::Status {
        url: url.to_string(),
        status,
        body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
    })
}

/// A header value as a string.
pub(crate) fn header_str(resp: &Response<Incoming>, name: header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
