//! Pull: resolve the manifest (an index or list picks linux/amd64), fetch and verify the
//! config, download only the layers the image store lacks (each verified against its
//! descriptor digest into a temp file beside the store), then add the image in one step so
//! an interrupted pull leaves no half image.

use std::path::PathBuf;
use std::sync::Arc;

use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

use berth_image::{ImageStore, Reference};

use super::{
    ClientError, Endpoint, Progress, ProgressFn, RegistryClient, expect, no_body, read_small,
};
use crate::manifest::{ACCEPT_ALL, Manifest};
use crate::name::Digest;

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// Image id (config digest).
    pub image_id: String,
    /// Digest of the manifest the reference resolved to (the index, for multi-platform).
    pub manifest_digest: String,
    /// Layers downloaded.
    pub layers_downloaded: usize,
    /// Bytes of layers downloaded.
    pub bytes_downloaded: u64,
}

fn http_err(url: &str) -> impl Fn(http::Error) -> ClientError + '_ {
    move |e| ClientError::Http {
        url: url.to_string(),
        source: Box::new(e),
    }
}

impl RegistryClient {
    /// Fetches a manifest by tag or digest: bytes, digest, parsed form.
    pub async fn manifest(
        &self,
        ep: &Endpoint,
        reference: &str,
    ) -> Result<(Vec<u8>, Digest, Manifest), ClientError> {
        let url = ep.url(&format!("manifests/{reference}"));
        let scopes = [format!("repository:{}:pull", ep.repository)];
        let build = || {
            Request::get(&url)
                .header(header::ACCEPT, ACCEPT_ALL)
                .body(no_body())
                .map_err(http_err(&url))
        };
        let resp = expect(
            &url,
            self.send(ep, &scopes, &build).await?,
            &[StatusCode::OK],
        )
        .await?;
        let content_type = super::header_str(&resp, header::CONTENT_TYPE);
        let bytes = read_small(resp).await?.to_vec();
        let digest = Digest::of(&bytes);
        if let Some(wanted) = Digest::parse(reference)
            && wanted != digest
        {
            return Err(ClientError::DigestMismatch {
                what: format!("manifest {url}"),
                expected: wanted.to_string(),
                actual: digest.to_string(),
            });
        }
        let manifest = Manifest::parse(&bytes, content_type.as_deref())
            .map_err(|e| ClientError::Manifest(e.to_string()))?;
        Ok((bytes, digest, manifest))
    }

