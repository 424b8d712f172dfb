//! The build context: a tar (plain or gzip) read as it streams in. Every file's bytes go to
//! one spool file and through a content hash on the way, and an index records each path
//! (kind, mode, where its bytes are, their digest), so cache lookups resolve and hash COPY
//! sources without writing or re-reading a thing, and a COPY that misses writes its layer
//! from the spool: the context is never extracted to disk.
//! Paths never leave the context: `..`, absolute names and entries below a symlink are
//! refused, symlinks resolve scoped to the context root, `.dockerignore` prunes the index.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::BuildError;
use crate::ignore::Ignore;
use crate::tree::{Kind, Meta, Tree, scoped_resolve};

/// One path of the context.
#[derive(Debug, Clone)]
enum Node {
    Dir {
        mode: u32,
        mtime: i64,
    },
    File {
        mode: u32,
        mtime: i64,
        /// Where the bytes start in the spool.
        offset: u64,
        size: u64,
        /// BLAKE3 of the bytes.
        digest: [u8; 32],
    },
    Symlink {
        target: PathBuf,
        mtime: i64,
    },
}

/// A build context; cheap to clone. Its files are removed when the last clone goes.
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Holds `spool`.
    base: PathBuf,
    /// Every file's bytes, one after the other.
    spool: PathBuf,
    /// The path playing the context's root in resolved source paths (nothing is there).
    dir: PathBuf,
    /// Path (relative, `/`-separated, `""` the root) to node.
    nodes: BTreeMap<String, Node>,
    /// The `.dockerignore` rules (already applied to the index).
    ignore: Ignore,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn invalid(e: impl std::fmt::Display) -> BuildError {
    BuildError::Context(format!("invalid context tar: {e}"))
}

impl Context {
    /// Reads a context tar into a new directory `base` (which must not exist): the spool
    /// and the index, nothing extracted yet.
    pub fn extract(tar: &mut dyn Read, base: &Path) -> Result<Self, BuildError> {
        fs::create_dir_all(base)?;
        let mut inner = Inner {
            base: base.to_path_buf(),
            spool: base.join("spool"),
            dir: base.join("tree"),
            nodes: BTreeMap::new(),
            ignore: Ignore::default(),
        };
        inner.nodes.insert(
            String::new(),
            Node::Dir {
                mode: 0o755,
                mtime: 0,
            },
        );
        let mut head = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            let n = tar.read(&mut head[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let chained = io::Cursor::new(head[..got].to_vec()).chain(tar);
        let reader: Box<dyn Read + '_> = if got == 2 && head == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(chained))
        } else {
            Box::new(chained)
        };
        let spool = fs::File::create(&inner.spool)?;
        index(
            Box::new(Padded::new(reader)),
            spool,
            &inner.dir,
            &mut inner.nodes,
        )?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The root of the context's paths (virtual: resolved sources are under it).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The `.dockerignore` rules in force.
    pub fn ignore(&self) -> &Ignore {
        &self.inner.ignore
    }

    /// Reads `.dockerignore` and drops what it excludes from the context (the Dockerfile is
    /// read before that). Only before the context is shared.
    pub fn apply_dockerignore(&mut self) -> Result<(), BuildError> {
        let text = match self.read_file(".dockerignore") {
            Ok(t) => t,
            Err(BuildError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let ignore = Ignore::parse(&String::from_utf8_lossy(&text));
        let inner = Arc::get_mut(&mut self.inner)
            .ok_or_else(|| BuildError::Context("context already in use".into()))?;
        if !ignore.is_empty() {
            prune(&mut inner.nodes, "", &ignore);
        }
        inner.ignore = ignore;
        Ok(())
    }

    /// Resolves a relative context path following symlinks inside the context only (an
    /// absolute or `..` target is taken relative to the context root).
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, BuildError> {
        scoped_resolve(self, rel, true)
    }

    /// The bytes of the regular file at `rel` (symlinks followed inside the context);
    /// `NotFound` if there is none.
    pub fn read_file(&self, rel: &str) -> Result<Vec<u8>, BuildError> {
        let path = self.resolve(rel)?;
        let mut out = Vec::new();
        self.view().open_file(&path)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn view(&self) -> View<'_> {
        View {
            root: &self.inner.dir,
            nodes: &self.inner.nodes,
            spool: Some(&self.inner.spool),
        }
    }
}

impl Tree for Context {
    fn root(&self) -> &Path {
        &self.inner.dir
    }

    fn lstat(&self, path: &Path) -> Option<Meta> {
        self.view().lstat(path)
    }

    fn names(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.view().names(dir)
    }

    fn digest(&self, path: &Path) -> io::Result<[u8; 32]> {
        self.view().digest(path)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + '_>> {
        self.view().open_file(path)
    }
}

/// Names of the direct children of directory `dir` (`""`: the root), sorted.
fn children(nodes: &BTreeMap<String, Node>, dir: &str) -> Vec<String> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    // Keys below `dir/` sort between `dir/` and `dir0` ('0' follows '/').
    let range: Box<dyn Iterator<Item = &String>> = if dir.is_empty() {
        Box::new(nodes.keys())
    } else {
        Box::new(
            nodes
                .range::<str, _>((
                    std::ops::Bound::Included(prefix.as_str()),
                    std::ops::Bound::Excluded(format!("{dir}0").as_str()),
                ))
                .map(|(k, _)| k),
        )
    };
    range
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .map(str::to_string)
        .collect()
}

/// Removes `rel` and everything below it from the index.
fn remove_tree(nodes: &mut BTreeMap<String, Node>, rel: &str) {
    nodes.remove(rel);
    let below: Vec<String> = nodes
        .range::<str, _>((
            std::ops::Bound::Included(format!("{rel}/").as_str()),
            std::ops::Bound::Excluded(format!("{rel}0").as_str()),
        ))
        .map(|(k, _)| k.clone())
        .collect();
    for k in below {
        nodes.remove(&k);
    }
}

/// The index seen as a [`Tree`] rooted at `root`.
struct View<'a> {
    root: &'a Path,
    nodes: &'a BTreeMap<String, Node>,
    /// The spool holding file bytes (`None` while it is being written).
    spool: Option<&'a Path>,
}

impl View<'_> {
    fn key(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(self.root).ok()?;
        Some(rel.to_string_lossy().into_owned())
    }
}

impl Tree for View<'_> {
    fn root(&self) -> &Path {
        self.root
    }

