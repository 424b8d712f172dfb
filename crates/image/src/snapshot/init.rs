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

/// Creates the init layer in `dir` for an image with layers `lower`: only what the image
/// lacks (a bind mount over an existing file writes nothing to the upper directory). A path
/// whose parent the image has as a non-directory (an `/etc` symlink, say) is left alone.
pub fn populate(dir: &Path, lower: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let usable = |rel: &str| {
        Path::new(rel)
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .skip(1)
            .all(|a| image_kind(lower, &a.to_string_lossy()) != Some(false))
    };
    for rel in DIRS {
        if usable(rel) && image_kind(lower, rel).is_none() {
            make_dirs(dir, rel)?;
        }
    }
    for (rel, mode) in FILES {
        if usable(rel) && image_kind(lower, rel).is_none() {
            if let Some(parent) = Path::new(rel).parent() {
                make_dirs(dir, &parent.to_string_lossy())?;
            }
            fs::write(dir.join(rel), b"")?;
            fs::set_permissions(dir.join(rel), fs::Permissions::from_mode(mode))?;
        }
    }
    if usable("etc/mtab") && image_kind(lower, "etc/mtab").is_none() {
        make_dirs(dir, "etc")?;
        symlink("/proc/mounts", dir.join("etc/mtab"))?;
    }
    Ok(())
}

/// `mkdir -p` with mode 0755 for each created component.
fn make_dirs(dir: &Path, rel: &str) -> io::Result<()> {
    let mut path = dir.to_path_buf();
    for part in Path::new(rel).components() {
        path.push(part);
        if !path.is_dir() {
            fs::create_dir(&path)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_layer_adds_only_what_the_image_lacks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("image");
        fs::create_dir_all(image.join("etc")).expect("mkdir");
        fs::write(image.join("etc/hosts"), b"127.0.0.1 localhost\n").expect("hosts");
        let init = dir.path().join("init");
        populate(&init, std::slice::from_ref(&image)).expect("populate");
        assert!(!init.join("etc/hosts").exists(), "image has its own hosts");
        assert!(init.join("etc/resolv.conf").is_file());
        assert!(init.join(".dockerenv").is_file());
        assert!(init.join("dev/pts").is_dir());
        assert_eq!(
            fs::read_link(init.join("etc/mtab")).expect("mtab"),
            Path::new("/proc/mounts")
        );
    }

    #[test]
    fn init_layer_leaves_symlinked_directories_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("image");
        fs::create_dir_all(&image).expect("mkdir");
        symlink("/outside", image.join("etc")).expect("symlink");
        let init = dir.path().join("init");
        populate(&init, std::slice::from_ref(&image)).expect("populate");
        assert!(!init.join("etc").exists());
        assert!(init.join("proc").is_dir());
    }
}
