//! The per-container init layer (Docker's `<id>-init`): mount points the runtime binds over
//! (`/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, `/dev/console`, ...) exist in a
//! read-only layer just above the image, so creating them never writes to the container's
//! upper directory and they never show in `docker diff` or `docker commit`.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// Directories of the init layer.
const DIRS: [&str; 6] = ["dev", "dev/pts", "dev/shm", "etc", "proc", "sys"];
/// Empty files of the init layer, with modes.
const FILES: [(&str, u32); 5] = [
    (".dockerenv", 0o755),
    ("dev/console", 0o755),
    ("etc/hostname", 0o755),
    ("etc/hosts", 0o755),
    ("etc/resolv.conf", 0o755),
];

/// What the image shows at `rel`: `Some(true)` a directory, `Some(false)` something else,
/// `None` nothing. `lower` is top first.
fn image_kind(lower: &[PathBuf], rel: &str) -> Option<bool> {
    lower
        .iter()
        .find_map(|l| fs::symlink_metadata(l.join(rel)).ok().map(|m| m.is_dir()))
}

/// Creates the init layer in `dir` for an image with layers `lower`. A path whose parent
/// the image has as a non-directory (an `/etc` symlink, say) is left alone.
pub fn populate(dir: &Path, lower: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let usable = |rel: &str| {
        Path::new(rel)
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .all(|a| image_kind(lower, &a.to_string_lossy()) != Some(false))
    };
    for rel in DIRS {
        if usable(rel) {
            fs::create_dir_all(dir.join(rel))?;
            fs::set_permissions(dir.join(rel), fs::Permissions::from_mode(0o755))?;
        }
    }
    for (rel, mode) in FILES {
        let parent_ok = Path::new(rel)
            .parent()
            .is_none_or(|p| p.as_os_str().is_empty() || dir.join(p).is_dir());
        if usable(rel) && parent_ok {
            fs::write(dir.join(rel), b"")?;
            fs::set_permissions(dir.join(rel), fs::Permissions::from_mode(mode))?;
        }
    }
    if usable("etc") && image_kind(lower, "etc/mtab").is_none() {
        symlink("/proc/mounts", dir.join("etc/mtab"))?;
    }
    Ok(())
}
