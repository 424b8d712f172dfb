//! Push: for each layer (uncompressed, so its digest is its diff id) and the config, skip
//! what the registry has (`HEAD`), mount what another repository of the same registry has,
//! upload the rest monolithically (`POST` then `PUT ?digest=`), and finally put an OCI image
//! manifest under the tag.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio_stream::StreamExt;

use berth_image::{ImageStore, Reference};

use super::{
    Body, ClientError, Endpoint, Progress, ProgressFn, RegistryClient, bytes_body, expect, no_body,
};
use crate::manifest::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use crate::name::Digest;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the manifest pushed.
    pub manifest_digest: String,
    /// Size of the manifest pushed, in bytes.
    pub manifest_size: u64,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
}

/// Where a blob's bytes come from.
enum Source {
    Bytes(Bytes),
    Layer(Arc<ImageStore>, String),
}

fn http_err(url: &str) -> impl Fn(http::Error) -> ClientError + '_ {
    move |e| ClientError::Http {
        url: url.to_string(),
        source: Box::new(e),
    }
}

impl RegistryClient {
    /// Whether the repository has blob `digest`.
    pub async fn has_blob(&self, ep: &Endpoint, digest: &str) -> Result<bool, ClientError> {
        let url = ep.url(&format!("blobs/{digest}"));
        let scopes = [format!("repository:{}:pull,push", ep.repository)];
        let build = || Request::head(&url).body(no_body()).map_err(http_err(&url));
        let resp = self.send(ep, &scopes, &build).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => expect(&url, resp, &[]).await.map(|_| false),
        }
    }

    /// Tries to mount `digest` from repository `from`; `true` when the registry did.
    async fn mount(&self, ep: &Endpoint, digest: &str, from: &str) -> Result<bool, ClientError> {
        let url = ep.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
        let scopes = [
            format!("repository:{}:pull,push", ep.repository),
            format!("repository:{from}:pull"),
        ];
        let build = || {
            Request::post(&url)
                .header(header::CONTENT_LENGTH, "0")
                .body(no_body())
                .map_err(http_err(&url))
        };
        let resp = self.send(ep, &scopes, &build).await?;
        Ok(resp.status() == StatusCode::CREATED)
    }

    /// Uploads one blob: session `POST`, then one `PUT` with the whole body.
    async fn upload(
        &self,
        ep: &Endpoint,
        digest: &str,
        size: u64,
        source: &Source,
        progress: ProgressFn<'_>,
    ) -> Result<(), ClientError> {
        let scopes = [format!("repository:{}:pull,push", ep.repository)];
        let start = ep.url("blobs/uploads/");
        let build = || {
            Request::post(&start)
                .header(header::CONTENT_LENGTH, "0")
                .body(no_body())
                .map_err(http_err(&start))
        };
        let resp = expect(
            &start,
            self.send(ep, &scopes, &build).await?,
            &[StatusCode::ACCEPTED],
        )
        .await?;
        let location = super::header_str(&resp, header::LOCATION)
            .ok_or_else(|| ClientError::Manifest(format!("no upload location from {start}")))?;
        let location = if location.starts_with('/') {
            format!("{}{location}", ep.base())
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let sent = Arc::new(AtomicU64::new(0));
        let build = || -> Result<Request<Body>, ClientError> {
            sent.store(0, Ordering::Relaxed);
            let body = match source {
                Source::Bytes(b) => bytes_body(b.clone()),
                Source::Layer(store, diff_id) => {
                    let file = tokio::fs::File::from_std(store.open_layer(diff_id)?);
                    let counter = sent.clone();
                    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).map(
                        move |r| {
                            r.map(|b| {
                                counter.fetch_add(b.len() as u64, Ordering::Relaxed);
                                Frame::data(b)
                            })
                        },
                    );
                    StreamBody::new(stream).boxed()
                }
            };
            Request::put(&url)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size)
                .body(body)
                .map_err(http_err(&url))
        };
        // Report bytes sent while the PUT runs (Docker's "Pushing" lines).
        let put = self.send(ep, &scopes, &build);
        tokio::pin!(put);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        tick.tick().await;
        let resp = loop {
            tokio::select! {
                resp = &mut put => break resp?,
                _ = tick.tick() => progress(Progress::Transferring {
                    digest: digest.to_string(),
                    current: sent.load(Ordering::Relaxed),
                    total: size,
                }),
            }
        };
        expect(&url, resp, &[StatusCode::CREATED]).await?;
        Ok(())
    }

    /// Pushes local image `local` to `target` (tag `latest` unless given). `mount_from` names
    /// another repository of the same registry that may already hold the layers.
    pub async fn push(
        &self,
        store: Arc<ImageStore>,
        local: &str,
        target: &Reference,
        mount_from: Option<&str>,
        progress: ProgressFn<'_>,
    ) -> Result<PushReport, ClientError> {
        let ep = self.endpoint(target);
        let (image, config) = {
            let (store, local) = (store.clone(), local.to_string());
            tokio::task::spawn_blocking(move || -> Result<_, berth_image::ImageError> {
                let image = store.resolve(&local)?;
                let config = store.config_bytes(&image.id)?;
                Ok((image, config))
            })
            .await
            .map_err(std::io::Error::other)??
        };
        let mut report = PushReport {
            manifest_digest: String::new(),
            manifest_size: 0,
            blobs_uploaded: 0,
            bytes_uploaded: 0,
        };
        let mut layers = Vec::new();
        for diff_id in &image.config.rootfs.diff_ids {
            let size = store.open_layer(diff_id)?.metadata()?.len();
            layers.push(
                serde_json::json!({"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": size}),
            );
            let source = Source::Layer(store.clone(), diff_id.clone());
            self.push_blob(
                &ep,
                diff_id,
                size,
                &source,
                mount_from,
                progress,
                &mut report,
            )
            .await?;
        }
        let config_digest = Digest::of(&config).to_string();
        let config_size = config.len() as u64;
        self.push_blob(
            &ep,
            &config_digest,
            config_size,
            &Source::Bytes(Bytes::from(config)),
            mount_from,
            progress,
            &mut report,
        )
        .await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        let bytes = Bytes::from(
            serde_json::to_vec(&manifest).map_err(|e| ClientError::Manifest(e.to_string()))?,
        );
        let tag = target
            .digest
            .clone()
            .or_else(|| target.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let url = ep.url(&format!("manifests/{tag}"));
        let scopes = [format!("repository:{}:pull,push", ep.repository)];
        let build = || {
            Request::put(&url)
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .body(bytes_body(bytes.clone()))
                .map_err(http_err(&url))
        };
        expect(
            &url,
            self.send(&ep, &scopes, &build).await?,
            &[StatusCode::CREATED],
        )
        .await?;
        report.manifest_digest = Digest::of(&bytes).to_string();
        report.manifest_size = bytes.len() as u64;
        tracing::info!(target = %target.name(), digest = %report.manifest_digest, uploaded = report.blobs_uploaded, "pushed");
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn push_blob(
        &self,
        ep: &Endpoint,
        digest: &str,
        size: u64,
        source: &Source,
        mount_from: Option<&str>,
        progress: ProgressFn<'_>,
        report: &mut PushReport,
    ) -> Result<(), ClientError> {
        if self.has_blob(ep, digest).await? {
            progress(Progress::Exists {
                digest: digest.to_string(),
            });
            return Ok(());
        }
        if let Some(from) = mount_from.filter(|f| *f != ep.repository)
            && self.mount(ep, digest, from).await?
        {
            progress(Progress::Mounted {
                digest: digest.to_string(),
            });
            return Ok(());
        }
        self.upload(ep, digest, size, source, progress).await?;
        report.blobs_uploaded += 1;
        report.bytes_uploaded += size;
        progress(Progress::Done {
            digest: digest.to_string(),
        });
        Ok(())
    }
}
