//! Image archives: `load` of docker-archive tars (`manifest.json`, `repositories`, legacy
//! `<id>/layer.tar` and Docker 25+ `blobs/sha256/...` paths) and OCI image layout tars
//! (`oci-layout`, `index.json`); `save` of a docker-archive that is also an OCI layout.

mod load;
#[cfg(test)]
mod tests;
pub use load::host_architecture;
mod save;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestEntry {
    /// Path of the config JSON in the archive.
    pub config: String,
    /// Familiar references (`busybox:latest`).
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, base first.
    #[serde(default)]
    pub layers: Vec<String>,
}

/// An OCI descriptor (image-spec `descriptor.md`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Annotations (`org.opencontainers.image.ref.name`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform of a manifest in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// Platform of an index entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Platform {
    /// `amd64`, `arm64`, ...
    #[serde(default)]
    pub architecture: String,
    /// `linux`.
    #[serde(default)]
    pub os: String,
}

/// An OCI image manifest or index (both have `schemaVersion` and `mediaType`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciManifest {
    /// Always 2.
    pub schema_version: u32,
    /// Media type of this document.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Config descriptor (manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    /// Layer descriptors (manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Descriptor>>,
    /// Manifest descriptors (indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<Descriptor>>,
}

/// Media types used in saved archives.
pub mod media_type {
    /// OCI image manifest.
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Uncompressed OCI layer.
    pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// Docker manifest list (accepted when loading).
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
}

/// Annotation naming the reference of a manifest in an OCI layout.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker's) annotation with the full image name.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
