//! Crash-safe file replacement: write a temporary file beside the target, fsync it, rename
//! it over the target and fsync the directory, so a crash leaves the old or the new content.
//! Temporary names start with [`TEMP_PREFIX`] so `open` can sweep leftovers.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::Rng;

/// Prefix of every temporary file or directory the store creates.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A fresh temporary path in `dir`.
pub fn temp_path(dir: &Path) -> PathBuf {
    let n: u64 = rand::rng().random();
    dir.join(format!("{TEMP_PREFIX}{n:016x}"))
}

/// Atomically replaces `path` with `data`.
pub fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(dir);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temporary files and directories left in `dir` by a crash.
pub fn sweep_temp(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            tracing::debug!(path = ?entry.path(), "removing temporary leftover");
            remove_any(&entry.path())?;
        }
    }
    Ok(())
}

/// Removes a file or a directory tree; missing is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_sweep_removes_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("state.json");
        write_file(&target, b"one").expect("write");
        write_file(&target, b"two").expect("write");
        assert_eq!(fs::read(&target).expect("read"), b"two");
        let leftover = temp_path(dir.path());
        fs::write(&leftover, b"half").expect("write");
        sweep_temp(dir.path()).expect("sweep");
        assert!(!leftover.exists());
        assert!(target.exists());
    }
}
