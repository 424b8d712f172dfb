//! Per-container snapshots: `<root>/snapshots/<id>/{upper,work,merged}` mounted as overlayfs
//! with the image's layer directories as `lowerdir` (through the short `<root>/l/` links, or
//! `/proc/self/fd` paths when even those exceed a page), or, where overlayfs is unavailable,
//! a copy of the flattened layers in `merged`.

mod changes;
mod init;
mod mount;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::layer::apply::{ApplyOptions, Whiteouts, apply_tar_with};
use crate::layer::pack::{PackOptions, pack};
use crate::{Digest, ImageError, ImageStore, Snapshot};
use mount::{is_mounted, unmount};

/// Name of a snapshot's metadata file.
const META_FILE: &str = "snapshot.json";

/// How a snapshot's filesystem is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// overlayfs union of the layers with `upper` as the writable layer.
    Overlay,
    /// The layers copied into `merged`, which is written directly.
    Copy,
}

/// A snapshot as persisted in `<root>/snapshots/<id>/snapshot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Image the snapshot was made from.
    pub image_id: Digest,
    /// Layer chain ids, base first.
    pub layers: Vec<Digest>,
    /// overlay or copy.
    pub mode: SnapshotMode,
    /// Whether `<snapshot>/init` (mount points for the runtime) sits above the layers.
    #[serde(default)]
    pub init: bool,
}

/// `<root>/snapshots`.
fn snapshots_dir(root: &Path) -> PathBuf {
    root.join("snapshots")
}

/// Reads every snapshot; directories without metadata (a crash in `prepare`) are removed.
pub fn scan(root: &Path) -> Result<HashMap<String, SnapshotRecord>, ImageError> {
    let dir = snapshots_dir(root);
    fs::create_dir_all(&dir)?;
    atomic::sweep_temp(&dir)?;
    let mut out = HashMap::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        let id = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let rec = fs::read(path.join(META_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<SnapshotRecord>(&b).ok());
        match rec {
            Some(rec) => {
                out.insert(id, rec);
            }
            None => {
                tracing::info!(snapshot = %id, "removing incomplete snapshot");
                unmount(&path.join("merged"))?;
                atomic::remove_any(&path)?;
            }
        }
    }
    Ok(out)
}

/// Container ids become directory names: no separators, no dot names, bounded length.
fn validate_id(id: &str) -> Result<(), ImageError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ImageError::NoSnapshot(format!("{id:?} (invalid id)")))
    }
}

impl ImageStore {
    fn snapshot_dir(&self, id: &str) -> PathBuf {
        snapshots_dir(&self.root).join(id)
    }

    fn snapshot_paths(&self, id: &str, rec: &SnapshotRecord) -> Snapshot {
        let dir = self.snapshot_dir(id);
        let merged = dir.join("merged");
        let (upper, work) = match rec.mode {
            SnapshotMode::Overlay => (dir.join("upper"), dir.join("work")),
            SnapshotMode::Copy => (merged.clone(), dir.join("work")),
        };
        Snapshot {
            id: id.to_string(),
            lower: self.lower_dirs(id, rec),
            upper,
            work,
            merged,
        }
    }

    /// Read-only layers of a snapshot, top first: the init layer, then the image's.
    fn lower_dirs(&self, id: &str, rec: &SnapshotRecord) -> Vec<PathBuf> {
        let init = rec.init.then(|| self.snapshot_dir(id).join("init"));
        init.into_iter()
            .chain(rec.layers.iter().rev().map(|c| self.layers.diff_dir(c)))
            .collect()
    }

    fn snapshot_record(&self, id: &str) -> Result<SnapshotRecord, ImageError> {
        validate_id(id)?;
        self.read_state()
            .snapshots
            .get(id)
            .cloned()
            .ok_or_else(|| ImageError::NoSnapshot(id.to_string()))
    }

    /// Creates the snapshot of a new container from an image and mounts it.
    pub fn prepare_snapshot(
        &self,
        container_id: &str,
        image_id: &str,
    ) -> Result<Snapshot, ImageError> {
        validate_id(container_id)?;
        let rec = {
            let mut st = self.write_state();
            if st.snapshots.contains_key(container_id) {
                drop(st);
                return self.mount_snapshot(container_id);
            }
            let id = st.lookup(image_id)?;
            let layers = st
                .images
                .get(&id)
                .map(|r| r.chain.clone())
                .unwrap_or_default();
            let rec = SnapshotRecord {
                image_id: id,
                layers,
                mode: SnapshotMode::Overlay,
                init: true,
            };
            st.snapshots.insert(container_id.to_string(), rec.clone());
            rec
        };
        let result = self.create_snapshot(container_id, rec);
        if result.is_err() {
            self.write_state().snapshots.remove(container_id);
            let dir = self.snapshot_dir(container_id);
            let _ = unmount(&dir.join("merged"));
            let _ = atomic::remove_any(&dir);
        }
        result
    }

