//! Image distribution through the engine: `docker pull`, `docker push` and `docker login`
//! on top of [`berth_registry::RegistryClient`]. Owns the decoding of the per-request
//! credentials (`X-Registry-Auth`, the `/auth` body), the mapping of client failures to
//! Docker's errors, and the translation of registry progress into Docker's JSON progress
//! messages (`status`, `id`, `progressDetail`). The HTTP side is `api/distribution.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use berth_image::Reference;
use berth_registry::client::{Credentials, DockerConfig};
use berth_registry::{ClientConfig, ClientError, Endpoint, Progress, RegistryClient};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// Credentials a client sent with one request (`X-Registry-Auth`, base64url JSON, or the
/// body of `POST /auth`); fields as the Engine API's `AuthConfig` names them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuthConfig {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// `base64(username:password)`, as stored in a docker config file.
    #[serde(default)]
    pub auth: String,
    /// Registry the credentials are for (`127.0.0.1:5000`, `https://index.docker.io/v1/`).
    #[serde(default)]
    pub serveraddress: String,
    /// Refresh token from an earlier login (not supported: ignored).
    #[serde(default)]
    pub identitytoken: String,
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` value (base64url of JSON; padding optional). An empty
    /// or `{}` value means no credentials.
    pub fn from_header(value: &str) -> Result<Self> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::default());
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let raw = engines
            .iter()
            .find_map(|e| e.decode(value).ok())
            .ok_or_else(|| {
                EngineError::InvalidArgument("invalid X-Registry-Auth header: not base64".into())
            })?;
        serde_json::from_slice(&raw).map_err(|e| {
            EngineError::InvalidArgument(format!("invalid X-Registry-Auth header: {e}"))
        })
    }

    /// The user name and password, from either form.
    pub fn credentials(&self) -> Option<Credentials> {
        if !self.username.is_empty() || !self.password.is_empty() {
            return Some(Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (u, p) = raw.split_once(':')?;
        Some(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }
}

/// One message of a progress stream, or its end.
#[derive(Debug)]
pub enum Step {
    /// A JSON progress message.
    Message(Value),
    /// The operation failed; before any message this becomes the HTTP error, after it an
    /// `errorDetail` message.
    Failed(EngineError),
}

/// `{"status": ...}` with an optional id.
fn status(text: impl Into<String>, id: Option<&str>) -> Value {
    let mut v = json!({"status": text.into()});
    if let Some(id) = id {
        v["id"] = json!(id);
        v["progressDetail"] = json!({});
    }
    v
}

/// The 12-hex short form Docker shows for layers.
fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Docker's human sizes for progress bars (`1.05MB`).
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        let number = format!("{v:.3}");
        format!(
            "{}{}",
            number.trim_end_matches('0').trim_end_matches('.'),
            UNITS[i]
        )
    }
}

/// A `Downloading`/`Pushing` message with Docker's progress bar text.
fn transfer(action: &str, id: &str, current: u64, total: u64) -> Value {
    let bar = match (current.min(total) * 50).checked_div(total) {
        Some(filled) => {
            let filled = filled as usize;
            let arrow = if filled < 50 { ">" } else { "" };
            format!(
                "[{}{arrow}{}] {}/{}",
                "=".repeat(filled),
                " ".repeat(50usize.saturating_sub(filled + arrow.len())),
                human(current),
                human(total)
            )
        }
        None => human(current),
    };
    json!({
        "status": action,
        "progressDetail": {"current": current, "total": total},
        "progress": bar,
        "id": id,
    })
}

/// Maps a registry client failure for `what` (a familiar reference) to Docker's errors.
pub fn client_error(err: ClientError, what: &Reference, pulling: bool) -> EngineError {
    let chain = error_chain(&err);
    match err {
        ClientError::Unauthorized(_) if pulling => EngineError::NotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {chain}",
            what.familiar_name()
        )),
        ClientError::Unauthorized(_) => {
            EngineError::Internal(format!("unauthorized: authentication required: {chain}"))
        }
        ClientError::Status {
            status: 404, body, ..
        } if pulling => EngineError::NotFound(format!(
            "manifest for {} not found: {}",
            what.familiar(),
            registry_errors(&body).unwrap_or(chain)
        )),
        ClientError::Image(e) => EngineError::Image(e),
        _ => EngineError::Internal(chain),
    }
}

/// The distribution spec's error body (`{"errors":[{"code","message"}]}`) as Docker shows
/// it: `manifest unknown: manifest unknown to registry`.
fn registry_errors(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let parts: Vec<String> = v["errors"]
        .as_array()?
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_lowercase()
                    .replace('_', " "),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// An error and its sources on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Engine {
    /// A registry client with the daemon's settings and the request's credentials for
    /// `host` (the endpoint the reference resolves to).
    fn registry_client(&self, host: &str, auth: &AuthConfig) -> Result<RegistryClient> {
        let mut config = DockerConfig::default();
        if let Some(c) = auth.credentials() {
            let doc = json!({"auths": {host: {"username": c.username, "password": c.password}}});
            config = DockerConfig::parse(doc.to_string().as_bytes())
                .map_err(|e| EngineError::Internal(format!("credentials: {e}")))?;
        }
        RegistryClient::new(self.client_config(), config)
            .map_err(|e| EngineError::Internal(error_chain(&e)))
    }

    fn client_config(&self) -> ClientConfig {
        ClientConfig {
            insecure_registries: self.config.insecure_registries.clone(),
        }
    }

    /// `POST /auth`: checks credentials against the registry's `/v2/`. `Ok(Err(message))`
    /// is a refusal by the registry (Docker answers 401).
    pub async fn login(&self, auth: &AuthConfig) -> Result<Result<(), String>> {
        let server = if auth.serveraddress.is_empty() {
            berth_image::reference::DEFAULT_DOMAIN
        } else {
            auth.serveraddress.as_str()
        };
        let ep = Endpoint::registry(server, &self.client_config());
        let creds = auth.credentials().ok_or_else(|| {
            EngineError::InvalidArgument("login requires a username and password".into())
        })?;
        let client = self.registry_client(&ep.host, auth)?;
        match client.login(&ep, &creds).await {
            Ok(()) => {
                tracing::info!(registry = %ep.host, user = %creds.username, "login succeeded");
                Ok(Ok(()))
            }
            Err(ClientError::Unauthorized(url)) => Ok(Err(format!(
                "login attempt to {url} failed with status: 401 Unauthorized"
            ))),
            Err(e) => Err(EngineError::Internal(error_chain(&e))),
        }
    }

    /// Pulls `reference` (tag or digest), sending Docker progress messages to `out`; the
    /// last message is the `Status:` line or a [`Step::Failed`].
    pub async fn pull(
        self: Arc<Self>,
        reference: Reference,
        auth: AuthConfig,
        out: UnboundedSender<Step>,
    ) {
        if let Err(e) = self.pull_inner(&reference, &auth, &out).await {
            let _ = out.send(Step::Failed(client_error(e, &reference, true)));
        }
    }

    async fn pull_inner(
        self: &Arc<Self>,
        reference: &Reference,
        auth: &AuthConfig,
        out: &UnboundedSender<Step>,
    ) -> Result<(), ClientError> {
        let familiar = reference.familiar();
        let client = self
            .registry_client(
                &Endpoint::resolve(reference, &self.client_config()).host,
                auth,
            )
            .map_err(|e| ClientError::Manifest(e.to_string()))?;
        let before = self
            .images
            .resolve(&reference.to_string())
            .ok()
            .map(|i| i.id);
        let header = reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let announced = Mutex::new(HashSet::<String>::new());
        let complete = Mutex::new(HashSet::<String>::new());
        let early = Mutex::new(HashMap::<String, Value>::new());
        let send = |v: Value| {
            let _ = out.send(Step::Message(v));
        };
        let announce = |id: &str| {
            if lock(&announced).insert(id.to_string()) {
                send(status("Pulling fs layer", Some(id)));
            }
        };
        // Docker's per-layer sequence: Pulling fs layer, Waiting (beyond the concurrent
        // downloads), Downloading, Verifying Checksum, Download complete, Extracting, Pull
        // complete; layers download concurrently and unpack base first as they arrive.
        let progress = |p: Progress| match p {
            Progress::Resolved { .. } => {
                send(status(
                    format!("Pulling from {}", reference.path),
                    Some(&header),
                ));
            }
            Progress::Layers { .. } => {}
            Progress::Exists { digest } => send(status("Already exists", Some(&short(&digest)))),
            Progress::Queued { digest, waiting } => {
                let id = short(&digest);
                announce(&id);
                if waiting {
                    send(status("Waiting", Some(&id)));
                }
            }
            Progress::Transferring {
                digest,
                current,
                total,
            } => {
                let id = short(&digest);
                announce(&id);
                send(transfer("Downloading", &id, current, total));
            }
            Progress::Done { digest } | Progress::Mounted { digest } => {
                let id = short(&digest);
                announce(&id);
                send(status("Verifying Checksum", Some(&id)));
                send(status("Download complete", Some(&id)));
                lock(&complete).insert(id.clone());
                if let Some(v) = lock(&early).remove(&id) {
                    send(v);
                }
            }
            Progress::Unpacking {
                digest,
                current,
                total,
            } => {
                // Unpacking starts while the blob still streams in; Docker shows it after
                // "Download complete", so the latest early progress waits until then.
                let id = short(&digest);
                let v = transfer("Extracting", &id, current, total);
                if lock(&complete).contains(&id) {
                    send(v);
                } else {
                    lock(&early).insert(id, v);
                }
            }
            Progress::Unpacked { digest } => send(status("Pull complete", Some(&short(&digest)))),
        };
        let report = client
            .pull(self.images.clone(), reference, &progress)
            .await?;
        send(status(format!("Digest: {}", report.manifest_digest), None));
        let fresh =
            before.as_deref() != Some(report.image_id.as_str()) || report.layers_downloaded > 0;
        send(status(
            if fresh {
                format!("Status: Downloaded newer image for {familiar}")
            } else {
                format!("Status: Image is up to date for {familiar}")
            },
            None,
        ));
        self.image_event("pull", &familiar, Some(&reference.familiar_name()));
        Ok(())
    }

    /// Pushes local `source` (a tagged reference) to its registry, sending Docker progress
    /// messages to `out`; records the pushed digest as a RepoDigest of the image.
    pub async fn push(
        self: Arc<Self>,
        targets: Vec<Reference>,
        auth: AuthConfig,
        out: UnboundedSender<Step>,
    ) {
        let Some(first) = targets.first() else {
            return;
        };
        let _ = out.send(Step::Message(status(
            format!("The push refers to repository [{}]", first.familiar_name()),
            None,
        )));
        for target in &targets {
            if let Err(e) = self.push_one(target, &auth, &out).await {
                let _ = out.send(Step::Failed(client_error(e, target, false)));
                return;
            }
        }
    }

    async fn push_one(
        self: &Arc<Self>,
        target: &Reference,
        auth: &AuthConfig,
        out: &UnboundedSender<Step>,
    ) -> Result<(), ClientError> {
        let ep = Endpoint::resolve(target, &self.client_config());
        let client = self
            .registry_client(&ep.host, auth)
            .map_err(|e| ClientError::Manifest(e.to_string()))?;
        let image = self.images.resolve(&target.to_string())?;
        let send = |v: Value| {
            let _ = out.send(Step::Message(v));
        };
        for diff_id in image.config.rootfs.diff_ids.iter().rev() {
            send(status("Preparing", Some(&short(diff_id))));
        }
        // Another repository of the same registry that this image came from or went to may
        // already hold its layers: ask the registry to mount them from there.
        let mount_from = image
            .tags
            .iter()
            .chain(image.digests.iter())
            .filter_map(|r| Reference::parse(r).ok())
            .find(|r| r.domain == target.domain && r.path != target.path)
            .map(|r| r.path);
        let layers: HashSet<&str> = image
            .config
            .rootfs
            .diff_ids
            .iter()
            .map(String::as_str)
            .collect();
        // Docker reports layers only, not the config blob.
        let progress = |p: Progress| match p {
            Progress::Exists { digest }
            | Progress::Mounted { digest }
            | Progress::Transferring { digest, .. }
            | Progress::Done { digest }
                if !layers.contains(digest.as_str()) => {}
            Progress::Exists { digest } => {
                send(status("Layer already exists", Some(&short(&digest))))
            }
            Progress::Mounted { digest } => send(status(
                format!("Mounted from {}", mount_from.as_deref().unwrap_or("")),
                Some(&short(&digest)),
            )),
            Progress::Transferring {
                digest,
                current,
                total,
            } => send(transfer("Pushing", &short(&digest), current, total)),
            Progress::Done { digest } => send(status("Pushed", Some(&short(&digest)))),
            Progress::Resolved { .. }
            | Progress::Layers { .. }
            | Progress::Queued { .. }
            | Progress::Unpacking { .. }
            | Progress::Unpacked { .. } => {}
        };
        let report = client
            .push(
                self.images.clone(),
                &image.id,
                target,
                mount_from.as_deref(),
                &progress,
            )
            .await?;
        let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
        send(status(
            format!(
                "{tag}: digest: {} size: {}",
                report.manifest_digest, report.manifest_size
            ),
            None,
        ));
        send(json!({
            "progressDetail": {},
            "aux": {"Tag": tag, "Digest": report.manifest_digest, "Size": report.manifest_size},
        }));
        // Docker records what a push produced as a RepoDigest of the local image.
        let repo_digest = format!("{}@{}", target.name(), report.manifest_digest);
        let id = image.id.clone();
        let store = self.images.clone();
        tokio::task::spawn_blocking(move || -> Result<(), berth_image::ImageError> {
            let config = store.config_bytes(&id)?;
            let mut none = |i: usize| -> Result<Box<dyn std::io::Read>, berth_image::ImageError> {
                Err(berth_image::ImageError::NotFound(format!("layer {i}")))
            };
            store.add_image(&config, &mut none, None, Some(&repo_digest))?;
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)??;
        self.image_event("push", &target.familiar(), Some(&target.familiar_name()));
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_header_decodes_base64url_json() {
        let raw = r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#;
        let enc = base64::engine::general_purpose::URL_SAFE.encode(raw);
        let a = AuthConfig::from_header(&enc).expect("decodes");
        assert_eq!(a.credentials().map(|c| c.password), Some("p?>".into()));
        assert_eq!(a.serveraddress, "127.0.0.1:5000");
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert!(
            AuthConfig::from_header(&empty)
                .expect("decodes")
                .credentials()
                .is_none()
        );
        assert!(AuthConfig::from_header("%%%").is_err());
        let stored = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("a:b:c"),
            ..AuthConfig::default()
        };
        assert_eq!(stored.credentials().map(|c| c.password), Some("b:c".into()));
    }

    #[test]
    fn progress_bars_and_short_ids_follow_docker() {
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(human(1_050_000), "1.05MB");
        assert_eq!(human(999), "999B");
        let v = transfer("Downloading", "x", 50, 100);
        assert_eq!(v["progressDetail"]["current"], 50);
        assert!(v["progress"].as_str().unwrap_or("").starts_with("[="));
    }
}
