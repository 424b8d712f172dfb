//! berth-image: the image model and everything stored on disk for images: references,
//! a content-addressed blob store (sha256 verified on write), layers applied with whiteouts,
//! per-container snapshots (overlayfs, copy fallback), import/export of docker-archive tars,
//! OCI layouts and rootfs tars, and garbage collection of layers no image uses.
//!
//! Contract with `berth-engine` (the engine codes against exactly these items): an
//! [`ImageStore`] opened on `<root>/image`; images are addressed by anything a user types
//! (`busybox`, `busybox:1`, `docker.io/library/busybox:latest`, a full or short id,
//! `sha256:<id>`, `name@sha256:<digest>`); the image's config is Docker's image config JSON
//! ([`ImageConfig`]), kept byte for byte so the image id (sha256 of the config blob) is stable
//! across save → rmi → load.
//!
//! Layout under the root (each file written atomically; `open` sweeps `.tmp-*` leftovers,
//! drops half-registered images and collects unused layers and blobs):
//!
//! ```text
//! blobs/sha256/<hex>          configs and uncompressed layer tars, verified on write
//! layers/<chain hex>/diff     a layer extracted once, shared by every image that has it
//! layers/<chain hex>/layer.json   its record; present only when the layer is complete
//! l/<16 hex> -> ../layers/<chain hex>/diff   short names for overlay mount data
//! images/<hex>.json           per-image metadata (parent, digests, when added)
//! repositories.json           normalized reference → image id
//! snapshots/<container>/{init,upper,work,merged,snapshot.json}
//! ```
//!
//! Beyond the original contract the store offers: [`ImageStore::graph_driver`],
//! [`ImageStore::snapshot`], [`ImageStore::unmount_snapshot`], [`ImageStore::history`],
//! `docker cp` helpers ([`ImageStore::stat_path`], [`ImageStore::copy_from_container`],
//! [`ImageStore::copy_to_container`]), registry hooks ([`ImageStore::add_image`],
//! [`ImageStore::missing_layers`], [`ImageStore::open_layer`], [`ImageStore::offer_blob`]),
//! [`ImageStore::config_bytes`], [`ImageStore::set_copy_snapshots`] and [`ImageError::status`].

mod archive;
mod atomic;
mod blobs;
mod config;
mod copy;
pub mod digest;
#[cfg(test)]
mod fixtures;
mod history;
mod import;
mod ingest;
mod layer;
pub mod reference;
mod remove;
mod rootpath;
mod snapshot;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use archive::media_type;
pub use blobs::BlobOffer;
pub use config::{ContainerDefaults, History, ImageConfig, RootFs};
pub use copy::PathStat;
pub use history::HistoryItem;
pub use ingest::LayerOpener;
pub use reference::Reference;

/// `sha256:<64 hex>`.
pub type Digest = String;

/// An image in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `sha256:<hex>` of the config blob.
    pub id: Digest,
    pub config: ImageConfig,
    /// Normalized references (`docker.io/library/busybox:latest`) pointing at it.
    pub tags: Vec<String>,
    /// `name@sha256:<manifest digest>` where known (after a pull or OCI load).
    pub digests: Vec<String>,
    /// Id of the image this one was built or committed from (Docker's `Parent`), if any.
    pub parent: Option<Digest>,
    /// Sum of the layers' uncompressed sizes.
    pub size: u64,
    /// When the image was added to this store (for `images` CREATED fallback and prune).
    pub created: chrono::DateTime<chrono::Utc>,
}

/// Paths of a container's filesystem (Docker's GraphDriver data for overlay2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Container id the snapshot belongs to.
    pub id: String,
    /// Read-only layer directories, top first (overlay's `lowerdir` order).
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the union is mounted; the container's rootfs.
    pub merged: PathBuf,
}

/// A change in a container's filesystem relative to its image (`docker diff`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the container.
    pub path: String,
    /// 0 modified, 1 added, 2 deleted (Docker's `Kind`).
    pub kind: u8,
}