    fn create_snapshot(&self, id: &str, mut rec: SnapshotRecord) -> Result<Snapshot, ImageError> {
        let dir = self.snapshot_dir(id);
        for sub in ["upper", "work", "merged"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        if rec.init {
            let image_layers: Vec<PathBuf> = rec
                .layers
                .iter()
                .rev()
                .map(|c| self.layers.diff_dir(c))
                .collect();
            init::populate(&dir.join("init"), &image_layers)?;
        }
        let mounted = if self.copy_snapshots() {
            Err(ImageError::Mount {
                id: id.to_string(),
                source: std::io::Error::from_raw_os_error(nix::libc::EOPNOTSUPP),
            })
        } else {
            self.mount_overlay(id, &rec)
        };
        match mounted {
            Ok(()) => {}
            Err(ImageError::Mount { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(
                        nix::libc::ENODEV
                            | nix::libc::EINVAL
                            | nix::libc::EPERM
                            | nix::libc::EOPNOTSUPP
                    )
                ) =>
            {
                tracing::info!(snapshot = %id, error = %source, "overlayfs unavailable, copying layers");
                rec.mode = SnapshotMode::Copy;
                self.fill_copy(&dir.join("merged"), &rec)?;
                self.write_state()
                    .snapshots
                    .insert(id.to_string(), rec.clone());
            }
            Err(e) => return Err(e),
        }
        // Not fsynced: this is on the `docker run` path; a torn write is dropped at `open`.
        let bytes = serde_json::to_vec(&rec).map_err(std::io::Error::other)?;
        let tmp = atomic::temp_path(&dir);
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, dir.join(META_FILE))?;
        tracing::debug!(snapshot = %id, image = %rec.image_id, mode = ?rec.mode, "snapshot prepared");
        Ok(self.snapshot_paths(id, &rec))
    }

    fn fill_copy(&self, merged: &Path, rec: &SnapshotRecord) -> Result<(), ImageError> {
        let diff_ids: Vec<Digest> = {
            let st = self.read_state();
            rec.layers
                .iter()
                .filter_map(|c| st.layers.get(c).map(|l| l.diff_id.clone()))
                .collect()
        };
        for diff_id in diff_ids {
            let path = self
                .blobs
                .path(&diff_id)
                .ok_or_else(|| ImageError::NotFound(diff_id.clone()))?;
            let mut file = fs::File::open(path)?;
            apply_tar_with(&mut file, merged, &ApplyOptions::new(Whiteouts::Delete))?;
        }
        if rec.init
            && let Some(dir) = merged.parent()
        {
            let mut init = Vec::new();
            pack(&dir.join("init"), &mut init, &PackOptions::default())?;
            apply_tar_with(
                &mut &init[..],
                merged,
                &ApplyOptions::new(Whiteouts::Literal),
            )?;
        }
        Ok(())
    }

    /// Mounts an existing snapshot (after a reboot or an unmount); idempotent.
    pub fn mount_snapshot(&self, container_id: &str) -> Result<Snapshot, ImageError> {
        let rec = self.snapshot_record(container_id)?;
        let merged = self.snapshot_dir(container_id).join("merged");
        if rec.mode == SnapshotMode::Overlay && !is_mounted(&merged) {
            self.mount_overlay(container_id, &rec)?;
        }
        Ok(self.snapshot_paths(container_id, &rec))
    }

    /// Paths of a container's snapshot, without mounting it.
    pub fn snapshot(&self, container_id: &str) -> Result<Snapshot, ImageError> {
        let rec = self.snapshot_record(container_id)?;
        Ok(self.snapshot_paths(container_id, &rec))
    }

    /// Unmounts a snapshot without deleting it; idempotent.
    pub fn unmount_snapshot(&self, container_id: &str) -> Result<(), ImageError> {
        validate_id(container_id)?;
        unmount(&self.snapshot_dir(container_id).join("merged"))
    }

    /// Unmounts and deletes a container's snapshot; idempotent.
    pub fn remove_snapshot(&self, container_id: &str) -> Result<(), ImageError> {
        validate_id(container_id)?;
        let dir = self.snapshot_dir(container_id);
        unmount(&dir.join("merged"))?;
        atomic::remove_any(&dir.join(META_FILE))?;
        atomic::remove_any(&dir)?;
        let removed = self.write_state().snapshots.remove(container_id);
        if let Some(rec) = removed {
            let image_gone = !self.read_state().images.contains_key(&rec.image_id);
            if image_gone {
                let _ops = self.lock_ops();
                let _ = self.collect_garbage()?;
            }
            tracing::debug!(snapshot = %container_id, "snapshot removed");
        }
        Ok(())
    }

    /// Docker's overlay2 GraphDriver data of an image's top layer: `lower` holds the layers
    /// below it (top first), `upper` the top layer's diff, `work`/`merged` beside it.
    pub fn graph_driver(&self, image_id: &str) -> Result<Snapshot, ImageError> {
        let st = self.read_state();
        let id = st.lookup(image_id)?;
        let chain = st
            .images
            .get(&id)
            .map(|r| r.chain.clone())
            .unwrap_or_default();
        let Some((top, below)) = chain.split_last() else {
            return Err(ImageError::NotFound(format!("{image_id} has no layers")));
        };
        let dir = self.layers.layer_dir(top);
        Ok(Snapshot {
            id,
            lower: below
                .iter()
                .rev()
                .map(|c| self.layers.diff_dir(c))
                .collect(),
            upper: dir.join("diff"),
            work: dir.join("work"),
            merged: dir.join("merged"),
        })
    }
}
