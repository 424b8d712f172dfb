//! Manifest media types (image-spec `media-types.md`, Docker schema 2) and the parts of a
//! manifest the registry needs: which blobs an image manifest references and which child
//! manifests an index lists, and for a client the platform entries of an index.

use serde::Deserialize;

use crate::name::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = berth_image::media_type::MANIFEST;
/// OCI image index.
pub const OCI_INDEX: &str = berth_image::media_type::INDEX;
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = berth_image::media_type::DOCKER_LIST;
/// OCI image config.
pub const OCI_CONFIG: &str = berth_image::media_type::CONFIG;
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = berth_image::media_type::LAYER;
/// Every manifest type this registry accepts, as an `Accept` header value.
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("manifest is not valid json")]
    Json(#[source] serde_json::Error),
    /// A media type this registry does not store.
    #[error("unsupported manifest media type {0}")]
    MediaType(String),
    /// A descriptor digest that is not `sha256:<hex>`.
    #[error("descriptor digest {0} is invalid")]
    Digest(String),
}

/// A content descriptor (image-spec `descriptor.md`), the fields used here.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Foreign-layer URLs; such blobs need not be in the registry.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Platform of an index entry.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    /// `amd64`, `arm64`...
    #[serde(default)]
    pub architecture: String,
    /// `linux`...
    #[serde(default)]
    pub os: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// A parsed manifest: its media type and what it references.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Media type, from the body's `mediaType` or else the upload's `Content-Type`.
    pub media_type: String,
    /// Image config (image manifests only).
    pub config: Option<Descriptor>,
    /// Layers (image manifests only).
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes only).
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    /// Parses `bytes`; `content_type` is used when the body names no media type.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        let raw: Raw = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        let media_type = match (raw.media_type, content_type) {
            (Some(m), _) => m,
            (None, Some(c)) => c.split(';').next().unwrap_or(c).trim().to_string(),
            // OCI allows omitting mediaType; guess from the shape.
            (None, None) if raw.config.is_some() => OCI_MANIFEST.to_string(),
            (None, None) => OCI_INDEX.to_string(),
        };
        if ![OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&media_type.as_str()) {
            return Err(ManifestError::MediaType(media_type));
        }
        let m = Self {
            media_type,
            config: raw.config,
            layers: raw.layers,
            manifests: raw.manifests,
        };
        if m.is_index() != m.config.is_none() {
            return Err(ManifestError::MediaType(m.media_type));
        }
        let _ = raw.subject;
        for d in m.config.iter().chain(&m.layers).chain(&m.manifests) {
            if Digest::parse(&d.digest).is_none() {
                return Err(ManifestError::Digest(d.digest.clone()));
            }
        }
        Ok(m)
    }

    /// Whether this is an index or manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    /// Blobs that must be present in the repository: config and non-foreign layers.
    pub fn required_blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|l| l.urls.is_empty()))
            .filter_map(|d| Digest::parse(&d.digest))
    }

    /// Every digest referenced (config, layers, child manifests), for garbage collection.
    pub fn references(&self) -> impl Iterator<Item = Digest> + '_ {
        self.config
            .iter()
            .chain(&self.layers)
            .chain(&self.manifests)
            .filter_map(|d| Digest::parse(&d.digest))
    }

    /// The index entry for `os`/`architecture`, if any.
    pub fn platform_entry(&self, os: &str, architecture: &str) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == architecture)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_manifest_lists_its_blobs() {
        let d = format!("sha256:{}", "1".repeat(64));
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"{d}","size":1}},"layers":[{{"digest":"{d}","size":1}},{{"digest":"{d}","urls":["http://x"]}}]}}"#
        );
        let m = Manifest::parse(body.as_bytes(), None).expect("valid");
        assert_eq!(m.required_blobs().count(), 2);
        assert_eq!(m.references().count(), 3);
        assert!(Manifest::parse(b"{", None).is_err());
        assert!(Manifest::parse(br#"{"mediaType":"text/plain"}"#, None).is_err());
    }
}
