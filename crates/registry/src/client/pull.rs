//! Pull: resolve the manifest (an index or list picks linux/amd64), fetch and verify the
//! config, then download the layers the image store lacks, up to [`CONCURRENT_DOWNLOADS`]
//! at a time, each into a temp file beside the store and hashed as it streams, while the
//! store unpacks them base first from those same files as the bytes arrive
//! ([`super::follow`]). A layer finishes unpacking only after its blob matched its digest,
//! and the image is registered only after every layer did, so an interrupted pull leaves
//! no half image (only whole, verified layers, which a retry reuses).

use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use berth_image::{ImageStore, Reference};

use super::follow::Growing;
use super::{
    ClientError, Endpoint, Progress, ProgressFn, RegistryClient, expect, no_body, read_small,
};
use crate::manifest::{ACCEPT_ALL, Manifest};
use crate::name::{Digest, Hasher};

/// Layers downloaded at once (dockerd's default `max-concurrent-downloads`).
pub const CONCURRENT_DOWNLOADS: usize = 3;

/// Bytes between two published (flushed) points of a download, and between two progress
/// messages.
const PUBLISH_EVERY: u64 = 512 << 10;

/// A download that receives nothing for this long fails: the unpacking thread waits for
/// the bytes (with the image's layers pinned in the store), so a stalled registry must not
/// keep it for ever.
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

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
        dest: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<u64, ClientError> {
        self.download(ep, digest, dest, None, progress).await
    }

    /// Downloads blob `digest` to `dest`, hashing as it streams; with `growing`, publishes
    /// each flushed stretch to its reader and marks it complete once the digest matched.
    async fn download(
        &self,
        ep: &Endpoint,
        digest: &str,
        dest: &Path,
        growing: Option<&Growing>,
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
        let mut hasher = Hasher::new();
        let (mut current, mut reported) = (0u64, 0u64);
        loop {
            let frame = tokio::time::timeout(STALL, body.frame())
                .await
                .map_err(|_| ClientError::Http {
                    url: url.clone(),
                    source: format!("no data for {} s", STALL.as_secs()).into(),
                })?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| ClientError::Http {
                url: url.clone(),
                source: Box::new(e),
            })?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                out.write_all(&data).await?;
                current += data.len() as u64;
                if current - reported >= PUBLISH_EVERY {
                    reported = current;
                    if let Some(g) = growing {
                        out.flush().await?;
                        g.publish(current);
                    }
                    progress(Progress::Transferring {
                        digest: digest.to_string(),
                        current,
                        total,
                    });
                }
            }
        }
        out.flush().await?;
        let actual = hasher.finish();
        if actual.as_str() != digest {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(ClientError::DigestMismatch {
                what: format!("blob {url}"),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        if let Some(g) = growing {
            g.publish(current);
            g.complete();
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
        let layers = &manifest.layers;
        let mut files: Vec<Option<Arc<Growing>>> = vec![None; layers.len()];
        for (i, layer) in layers.iter().enumerate() {
            if !missing.contains(&i) {
                progress(Progress::Exists {
                    digest: layer.digest.clone(),
                });
                continue;
            }
            let growing = Growing::new(tmp.path().join(format!("layer{i}")));
            tokio::fs::File::create(growing.path()).await?;
            files[i] = Some(growing);
        }
        for (n, &i) in missing.iter().enumerate() {
            if let Some(layer) = layers.get(i) {
                progress(Progress::Queued {
                    digest: layer.digest.clone(),
                    waiting: n >= CONCURRENT_DOWNLOADS,
                });
            }
        }
        let files = Abandon(files);
        let tag = reference
            .tag
            .as_ref()
            .map(|t| format!("{}:{t}", reference.name()));
        let repo_digest = format!("{}@{top_digest}", reference.name());

        // The store unpacks on a blocking thread, reading each layer's file as it grows and
        // reporting through `events`.
        let (events, mut unpacked) = mpsc::unbounded_channel();
        let mut unpack = {
            let (store, config, files) = (store.clone(), config.clone(), files.0.clone());
            let sizes: Vec<(String, u64)> =
                layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
            tokio::task::spawn_blocking(move || {
                unpack_all(&store, &config, &files, &sizes, &events, tag, repo_digest)
            })
        };
        let queue: Vec<(String, Arc<Growing>)> = missing
            .iter()
            .filter_map(|&i| Some((layers.get(i)?.digest.clone(), files.0.get(i)?.clone()?)))
            .collect();
        let ep = &ep;
        let downloads = futures::stream::iter(queue)
            .map(|(digest, g)| async move {
                let r = self
                    .download(ep, &digest, g.path(), Some(&g), progress)
                    .await;
                if let Err(e) = &r {
                    g.fail(&e.to_string());
                }
                r
            })
            .buffer_unordered(CONCURRENT_DOWNLOADS)
            .try_fold(0u64, |sum, n| async move { Ok(sum + n) });
        tokio::pin!(downloads);
        let mut bytes = None;
        let id = loop {
            tokio::select! {
                Some(p) = unpacked.recv() => progress(p),
                r = &mut downloads, if bytes.is_none() => match r {
                    Ok(n) => bytes = Some(n),
                    Err(e) => {
                        // The unpacker sees the failure at its next read and gives up.
                        files.fail_all(&e.to_string());
                        let _ = (&mut unpack).await;
                        return Err(e);
                    }
                },
                r = &mut unpack => break r.map_err(std::io::Error::other)?,
            }
        };
        while let Ok(p) = unpacked.try_recv() {
            progress(p);
        }
        let id = id?;
        let bytes = bytes.unwrap_or(0);
        let layers_downloaded = missing.len();
        tracing::info!(reference = %reference.name(), digest = %top_digest, layers_downloaded, bytes, "pulled");
        Ok(PullReport {
            image_id: id.to_string(),
            manifest_digest: top_digest.to_string(),
            layers_downloaded,
            bytes_downloaded: bytes,
        })
    }
}

/// The growing layer files of a pull; dropping it (the pull finished, failed or was
/// abandoned mid-way) fails every file not yet complete, so the unpacking thread never
/// waits for bytes that will not come.
struct Abandon(Vec<Option<Arc<Growing>>>);

impl Abandon {
    fn fail_all(&self, why: &str) {
        for g in self.0.iter().flatten() {
            g.fail(why);
        }
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        self.fail_all("pull abandoned");
    }
}

/// Unpacks the missing layers into `store` base first from their growing files, reporting
/// `Extracting` progress and each finished layer, then registers the image.
fn unpack_all(
    store: &ImageStore,
    config: &[u8],
    files: &[Option<Arc<Growing>>],
    sizes: &[(String, u64)],
    events: &mpsc::UnboundedSender<Progress>,
    tag: Option<String>,
    repo_digest: String,
) -> Result<berth_image::Digest, ClientError> {
    // `add_image` opens layer i only after layer i-1 is unpacked: the previous one is done.
    let mut current: Option<usize> = None;
    // A downloaded plain tar becomes the store's layer blob as it is (no second copy).
    let mut offers = Vec::new();
    let finished = |i: Option<usize>| {
        if let Some((digest, _)) = i.and_then(|i| sizes.get(i)) {
            let _ = events.send(Progress::Unpacked {
                digest: digest.clone(),
            });
        }
    };
    let mut open = |i: usize| -> Result<Box<dyn std::io::Read>, berth_image::ImageError> {
        finished(current.replace(i));
        let growing = files.get(i).cloned().flatten().ok_or_else(|| {
            berth_image::ImageError::NotFound(format!("layer {i} was not downloaded"))
        })?;
        let (digest, total) = sizes.get(i).cloned().unwrap_or_default();
        offers.push(store.offer_blob(&digest, growing.path()));
        let events = events.clone();
        let mut reported = 0u64;
        let on_read = Box::new(move |current: u64| {
            if current - reported >= PUBLISH_EVERY || current == total {
                reported = current;
                let _ = events.send(Progress::Unpacking {
                    digest: digest.clone(),
                    current,
                    total,
                });
            }
        });
        Ok(Box::new(growing.reader(on_read)?))
    };
    let id = store.add_image(config, &mut open, tag.as_deref(), Some(&repo_digest));
    drop(offers);
    let id = id?;
    finished(current);
    Ok(id)
}