/// What `rmi` did, in Docker's order (`Untagged` then `Deleted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Docker's text: `No such image: <name>`.
    #[error("No such image: {0}")]
    NotFound(String),
    /// Docker's `invalid reference format` (with the reason after a colon when there is
    /// one, for example `repository name (library/Busybox) must be lowercase`).
    #[error("invalid reference format{}{}", if .0.is_empty() { "" } else { ": " }, .0)]
    InvalidReference(String),
    /// Docker's conflict texts, for example
    /// `conflict: unable to remove repository reference "x" (must force) - container 0123 is using its referenced image 4567`.
    #[error("{0}")]
    Conflict(String),
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("mount of snapshot {id} failed")]
    Mount {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A container has no snapshot (or its id is not a valid one).
    #[error("no snapshot for container {0}")]
    NoSnapshot(String),
    /// Docker's `docker cp` text for a missing path.
    #[error("Could not find the file {path} in container {container}")]
    PathNotFound { path: String, container: String },
    /// `docker cp` into a path that is not a directory.
    #[error("extraction point is not a directory: {0}")]
    NotADirectory(String),
}

impl ImageError {
    /// The HTTP status the Docker Engine API uses for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) | Self::NoSnapshot(_) | Self::PathNotFound { .. } => 404,
            Self::InvalidReference(_) | Self::InvalidArchive(_) | Self::NotADirectory(_) => 400,
            Self::Conflict(_) => 409,
            Self::DigestMismatch { .. } | Self::Mount { .. } | Self::Io(_) => 500,
        }
    }
}

/// The image store under `<root>`: blobs, layers, image metadata, references, snapshots.
/// Safe to share between threads; every operation is synchronous (callers use
/// `spawn_blocking`).
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    blobs: blobs::BlobStore,
    layers: layer::Layers,
    /// The index every read uses; held only briefly, never across extraction or I/O loops.
    state: RwLock<state::State>,
    /// Serializes operations that add or remove images and layers.
    ops: Mutex<()>,
    /// When set, new snapshots are copies instead of overlay mounts.
    copy_snapshots: AtomicBool,
    /// Layers an ingest in progress relies on (count of ingests per chain id): garbage
    /// collection keeps them although no image names them yet.
    pins: Mutex<HashMap<Digest, usize>>,
}

