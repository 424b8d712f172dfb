//! Path resolution confined to a root directory, as if the root were `/`: `..` stops at the
//! root and symlinks (absolute or relative) are followed inside it. Used by layer extraction
//! and `docker cp` so that no tar entry or user path ever reaches outside its root.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed while resolving one path (Linux's `MAXSYMLINKS` is 40).
const MAX_SYMLINKS: usize = 40;

/// Lexically cleans a path from an archive or a user into components below a root: leading
/// `/` and `.` are dropped; `..` pops a component. Returns `None` when `..` would climb above
/// the root.
pub fn clean_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// Resolves `path` inside `root`, following symlinks within the root (the last component
/// only when `follow_last`). Missing components are kept as they are, so the result can be
/// created. The result always starts with `root`.
pub fn resolve(root: &Path, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut pending: Vec<OsString> = components(path);
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0usize;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let is_last = pending.is_empty();
        let candidate: PathBuf = root.join(resolved.iter().collect::<PathBuf>()).join(&part);
        let meta = match fs::symlink_metadata(&candidate) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        match meta {
            Some(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(nix::libc::ELOOP));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(part),
        }
    }
    Ok(root.join(resolved.iter().collect::<PathBuf>()))
}

/// Resolves the parent of `rel` (following every symlink inside `root`) and keeps the last
/// component unresolved: where a tar entry named `rel` is to be created.
pub fn resolve_parent(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = resolve(root, parent, true)?;
    Ok(match rel.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    })
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn clean_relative_strips_root_and_refuses_escape() {
        assert_eq!(
            clean_relative(Path::new("/etc/./passwd")),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(
            clean_relative(Path::new("a/../b")),
            Some(PathBuf::from("b"))
        );
        assert_eq!(clean_relative(Path::new("../etc/passwd")), None);
        assert_eq!(clean_relative(Path::new("a/../../x")), None);
    }

    #[test]
    fn symlinks_pointing_outside_resolve_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("data")).expect("mkdir");
        symlink("/etc", root.join("abs")).expect("symlink");
        symlink("../../../..", root.join("data/up")).expect("symlink");
        symlink("loop", root.join("loop")).expect("symlink");
        assert_eq!(
            resolve(&root, Path::new("abs/passwd"), true).expect("resolve"),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve(&root, Path::new("data/up/etc/shadow"), true).expect("resolve"),
            root.join("etc/shadow")
        );
        assert_eq!(
            resolve(&root, Path::new("/../../x"), true).expect("resolve"),
            root.join("x")
        );
        assert_eq!(
            resolve(&root, Path::new("abs"), false).expect("resolve"),
            root.join("abs")
        );
        assert!(resolve(&root, Path::new("loop/x"), true).is_err());
        assert_eq!(
            resolve_parent(&root, Path::new("abs/x")).expect("resolve"),
            root.join("etc/x")
        );
    }
}
