//! The file-system questions COPY/ADD ask of a source root (what is at a path, what a
//! directory holds, the digest of a file's bytes), answered either by a real directory (a
//! stage's root filesystem) or by the build context's index without touching the disk, and
//! path resolution with symlinks scoped to the root.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::BuildError;

/// Symlinks followed while resolving one path before giving up (as the kernel's ELOOP).
const MAX_LINKS: usize = 40;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file of this many bytes.
    File(u64),
    /// A symlink to this target.
    Symlink(PathBuf),
    /// Anything else (devices, fifos, sockets).
    Other,
}

/// The metadata a build looks at: kind, permission bits, modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// What the path is.
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Modification time, seconds since the epoch (kept in layers, never in cache keys).
    pub mtime: i64,
}

/// A source root: every path given is absolute and lies under [`Tree::root`].
pub trait Tree: Send + Sync {
    /// The directory playing `/`.
    fn root(&self) -> &Path;
    /// Metadata of `path` without following a final symlink; `None` if nothing is there.
    fn lstat(&self, path: &Path) -> Option<Meta>;
    /// Names in directory `dir`, sorted bytewise.
    fn names(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Content digest (BLAKE3) of the regular file at `path`.
    fn digest(&self, path: &Path) -> io::Result<[u8; 32]>;
    /// The bytes of the regular file at `path`.
    fn open(&self, path: &Path) -> io::Result<Box<dyn io::Read + '_>>;
}

/// A real directory.
#[derive(Debug, Clone)]
pub struct FsTree {
    root: PathBuf,
}

impl FsTree {
    /// The tree of directory `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
}

impl Tree for FsTree {
    fn root(&self) -> &Path {
        &self.root
    }

    fn lstat(&self, path: &Path) -> Option<Meta> {
        let m = fs::symlink_metadata(path).ok()?;
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            Kind::Symlink(fs::read_link(path).ok()?)
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File(m.len())
        } else {
            Kind::Other
        };
        Some(Meta {
            kind,
            mode: m.mode() & 0o7777,
            mtime: m.mtime(),
        })
    }

    fn names(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        Ok(names)
    }

    fn digest(&self, path: &Path) -> io::Result<[u8; 32]> {
        let mut h = blake3::Hasher::new();
        h.update_reader(fs::File::open(path)?)?;
        Ok(*h.finalize().as_bytes())
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn io::Read + '_>> {
        Ok(Box::new(fs::File::open(path)?))
    }
}

/// Resolves `rel` under the tree's root, following symlinks as if the root were `/` (an
/// absolute or `..` target never leaves it). With `follow_last` false a final symlink is
/// kept.
pub fn scoped_resolve(
    tree: &dyn Tree,
    rel: &str,
    follow_last: bool,
) -> Result<PathBuf, BuildError> {
    let root = tree.root();
    let mut todo: Vec<String> = rel
        .split('/')
        .rev()
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(seg) = todo.pop() {
        if seg == ".." {
            done.pop();
            continue;
        }
        let mut cand = root.to_path_buf();
        cand.extend(&done);
        cand.push(&seg);
        let last = todo.is_empty();
        match tree.lstat(&cand) {
            Some(Meta {
                kind: Kind::Symlink(target),
                ..
            }) if follow_last || !last => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(BuildError::Context(format!(
                        "too many symlinks resolving {rel}"
                    )));
                }
                let t = target.to_string_lossy();
                if t.starts_with('/') {
                    done.clear();
                }
                todo.extend(
                    t.split('/')
                        .rev()
                        .filter(|s| !s.is_empty() && *s != ".")
                        .map(str::to_string),
                );
            }
            _ => done.push(seg),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(out)
}