impl ImageStore {
    /// Opens or creates the store; finishes or rolls back anything a crash left half done.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        std::fs::create_dir_all(root)?;
        atomic::sweep_temp(root)?;
        let blobs = blobs::BlobStore::open(root.join("blobs").join("sha256"))?;
        let layers = layer::Layers::open(root)?;
        let read_blob = |d: &str| blobs.read(d).ok();
        let mut state = state::State::read(root, &read_blob, layers.scan()?)?;
        state.snapshots = snapshot::scan(root)?;
        let store = Self {
            root: root.to_path_buf(),
            blobs,
            layers,
            state: RwLock::new(state),
            ops: Mutex::new(()),
            copy_snapshots: AtomicBool::new(false),
            pins: Mutex::new(HashMap::new()),
        };
        let _ = store.collect_garbage()?;
        for chain in store.read_state().layers.keys() {
            store.layers.link(chain)?;
        }
        tracing::info!(root = %root.display(), images = store.read_state().images.len(), "image store opened");
        Ok(store)
    }

    /// Root directory of the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes new snapshots copies of the layers instead of overlay mounts (for filesystems
    /// where overlayfs misbehaves; failures to mount overlay fall back to this anyway).
    pub fn set_copy_snapshots(&self, copy: bool) {
        self.copy_snapshots.store(copy, Ordering::Relaxed);
    }

    fn copy_snapshots(&self) -> bool {
        self.copy_snapshots.load(Ordering::Relaxed)
    }

    /// Resolves what a user typed to an image.
    pub fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        let st = self.read_state();
        let id = st.lookup(name)?;
        st.image(&id)
            .ok_or_else(|| ImageError::NotFound(name.into()))
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let st = self.read_state();
        let mut out: Vec<Image> = st.images.keys().filter_map(|id| st.image(id)).collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Adds a reference to an image.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let _ops = self.lock_ops();
        let target = state::tag_reference(target)?;
        let mut st = self.write_state();
        let id = st.lookup(source)?;
        st.refs.insert(target.to_string(), id.clone());
        st.persist_refs(&self.root)?;
        tracing::info!(image = %id, reference = %target, "tagged");
        Ok(())
    }

    /// The raw config blob of an image (byte for byte as loaded or pulled).
    pub fn config_bytes(&self, image_id: &str) -> Result<Vec<u8>, ImageError> {
        let id = self.read_state().lookup(image_id)?;
        self.blobs.read(&id)
    }

    fn read_state(&self) -> RwLockReadGuard<'_, state::State> {
        // A panic while holding the lock cannot leave the index half updated: every update
        // is a single insert or remove, so a poisoned lock is still consistent.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, state::State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_ops(&self) -> MutexGuard<'_, ()> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an image whose layers exist: stores the config blob, writes the metadata, indexes
    /// it and points `references` (normalized) at it. Caller holds the ops lock.
    fn register_image(
        &self,
        config_bytes: &[u8],
        parent: Option<Digest>,
        digests: Vec<String>,
        references: &[String],
    ) -> Result<Digest, ImageError> {
        let config: ImageConfig = serde_json::from_slice(config_bytes)
            .map_err(|e| ImageError::InvalidArchive(format!("invalid image config: {e}")))?;
        let chain = digest::chain_ids(&config.rootfs.diff_ids);
        self.sync_layers()?;
        let id = self.blobs.put_bytes(config_bytes)?;
        let mut st = self.write_state();
        let mut meta = match st.images.get(&id) {
            Some(existing) => existing.meta.clone(),
            None => state::ImageMeta {
                parent: parent.clone(),
                created: chrono::Utc::now(),
                digests: Vec::new(),
            },
        };
        for d in digests {
            if !meta.digests.contains(&d) {
                meta.digests.push(d);
            }
        }
        if meta.parent.is_none() {
            meta.parent = parent;
        }
        let hex = digest::sha256_hex(&id).unwrap_or_default();
        let bytes = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
        atomic::write_file(
            &state::images_dir(&self.root).join(format!("{hex}.json")),
            &bytes,
        )?;
        st.images.insert(
            id.clone(),
            state::ImageRecord {
                config,
                meta,
                chain,
            },
        );
        for r in references {
            st.refs.insert(r.clone(), id.clone());
        }
        if !references.is_empty() {
            st.persist_refs(&self.root)?;
        }
        tracing::info!(image = %id, references = ?references, "image registered");
        Ok(id)
    }

    /// Makes every layer written so far durable (one `syncfs` of the store's filesystem,
    /// far cheaper than an fsync per extracted file), if any was written since the last one.
    fn sync_layers(&self) -> Result<(), ImageError> {
        if self.layers.take_unsynced() {
            let root = std::fs::File::open(&self.root)?;
            if let Err(e) = nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&root)) {
                self.layers.mark_unsynced();
                return Err(std::io::Error::from(e).into());
            }
        }
        Ok(())
    }

    fn lock_pins(&self) -> MutexGuard<'_, HashMap<Digest, usize>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes layers and blobs nothing uses any more; returns the deleted layers.
    fn collect_garbage(&self) -> Result<Vec<layer::LayerRecord>, ImageError> {
        let (unused, keep) = {
            let mut st = self.write_state();
            // Read under the state lock: an ingest pins a layer before it looks it up.
            let pinned: std::collections::HashSet<Digest> =
                self.lock_pins().keys().cloned().collect();
            let unused = st.take_unused_layers(&pinned);
            let mut keep: std::collections::HashSet<Digest> = st.images.keys().cloned().collect();
            keep.extend(st.layers.values().map(|l| l.diff_id.clone()));
            (unused, keep)
        };
        for layer in &unused {
            tracing::debug!(layer = %layer.chain_id, "removing unused layer");
            self.layers.remove(&layer.chain_id)?;
        }
        for blob in self.blobs.list()? {
            if !keep.contains(&blob) {
                self.blobs.remove(&blob)?;
            }
        }
        Ok(unused)
    }
}
