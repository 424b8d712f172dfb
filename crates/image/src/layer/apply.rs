//! Extraction of a layer tar into its own directory, defensively: every entry lands inside
//! the directory (`..` that climbs out is refused, absolute names are taken relative, parents
//! are resolved with symlinks confined to the directory), and OCI/AUFS whiteouts become
//! overlayfs whiteouts (`.wh.name` → 0/0 character device, `.wh..wh..opq` →
//! `trusted.overlay.opaque=y`). Modes, owners, times, xattrs, hardlinks and device nodes are
//! kept.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};
use tar::EntryType;

use crate::ImageError;
use crate::rootpath::{clean_relative, resolve, resolve_parent};

/// Prefix of a whiteout entry in a layer tar (OCI image spec, "Whiteouts").
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker entry.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata entries that are not whiteouts (`.wh..wh.plnk`, ...).
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// overlayfs xattr marking a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs from a tar are never allowed to set overlay metadata (redirects, opaque, ...).
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// What an extraction produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyStats {
    /// Sum of the sizes of regular files written.
    pub size: u64,
    /// Number of entries applied.
    pub entries: u64,
}

fn invalid(msg: String) -> ImageError {
    ImageError::InvalidArchive(msg)
}

fn at(path: &Path, e: impl std::fmt::Display) -> ImageError {
    ImageError::Io(io::Error::other(format!("{}: {e}", path.display())))
}

/// What whiteout entries do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Become overlayfs whiteouts (a layer's own directory).
    Overlay,
    /// Delete what they name (flattening layers into one directory, the copy fallback).
    Delete,
    /// Are ordinary files (`docker cp` into a container).
    Literal,
}

/// How a tar is applied.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// What whiteout entries do.
    pub whiteouts: Whiteouts,
    /// Directory below `dest` (relative, already confined) the entries are relative to;
    /// symlinks still resolve against `dest`, the root.
    pub prefix: PathBuf,
    /// Owner for every entry instead of the tar's (`docker cp` without `-a`).
    pub owner: Option<(u32, u32)>,
}

impl ApplyOptions {
    /// Options with the given whiteout handling, no prefix, owners from the tar.
    pub fn new(whiteouts: Whiteouts) -> Self {
        Self {
            whiteouts,
            prefix: PathBuf::new(),
            owner: None,
        }
    }
}

/// Extracts the tar stream `reader` into `dest` (which must exist) as an overlay layer.
pub fn apply_tar(reader: &mut dyn Read, dest: &Path) -> Result<ApplyStats, ImageError> {
    apply_tar_with(reader, dest, &ApplyOptions::new(Whiteouts::Overlay))
}

