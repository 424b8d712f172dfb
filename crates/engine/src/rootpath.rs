//! Resolving a path inside a container's root filesystem from the host, following symlinks
//! as the container would see them, so that no path ever escapes the root.

use std::path::{Component, Path, PathBuf};

/// Maximum number of symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
const MAX_LINKS: u32 = 40;

/// Resolves `path` (absolute inside the container) to a host path under `root`. Every
/// symlink met on the way, absolute or relative, is interpreted inside `root`; `..` never
/// climbs above it. The final component is resolved too unless `follow_last` is false.
pub fn resolve(root: &Path, path: &str, follow_last: bool) -> std::io::Result<PathBuf> {
    let mut links = 0;
    // Components still to walk, in reverse order so that pop() yields the next one.
    let mut todo: Vec<String> = components(path).into_iter().rev().collect();
    let mut done: Vec<String> = Vec::new();
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&done);
        host.push(&part);
        let is_last = todo.is_empty();
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(std::io::Error::other(format!(
                        "too many levels of symbolic links: {path}"
                    )));
                }
                let target = std::fs::read_link(&host)?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    done.clear();
                }
                for c in components(&target).into_iter().rev() {
                    todo.push(c);
                }
            }
            _ => done.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(out)
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", root.join("link")).expect("symlink");
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("etc/evil"))
            .expect("symlink");
        assert_eq!(
            resolve(root, "/link/passwd", true).expect("resolve"),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve(root, "/etc/evil", true).expect("resolve"),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve(root, "/etc/evil", false).expect("resolve"),
            root.join("etc/evil")
        );
        assert_eq!(
            resolve(root, "/../../x", true).expect("resolve"),
            root.join("x")
        );
    }
}
