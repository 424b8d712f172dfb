//! overlayfs mounting of snapshots: mount data kept under a page (short `l/` links, or
//! `/proc/self/fd` paths for very deep images), strict options so the upper directory is a
//! complete diff, and idempotent unmounting.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

use super::SnapshotRecord;
use crate::{ImageError, ImageStore};

/// Longest overlay mount data the kernel takes (one page, minus room for the options).
const MAX_MOUNT_DATA: usize = 4000;
/// Options making the upper directory a complete diff (see `mount_overlay`).
const STRICT_OPTIONS: &str = ",index=off,redirect_dir=off,metacopy=off";

/// True when something is mounted on `path` (its device differs from its parent's).
pub fn is_mounted(path: &Path) -> bool {
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (fs::metadata(path), fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Unmounts `path` if mounted; lazily when busy.
pub fn unmount(path: &Path) -> Result<(), ImageError> {
    if !is_mounted(path) {
        return Ok(());
    }
    match umount2(path, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => umount2(path, MntFlags::MNT_DETACH).map_err(|e| ImageError::Mount {
            id: path.display().to_string(),
            source: e.into(),
        }),
        Err(e) => Err(ImageError::Mount {
            id: path.display().to_string(),
            source: e.into(),
        }),
    }
}

impl ImageStore {
    pub(super) fn mount_overlay(&self, id: &str, rec: &SnapshotRecord) -> Result<(), ImageError> {
        let dir = self.snapshot_dir(id);
        let merged = dir.join("merged");
        let init = rec.init.then(|| dir.join("init").display().to_string());
        let mut lower: Vec<String> = init
            .iter()
            .cloned()
            .chain(
                rec.layers
                    .iter()
                    .rev()
                    .map(|c| self.layers.short_link(c).display().to_string()),
            )
            .collect();
        if lower.is_empty() {
            // overlayfs needs at least one lower layer.
            let empty = dir.join("empty");
            fs::create_dir_all(&empty)?;
            lower.push(empty.display().to_string());
        }
        let tail = format!(
            ",upperdir={},workdir={}",
            dir.join("upper").display(),
            dir.join("work").display()
        );
        let mut data = format!("lowerdir={}{tail}", lower.join(":"));
        let mut fds = Vec::new();
        if data.len() > MAX_MOUNT_DATA {
            // /proc/self/fd/N paths are shorter than any store path.
            lower = init.into_iter().collect();
            for c in rec.layers.iter().rev() {
                let fd = open(
                    &self.layers.diff_dir(c),
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ImageError::Mount {
                    id: id.into(),
                    source: e.into(),
                })?;
                fds.push(fd);
                lower.push(format!("/proc/self/fd/{fd}"));
            }
            data = format!("lowerdir={}{tail}", lower.join(":"));
        }
        // Renames of lower directories must copy up (not leave redirect or metacopy xattrs)
        // so the upper directory alone is the container's diff; older kernels without these
        // options get the plain mount.
        let strict = format!("{data}{STRICT_OPTIONS}");
        let mount_with = |d: &str| {
            mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(d),
            )
        };
        let result = match mount_with(&strict) {
            Err(Errno::EINVAL) => mount_with(&data),
            other => other,
        };
        for fd in fds {
            let _ = nix::unistd::close(fd);
        }
        result.map_err(|e| ImageError::Mount {
            id: id.to_string(),
            source: e.into(),
        })
    }
}
