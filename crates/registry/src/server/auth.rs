//! Basic authentication against an htpasswd file of bcrypt entries (`htpasswd -B`), and
//! the rustls acceptor for `--tls-cert`/`--tls-key`. bcrypt is slow by design, so a
//! verified credential is remembered (as its SHA-256, never the password) for later
//! requests of the same client.

use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http::{Request, header};
use sha2::Digest as _;

use super::error::{ApiError, Code};
use super::{ServerError, State};

/// Users and bcrypt hashes from an htpasswd file.
pub(crate) struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    /// Reads `user:hash` lines; other hash kinds than bcrypt never verify.
    pub(crate) fn load(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let users = text
            .lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(u, h)| (u.to_string(), h.to_string()))
            .collect();
        Ok(Self {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }
}

/// Refuses the request with UNAUTHORIZED unless it carries valid Basic credentials.
pub(crate) async fn check<B>(state: &Arc<State>, req: &Request<B>) -> Result<(), ApiError> {
    let Some(htpasswd) = &state.auth else {
        return Ok(());
    };
    let denied = || ApiError::new(Code::Unauthorized, "authentication required");
    let encoded = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(denied)?
        .trim()
        .to_string();
    let key: [u8; 32] = sha2::Sha256::digest(encoded.as_bytes()).into();
    if htpasswd
        .verified
        .lock()
        .map_err(|_| denied())?
        .contains(&key)
    {
        return Ok(());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .map_err(|_| denied())?;
    let decoded = String::from_utf8(decoded).map_err(|_| denied())?;
    let (user, password) = decoded.split_once(':').ok_or_else(denied)?;
    let hash = htpasswd.users.get(user).ok_or_else(denied)?.clone();
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false);
    if !ok {
        tracing::debug!(user, "bad credentials");
        return Err(denied());
    }
    if let Ok(mut v) = htpasswd.verified.lock() {
        v.insert(key);
    }
    Ok(())
}

/// A TLS acceptor serving the PEM chain `cert` with key `key`.
pub(crate) fn tls_acceptor(
    cert: &Path,
    key: &Path,
) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(BufReader::new)
            .map_err(|e| ServerError::Tls(p.to_path_buf(), e))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(cert.to_path_buf(), e))?;
    let private = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|e| ServerError::Tls(key.to_path_buf(), e))?
        .ok_or_else(|| {
            ServerError::Tls(
                key.to_path_buf(),
                std::io::Error::other("no private key in file"),
            )
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
        .map_err(|e| ServerError::Tls(cert.to_path_buf(), std::io::Error::other(e)))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
