//! COPY and ADD: resolving sources (globs, symlinks scoped to their root), the content key
//! the cache uses (paths, modes, link targets and file contents, never timestamps), and the
//! layer tar written straight from the sources, with `--chown`/`--chmod` applied and local
//! tar archives extracted for ADD.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::BuildError;
use crate::context::safe_relative;
use crate::ignore::{glob, has_glob};
use crate::tree::{FsTree, Kind, Tree, scoped_resolve};
use crate::view::ImageView;

/// Where COPY sources come from: the context or another stage's root filesystem.
#[derive(Clone)]
pub struct SourceRoot {
    /// The files, rooted at the directory playing `/`.
    pub tree: Arc<dyn Tree>,
    /// True for the build context (error texts differ).
    pub is_context: bool,
}

/// What a COPY or ADD instruction asks for, after substitution.
#[derive(Debug, Clone)]
pub struct CopySpec {
    /// `COPY` or `ADD`.
    pub keyword: String,
    /// Source paths or globs as written.
    pub sources: Vec<String>,
    /// Absolute destination in the image (a trailing `/` kept: it means a directory).
    pub dest: String,
    /// `--chown` resolved to ids.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` mode bits.
    pub chmod: Option<u32>,
    /// Files downloaded for ADD of URLs (never extracted, placed like files).
    pub downloads: Vec<PathBuf>,
}

/// Resolves the sources to existing paths under the root, globs expanded (sorted).
pub fn resolve_sources(root: &SourceRoot, spec: &CopySpec) -> Result<Vec<PathBuf>, BuildError> {
    let mut out = spec.downloads.clone();
    for src in &spec.sources {
        let rel = src.trim_start_matches('/');
        if has_glob(rel) {
            let mut found = Vec::new();
            glob_walk(&*root.tree, root.tree.root(), rel, &mut found)?;
            found.sort();
            out.extend(found);
            continue;
        }
        let path = scoped_resolve(&*root.tree, rel, true)?;
        if root.tree.lstat(&path).is_none() {
            let msg = if root.is_context {
                format!(
                    "{} failed: file not found in build context or excluded by .dockerignore: stat {rel}: file does not exist",
                    spec.keyword
                )
            } else {
                format!(
                    "{} failed: stat {}: file does not exist",
                    spec.keyword,
                    Path::new("/").join(rel).display()
                )
            };
            return Err(BuildError::Copy(msg));
        }
        out.push(path);
    }
    if out.is_empty() {
        return Err(BuildError::Copy(format!(
            "{} failed: no source files were specified",
            spec.keyword
        )));
    }
    Ok(out)
}

