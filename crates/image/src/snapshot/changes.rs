//! What changed in a container: `docker diff` (walk of the upper directory, whiteouts as
//! deletions; for copy snapshots a comparison with the layers), `docker export` (tar of the
//! merged tree) and `docker commit` (tar of the changes as a new layer, whiteouts converted
//! back to `.wh.` entries, and a config with a new history entry).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{SnapshotMode, SnapshotRecord};
use crate::layer::apply::OPAQUE_XATTR;
use crate::layer::pack::{PackOptions, pack, pack_changes};
use crate::state::tag_reference;
use crate::{Change, ContainerDefaults, Digest, History, ImageError, ImageStore, atomic};

/// Docker's change kinds.
const MODIFIED: u8 = 0;
const ADDED: u8 = 1;
const DELETED: u8 = 2;

/// True for an overlayfs whiteout (character device 0/0).
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// What the layers below show at `rel`: the entry's metadata, or `None` when absent or
/// whited out. `lower` is top first.
fn lower_entry(lower: &[PathBuf], rel: &Path) -> Option<fs::Metadata> {
    for layer in lower {
        if let Ok(meta) = fs::symlink_metadata(layer.join(rel)) {
            return (!is_whiteout(&meta)).then_some(meta);
        }
        // An opaque parent in this layer hides everything below it.
        let mut parent = rel.parent();
        while let Some(p) = parent {
            if p.as_os_str().is_empty() {
                break;
            }
            if xattr::get(layer.join(p), OPAQUE_XATTR)
                .ok()
                .flatten()
                .as_deref()
                == Some(b"y")
            {
                return None;
            }
            parent = p.parent();
        }
    }
    None
}

/// Every path below `dir` (relative), sorted, with metadata.
fn walk(dir: &Path) -> Result<BTreeMap<PathBuf, fs::Metadata>, ImageError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let entries = match fs::read_dir(dir.join(&rel)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            let meta = fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                stack.push(child.clone());
            }
            out.insert(child, meta);
        }
    }
    Ok(out)
}

/// Docker's `sameFsTime`: tar keeps whole seconds, so a zero nanosecond part on either side
/// compares seconds only.
fn same_time(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.mtime() == b.mtime()
        && (a.mtime_nsec() == b.mtime_nsec() || a.mtime_nsec() == 0 || b.mtime_nsec() == 0)
}

fn differs(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.file_type() != b.file_type()
        || a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || (!a.is_dir() && (a.len() != b.len() || !same_time(a, b)))
}

impl ImageStore {
    /// Changes of a container's filesystem (`docker diff`), sorted by path.
    pub fn diff(&self, container_id: &str) -> Result<Vec<Change>, ImageError> {
        let rec = self.snapshot_record(container_id)?;
        let snap = self.snapshot_paths(container_id, &rec);
        let changes = match rec.mode {
            SnapshotMode::Overlay => self.overlay_changes(&snap.upper, &snap.lower)?,
            SnapshotMode::Copy => self.copy_changes(&snap.merged, &snap.lower)?,
        };
        Ok(changes
            .into_iter()
            .map(|(p, kind)| Change {
                path: format!("/{}", p.display()),
                kind,
            })
            .collect())
    }

    fn overlay_changes(
        &self,
        upper: &Path,
        lower: &[PathBuf],
    ) -> Result<Vec<(PathBuf, u8)>, ImageError> {
        let mut out = Vec::new();
        for (rel, meta) in walk(upper)? {
            if is_whiteout(&meta) {
                out.push((rel, DELETED));
                continue;
            }
            let kind = if lower_entry(lower, &rel).is_some() {
                MODIFIED
            } else {
                ADDED
            };
            out.push((rel, kind));
        }
        Ok(out)
    }