    fn lstat(&self, path: &Path) -> Option<Meta> {
        let node = self.nodes.get(&self.key(path)?)?;
        Some(match node {
            Node::Dir { mode, mtime } => Meta {
                kind: Kind::Dir,
                mode: *mode,
                mtime: *mtime,
            },
            Node::File {
                mode, size, mtime, ..
            } => Meta {
                kind: Kind::File(*size),
                mode: *mode,
                mtime: *mtime,
            },
            Node::Symlink { target, mtime } => Meta {
                kind: Kind::Symlink(target.clone()),
                mode: 0o777,
                mtime: *mtime,
            },
        })
    }

    fn names(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let key = self
            .key(dir)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        match self.nodes.get(&key) {
            Some(Node::Dir { .. }) => Ok(children(self.nodes, &key)
                .into_iter()
                .map(OsString::from)
                .collect()),
            Some(_) => Err(io::Error::from(io::ErrorKind::NotADirectory)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn digest(&self, path: &Path) -> io::Result<[u8; 32]> {
        match self.key(path).and_then(|k| self.nodes.get(&k)) {
            Some(Node::File { digest, .. }) => Ok(*digest),
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + '_>> {
        self.open_file(path)
    }
}

impl View<'_> {
    /// The bytes of a file, read from the spool.
    fn open_file(&self, path: &Path) -> io::Result<Box<dyn Read + 'static>> {
        match (self.key(path).and_then(|k| self.nodes.get(&k)), self.spool) {
            (Some(Node::File { offset, size, .. }), Some(spool)) => {
                let mut f = fs::File::open(spool)?;
                f.seek(SeekFrom::Start(*offset))?;
                Ok(Box::new(Exact {
                    inner: f.take(*size),
                    left: *size,
                }))
            }
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

/// A file's bytes from the spool; ending early is an error, never a short file.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads the tar: file bytes appended to `spool` and hashed on the way, every entry recorded
/// in `nodes` (rooted at `root` for resolving hard links).
fn index(
    reader: Box<dyn Read + '_>,
    spool: fs::File,
    root: &Path,
    nodes: &mut BTreeMap<String, Node>,
) -> Result<(), BuildError> {
    let mut spool = spool;
    let mut offset = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        let raw = entry.path().map_err(invalid)?.into_owned();
        let rel = safe_relative(&raw).ok_or_else(|| {
            BuildError::Context(format!(
                "invalid context tar: entry {} points outside the build context",
                raw.display()
            ))
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let key = rel.to_string_lossy().into_owned();
        ensure_parents(nodes, &key)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mtime = entry.header().mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
        let kind = entry.header().entry_type();
        let node = match kind {
            t if t.is_dir() => Node::Dir {
                mode: mode | 0o700,
                mtime,
            },
            t if t.is_symlink() => Node::Symlink {
                mtime,
                target: entry
                    .link_name()
                    .map_err(invalid)?
                    .ok_or_else(|| BuildError::Context("symlink without target".into()))?
                    .into_owned(),
            },
            t if t.is_hard_link() => {
                let link = entry
                    .link_name()
                    .map_err(invalid)?
                    .ok_or_else(|| BuildError::Context("hard link without target".into()))?;
                let src_rel = safe_relative(&link).ok_or_else(|| {
                    BuildError::Context(format!(
                        "invalid context tar: link {} points outside the build context",
                        link.display()
                    ))
                })?;
                let view = View {
                    root,
                    nodes,
                    spool: None,
                };
                let src = scoped_resolve(&view, &src_rel.to_string_lossy(), false)?;
                match view.key(&src).and_then(|k| nodes.get(&k)) {
                    // The link becomes a file of its own with the same bytes.
                    Some(n @ Node::File { .. }) => n.clone(),
                    _ => continue,
                }
            }
            t if t.is_file() || t == tar::EntryType::Continuous => {
                let mut h = blake3::Hasher::new();
                let start = offset;
                loop {
                    // Reads come a body frame at a time: gather up to a full buffer, then
                    // hash it and hand it to the spool in one write (no second copy).
                    let mut n = 0;
                    while n < buf.len() {
                        match entry.read(&mut buf[n..])? {
                            0 => break,
                            got => n += got,
                        }
                    }
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    spool.write_all(&buf[..n])?;
                    offset += n as u64;
                    if n < buf.len() {
                        break;
                    }
                }
                Node::File {
                    mode,
                    mtime,
                    offset: start,
                    size: offset - start,
                    digest: *h.finalize().as_bytes(),
                }
            }
            // Devices, fifos and extended headers carry nothing a build can copy.
            _ => continue,
        };
        // An entry replaces whatever an earlier one left there (a directory keeps what is
        // below it only if it stays a directory).
        if matches!(nodes.get(&key), Some(Node::Dir { .. })) && !matches!(node, Node::Dir { .. }) {
            remove_tree(nodes, &key);
        }
        nodes.insert(key, node);
    }
    Ok(())
}

/// Records the parents of `key` as directories; a parent that is something else (a symlink
/// above all: writing through it could leave the root) is an error.
fn ensure_parents(nodes: &mut BTreeMap<String, Node>, key: &str) -> Result<(), BuildError> {
    let parts: Vec<&str> = key.split('/').collect();
    let mut cur = String::new();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(part);
        match nodes.get(&cur) {
            Some(Node::Dir { .. }) => {}
            Some(_) => {
                return Err(BuildError::Context(format!(
                    "invalid context tar: {key} is not a directory"
                )));
            }
            None => {
                nodes.insert(
                    cur.clone(),
                    Node::Dir {
                        mode: 0o755,
                        mtime: 0,
                    },
                );
            }
        }
    }
    Ok(())
}

/// Drops what `.dockerignore` excludes below `rel` from the index.
fn prune(nodes: &mut BTreeMap<String, Node>, rel: &str, ignore: &Ignore) {
    for name in children(nodes, rel) {
        let path_rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let excluded = ignore.excluded(&path_rel);
        if matches!(nodes.get(&path_rel), Some(Node::Dir { .. })) {
            if excluded && !ignore.has_exceptions() {
                remove_tree(nodes, &path_rel);
                continue;
            }
            prune(nodes, &path_rel, ignore);
            if excluded && children(nodes, &path_rel).is_empty() {
                nodes.remove(&path_rel);
            }
        } else if excluded {
            nodes.remove(&path_rel);
        }
    }
}

/// The docker CLI's context tar (when it adds a Dockerfile from outside the context) ends
/// right after the last entry's data, without padding or end-of-archive blocks, which Go's
/// tar reader tolerates. This completes such a stream with zeros: padding to the next
/// 512-byte block and two empty blocks. A transport failure is still an error (the body
/// reader reports it), only a clean end is completed.
struct Padded<R> {
    inner: R,
    read: u64,
    extra: Option<u64>,
}

impl<R: Read> Padded<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            extra: None,
        }
    }
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.extra.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            let pad = (512 - self.read % 512) % 512;
            self.extra = Some(pad + 1024);
        }
        let left = self.extra.unwrap_or(0);
        let n = (left.min(buf.len() as u64)) as usize;
        buf[..n].fill(0);
        self.extra = Some(left - n as u64);
        Ok(n)
    }
}