fn glob_walk(
    tree: &dyn Tree,
    dir: &Path,
    pattern: &str,
    out: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    let root = tree.root();
    let (first, rest) = match pattern.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (pattern, None),
    };
    let names: Vec<String> = match tree.names(dir) {
        Ok(n) => n
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect(),
        Err(_) => return Ok(()),
    };
    for name in names {
        if !glob(first, &name) {
            continue;
        }
        let rel = dir.strip_prefix(root).unwrap_or(Path::new("")).join(&name);
        let path = scoped_resolve(tree, &rel.to_string_lossy(), rest.is_some())?;
        match rest {
            None => out.push(path),
            Some(r) if tree.lstat(&path).is_some_and(|m| m.kind == Kind::Dir) => {
                glob_walk(tree, &path, r, out)?
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Content key of the sources: names, types, modes, link targets and the digests of file
/// bytes (the context recorded those as it streamed in, so nothing is read again).
pub fn content_key(tree: &dyn Tree, sources: &[PathBuf]) -> Result<String, BuildError> {
    let host = FsTree::new(Path::new("/"));
    let mut h = Sha256::new();
    for src in sources {
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        h.update(b"\0src\0");
        h.update(name.as_bytes());
        hash_tree(tree_of(tree, src, &host), src, Path::new(""), &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

/// Whether a resolved source is a regular file.
pub fn is_file(tree: &dyn Tree, src: &Path) -> bool {
    let host = FsTree::new(Path::new("/"));
    tree_of(tree, src, &host)
        .lstat(src)
        .is_some_and(|m| matches!(m.kind, Kind::File(_)))
}

/// The tree a source lies in: the root's, or (ADD's downloads, kept in the build's own
/// directory) the file system's.
fn tree_of<'a>(tree: &'a dyn Tree, src: &Path, host: &'a FsTree) -> &'a dyn Tree {
    if src.starts_with(tree.root()) {
        tree
    } else {
        host
    }
}

fn hash_tree(tree: &dyn Tree, path: &Path, rel: &Path, h: &mut Sha256) -> Result<(), BuildError> {
    let meta = tree
        .lstat(path)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))?;
    h.update(rel.to_string_lossy().as_bytes());
    let kind = match &meta.kind {
        Kind::Dir => 'd',
        Kind::File(_) => 'f',
        Kind::Symlink(_) => 'l',
        Kind::Other => 'o',
    };
    h.update(format!("\0{kind}{:o}\0", meta.mode).as_bytes());
    match &meta.kind {
        Kind::Symlink(target) => h.update(target.to_string_lossy().as_bytes()),
        Kind::File(size) => {
            h.update(size.to_le_bytes());
            h.update(tree.digest(path)?);
        }
        Kind::Dir => {
            for name in tree.names(path)? {
                hash_tree(tree, &path.join(&name), &rel.join(&name), h)?;
            }
        }
        Kind::Other => {}
    }
    h.update(b"\0");
    Ok(())
}

/// Writes the layer tar of a COPY/ADD: `sources` (resolved in `tree`) to `spec.dest` on top
/// of the image seen through `view`. Nothing outside `tree` (and ADD's downloads) is read: a
/// source that is a symlink is followed inside the tree only.
pub fn write_layer(
    out: &mut dyn Write,
    tree: &dyn Tree,
    sources: &[PathBuf],
    spec: &CopySpec,
    view: &ImageView,
) -> Result<(), BuildError> {
    let dest_rel = spec
        .dest
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    let dest_is_dir = spec.dest.ends_with('/')
        || dest_rel.is_empty()
        || view.is_dir(&dest_rel)
        || sources.len() > 1;
    if sources.len() > 1 && !spec.dest.ends_with('/') && !view.is_dir(&dest_rel) {
        return Err(BuildError::Copy(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            spec.keyword
        )));
    }
    let host = FsTree::new(Path::new("/"));
    let mut w = LayerWriter {
        tar: tar::Builder::new(out),
        emitted: BTreeSet::new(),
        spec,
        view,
        tree,
    };
    for src in sources {
        let tree = tree_of(tree, src, &host);
        w.tree = tree;
        let src = &follow(tree, src)?;
        let meta = tree
            .lstat(src)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, src.display().to_string()))?;
        if meta.kind == Kind::Dir {
            w.parents(&dest_rel)?;
            if !w.emitted.contains(&dest_rel) {
                w.entry(src, &dest_rel)?;
            }
            w.walk(src, &dest_rel)?;
        } else if spec.keyword == "ADD" && !spec.downloads.contains(src) && is_archive(tree, src)? {
            w.parents(&dest_rel)?;
            if !dest_rel.is_empty() && !w.emitted.contains(&dest_rel) {
                w.new_dir(&dest_rel)?;
            }
            w.extract(src, &dest_rel)?;
        } else {
            let target = if dest_is_dir {
                let name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                join(&dest_rel, &name)
            } else {
                dest_rel.clone()
            };
            w.parents(&target)?;
            w.entry(src, &target)?;
        }
    }
    w.tar.finish()?;
    Ok(())
}

/// A source that is a symlink (a glob match) resolved inside its tree.
fn follow(tree: &dyn Tree, src: &Path) -> Result<PathBuf, BuildError> {
    match tree.lstat(src) {
        Some(m) if matches!(m.kind, Kind::Symlink(_)) => {
            let rel = src.strip_prefix(tree.root()).unwrap_or(src);
            scoped_resolve(tree, &rel.to_string_lossy(), true)
        }
        _ => Ok(src.to_path_buf()),
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// A local tar archive ADD extracts (plain or gzip).
fn is_archive(tree: &dyn Tree, path: &Path) -> Result<bool, BuildError> {
    let mut head = vec![0u8; 512];
    let n = read_full(&mut tree.open(path)?, &mut head)?;
    if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let mut gz = flate2::read::GzDecoder::new(tree.open(path)?);
        let mut inner = vec![0u8; 512];
        let m = read_full(&mut gz, &mut inner).unwrap_or(0);
        return Ok(m == 512 && &inner[257..262] == b"ustar");
    }
    Ok(n == 512 && &head[257..262] == b"ustar")
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = r.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

struct LayerWriter<'a> {
    tar: tar::Builder<&'a mut dyn Write>,
    emitted: BTreeSet<String>,
    spec: &'a CopySpec,
    view: &'a ImageView,
    /// Where the current source lives.
    tree: &'a dyn Tree,
}

impl LayerWriter<'_> {
    fn ids(&self) -> (u64, u64) {
        self.spec
            .chown
            .map(|(u, g)| (u as u64, g as u64))
            .unwrap_or((0, 0))
    }

    /// Parent directories of `target`: existing ones keep the image's metadata, new ones
    /// are 0755 and owned as `--chown` says.
    fn parents(&mut self, target: &str) -> Result<(), BuildError> {
        let mut cur = String::new();
        let parts: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            cur = join(&cur, part);
            if self.emitted.contains(&cur) {
                continue;
            }
            match self.view.metadata(&cur) {
                Some(m) if m.is_dir() => {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(m.mode() & 0o7777);
                    h.set_uid(m.uid() as u64);
                    h.set_gid(m.gid() as u64);
                    h.set_mtime(m.mtime().max(0) as u64);
                    h.set_size(0);
                    self.tar
                        .append_data(&mut h, format!("{cur}/"), io::empty())?;
                    self.emitted.insert(cur.clone());
                }
                _ => self.new_dir(&cur)?,
            }
        }
        Ok(())
    }

    fn new_dir(&mut self, rel: &str) -> Result<(), BuildError> {
        let (uid, gid) = self.ids();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(0);
        h.set_size(0);
        self.tar
            .append_data(&mut h, format!("{rel}/"), io::empty())?;
        self.emitted.insert(rel.to_string());
        Ok(())
    }

    /// One entry (file, directory, symlink) at `target`.
    fn entry(&mut self, src: &Path, target: &str) -> Result<(), BuildError> {
        if target.is_empty() {
            return Ok(());
        }
        let meta = self
            .tree
            .lstat(src)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, src.display().to_string()))?;
        let (uid, gid) = self.ids();
        let mut h = tar::Header::new_gnu();
        let mode = self.spec.chmod.unwrap_or(meta.mode);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(meta.mtime.max(0) as u64);
        match meta.kind {
            Kind::Symlink(link) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                self.tar.append_link(&mut h, target, link)?;
            }
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                self.tar
                    .append_data(&mut h, format!("{target}/"), io::empty())?;
                self.emitted.insert(target.to_string());
            }
            Kind::File(size) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                let f = self.tree.open(src)?;
                self.tar.append_data(&mut h, target, f.take(size))?;
            }
            Kind::Other => {}
        }
        Ok(())
    }

    fn walk(&mut self, dir: &Path, target: &str) -> Result<(), BuildError> {
        for name in self.tree.names(dir)? {
            let src = dir.join(&name);
            let t = join(target, &name.to_string_lossy());
            self.entry(&src, &t)?;
            if self.tree.lstat(&src).is_some_and(|m| m.kind == Kind::Dir) {
                self.walk(&src, &t)?;
            }
        }
        Ok(())
    }

    /// ADD of a local archive: its entries re-rooted at `target`, names never escaping.
    fn extract(&mut self, src: &Path, target: &str) -> Result<(), BuildError> {
        let mut magic = [0u8; 2];
        let n = read_full(&mut self.tree.open(src)?, &mut magic)?;
        let f = self.tree.open(src)?;
        let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let mut archive = tar::Archive::new(reader);
        let bad = |e: io::Error| {
            BuildError::Copy(format!(
                "ADD failed: invalid archive {}: {e}",
                src.display()
            ))
        };
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path().map_err(bad)?.into_owned();
            let Some(rel) = safe_relative(&raw) else {
                return Err(BuildError::Copy(format!(
                    "ADD failed: archive entry {} points outside the destination",
                    raw.display()
                )));
            };
            if rel.as_os_str().is_empty() {
                continue;
            }
            let name = join(target, &rel.to_string_lossy());
            self.parents(&name)?;
            let mut h = entry.header().clone();
            if let Some((u, g)) = self.spec.chown {
                h.set_uid(u as u64);
                h.set_gid(g as u64);
            }
            let kind = h.entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let link = entry
                    .link_name()
                    .map_err(bad)?
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let link = if kind.is_hard_link() {
                    match safe_relative(&link) {
                        Some(l) => PathBuf::from(join(target, &l.to_string_lossy())),
                        None => continue,
                    }
                } else {
                    link
                };
                self.tar.append_link(&mut h, &name, link)?;
            } else if kind.is_dir() {
                self.tar
                    .append_data(&mut h, format!("{name}/"), io::empty())?;
                self.emitted.insert(name);
            } else if kind.is_file() {
                let size = h.size().unwrap_or(0);
                self.tar
                    .append_data(&mut h, &name, (&mut entry).take(size))?;
            }
        }
        Ok(())
    }
}

