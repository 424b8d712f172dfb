//! Tar writing from a directory tree: sorted entries, modes, owners, times, xattrs (as PAX
//! `SCHILY.xattr.*`), hardlinks and device nodes. With whiteout conversion, overlayfs
//! whiteouts (0/0 character devices, opaque directories) become `.wh.` entries again, which
//! is how a container's upper directory turns into a layer.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{major, minor};
use tar::{EntryType, Header};

use super::apply::{OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX};
use crate::ImageError;

/// How a tree is written.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Convert overlayfs whiteouts into `.wh.` entries (layer diffs).
    pub whiteouts: bool,
    /// Name of the tree's root inside the archive; empty writes the root's contents at the
    /// top level (`./` not emitted).
    pub root_name: PathBuf,
    /// Write directories without descending into them.
    pub flat: bool,
}

/// Writes the given changes of `root` (paths relative to it, `deleted` as `.wh.` entries)
/// as a layer tar: the copy-fallback way to turn a container's changes into a layer.
pub fn pack_changes(
    root: &Path,
    changes: &[(PathBuf, bool)],
    out: &mut dyn Write,
) -> Result<(), ImageError> {
    let mut builder = tar::Builder::new(out);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let opts = PackOptions {
        flat: true,
        ..PackOptions::default()
    };
    for (rel, deleted) in changes {
        if *deleted {
            let file = rel.file_name().unwrap_or_default().to_string_lossy();
            let mut header = Header::new_gnu();
            header.set_entry_type(EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(0);
            let wh = rel.with_file_name(format!("{WHITEOUT_PREFIX}{file}"));
            builder.append_data(&mut header, wh, io::empty())?;
            continue;
        }
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path)?;
        pack_entry(&mut builder, &path, rel, &meta, &opts, &mut links)?;
    }
    builder.finish()?;
    Ok(())
}

/// Writes `src` (a directory or any single file) as a tar stream to `out`.
pub fn pack(src: &Path, out: &mut dyn Write, opts: &PackOptions) -> Result<(), ImageError> {
    let mut builder = tar::Builder::new(out);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let meta = fs::symlink_metadata(src)?;
    if opts.root_name.as_os_str().is_empty() {
        if !meta.is_dir() {
            return Err(ImageError::Io(io::Error::other(format!(
                "{} is not a directory",
                src.display()
            ))));
        }
        pack_children(&mut builder, src, Path::new(""), opts, &mut links)?;
    } else {
        pack_entry(&mut builder, src, &opts.root_name, &meta, opts, &mut links)?;
    }
    builder.finish()?;
    Ok(())
}

fn pack_children(
    builder: &mut tar::Builder<&mut dyn Write>,
    dir: &Path,
    name: &Path,
    opts: &PackOptions,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ImageError> {
    let mut children: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    children.sort();
    for child in children {
        let path = dir.join(&child);
        let meta = fs::symlink_metadata(&path)?;
        pack_entry(builder, &path, &name.join(&child), &meta, opts, links)?;
    }
    Ok(())
}

fn pack_entry(
    builder: &mut tar::Builder<&mut dyn Write>,
    path: &Path,
    name: &Path,
    meta: &fs::Metadata,
    opts: &PackOptions,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ImageError> {
    let ft = meta.file_type();
    if ft.is_socket() {
        return Ok(());
    }
    let mut header = Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_size(0);
    if opts.whiteouts && ft.is_char_device() && meta.rdev() == 0 {
        let file = name.file_name().unwrap_or_default().to_string_lossy();
        let wh = name.with_file_name(format!("{WHITEOUT_PREFIX}{file}"));
        header.set_entry_type(EntryType::Regular);
        builder.append_data(&mut header, &wh, io::empty())?;
        return Ok(());
    }
    let xattrs = read_xattrs(path);
    if !xattrs.is_empty() {
        let pax: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        builder.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))?;
    }
    if ft.is_dir() {
        header.set_entry_type(EntryType::Directory);
        builder.append_data(&mut header, name, io::empty())?;
        if opts.whiteouts && xattr::get(path, OPAQUE_XATTR).ok().flatten().as_deref() == Some(b"y")
        {
            let mut marker = Header::new_gnu();
            marker.set_entry_type(EntryType::Regular);
            marker.set_mode(0o644);
            marker.set_size(0);
            builder.append_data(&mut marker, name.join(OPAQUE_MARKER), io::empty())?;
        }
        if opts.flat {
            return Ok(());
        }
        return pack_children(builder, path, name, opts, links);
    }
    if !ft.is_dir() && meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(first) = links.get(&key) {
            header.set_entry_type(EntryType::Link);
            builder.append_link(&mut header, name, first)?;
            return Ok(());
        }
        links.insert(key, name.to_path_buf());
    }
    if ft.is_file() {
        header.set_entry_type(EntryType::Regular);
        header.set_size(meta.len());
        // O_NOFOLLOW: a running container may swap the file for a symlink after the lstat.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)?;
        builder.append_data(&mut header, name, file)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(path)?;
        header.set_entry_type(EntryType::Symlink);
        builder.append_link(&mut header, name, &target)?;
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        header.set_entry_type(if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        });
        let rdev = meta.rdev();
        header.set_device_major(u32::try_from(major(rdev)).unwrap_or(0))?;
        header.set_device_minor(u32::try_from(minor(rdev)).unwrap_or(0))?;
        builder.append_data(&mut header, name, io::empty())?;
    }
    Ok(())
}

/// xattrs of a path except overlay's own metadata.
fn read_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names {
        let key = String::from_utf8_lossy(name.as_bytes()).into_owned();
        if key.starts_with("trusted.overlay.") {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(path, &name) {
            out.push((key, value));
        }
    }
    out.sort();
    out
}
