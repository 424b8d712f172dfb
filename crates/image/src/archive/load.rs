//! `docker load`: every file of the archive is streamed into the blob store (hashed on the
//! way; `blobs/sha256/<hex>` entries must match their name), small metadata files are kept
//! in memory, then images are assembled from `manifest.json` (docker-archive) or `index.json`
//! (OCI layout) and their layers extracted once.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{
    CONTAINERD_NAME_ANNOTATION, Descriptor, ManifestEntry, OciManifest, REF_NAME_ANNOTATION,
    media_type,
};
use crate::digest::sha256_hex;
use crate::reference::Reference;
use crate::rootpath::clean_relative;
use crate::{Digest, ImageConfig, ImageError, ImageStore};

/// Largest metadata file (manifest.json, index.json, repositories) read into memory.
const MAX_METADATA: u64 = 16 << 20;
/// Top-level files describing the archive (everything else is content).
const METADATA_FILES: [&str; 4] = ["manifest.json", "index.json", "repositories", "oci-layout"];
/// Most archive entries accepted.
const MAX_ENTRIES: usize = 100_000;

fn invalid(msg: impl Into<String>) -> ImageError {
    ImageError::InvalidArchive(msg.into())
}

/// The archive's files: path → digest of the stored blob, plus in-memory metadata.
#[derive(Default)]
struct Staged {
    files: HashMap<PathBuf, Digest>,
    links: HashMap<PathBuf, PathBuf>,
    metadata: HashMap<PathBuf, Vec<u8>>,
}

impl Staged {
    /// Digest of the blob at an archive path, following archive-internal symlinks.
    fn digest(&self, path: &str) -> Result<Digest, ImageError> {
        let mut p = clean_relative(Path::new(path))
            .ok_or_else(|| invalid(format!("path {path:?} escapes the archive")))?;
        for _ in 0..16 {
            if let Some(d) = self.files.get(&p) {
                return Ok(d.clone());
            }
            match self.links.get(&p) {
                Some(next) => p = next.clone(),
                None => break,
            }
        }
        Err(invalid(format!("{path} is missing from the archive")))
    }
}

impl ImageStore {
    /// Loads a docker-archive or OCI-layout tar (plain or gzip); returns the loaded image ids
    /// with the references (familiar form, `busybox:latest`) now pointing at them, for
    /// Docker's `Loaded image: x` / `Loaded image ID: sha256:..` lines.
    pub fn load(
        &self,
        tar: &mut dyn std::io::Read,
    ) -> Result<Vec<(Digest, Vec<String>)>, ImageError> {
        let _ops = self.lock_ops();
        let result = self.load_locked(tar);
        // Blobs of the archive that no image kept (compressed layers, duplicates).
        let _ = self.collect_garbage()?;
        result
    }

    fn load_locked(&self, tar: &mut dyn Read) -> Result<Vec<(Digest, Vec<String>)>, ImageError> {
        let staged = self.stage(tar)?;
        if staged.metadata.contains_key(Path::new("manifest.json")) {
            self.load_docker(&staged)
        } else if staged.metadata.contains_key(Path::new("index.json")) {
            self.load_oci(&staged)
        } else {
            Err(invalid(
                "neither manifest.json nor index.json found in the archive",
            ))
        }
    }

