//! `docker cp`: stat of a path inside a container (`X-Docker-Container-Path-Stat`), a tar of
//! a path, and extraction of a tar into a directory. Paths are resolved inside the container's
//! root (its live `/proc/<pid>/root` when running, so binds and tmpfs are seen too).

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::json;

use crate::error::{EngineError, Result};
use crate::rootpath;

// Go's os.FileMode type bits, which the docker CLI decodes from the stat header.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

fn not_found(path: &str) -> EngineError {
    EngineError::NotFound(format!("Could not find the file {path} in container"))
}

/// Resolves a container path to a host path under `root` (the last component not followed).
pub fn host_path(root: &Path, path: &str) -> Result<PathBuf> {
    let follow_last = path.ends_with('/') || path.ends_with("/.");
    rootpath::resolve(root, path, follow_last)
        .map_err(|e| EngineError::io(format!("resolve {path}"), e))
}

/// Base64 JSON of Docker's `PathStat` for the header.
pub fn stat_header(root: &Path, path: &str) -> Result<String> {
    let host = host_path(root, path)?;
    let meta = std::fs::symlink_metadata(&host).map_err(|_| not_found(path))?;
    let ft = meta.file_type();
    let mut mode = meta.permissions().mode() & 0o777;
    let raw = meta.mode();
    if raw & 0o4000 != 0 {
        mode |= GO_MODE_SETUID;
    }
    if raw & 0o2000 != 0 {
        mode |= GO_MODE_SETGID;
    }
    if raw & 0o1000 != 0 {
        mode |= GO_MODE_STICKY;
    }
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        mode |= GO_MODE_DIR;
    } else if ft.is_symlink() {
        mode |= GO_MODE_SYMLINK;
    } else if ft.is_fifo() {
        mode |= GO_MODE_NAMED_PIPE;
    } else if ft.is_socket() {
        mode |= GO_MODE_SOCKET;
    } else if ft.is_char_device() {
        mode |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE;
    } else if ft.is_block_device() {
        mode |= GO_MODE_DEVICE;
    }
    let link_target = if ft.is_symlink() {
        std::fs::read_link(&host)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = Path::new(path.trim_end_matches('/'))
        .file_name()
        .map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned());
    let mtime = chrono::DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec() as u32)
        .unwrap_or_default();
    let stat = json!({
        "name": name,
        "size": meta.len(),
        "mode": mode,
        "mtime": mtime.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "linkTarget": link_target,
    });
    Ok(base64::engine::general_purpose::STANDARD.encode(stat.to_string()))
}

/// Writes a tar of `path` (named by its base name, as `docker cp` expects).
pub fn write_tar(root: &Path, path: &str, out: &mut dyn Write) -> Result<()> {
    let host = host_path(root, path)?;
    let meta = std::fs::symlink_metadata(&host).map_err(|_| not_found(path))?;
    let name = Path::new(path.trim_end_matches('/'))
        .file_name()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let io = |e: std::io::Error| EngineError::io(format!("archive {path}"), e);
    if meta.is_dir() {
        builder.append_dir_all(&name, &host).map_err(io)?;
    } else {
        builder.append_path_with_name(&host, &name).map_err(io)?;
    }
    builder.finish().map_err(io)?;
    Ok(())
}

/// Extracts a tar into the directory `path`; refuses entries escaping it.
pub fn extract_tar(root: &Path, path: &str, input: &mut dyn Read) -> Result<()> {
    let host = rootpath::resolve(root, path, true)
        .map_err(|e| EngineError::io(format!("resolve {path}"), e))?;
    let meta = std::fs::metadata(&host).map_err(|_| not_found(path))?;
    if !meta.is_dir() {
        return Err(EngineError::InvalidArgument(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| EngineError::InvalidArgument(format!("invalid tar stream: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| EngineError::InvalidArgument(format!("invalid tar stream: {e}")))?;
        // unpack_in refuses `..` and absolute paths; parents are resolved inside the root
        // so that a symlink already in the container cannot redirect the write outside.
        let rel = entry
            .path()
            .map_err(|e| EngineError::InvalidArgument(format!("invalid tar entry: {e}")))?
            .into_owned();
        let container_target = Path::new(path).join(&rel);
        let parent = container_target
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());
        let host_parent = rootpath::resolve(root, &parent, true)
            .map_err(|e| EngineError::io(format!("resolve {parent}"), e))?;
        if !host_parent.starts_with(root) {
            return Err(EngineError::InvalidArgument(format!(
                "tar entry escapes the container: {}",
                rel.display()
            )));
        }
        entry
            .unpack_in(&host)
            .map_err(|e| EngineError::io(format!("extract {}", rel.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_tar_and_extract_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("etc/hello"), "hi").expect("write");
        let header = stat_header(&root, "/etc").expect("stat");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header)
            .expect("base64");
        let v: serde_json::Value = serde_json::from_slice(&decoded).expect("json");
        assert_eq!(v["name"], "etc");
        assert!(v["mode"].as_u64().expect("mode") & u64::from(GO_MODE_DIR) != 0);
        let mut tar_bytes = Vec::new();
        write_tar(&root, "/etc", &mut tar_bytes).expect("tar");
        std::fs::create_dir_all(root.join("copy")).expect("mkdir");
        extract_tar(&root, "/copy", &mut tar_bytes.as_slice()).expect("extract");
        assert_eq!(
            std::fs::read_to_string(root.join("copy/etc/hello")).expect("read"),
            "hi"
        );
        assert!(stat_header(&root, "/nope").is_err_and(|e| e.status() == 404));
    }
}
