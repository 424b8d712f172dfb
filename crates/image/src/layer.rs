//! Layers on disk: each layer is extracted once into `<root>/layers/<chain hex>/diff`, shared
//! by every image that has it, with a short symlink `<root>/l/<16 hex>` so overlay mount data
//! stays under a page for images with many layers. The uncompressed layer tar is kept as a
//! blob (named by the diff id) so `save` writes the exact bytes the image config names.

pub mod apply;
pub mod pack;
#[cfg(test)]
mod tests;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::atomic::{self, temp_path};
use crate::blobs::BlobStore;
use crate::digest::{TeeReader, sha256_digest, sha256_hex};
use crate::{Digest, ImageError};

/// Length of the names in `<root>/l/`.
const SHORT_LEN: usize = 16;
/// Name of a layer's metadata file; its presence marks the layer complete.
const META_FILE: &str = "layer.json";

/// A layer as stored, persisted in `<root>/layers/<chain hex>/layer.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Chain id (the layer's identity in this store).
    pub chain_id: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Chain id of the layer below, if any.
    pub parent: Option<Digest>,
    /// Bytes of regular files in the layer.
    pub size: u64,
}

/// The layer directory tree of a store.
#[derive(Debug)]
pub struct Layers {
    dir: PathBuf,
    links: PathBuf,
    /// Set when a layer was put in place without a sync (see [`Self::extract`]).
    unsynced: AtomicBool,
}

