//! The in-memory index of the store (images, references, layers, snapshots) and its
//! persistence: `<root>/images/<hex>.json` per image, `<root>/repositories.json` for the
//! reference map, each written atomically. `resolve` and `list` only read the index.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{chain_ids, is_sha256_hex, sha256_hex};
use crate::layer::LayerRecord;
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::SnapshotRecord;
use crate::{Digest, Image, ImageConfig, ImageError};

/// Per-image metadata that is not in the config blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// Docker's `Parent`.
    #[serde(default)]
    pub parent: Option<Digest>,
    /// When the image entered this store.
    pub created: DateTime<Utc>,
    /// `name@sha256:<manifest digest>` references.
    #[serde(default)]
    pub digests: Vec<String>,
}

/// An image in the index.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// Parsed config (the blob keeps the exact bytes).
    pub config: ImageConfig,
    /// Metadata kept beside it.
    pub meta: ImageMeta,
    /// Layer chain ids, base first.
    pub chain: Vec<Digest>,
}

/// The whole index.
#[derive(Debug, Default)]
pub struct State {
    /// Images by id.
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Normalized reference → image id.
    pub refs: BTreeMap<String, Digest>,
    /// Layers by chain id.
    pub layers: HashMap<Digest, LayerRecord>,
    /// Snapshots by container id.
    pub snapshots: HashMap<String, SnapshotRecord>,
}

/// `<root>/images`.
pub fn images_dir(root: &Path) -> PathBuf {
    root.join("images")
}

/// `<root>/repositories.json`.
pub fn refs_file(root: &Path) -> PathBuf {
    root.join("repositories.json")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RefsFile {
    refs: BTreeMap<String, Digest>,
}

impl State {
    /// Reads the image metadata and reference map written by earlier runs. Images whose
    /// config blob or layers are missing (a crash between steps) are dropped.
    pub fn read(
        root: &Path,
        read_blob: &dyn Fn(&str) -> Option<Vec<u8>>,
        layers: Vec<LayerRecord>,
    ) -> Result<Self, ImageError> {
        let mut state = State {
            layers: layers
                .into_iter()
                .map(|l| (l.chain_id.clone(), l))
                .collect(),
            ..State::default()
        };
        let dir = images_dir(root);
        fs::create_dir_all(&dir)?;
        crate::atomic::sweep_temp(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            let id = format!("sha256:{name}");
            let meta = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<ImageMeta>(&b).ok());
            let config =
                read_blob(&id).and_then(|b| serde_json::from_slice::<ImageConfig>(&b).ok());
            let record = match (is_sha256_hex(&name), meta, config) {
                (true, Some(meta), Some(config)) => {
                    let chain = chain_ids(&config.rootfs.diff_ids);
                    chain
                        .iter()
                        .all(|c| state.layers.contains_key(c))
                        .then_some(ImageRecord {
                            config,
                            meta,
                            chain,
                        })
                }
                _ => None,
            };
            match record {
                Some(r) => {
                    state.images.insert(id, r);
                }
                None => {
                    tracing::info!(path = %path.display(), "dropping incomplete image");
                    crate::atomic::remove_any(&path)?;
                }
            }
        }
        if let Ok(bytes) = fs::read(refs_file(root)) {
            let file: RefsFile = serde_json::from_slice(&bytes).unwrap_or_default();
            state.refs = file
                .refs
                .into_iter()
                .filter(|(_, id)| state.images.contains_key(id))
                .collect();
        }
        Ok(state)
    }

    /// Writes the reference map atomically.
    pub fn persist_refs(&self, root: &Path) -> Result<(), ImageError> {
        let file = RefsFile {
            refs: self.refs.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        crate::atomic::write_file(&refs_file(root), &bytes)?;
        Ok(())
    }

    /// Finds the id of what a user typed: full or short id (with or without `sha256:`), a
    /// reference (tag added when missing) or `name@digest`.
    pub fn lookup(&self, name: &str) -> Result<Digest, ImageError> {
        let bare = name.strip_prefix("sha256:").unwrap_or(name);
        if is_sha256_hex(bare) {
            let id = format!("sha256:{bare}");
            return match self.images.contains_key(&id) {
                true => Ok(id),
                false => Err(ImageError::NotFound(name.to_string())),
            };
        }
        let parsed = Reference::parse(name);
        if let Ok(r) = &parsed {
            if let Some(digest) = &r.digest {
                let wanted = format!("{}@{digest}", r.name());
                if let Some((id, _)) = self
                    .images
                    .iter()
                    .find(|(_, rec)| rec.meta.digests.contains(&wanted))
                {
                    return Ok(id.clone());
                }
            } else {
                let full = r.clone().with_default_tag().to_string();
                if let Some(id) = self.refs.get(&full) {
                    return Ok(id.clone());
                }
            }
        }
        let is_hex =
            !bare.is_empty() && bare.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_hex {
            let mut hits = self
                .images
                .keys()
                .filter(|id| sha256_hex(id).is_some_and(|h| h.starts_with(bare)));
            if let (Some(id), None) = (hits.next(), hits.next()) {
                return Ok(id.clone());
            }
        }
        match parsed {
            Ok(r) => Err(ImageError::NotFound(r.with_default_tag().familiar())),
            Err(e) if !is_hex => Err(reference_error(e)),
            Err(_) => Err(ImageError::NotFound(name.to_string())),
        }
    }

    /// References pointing at an image, sorted.
    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.refs
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The public view of an image.
    pub fn image(&self, id: &str) -> Option<Image> {
        let rec = self.images.get(id)?;
        let size = rec
            .chain
            .iter()
            .filter_map(|c| self.layers.get(c))
            .map(|l| l.size)
            .sum();
        Some(Image {
            id: id.to_string(),
            config: rec.config.clone(),
            tags: self.tags_of(id),
            digests: rec.meta.digests.clone(),
            parent: rec.meta.parent.clone(),
            size,
            created: rec.meta.created,
        })
    }

    /// Chain ids used by any image or snapshot.
    pub fn used_layers(&self) -> HashSet<Digest> {
        let mut used: HashSet<Digest> = HashSet::new();
        for rec in self.images.values() {
            used.extend(rec.chain.iter().cloned());
        }
        for snap in self.snapshots.values() {
            used.extend(snap.layers.iter().cloned());
        }
        used
    }

    /// Layers no image or snapshot uses and not in `keep` (taken out of the index; the
    /// caller deletes them).
    pub fn take_unused_layers(&mut self, keep: &HashSet<Digest>) -> Vec<LayerRecord> {
        let mut used = self.used_layers();
        used.extend(keep.iter().cloned());
        let unused: Vec<Digest> = self
            .layers
            .keys()
            .filter(|c| !used.contains(*c))
            .cloned()
            .collect();
        unused
            .iter()
            .filter_map(|c| self.layers.remove(c))
            .collect()
    }
}

/// Maps a reference parse failure to the store's error.
pub fn reference_error(e: ReferenceError) -> ImageError {
    ImageError::InvalidReference(e.to_string())
}

/// Parses a reference to create (`tag`, `import`, `commit`): `:latest` added, digests refused.
pub fn tag_reference(input: &str) -> Result<Reference, ImageError> {
    let r = Reference::parse(input)
        .map_err(reference_error)?
        .with_default_tag();
    if r.digest.is_some() {
        return Err(ImageError::InvalidReference(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    Ok(r)
}
