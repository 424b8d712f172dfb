//! `docker cp` helpers: tar in and out of a path inside a container's mounted snapshot,
//! never escaping the container's root (symlinks resolve inside it), and the stat behind
//! the `X-Docker-Container-Path-Stat` header.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;

use crate::layer::apply::{ApplyOptions, Whiteouts, apply_tar_with};
use crate::layer::pack::{PackOptions, pack};
use crate::rootpath::{clean_relative, resolve};
use crate::{ImageError, ImageStore};

/// Go `os.FileMode` type bits (Docker's API carries Go file modes).
mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// Docker's `ContainerPathStat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    /// Base name of the path (`/` for the root).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Go `os.FileMode` bits (type bits in the high bits, permissions in the low ones).
    pub mode: u32,
    /// RFC 3339 modification time.
    pub mtime: String,
    /// Symlink target (absolute, inside the container), empty otherwise.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The value of `X-Docker-Container-Path-Stat`: base64 of the JSON.
    pub fn header_value(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }
}

fn go_file_mode(meta: &fs::Metadata) -> u32 {
    let ft = meta.file_type();
    let perm = meta.permissions().mode();
    let mut mode = perm & 0o777;
    if ft.is_dir() {
        mode |= go_mode::DIR;
    } else if ft.is_symlink() {
        mode |= go_mode::SYMLINK;
    } else if ft.is_char_device() {
        mode |= go_mode::DEVICE | go_mode::CHAR_DEVICE;
    } else if ft.is_block_device() {
        mode |= go_mode::DEVICE;
    } else if ft.is_fifo() {
        mode |= go_mode::NAMED_PIPE;
    } else if ft.is_socket() {
        mode |= go_mode::SOCKET;
    }
    if perm & 0o4000 != 0 {
        mode |= go_mode::SETUID;
    }
    if perm & 0o2000 != 0 {
        mode |= go_mode::SETGID;
    }
    if perm & 0o1000 != 0 {
        mode |= go_mode::STICKY;
    }
    mode
}

fn not_found(path: &str, container_id: &str) -> ImageError {
    ImageError::PathNotFound {
        path: path.to_string(),
        container: container_id.to_string(),
    }
}

impl ImageStore {
    /// Resolves a container path: symlinks in the parents are followed inside the root, the
    /// last component only when the path ends with `/` or `/.`.
    fn container_path(
        &self,
        container_id: &str,
        path: &str,
    ) -> Result<(PathBuf, PathBuf, String), ImageError> {
        let snap = self.mount_snapshot(container_id)?;
        let rel = clean_relative(Path::new(path)).unwrap_or_default();
        let follow = path.ends_with('/') || path.ends_with("/.");
        let resolved = resolve(&snap.merged, &rel, follow)?;
        let name = rel
            .file_name()
            .map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned());
        Ok((snap.merged, resolved, name))
    }

    /// Stat of a path inside a container (`HEAD /containers/{id}/archive`).
    pub fn stat_path(&self, container_id: &str, path: &str) -> Result<PathStat, ImageError> {
        let (root, resolved, name) = self.container_path(container_id, path)?;
        let meta = fs::symlink_metadata(&resolved).map_err(|_| not_found(path, container_id))?;
        let link_target = if meta.file_type().is_symlink() {
            let target = resolve(
                &root,
                resolved.strip_prefix(&root).unwrap_or(&resolved),
                true,
            )?;
            let inside = target.strip_prefix(&root).unwrap_or(Path::new(""));
            format!("/{}", inside.display())
        } else {
            String::new()
        };
        let mtime = chrono::DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec() as u32)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        Ok(PathStat {
            name,
            size: meta.len(),
            mode: go_file_mode(&meta),
            mtime,
            link_target,
        })
    }

    /// Writes a tar of a path inside a container (`GET /containers/{id}/archive`): the
    /// archive's root entry is named after the path's base name; a path ending in `/.` gives
    /// the directory's contents. Returns the stat for the response header.
    pub fn copy_from_container(
        &self,
        container_id: &str,
        path: &str,
        out: &mut dyn Write,
    ) -> Result<PathStat, ImageError> {
        let stat = self.stat_path(container_id, path)?;
        let (_, resolved, name) = self.container_path(container_id, path)?;
        let root_name = if path.ends_with("/.") || name == "/" {
            PathBuf::from(".")
        } else {
            PathBuf::from(&name)
        };
        let opts = PackOptions {
            root_name,
            ..PackOptions::default()
        };
        pack(&resolved, out, &opts)?;
        Ok(stat)
    }

    /// Extracts a tar (plain or gzip) into a directory inside a container (`PUT
    /// /containers/{id}/archive`). Entries keep their owners only with `copy_uid_gid`
    /// (`docker cp -a`); otherwise they belong to root. Nothing is written outside the
    /// container's root.
    pub fn copy_to_container(
        &self,
        container_id: &str,
        path: &str,
        tar: &mut dyn Read,
        copy_uid_gid: bool,
    ) -> Result<(), ImageError> {
        let (root, resolved, _) = self.container_path(container_id, &format!("{path}/"))?;
        let meta = fs::metadata(&resolved).map_err(|_| not_found(path, container_id))?;
        if !meta.is_dir() {
            return Err(ImageError::NotADirectory(path.to_string()));
        }
        let opts = ApplyOptions {
            whiteouts: Whiteouts::Literal,
            prefix: resolved
                .strip_prefix(&root)
                .unwrap_or(Path::new(""))
                .to_path_buf(),
            owner: (!copy_uid_gid).then_some((0, 0)),
        };
        let mut input = crate::layer::decompressed(tar)?;
        apply_tar_with(&mut input, &root, &opts)?;
        tracing::debug!(container = %container_id, path, "archive extracted into container");
        Ok(())
    }
}