impl Layers {
    /// Opens `<root>/layers` and `<root>/l`, removing half-extracted layers.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        let dir = root.join("layers");
        let links = root.join("l");
        fs::create_dir_all(&dir)?;
        fs::create_dir_all(&links)?;
        atomic::sweep_temp(&dir)?;
        atomic::sweep_temp(&links)?;
        Ok(Self {
            dir,
            links,
            unsynced: AtomicBool::new(false),
        })
    }

    /// `<root>/layers/<chain hex>`.
    pub fn layer_dir(&self, chain_id: &str) -> PathBuf {
        self.dir
            .join(chain_id.strip_prefix("sha256:").unwrap_or(chain_id))
    }

    /// The extracted content of a layer.
    pub fn diff_dir(&self, chain_id: &str) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    /// The short symlink to a layer's diff dir, as used in mount data.
    pub fn short_link(&self, chain_id: &str) -> PathBuf {
        let hex = chain_id.strip_prefix("sha256:").unwrap_or(chain_id);
        self.links.join(hex.get(..SHORT_LEN).unwrap_or(hex))
    }

    /// Every complete layer on disk; incomplete ones are removed.
    pub fn scan(&self) -> Result<Vec<LayerRecord>, ImageError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let meta = fs::read(path.join(META_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice::<LayerRecord>(&b).ok());
            match meta {
                Some(rec) if self.layer_dir(&rec.chain_id) == path => out.push(rec),
                _ => {
                    tracing::info!(path = %path.display(), "removing incomplete layer");
                    atomic::remove_any(&path)?;
                }
            }
        }
        Ok(out)
    }

    /// Extracts a layer tar (plain or gzip) on top of `parent`, storing the uncompressed tar
    /// as a blob. When `expected` is given the diff id must match. If the layer already
    /// exists the new copy is discarded. Caller holds the store's ops lock.
    pub fn create(
        &self,
        blobs: &BlobStore,
        reader: &mut dyn Read,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
    ) -> Result<LayerRecord, ImageError> {
        let extracted = self.extract(blobs, reader, parent, expected)?;
        self.commit(extracted)
    }

    /// The slow half of [`Self::create`], which needs no lock: extracts and verifies the
    /// layer into a temporary directory. Nothing is synced here: the store syncs the
    /// filesystem once before an image names the layer (a layer no image names is collected
    /// at the next open, so a crash before that point loses nothing a user could see).
    pub fn extract(
        &self,
        blobs: &BlobStore,
        reader: &mut dyn Read,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
    ) -> Result<Extracted, ImageError> {
        let mut extracted = Extracted {
            tmp: temp_path(&self.dir),
            rec: None,
        };
        extracted.rec = Some(self.extract_in(&extracted.tmp, blobs, reader, parent, expected)?);
        Ok(extracted)
    }

    fn extract_in(
        &self,
        tmp: &Path,
        blobs: &BlobStore,
        reader: &mut dyn Read,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
    ) -> Result<LayerRecord, ImageError> {
        let diff = tmp.join("diff");
        fs::create_dir_all(&diff)?;
        let (mut input, compressed) = decompressed_kind(reader)?;
        // The uncompressed tar is kept as a blob. A plain tar read from a file offered for
        // the expected diff id (a pull's download, verified by the puller before the stream
        // ends) is neither hashed again nor copied: that file becomes the blob. Otherwise
        // the stream is hashed, and copied unless the store has the blob already.
        let offered = expected
            .filter(|_| !compressed)
            .and_then(|d| blobs.offered(d).map(|path| (d, path)));
        let (diff_id, stats) = if let Some((verified, path)) = offered {
            let stats = apply::apply_tar(&mut input, &diff)?;
            // Up to the end: the puller's end of stream is its verification.
            std::io::copy(&mut input, &mut std::io::sink())?;
            blobs.adopt(&path, verified)?;
            (verified.clone(), stats)
        } else if expected.is_some_and(|d| blobs.contains(d)) {
            let mut tee = TeeReader::new(&mut input, std::io::sink());
            let stats = apply::apply_tar(&mut tee, &diff)?;
            let (diff_id, _, _) = tee.finish()?;
            if let Some(expected) = expected
                && *expected != diff_id
            {
                return Err(ImageError::DigestMismatch {
                    expected: expected.clone(),
                    actual: diff_id,
                });
            }
            (diff_id, stats)
        } else {
            let blob = blobs.writer()?;
            let mut tee = TeeReader::new(&mut input, blob);
            let stats = apply::apply_tar(&mut tee, &diff)?;
            let (diff_id, _, blob) = tee.finish()?;
            let (diff_id, _) =
                blob.commit_unsynced(expected.map(String::as_str).or(Some(&diff_id)))?;
            (diff_id, stats)
        };
        let chain_id = match parent {
            None => diff_id.clone(),
            Some(p) => sha256_digest(format!("{p} {diff_id}").as_bytes()),
        };
        Ok(LayerRecord {
            chain_id,
            diff_id,
            parent: parent.cloned(),
            size: stats.size,
        })
    }

    /// The quick half of [`Self::create`]: moves an extracted layer into place (or drops it
    /// when the layer appeared meanwhile). Caller holds the store's ops lock.
    pub fn commit(&self, mut extracted: Extracted) -> Result<LayerRecord, ImageError> {
        let rec = extracted
            .rec
            .take()
            .ok_or_else(|| std::io::Error::other("layer committed twice"))?;
        let tmp = extracted.tmp.clone();
        let final_dir = self.layer_dir(&rec.chain_id);
        if final_dir.join(META_FILE).exists() {
            atomic::remove_any(&tmp)?;
            return Ok(rec);
        }
        atomic::remove_any(&final_dir)?;
        fs::write(
            tmp.join(META_FILE),
            serde_json::to_vec(&rec).map_err(json_err)?,
        )?;
        fs::rename(&tmp, &final_dir)?;
        self.mark_unsynced();
        self.link(&rec.chain_id)?;
        tracing::debug!(layer = %rec.chain_id, size = rec.size, "layer extracted");
        Ok(rec)
    }

    /// True (and cleared) when a layer was put in place since the last call: the caller
    /// syncs the filesystem before anything durable names it.
    pub fn take_unsynced(&self) -> bool {
        self.unsynced.swap(false, Ordering::AcqRel)
    }

    /// Records that a layer on disk is not synced yet.
    pub fn mark_unsynced(&self) {
        self.unsynced.store(true, Ordering::Release);
    }

    /// Creates (or repairs) the short symlink of a layer.
    pub fn link(&self, chain_id: &str) -> Result<(), ImageError> {
        let link = self.short_link(chain_id);
        let hex = sha256_hex(chain_id).unwrap_or(chain_id);
        let target = Path::new("../layers").join(hex).join("diff");
        if fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
            return Ok(());
        }
        let tmp = temp_path(&self.links);
        std::os::unix::fs::symlink(&target, &tmp)?;
        fs::rename(&tmp, &link)?;
        Ok(())
    }

    /// Removes a layer's directory and short link.
    pub fn remove(&self, chain_id: &str) -> Result<(), ImageError> {
        atomic::remove_any(&self.short_link(chain_id))?;
        // Rename first so a crash mid-delete leaves a temp dir swept at open, not a
        // half-empty layer that looks complete.
        let dir = self.layer_dir(chain_id);
        if dir.exists() {
            let tmp = temp_path(&self.dir);
            fs::rename(&dir, &tmp)?;
            atomic::remove_any(&tmp)?;
        }
        Ok(())
    }
}

/// A layer extracted into a temporary directory, not yet in place; dropped without
/// [`Layers::commit`] it leaves nothing behind.
#[derive(Debug)]
pub struct Extracted {
    tmp: PathBuf,
    rec: Option<LayerRecord>,
}

impl Drop for Extracted {
    fn drop(&mut self) {
        // Also reached after a failed extraction (`rec` never set) and after a commit (the
        // temp dir was renamed away; removing a missing path is fine).
        let _ = atomic::remove_any(&self.tmp);
    }
}

fn json_err(e: serde_json::Error) -> ImageError {
    ImageError::Io(std::io::Error::other(e))
}

/// Wraps a reader, transparently gunzipping when the stream starts with the gzip magic.
pub fn decompressed<'a>(reader: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>, ImageError> {
    Ok(decompressed_kind(reader)?.0)
}

/// [`decompressed`], also saying whether the stream was compressed.
fn decompressed_kind<'a>(
    reader: &'a mut dyn Read,
) -> Result<(Box<dyn Read + 'a>, bool), ImageError> {
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(buf)), true))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(ImageError::InvalidArchive(
            "zstd-compressed layers are not supported".into(),
        ))
    } else {
        Ok((Box::new(buf), false))
    }
}