/// Extracts the tar stream `reader` into `dest` as `opts` say.
pub fn apply_tar_with(
    reader: &mut dyn Read,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ImageError> {
    let mode = opts.whiteouts;
    let mut archive = tar::Archive::new(reader);
    let mut stats = ApplyStats::default();
    // Directory times are set last: creating children changes them.
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("not a tar stream: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("corrupt tar entry: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let rel = clean_relative(Path::new(OsStr::from_bytes(&raw))).ok_or_else(|| {
            invalid(format!(
                "entry {:?} is outside of the layer",
                String::from_utf8_lossy(&raw)
            ))
        })?;
        if rel.as_os_str().is_empty() {
            // The root itself ("./"): only its metadata could apply; ignore.
            continue;
        }
        let rel = opts.prefix.join(rel);
        stats.entries += 1;
        let name = rel.file_name().unwrap_or_default().to_string_lossy();
        let whiteout = match mode {
            Whiteouts::Literal => None,
            _ => name.strip_prefix(WHITEOUT_PREFIX),
        };
        if let Some(target) = whiteout {
            let parent = rel.parent().unwrap_or(Path::new(""));
            let dir = resolve(dest, parent, true).map_err(|e| at(parent, e))?;
            fs::create_dir_all(&dir).map_err(|e| at(&dir, e))?;
            if name == OPAQUE_MARKER {
                match mode {
                    Whiteouts::Overlay => match xattr::set(&dir, OPAQUE_XATTR, b"y") {
                        Ok(()) => {}
                        Err(e) if unprivileged(&e) => {
                            fs::write(dir.join(OPAQUE_MARKER), b"").map_err(|e| at(&dir, e))?;
                        }
                        Err(e) => return Err(at(&dir, e)),
                    },
                    Whiteouts::Delete | Whiteouts::Literal => {
                        for child in fs::read_dir(&dir).map_err(|e| at(&dir, e))? {
                            let child = child.map_err(|e| at(&dir, e))?;
                            remove_existing(&child.path())?;
                        }
                    }
                }
            } else if !name.starts_with(WHITEOUT_META_PREFIX) && !matches!(target, "" | "." | "..")
            {
                let path = dir.join(target);
                remove_existing(&path)?;
                if mode == Whiteouts::Overlay {
                    match mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)) {
                        Ok(()) => {}
                        Err(e) if unprivileged(&e.into()) => {
                            fs::write(dir.join(name.as_ref()), b"").map_err(|e| at(&dir, e))?;
                        }
                        Err(e) => return Err(at(&path, e)),
                    }
                }
            }
            continue;
        }
        let header = entry.header().clone();
        let kind = header.entry_type();
        let path = resolve_parent(dest, &rel).map_err(|e| at(&rel, e))?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| at(parent, e))?;
        }
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let (mut uid, mut gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        let forced_owner = opts.owner;
        let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                match key {
                    "uid" => uid = parse_num(value).unwrap_or(uid),
                    "gid" => gid = parse_num(value).unwrap_or(gid),
                    k => {
                        if let Some(name) = k.strip_prefix("SCHILY.xattr.")
                            && !name.starts_with(OVERLAY_XATTR_PREFIX)
                        {
                            xattrs.push((name.to_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => remove_existing(&path)?,
                    Err(_) => {}
                }
                if !path.exists() {
                    fs::create_dir(&path).map_err(|e| at(&path, e))?;
                }
                dir_times.push((path.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_existing(&path)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| at(&path, e))?;
                stats.size += io::copy(&mut entry, &mut file).map_err(|e| at(&path, e))?;
            }
            EntryType::Symlink => {
                let target = header
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .or_else(|| entry.link_name_bytes().map(|b| b.into_owned()))
                    .ok_or_else(|| invalid(format!("symlink {} has no target", rel.display())))?;
                remove_existing(&path)?;
                symlink(OsStr::from_bytes(&target), &path).map_err(|e| at(&path, e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .ok_or_else(|| invalid(format!("hardlink {} has no target", rel.display())))?;
                let target_rel = clean_relative(Path::new(OsStr::from_bytes(&target)))
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| opts.prefix.join(p))
                    .ok_or_else(|| invalid(format!("hardlink {} points outside", rel.display())))?;
                let source = resolve_parent(dest, &target_rel).map_err(|e| at(&target_rel, e))?;
                let meta = fs::symlink_metadata(&source).map_err(|e| at(&target_rel, e))?;
                if meta.is_dir() {
                    return Err(invalid(format!(
                        "hardlink {} points to a directory",
                        rel.display()
                    )));
                }
                remove_existing(&path)?;
                fs::hard_link(&source, &path).map_err(|e| at(&path, e))?;
                continue; // shares the target's metadata
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let flag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                remove_existing(&path)?;
                make_node(&path, flag, major.into(), minor.into())?;
            }
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            other => {
                tracing::debug!(entry = %rel.display(), kind = ?other, "skipping unsupported tar entry");
                continue;
            }
        }
        if let Some((u, g)) = forced_owner {
            (uid, gid) = (u.into(), g.into());
        }
        match fchownat(
            None,
            &path,
            Some(Uid::from_raw(clamp_id(uid))),
            Some(Gid::from_raw(clamp_id(gid))),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => {}
            // Without CAP_CHOWN (tests as a user) files keep the caller's owner.
            Err(nix::errno::Errno::EPERM) if !nix::unistd::geteuid().is_root() => {}
            Err(e) => return Err(at(&path, e)),
        }
        for (name, value) in &xattrs {
            if let Err(e) = xattr::set(&path, name, value) {
                tracing::debug!(path = %path.display(), xattr = %name, error = %e, "xattr not kept");
            }
        }
        if kind != EntryType::Symlink {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| at(&path, e))?;
        }
        if kind != EntryType::Directory {
            set_mtime(&path, mtime)?;
        }
    }
    for (dir, mtime) in dir_times.iter().rev() {
        set_mtime(dir, *mtime)?;
    }
    Ok(stats)
}

/// Without root (CAP_MKNOD, trusted xattrs) whiteouts stay AUFS-style `.wh.` files: such a
/// store cannot mount overlays anyway, and packing the layer gives the same entries back.
fn unprivileged(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::EPERM) && !nix::unistd::geteuid().is_root()
}

fn parse_num(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn clamp_id(id: u64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX - 1)
}

/// Removes whatever is at `path` so an entry can be created there. A missing path is fine.
fn remove_existing(path: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(|e| at(path, e))?,
        Ok(_) => fs::remove_file(path).map_err(|e| at(path, e))?,
        Err(_) => {}
    }
    Ok(())
}

fn make_node(path: &Path, kind: SFlag, major: u64, minor: u64) -> Result<(), ImageError> {
    mknod(
        path,
        kind,
        Mode::from_bits_truncate(0o600),
        makedev(major, minor),
    )
    .map_err(|e| at(path, e))
}

/// Sets the modification (and access) time without following symlinks.
pub fn set_mtime(path: &Path, mtime: u64) -> Result<(), ImageError> {
    let secs = i64::try_from(mtime).unwrap_or(0);
    let ts = TimeSpec::new(secs, 0);
    utimensat(None, path, &ts, &ts, UtimensatFlags::NoFollowSymlink).map_err(|e| at(path, e))
}