    fn copy_changes(
        &self,
        merged: &Path,
        lower: &[PathBuf],
    ) -> Result<Vec<(PathBuf, u8)>, ImageError> {
        let now = walk(merged)?;
        let mut out: BTreeMap<PathBuf, u8> = BTreeMap::new();
        for (rel, meta) in &now {
            match lower_entry(lower, rel) {
                None => {
                    out.insert(rel.clone(), ADDED);
                }
                Some(old) if differs(meta, &old) => {
                    out.insert(rel.clone(), MODIFIED);
                }
                Some(_) => {}
            }
        }
        for layer in lower {
            for rel in walk(layer)?.into_keys() {
                if !now.contains_key(&rel)
                    && !out.contains_key(&rel)
                    && lower_entry(lower, &rel).is_some()
                    && !rel
                        .ancestors()
                        .skip(1)
                        .any(|a| out.get(a) == Some(&DELETED))
                {
                    out.insert(rel, DELETED);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Tar of a container's whole filesystem (`docker export`); mounts it if needed.
    pub fn export(&self, container_id: &str, out: &mut dyn Write) -> Result<(), ImageError> {
        let snap = self.mount_snapshot(container_id)?;
        pack(&snap.merged, out, &PackOptions::default())
    }

    /// New image from a container's changes on top of its image (`docker commit`). The
    /// caller passes the container's resulting config in `defaults`.
    pub fn commit(
        &self,
        container_id: &str,
        image_id: &str,
        defaults: ContainerDefaults,
        author: Option<&str>,
        message: Option<&str>,
        reference: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let reference = reference.map(tag_reference).transpose()?;
        let rec = self.snapshot_record(container_id)?;
        let _ops = self.lock_ops();
        let (parent_id, mut config, chain) = {
            let st = self.read_state();
            let id = st.lookup(image_id)?;
            let image = st
                .images
                .get(&id)
                .ok_or_else(|| ImageError::NotFound(image_id.into()))?;
            (id, image.config.clone(), image.chain.clone())
        };
        let tmp = atomic::temp_path(&self.root);
        let layer = (|| {
            let mut file = File::create(&tmp)?;
            self.write_changes(container_id, &rec, &mut file)?;
            file.sync_all()?;
            let mut file = File::open(&tmp)?;
            self.layers
                .create(&self.blobs, &mut file, chain.last(), None)
        })();
        let _ = atomic::remove_any(&tmp);
        let layer = layer?;
        self.write_state()
            .layers
            .insert(layer.chain_id.clone(), layer.clone());
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        config.created = Some(now.clone());
        config.author = author.map(str::to_string);
        config.config = Some(defaults);
        config.rootfs.diff_ids.push(layer.diff_id.clone());
        config.history.push(History {
            created: Some(now),
            author: author.map(str::to_string),
            comment: message.map(str::to_string),
            ..History::default()
        });
        let bytes = serde_json::to_vec(&config).map_err(std::io::Error::other)?;
        let refs: Vec<String> = reference.iter().map(|r| r.to_string()).collect();
        let id = self.register_image(&bytes, Some(parent_id), Vec::new(), &refs)?;
        tracing::info!(container = %container_id, image = %id, "container committed");
        Ok(id)
    }

    /// Writes the tar of a container's changes to its image: the layer [`Self::commit`]
    /// would add (sorted entries, so the same bytes each call while the container is stopped).
    pub fn write_container_changes(
        &self,
        container_id: &str,
        out: &mut dyn Write,
    ) -> Result<(), ImageError> {
        let rec = self.snapshot_record(container_id)?;
        self.write_changes(container_id, &rec, out)
    }

    fn write_changes(
        &self,
        container_id: &str,
        rec: &SnapshotRecord,
        out: &mut dyn Write,
    ) -> Result<(), ImageError> {
        let snap = self.snapshot_paths(container_id, rec);
        match rec.mode {
            SnapshotMode::Overlay => pack(
                &snap.upper,
                out,
                &PackOptions {
                    whiteouts: true,
                    ..PackOptions::default()
                },
            ),
            SnapshotMode::Copy => {
                let changes: Vec<(PathBuf, bool)> = self
                    .copy_changes(&snap.merged, &snap.lower)?
                    .into_iter()
                    .map(|(p, k)| (p, k == DELETED))
                    .collect();
                pack_changes(&snap.merged, &changes, out)
            }
        }
    }
}