    /// Downloads blob `digest` to `dest`, verifying it; returns its size.
    pub async fn fetch_blob(
        &self,
        ep: &Endpoint,
        digest: &str,
        dest: &std::path::Path,
        progress: ProgressFn<'_>,
    ) -> Result<u64, ClientError> {
        let url = ep.url(&format!("blobs/{digest}"));
        let scopes = [format!("repository:{}:pull", ep.repository)];
        let build = || Request::get(&url).body(no_body()).map_err(http_err(&url));
        let mut resp = self.send(ep, &scopes, &build).await?;
        // Registries backed by object stores redirect blob reads; follow without credentials.
        let mut hops = 0;
        while resp.status().is_redirection() && hops < 5 {
            let next = super::header_str(&resp, header::LOCATION).ok_or_else(|| {
                ClientError::Manifest(format!("redirect without location from {url}"))
            })?;
            let next = if next.starts_with('/') {
                format!("{}{next}", ep.base())
            } else {
                next
            };
            resp = self
                .raw(
                    Request::get(&next)
                        .body(no_body())
                        .map_err(http_err(&next))?,
                )
                .await?;
            hops += 1;
        }
        let resp = expect(&url, resp, &[StatusCode::OK]).await?;
        let total = super::header_str(&resp, header::CONTENT_LENGTH)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = resp.into_body();
        let mut out =
            tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(dest).await?);
        let mut hasher = sha2::Sha256::new();
        let (mut current, mut reported) = (0u64, 0u64);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Http {
                url: url.clone(),
                source: Box::new(e),
            })?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                out.write_all(&data).await?;
                current += data.len() as u64;
                if current - reported >= 512 << 10 {
                    reported = current;
                    progress(Progress::Transferring {
                        digest: digest.to_string(),
                        current,
                        total,
                    });
                }
            }
        }
        out.flush().await?;
        let actual = Digest::from_hasher(hasher);
        if actual.as_str() != digest {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(ClientError::DigestMismatch {
                what: format!("blob {url}"),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        progress(Progress::Done {
            digest: digest.to_string(),
        });
        Ok(current)
    }

    /// Pulls `reference` (default tag `latest`) into `store`.
    pub async fn pull(
        &self,
        store: Arc<ImageStore>,
        reference: &Reference,
        progress: ProgressFn<'_>,
    ) -> Result<PullReport, ClientError> {
        let ep = self.endpoint(reference);
        let wanted = reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let (_, top_digest, mut manifest) = self.manifest(&ep, &wanted).await?;
        progress(Progress::Resolved {
            digest: top_digest.to_string(),
        });
        if manifest.is_index() {
            let entry = manifest.platform_entry("linux", "amd64").ok_or_else(|| {
                ClientError::Manifest(format!("{top_digest} has no linux/amd64 entry"))
            })?;
            let child = entry.digest.clone();
            manifest = self.manifest(&ep, &child).await?.2;
        }
        progress(Progress::Layers {
            layers: manifest
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.size))
                .collect(),
        });
        let config_desc = manifest
            .config
            .clone()
            .ok_or_else(|| ClientError::Manifest("image manifest without config".into()))?;
        // The store's open sweeps `.tmp-*`, so a daemon killed mid-pull leaves nothing behind.
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-pull")
            .tempdir_in(store.root())?;
        let config_path = tmp.path().join("config");
        self.fetch_blob(&ep, &config_desc.digest, &config_path, &|_| {})
            .await?;
        let config = tokio::fs::read(&config_path).await?;
        let missing = {
            let (store, config) = (store.clone(), config.clone());
            tokio::task::spawn_blocking(move || store.missing_layers(&config))
                .await
                .map_err(std::io::Error::other)??
        };
        let mut paths: Vec<Option<PathBuf>> = vec![None; manifest.layers.len()];
        let mut bytes = 0;
        for (i, layer) in manifest.layers.iter().enumerate() {
            if !missing.contains(&i) {
                progress(Progress::Exists {
                    digest: layer.digest.clone(),
                });
                continue;
            }
            let path = tmp.path().join(format!("layer{i}"));
            bytes += self.fetch_blob(&ep, &layer.digest, &path, progress).await?;
            paths[i] = Some(path);
        }
        let tag = reference
            .tag
            .as_ref()
            .map(|t| format!("{}:{t}", reference.name()));
        let repo_digest = format!("{}@{top_digest}", reference.name());
        let layers_downloaded = paths.iter().flatten().count();
        let id = tokio::task::spawn_blocking(move || {
            let mut open = |i: usize| -> Result<Box<dyn std::io::Read>, berth_image::ImageError> {
                let path = paths.get(i).cloned().flatten().ok_or_else(|| {
                    berth_image::ImageError::NotFound(format!("layer {i} was not downloaded"))
                })?;
                Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
                    path,
                )?)))
            };
            store.add_image(&config, &mut open, tag.as_deref(), Some(&repo_digest))
        })
        .await
        .map_err(std::io::Error::other)??;
        tracing::info!(reference = %reference.name(), digest = %top_digest, layers_downloaded, bytes, "pulled");
        drop(tmp);
        Ok(PullReport {
            image_id: id.to_string(),
            manifest_digest: top_digest.to_string(),
            layers_downloaded,
            bytes_downloaded: bytes,
        })
    }
}
