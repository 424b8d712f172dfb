//! A read-only view of an image's files straight from its layer directories (top first), for
//! the questions a build asks without mounting: does the COPY destination exist as a
//! directory, what are `/etc/passwd` and `/etc/group`.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use berth_image::ImageStore;

/// Layer directories of an image, top first.
#[derive(Debug, Clone, Default)]
pub struct ImageView {
    dirs: Vec<PathBuf>,
}

impl ImageView {
    /// The view of an image (`None`: scratch).
    pub fn of(store: &ImageStore, image: Option<&str>) -> Self {
        let Some(id) = image else {
            return Self::empty();
        };
        match store.graph_driver(id) {
            Ok(s) => {
                let mut dirs = vec![s.upper];
                dirs.extend(s.lower);
                Self { dirs }
            }
            Err(_) => Self::empty(),
        }
    }

    /// A view of plain directories, top first (a mounted root filesystem).
    pub fn dirs(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    /// Nothing (scratch).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Metadata of a path (relative, no leading `/`) in the top-most layer that has it;
    /// `None` when absent or whited out.
    pub fn metadata(&self, rel: &str) -> Option<Metadata> {
        let rel = rel.trim_start_matches('/');
        for dir in &self.dirs {
            // A whiteout or a non-directory in a parent hides everything below it.
            let mut hidden = false;
            let mut cur = dir.clone();
            let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                cur.push(part);
                let Ok(m) = fs::symlink_metadata(&cur) else {
                    break;
                };
                if m.file_type().is_char_device() && m.rdev() == 0 {
                    hidden = true;
                    break;
                }
                if i + 1 == parts.len() {
                    return Some(m);
                }
                if !m.is_dir() {
                    hidden = true;
                    break;
                }
            }
            if hidden {
                return None;
            }
        }
        None
    }

    /// Whether a path is a directory in the image.
    pub fn is_dir(&self, rel: &str) -> bool {
        rel.trim_matches('/').is_empty() || self.metadata(rel).is_some_and(|m| m.is_dir())
    }

    /// Contents of a regular file in the image.
    pub fn read(&self, rel: &str) -> Option<String> {
        let rel = rel.trim_start_matches('/');
        for dir in &self.dirs {
            let p = dir.join(rel);
            if let Ok(m) = fs::symlink_metadata(&p) {
                if m.is_file() {
                    return fs::read_to_string(p).ok();
                }
                return None;
            }
        }
        None
    }

    /// Resolves `user[:group]` (names or ids) against the image's passwd and group files;
    /// a user without group uses its primary group, or its uid when given numerically and
    /// unknown (Docker's `--chown` rule).
    pub fn user_ids(&self, spec: &str) -> Result<(u32, u32, Option<String>), String> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let passwd = self.read("etc/passwd").unwrap_or_default();
        let entry = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && (f[0] == user || f[2] == user)).then(|| {
                (
                    f[2].parse::<u32>().ok(),
                    f[3].parse::<u32>().ok(),
                    f[5].to_string(),
                )
            })
        });
        let (uid, primary, home) = match (user.parse::<u32>(), entry) {
            (_, Some((Some(u), g, home))) => (u, g, Some(home)),
            (Ok(u), None) => (u, None, None),
            _ => {
                return Err(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                ));
            }
        };
        let gid = match group {
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    let groups = self.read("etc/group").unwrap_or_default();
                    groups
                        .lines()
                        .find_map(|l| {
                            let f: Vec<&str> = l.split(':').collect();
                            (f.len() >= 3 && f[0] == g)
                                .then(|| f[2].parse::<u32>().ok())
                                .flatten()
                        })
                        .ok_or_else(|| {
                            format!("unable to find group {g}: no matching entries in group file")
                        })?
                }
            },
            None => primary.unwrap_or(uid),
        };
        Ok((uid, gid, home))
    }
}
