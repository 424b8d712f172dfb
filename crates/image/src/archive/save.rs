//! `docker save`: a docker-archive (`manifest.json`, `repositories`) that is also an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/...`), as Docker 25+ writes it. Entries
//! are sorted with zero mtimes so the same images always give the same bytes; layer blobs are
//! the stored uncompressed tars, so save → rmi → load gives the same image id.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde_json::json;

use super::{
    CONTAINERD_NAME_ANNOTATION, Descriptor, ManifestEntry, OciManifest, REF_NAME_ANNOTATION,
    media_type,
};
use crate::digest::{sha256_digest, sha256_hex};
use crate::reference::Reference;
use crate::{Digest, ImageError, ImageStore};

/// Where a blob's bytes come from.
enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// One image to write and the references (normalized) to name it by.
struct Selected {
    id: Digest,
    refs: Vec<Reference>,
}

impl ImageStore {
    /// Writes a docker-archive tar (with `manifest.json`, `repositories`, and also an OCI
    /// layout `index.json`/`oci-layout` as Docker 25+ does) of the named images. A name with
    /// a tag saves that tag, a repository name every tag of it, an id no tag.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ImageError> {
        let selected = self.select(names)?;
        let mut blobs: BTreeMap<String, Source> = BTreeMap::new();
        let mut manifest_json: Vec<ManifestEntry> = Vec::new();
        let mut index: Vec<Descriptor> = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for sel in &selected {
            let config = self.blobs.read(&sel.id)?;
            let diff_ids = self
                .read_state()
                .images
                .get(&sel.id)
                .map(|r| r.config.rootfs.diff_ids.clone())
                .ok_or_else(|| ImageError::NotFound(sel.id.clone()))?;
            let mut layers = Vec::new();
            for diff_id in &diff_ids {
                let path = self
                    .blobs
                    .path(diff_id)
                    .filter(|p| p.exists())
                    .ok_or_else(|| ImageError::NotFound(format!("layer blob {diff_id}")))?;
                let size = path.metadata()?.len();
                layers.push(Descriptor {
                    media_type: media_type::LAYER.into(),
                    digest: diff_id.clone(),
                    size,
                    ..Descriptor::default()
                });
                blobs.insert(hex_of(diff_id), Source::File(path));
            }
            let manifest = OciManifest {
                schema_version: 2,
                media_type: media_type::MANIFEST.into(),
                config: Some(Descriptor {
                    media_type: media_type::CONFIG.into(),
                    digest: sel.id.clone(),
                    size: config.len() as u64,
                    ..Descriptor::default()
                }),
                layers: Some(layers),
                manifests: None,
            };
            let manifest_bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
            let manifest_digest = sha256_digest(&manifest_bytes);
            let manifest_desc = Descriptor {
                media_type: media_type::MANIFEST.into(),
                digest: manifest_digest.clone(),
                size: manifest_bytes.len() as u64,
                ..Descriptor::default()
            };
            blobs.insert(hex_of(&sel.id), Source::Bytes(config));
            blobs.insert(hex_of(&manifest_digest), Source::Bytes(manifest_bytes));
            if sel.refs.is_empty() {
                index.push(manifest_desc.clone());
            }
            for r in &sel.refs {
                let mut desc = manifest_desc.clone();
                let mut ann = BTreeMap::new();
                ann.insert(CONTAINERD_NAME_ANNOTATION.to_string(), r.to_string());
                ann.insert(
                    REF_NAME_ANNOTATION.to_string(),
                    r.tag.clone().unwrap_or_default(),
                );
                desc.annotations = Some(ann);
                index.push(desc);
                if let (Some(tag), Some(top)) = (&r.tag, diff_ids.last()) {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(tag.clone(), hex_of(top));
                }
            }
            manifest_json.push(ManifestEntry {
                config: format!("blobs/sha256/{}", hex_of(&sel.id)),
                repo_tags: (!sel.refs.is_empty())
                    .then(|| sel.refs.iter().map(Reference::familiar).collect()),
                layers: diff_ids
                    .iter()
                    .map(|d| format!("blobs/sha256/{}", hex_of(d)))
                    .collect(),
            });
        }
        let index_doc = json!({
            "schemaVersion": 2,
            "mediaType": media_type::INDEX,
            "manifests": index,
        });
        let mut tar = tar::Builder::new(out);
        append_dir(&mut tar, "blobs/")?;
        append_dir(&mut tar, "blobs/sha256/")?;
        for (hex, source) in blobs {
            let name = format!("blobs/sha256/{hex}");
            match source {
                Source::Bytes(b) => append_file(&mut tar, &name, b.len() as u64, &mut &b[..])?,
                Source::File(p) => {
                    let mut f = File::open(&p)?;
                    let len = f.metadata()?.len();
                    append_file(&mut tar, &name, len, &mut f)?;
                }
            }
        }
        for (name, bytes) in [
            ("index.json", to_json(&index_doc)?),
            ("manifest.json", to_json(&manifest_json)?),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("repositories", to_json(&repositories)?),
        ] {
            append_file(&mut tar, name, bytes.len() as u64, &mut &bytes[..])?;
        }
        tar.finish()?;
        tracing::info!(images = selected.len(), "images saved");
        Ok(())
    }

    fn select(&self, names: &[String]) -> Result<Vec<Selected>, ImageError> {
        let st = self.read_state();
        let mut out: Vec<Selected> = Vec::new();
        for name in names {
            let id = st.lookup(name)?;
            let mut refs: Vec<Reference> = Vec::new();
            if let Ok(r) = Reference::parse(name) {
                if r.digest.is_some() {
                    // name@digest: save untagged.
                } else if r.tag.is_some() {
                    refs.push(r);
                } else {
                    let repo = r.name();
                    refs.extend(
                        st.refs
                            .iter()
                            .filter(|(k, _)| k.rsplit_once(':').is_some_and(|(n, _)| n == repo))
                            .filter_map(|(k, _)| Reference::parse(k).ok()),
                    );
                }
            }
            let refs: Vec<Reference> = refs
                .into_iter()
                .filter(|r| st.refs.get(&r.to_string()) == Some(&id))
                .collect();
            match out.iter_mut().find(|s| s.id == id) {
                Some(s) => s.refs.extend(refs),
                None => out.push(Selected { id, refs }),
            }
        }
        for s in &mut out {
            let set: BTreeSet<Reference> = s.refs.drain(..).collect();
            s.refs = set.into_iter().collect();
        }
        Ok(out)
    }
}

fn hex_of(digest: &str) -> String {
    sha256_hex(digest).unwrap_or(digest).to_string()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir(tar: &mut tar::Builder<&mut dyn Write>, name: &str) -> Result<(), ImageError> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, name, io::empty())?;
    Ok(())
}

fn append_file(
    tar: &mut tar::Builder<&mut dyn Write>,
    name: &str,
    size: u64,
    data: &mut dyn Read,
) -> Result<(), ImageError> {
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    tar.append_data(&mut h, name, data)?;
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(value).map_err(|e| ImageError::Io(io::Error::other(e)))
}