/// A tar entry name as a relative path without `..`; `None` if it would escape.
pub fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match link {
                Some(l) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, name, l).expect("link");
                }
                None => {
                    h.set_size(data.len() as u64);
                    // Write the raw name so `../` survives (the builder refuses it).
                    let bytes = name.as_bytes();
                    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
                    h.set_cksum();
                    b.append(&h, *data).expect("append");
                }
            }
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn refuses_escapes_and_writes_through_symlinks() {
        let tmp = tempfile::tempdir().expect("tmp");
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        let t = tar_with(&[("../evil", None, b"x")]);
        assert!(Context::extract(&mut &t[..], &tmp.path().join("c1")).is_err());
        assert!(!tmp.path().join("evil").exists());
        let out = outside.to_string_lossy().into_owned();
        let t = tar_with(&[("l", Some(&out), b""), ("l/pwn", None, b"x")]);
        assert!(Context::extract(&mut &t[..], &tmp.path().join("c2")).is_err());
        assert!(!outside.join("pwn").exists());
    }

    #[test]
    fn scoped_symlinks_stay_inside() {
        let tmp = tempfile::tempdir().expect("tmp");
        let t = tar_with(&[
            ("a/f", None, b"data"),
            ("up", Some("../../../etc"), b""),
            ("abs", Some("/a"), b""),
        ]);
        let ctx = Context::extract(&mut &t[..], &tmp.path().join("c")).expect("ctx");
        assert_eq!(
            ctx.resolve("up/passwd").expect("r"),
            ctx.dir().join("etc/passwd")
        );
        assert_eq!(ctx.resolve("abs/f").expect("r"), ctx.dir().join("a/f"));
    }

    #[test]
    fn dockerignore_prunes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let t = tar_with(&[
            (".dockerignore", None, b"*.log\n!keep.log\nbuild\n"),
            ("a.log", None, b"x"),
            ("keep.log", None, b"x"),
            ("build/out", None, b"x"),
            ("src/main", None, b"x"),
        ]);
        let mut ctx = Context::extract(&mut &t[..], &tmp.path().join("c")).expect("ctx");
        ctx.apply_dockerignore().expect("ignore");
        let has = |p: &str| ctx.lstat(&ctx.dir().join(p)).is_some();
        assert!(!has("a.log"));
        assert!(has("keep.log"));
        assert!(!has("build"));
        assert!(has("src/main"));
    }

    fn tar_of_files(files: &[(&str, &[u8], u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, mtime) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(*mtime);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn key_of(ctx: &Context, rel: &str) -> String {
        let src = ctx.resolve(rel).expect("resolve");
        crate::copy::content_key(ctx, &[src]).expect("key")
    }

    #[test]
    fn index_keys_by_content_and_extracts_only_on_demand() {
        let tmp = tempfile::tempdir().expect("tmp");
        let a = tar_of_files(&[
            ("d/x", b"one", 1),
            ("d/y", b"two", 1),
            ("Dockerfile", b"FROM a", 1),
        ]);
        let b = tar_of_files(&[
            ("d/x", b"one", 9),
            ("d/y", b"two", 9),
            ("Dockerfile", b"FROM a", 9),
        ]);
        let c = tar_of_files(&[
            ("d/x", b"one", 1),
            ("d/y", b"TWO", 1),
            ("Dockerfile", b"FROM a", 1),
        ]);
        let ca = Context::extract(&mut &a[..], &tmp.path().join("a")).expect("a");
        let cb = Context::extract(&mut &b[..], &tmp.path().join("b")).expect("b");
        let cc = Context::extract(&mut &c[..], &tmp.path().join("c")).expect("c");
        // Timestamps do not count, bytes do.
        assert_eq!(key_of(&ca, "d"), key_of(&cb, "d"));
        assert_ne!(key_of(&ca, "d"), key_of(&cc, "d"));
        assert_eq!(key_of(&ca, "d/x"), key_of(&cc, "d/x"));
        assert_eq!(ca.read_file("Dockerfile").expect("read"), b"FROM a");
        // Nothing is extracted: the bytes come from the spool.
        assert!(!ca.dir().exists());
        assert_eq!(ca.read_file("d/y").expect("y"), b"two");
        let base = tmp.path().join("a");
        drop(ca);
        assert!(!base.exists());
    }

    #[test]
    fn later_entries_replace_earlier_and_hard_links_copy() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o600);
        h.set_size(3);
        b.append_data(&mut h, "f", &b"old"[..]).expect("f");
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o640);
        h.set_size(3);
        b.append_data(&mut h, "f", &b"new"[..]).expect("f again");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "g", "f").expect("link");
        let t = b.into_inner().expect("tar");
        let ctx = Context::extract(&mut &t[..], &tmp.path().join("c")).expect("ctx");
        assert_eq!(ctx.read_file("f").expect("f"), b"new");
        assert_eq!(ctx.read_file("g").expect("g"), b"new");
        let meta = ctx.lstat(&ctx.dir().join("f")).expect("meta");
        assert_eq!(meta.mode, 0o640);
    }
}