    fn stage(&self, tar: &mut dyn Read) -> Result<Staged, ImageError> {
        let mut input = crate::layer::decompressed(tar)?;
        let mut archive = tar::Archive::new(&mut input);
        let mut staged = Staged::default();
        let entries = archive
            .entries()
            .map_err(|e| invalid(format!("not a tar stream: {e}")))?;
        for (n, entry) in entries.enumerate() {
            if n >= MAX_ENTRIES {
                return Err(invalid("too many entries"));
            }
            let mut entry = entry.map_err(|e| invalid(format!("corrupt tar entry: {e}")))?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            let path = clean_relative(Path::new(&name))
                .ok_or_else(|| invalid(format!("entry {name:?} escapes the archive")))?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let base = match entry.header().entry_type() {
                        tar::EntryType::Symlink => path.parent().unwrap_or(Path::new("")),
                        _ => Path::new(""),
                    };
                    if let Some(t) = clean_relative(&base.join(&target)) {
                        staged.links.insert(path, t);
                    }
                    continue;
                }
                _ => continue,
            }
            let is_metadata = path.to_str().is_some_and(|p| METADATA_FILES.contains(&p));
            if is_metadata {
                if entry.size() > MAX_METADATA {
                    return Err(invalid(format!("{name} is too large")));
                }
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                staged.metadata.insert(path, bytes);
                continue;
            }
            // blobs/sha256/<hex> must hash to its name.
            let expected = match (path.parent(), path.file_name()) {
                (Some(dir), Some(file)) if dir.ends_with("sha256") => {
                    let d = format!("sha256:{}", file.to_string_lossy());
                    sha256_hex(&d).is_some().then_some(d)
                }
                _ => None,
            };
            let (digest, _) = self.blobs.put(&mut entry, expected.as_deref())?;
            staged.files.insert(path, digest);
        }
        Ok(staged)
    }

    fn load_docker(&self, staged: &Staged) -> Result<Vec<(Digest, Vec<String>)>, ImageError> {
        let bytes = &staged.metadata[Path::new("manifest.json")];
        let manifest: Vec<ManifestEntry> = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("invalid manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in manifest {
            let config_digest = staged.digest(&entry.config)?;
            let layers = entry
                .layers
                .iter()
                .map(|l| staged.digest(l))
                .collect::<Result<Vec<_>, _>>()?;
            let mut refs = Vec::new();
            for tag in entry.repo_tags.unwrap_or_default() {
                let r = Reference::parse(&tag)
                    .map_err(|e| invalid(format!("invalid tag {tag:?} in manifest.json: {e}")))?
                    .with_default_tag();
                refs.push(r);
            }
            let id = self.assemble(&config_digest, &layers, &refs, Vec::new())?;
            out.push((id, refs.iter().map(|r| r.familiar()).collect()));
        }
        Ok(out)
    }

    fn load_oci(&self, staged: &Staged) -> Result<Vec<(Digest, Vec<String>)>, ImageError> {
        let index: OciManifest = serde_json::from_slice(&staged.metadata[Path::new("index.json")])
            .map_err(|e| invalid(format!("invalid index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in index.manifests.unwrap_or_default() {
            let annotations = desc.annotations.clone().unwrap_or_default();
            let name = annotations
                .get(CONTAINERD_NAME_ANNOTATION)
                .or_else(|| annotations.get(REF_NAME_ANNOTATION))
                .and_then(|n| Reference::parse(n).ok())
                // A bare tag ("latest") parses as a repository name on docker.io; only a name
                // with a tag or an explicit domain is a reference.
                .filter(|r| {
                    r.tag.is_some()
                        || r.digest.is_some()
                        || annotations.contains_key(CONTAINERD_NAME_ANNOTATION)
                })
                .map(Reference::with_default_tag);
            let manifest_desc = self.pick_manifest(desc, 0)?;
            let manifest: OciManifest =
                serde_json::from_slice(&self.blob_of(&manifest_desc.digest)?).map_err(|e| {
                    invalid(format!("invalid manifest {}: {e}", manifest_desc.digest))
                })?;
            let config = manifest.config.ok_or_else(|| {
                invalid(format!("manifest {} has no config", manifest_desc.digest))
            })?;
            let layers: Vec<Digest> = manifest
                .layers
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.digest)
                .collect();
            let refs: Vec<Reference> = name.iter().cloned().collect();
            let digests = name
                .iter()
                .map(|r| format!("{}@{}", r.name(), manifest_desc.digest))
                .collect();
            let id = self.assemble(&config.digest, &layers, &refs, digests)?;
            out.push((id, refs.iter().map(|r| r.familiar()).collect()));
        }
        if out.is_empty() {
            return Err(invalid("index.json lists no images"));
        }
        Ok(out)
    }

    /// Follows nested indexes to the manifest for linux on this architecture (or the first).
    fn pick_manifest(&self, desc: Descriptor, depth: usize) -> Result<Descriptor, ImageError> {
        let is_index =
            desc.media_type == media_type::INDEX || desc.media_type == media_type::DOCKER_LIST;
        if !is_index {
            return Ok(desc);
        }
        if depth > 4 {
            return Err(invalid("image indexes nested too deeply"));
        }
        let index: OciManifest = serde_json::from_slice(&self.blob_of(&desc.digest)?)
            .map_err(|e| invalid(format!("invalid index {}: {e}", desc.digest)))?;
        let manifests = index.manifests.unwrap_or_default();
        let arch = host_architecture();
        let chosen = manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .or_else(|| manifests.first())
            .cloned()
            .ok_or_else(|| invalid(format!("index {} is empty", desc.digest)))?;
        self.pick_manifest(chosen, depth + 1)
    }

    fn blob_of(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        if !self.blobs.contains(digest) {
            return Err(invalid(format!(
                "blob {digest} is missing from the archive"
            )));
        }
        self.blobs.read(digest)
    }

    /// Extracts missing layers (each blob may be plain or gzip) and registers the image.
    fn assemble(
        &self,
        config_digest: &str,
        layer_blobs: &[Digest],
        refs: &[Reference],
        digests: Vec<String>,
    ) -> Result<Digest, ImageError> {
        let config_bytes = self.blob_of(config_digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| invalid(format!("invalid image config {config_digest}: {e}")))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != layer_blobs.len() {
            return Err(invalid(format!(
                "image config {config_digest} lists {} layers, the manifest {}",
                diff_ids.len(),
                layer_blobs.len()
            )));
        }
        let mut open = |i: usize| -> Result<Box<dyn Read>, ImageError> {
            let blob = &layer_blobs[i];
            let path = self
                .blobs
                .path(blob)
                .ok_or_else(|| invalid(format!("malformed layer digest {blob}")))?;
            let file = File::open(&path)
                .map_err(|e| invalid(format!("layer {blob} is missing from the archive: {e}")))?;
            Ok(Box::new(file))
        };
        self.ensure_layers(diff_ids, &mut open, true)?;
        let names: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        self.register_image(&config_bytes, None, digests, &names)
    }
}

/// The OCI architecture name of this machine.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