/// Mode bits of `--chmod` (octal).
pub fn parse_chmod(s: &str) -> Result<u32, BuildError> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| BuildError::Syntax(format!("invalid chmod parameter: {s}")))
}

/// Sets permissions on a created path (used by tests of this module).
#[cfg(test)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn content_key_ignores_mtime_and_sees_content() {
        let tmp = tempfile::tempdir().expect("tmp");
        let f = tmp.path().join("f");
        fs::write(&f, "a").expect("write");
        chmod(&f, 0o644);
        let k1 = content_key(&FsTree::new(tmp.path()), std::slice::from_ref(&f)).expect("key");
        let t = fs::File::options().write(true).open(&f).expect("open");
        t.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .expect("mtime");
        assert_eq!(
            k1,
            content_key(&FsTree::new(tmp.path()), std::slice::from_ref(&f)).expect("key")
        );
        fs::write(&f, "b").expect("write");
        assert_ne!(
            k1,
            content_key(&FsTree::new(tmp.path()), std::slice::from_ref(&f)).expect("key")
        );
    }

    #[test]
    fn layer_places_files_and_dirs() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ctx = tmp.path().join("ctx");
        fs::create_dir_all(ctx.join("d/sub")).expect("mkdir");
        fs::write(ctx.join("d/sub/x"), "x").expect("w");
        fs::write(ctx.join("a.txt"), "a").expect("w");
        let root = SourceRoot {
            tree: Arc::new(FsTree::new(&ctx)),
            is_context: true,
        };
        let spec = CopySpec {
            keyword: "COPY".into(),
            sources: vec!["*.txt".into(), "d".into()],
            dest: "/app/".into(),
            chown: Some((5, 6)),
            chmod: None,
            downloads: Vec::new(),
        };
        let srcs = resolve_sources(&root, &spec).expect("resolve");
        let mut buf = Vec::new();
        write_layer(&mut buf, &*root.tree, &srcs, &spec, &ImageView::empty()).expect("layer");
        let mut names = Vec::new();
        for e in tar::Archive::new(&buf[..]).entries().expect("entries") {
            let e = e.expect("entry");
            assert_eq!(e.header().uid().expect("uid"), 5);
            names.push(e.path().expect("path").to_string_lossy().into_owned());
        }
        assert_eq!(names, vec!["app/", "app/a.txt", "app/sub/", "app/sub/x"]);
        let missing = CopySpec {
            sources: vec!["nope".into()],
            ..spec
        };
        let err = resolve_sources(&root, &missing).expect_err("missing");
        assert!(
            err.to_string().contains("file not found in build context"),
            "{err}"
        );
    }
}
