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

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `sha256:<64 hex>`.
pub type Digest = String;

/// Docker's image config (`application/vnd.docker.container.image.v1+json`, a superset of the
/// OCI image config). Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerDefaults>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The `config` object of an image config: defaults for containers of the image. Docker's
/// spelling (`Env`, `Cmd`, ...). Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    pub diff_ids: Vec<Digest>,
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

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
    #[error("invalid reference format: {0}")]
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
}

/// The image store under `<root>`: blobs, layers, image metadata, references, snapshots.
/// Safe to share between threads; every operation is synchronous (callers use
/// `spawn_blocking`).
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Opens or creates the store; finishes or rolls back anything a crash left half done.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Root directory of the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves what a user typed to an image.
    pub fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        Err(ImageError::NotFound(name.into()))
    }

    /// Every image.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        Ok(Vec::new())
    }

    /// Loads a docker-archive or OCI-layout tar; returns the loaded images and the references
    /// now pointing at them (for Docker's `Loaded image: x` / `Loaded image ID: sha256:..`).
    pub fn load(&self, tar: &mut dyn Read) -> Result<Vec<(Digest, Vec<String>)>, ImageError> {
        let _ = tar;
        Err(ImageError::InvalidArchive("not implemented".into()))
    }

    /// Writes a docker-archive tar (with `manifest.json`, `repositories`, and also an OCI
    /// layout `index.json`/`oci-layout` as Docker 25+ does) of the named images.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ImageError> {
        let _ = (names, out);
        Err(ImageError::InvalidArchive("not implemented".into()))
    }

    /// Creates a one-layer image from a rootfs tar (`docker import`), with config changes
    /// already applied by the caller in `defaults`.
    pub fn import(
        &self,
        tar: &mut dyn Read,
        reference: Option<&str>,
        defaults: ContainerDefaults,
        message: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let _ = (tar, reference, defaults, message);
        Err(ImageError::InvalidArchive("not implemented".into()))
    }

    /// Adds a reference to an image.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let _ = target;
        Err(ImageError::NotFound(source.into()))
    }

    /// `docker rmi`: `in_use(image_id)` returns the id of a container using the image, if any.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Removed>, ImageError> {
        let _ = (force, in_use);
        Err(ImageError::NotFound(name.into()))
    }

    /// Creates the snapshot of a new container from an image and mounts it.
    pub fn prepare_snapshot(
        &self,
        container_id: &str,
        image_id: &str,
    ) -> Result<Snapshot, ImageError> {
        let _ = container_id;
        Err(ImageError::NotFound(image_id.into()))
    }

    /// Mounts an existing snapshot (after a reboot or an unmount); idempotent.
    pub fn mount_snapshot(&self, container_id: &str) -> Result<Snapshot, ImageError> {
        Err(ImageError::NotFound(container_id.into()))
    }

    /// Unmounts and deletes a container's snapshot; idempotent.
    pub fn remove_snapshot(&self, container_id: &str) -> Result<(), ImageError> {
        let _ = container_id;
        Ok(())
    }

    /// Changes of a container's filesystem (`docker diff`).
    pub fn diff(&self, container_id: &str) -> Result<Vec<Change>, ImageError> {
        Err(ImageError::NotFound(container_id.into()))
    }

    /// Tar of a container's whole filesystem (`docker export`).
    pub fn export(&self, container_id: &str, out: &mut dyn Write) -> Result<(), ImageError> {
        let _ = out;
        Err(ImageError::NotFound(container_id.into()))
    }

    /// New image from a container's changes on top of its image (`docker commit`).
    pub fn commit(
        &self,
        container_id: &str,
        image_id: &str,
        defaults: ContainerDefaults,
        author: Option<&str>,
        message: Option<&str>,
        reference: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let _ = (container_id, defaults, author, message, reference);
        Err(ImageError::NotFound(image_id.into()))
    }

    /// Removes images (only dangling ones unless `all`) that no container uses; returns what
    /// was removed and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Vec<Removed>, u64), ImageError> {
        let _ = (all, in_use);
        Ok((Vec::new(), 0))
    }
}
