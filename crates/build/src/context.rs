//! The build context: a tar (plain or gzip) extracted into a private directory without ever
//! writing outside it (`..`, absolute names and writes through symlinks are refused),
//! `.dockerignore` applied, and paths inside it resolved with symlinks scoped to its root.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use crate::BuildError;
use crate::ignore::Ignore;

/// Symlinks followed while resolving one path before giving up (as the kernel's ELOOP).
const MAX_LINKS: usize = 40;

/// An extracted build context; the directory is removed on drop.
#[derive(Debug)]
pub struct Context {
    dir: PathBuf,
    /// The `.dockerignore` rules (already applied to the directory).
    pub ignore: Ignore,
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Context {
    /// Extracts a context tar into a new directory `dir` (which must not exist).
    pub fn extract(tar: &mut dyn Read, dir: &Path) -> Result<Self, BuildError> {
        fs::create_dir_all(dir)?;
        let ctx = Self {
            dir: dir.to_path_buf(),
            ignore: Ignore::default(),
        };
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
        unpack(Box::new(Padded::new(reader)), &ctx.dir)?;
        Ok(ctx)
    }

    /// Directory holding the context.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads `.dockerignore` and removes what it excludes, except the files named in `keep`
    /// (the Dockerfile is read before that).
    pub fn apply_dockerignore(&mut self) -> Result<(), BuildError> {
        let text = match fs::read_to_string(self.dir.join(".dockerignore")) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.ignore = Ignore::parse(&text);
        if !self.ignore.is_empty() {
            prune(&self.dir, "", &self.ignore)?;
        }
        Ok(())
    }

    /// Resolves a relative context path following symlinks inside the context only (an
    /// absolute or `..` target is taken relative to the context root).
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, BuildError> {
        scoped_resolve(&self.dir, rel, true)
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

fn unpack(reader: Box<dyn Read + '_>, dir: &Path) -> Result<(), BuildError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| BuildError::Context(format!("invalid context tar: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| BuildError::Context(format!("invalid context tar: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| BuildError::Context(format!("invalid context tar: {e}")))?
            .into_owned();
        let rel = safe_relative(&raw).ok_or_else(|| {
            BuildError::Context(format!(
                "invalid context tar: entry {} points outside the build context",
                raw.display()
            ))
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dir.join(&rel);
        ensure_real_dirs(dir, &rel)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let kind = entry.header().entry_type();
        // An entry replaces whatever an earlier one left there, but never follows it.
        if let Ok(meta) = fs::symlink_metadata(&target)
            && !(meta.is_dir() && kind.is_dir())
        {
            if meta.is_dir() {
                fs::remove_dir_all(&target)?;
            } else {
                fs::remove_file(&target)?;
            }
        }
        match kind {
            t if t.is_dir() => {
                fs::create_dir_all(&target)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))?;
            }
            t if t.is_symlink() => {
                let link = entry
                    .link_name()
                    .map_err(|e| BuildError::Context(format!("invalid context tar: {e}")))?
                    .ok_or_else(|| BuildError::Context("symlink without target".into()))?;
                symlink(link.as_ref(), &target)?;
            }
            t if t.is_hard_link() => {
                let link = entry
                    .link_name()
                    .map_err(|e| BuildError::Context(format!("invalid context tar: {e}")))?
                    .ok_or_else(|| BuildError::Context("hard link without target".into()))?;
                let src_rel = safe_relative(&link).ok_or_else(|| {
                    BuildError::Context(format!(
                        "invalid context tar: link {} points outside the build context",
                        link.display()
                    ))
                })?;
                let src = scoped_resolve(dir, &src_rel.to_string_lossy(), false)?;
                if fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) {
                    fs::copy(&src, &target)?;
                }
            }
            t if t.is_file() || t == tar::EntryType::Continuous => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)?;
                io::copy(&mut entry, &mut f)?;
                f.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            // Devices, fifos and extended headers carry nothing a build can copy.
            _ => {}
        }
    }
    Ok(())
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

/// Creates the parents of `rel` under `root` as real directories; a symlink among them is an
/// error (writing through it could leave the root).
fn ensure_real_dirs(root: &Path, rel: &Path) -> Result<(), BuildError> {
    let mut cur = root.to_path_buf();
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(BuildError::Context(format!(
                    "invalid context tar: {} is not a directory",
                    rel.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&cur)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Resolves `rel` under `root`, following symlinks as if `root` were `/`.
pub fn scoped_resolve(root: &Path, rel: &str, follow_last: bool) -> Result<PathBuf, BuildError> {
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
        match fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !last) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(BuildError::Context(format!(
                        "too many symlinks resolving {rel}"
                    )));
                }
                let target = fs::read_link(&cand)?;
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

/// Removes what `.dockerignore` excludes below `dir` (`rel` is its context path).
fn prune(dir: &Path, rel: &str, ignore: &Ignore) -> Result<(), BuildError> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?;
        let excluded = ignore.excluded(&path_rel);
        if ft.is_dir() {
            if excluded && !ignore.has_exceptions() {
                fs::remove_dir_all(entry.path())?;
                continue;
            }
            prune(&entry.path(), &path_rel, ignore)?;
            if excluded && fs::read_dir(entry.path())?.next().is_none() {
                fs::remove_dir(entry.path())?;
            }
        } else if excluded {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
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
        assert!(!ctx.dir().join("a.log").exists());
        assert!(ctx.dir().join("keep.log").exists());
        assert!(!ctx.dir().join("build").exists());
        assert!(ctx.dir().join("src/main").exists());
    }
}
