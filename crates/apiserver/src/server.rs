//! The HTTPS listener: TLS (rustls with ring; HTTP/2 and HTTP/1.1 by ALPN), authentication
//! of every request (a client certificate of the cluster CA or the bearer token, otherwise
//! `401`), and the start-up of the API state and its background tasks.

use std::path::PathBuf;
use std::sync::Arc;

use berth_store::Store;
use hyper::{Request, Response, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::handler::{self, ServerInfo};
use crate::http::{self, Body};
use crate::pki::{self, PkiError};

/// What `berth server` configures.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Directory of certificates, token and kubeconfig.
    pub data_dir: PathBuf,
    /// `host:port` of the HTTPS listener.
    pub listen: String,
}

/// Failures starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Preparing credentials failed.
    #[error("preparing credentials in the data directory failed")]
    Pki(#[from] PkiError),
    /// The TLS configuration is not usable.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    /// Binding the listener failed.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Preparing the initial state failed.
    #[error("initial state could not be prepared")]
    Init(#[source] ApiError),
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Tls(e.to_string()))
}

fn tls_config(credentials: &pki::Credentials) -> Result<rustls::ServerConfig, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs(&credentials.ca_cert_pem)? {
        roots
            .add(cert)
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| ServeError::Tls(e.to_string()))?;
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut credentials.server_key_pem.as_bytes())
            .map_err(|e| ServeError::Tls(e.to_string()))?
            .ok_or_else(|| ServeError::Tls("serving key missing".into()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem_certs(&credentials.server_cert_pem)?, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether a request carries the admin bearer token (compared in constant time) or a
/// valid service-account token.
fn bearer_ok(req: &Request<hyper::body::Incoming>, token: &str) -> bool {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = value.strip_prefix("Bearer ") else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    if a.len() == b.len()
        && !b.is_empty()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    {
        return true;
    }
    // A service-account token from `serviceaccounts/<name>/token`.
    crate::tokens::verify(token, given.trim(), chrono::Utc::now().timestamp()).is_some()
}

/// Serves the API until `cancel` fires: prepares credentials, initial state (CRDs, system
/// namespaces), the collector, and the listener. `ready` receives the bound address.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    cancel: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            address: config.listen.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        address: config.listen.clone(),
        source,
    })?;
    let data_dir = config.data_dir.clone();
    let listen = local.to_string();
    let credentials = tokio::task::spawn_blocking(move || pki::ensure(&data_dir, &listen))
        .await
        .map_err(|e| ServeError::Tls(e.to_string()))??;
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&credentials)?));
    let api = Api::new(store, Catalog::builtin(), credentials.token.clone());
    api.load_crds().await.map_err(ServeError::Init)?;
    crate::namespaces::ensure_system_namespaces(&api)
        .await
        .map_err(ServeError::Init)?;
    tokio::spawn(crate::gc::run(api.clone(), cancel.clone()));
    let info = Arc::new(ServerInfo {
        address: local.to_string(),
    });
    tracing::info!(address = %local, kubeconfig = %credentials.kubeconfig.display(), "API server listening");
    if let Some(ready) = ready {
        let _ = ready.send(local);
    }
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        let info = info.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|certs| !certs.is_empty());
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let api = api.clone();
                let info = info.clone();
                async move {
                    let response: Response<Body> = if client_cert || bearer_ok(&req, api.token()) {
                        handler::handle(api, info, req).await
                    } else {
                        http::error_response(&ApiError::Unauthorized)
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
}
