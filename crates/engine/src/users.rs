//! Resolving `-u name`, `-u uid`, `-u uid:gid`, `-u name:group` against the container's
//! /etc/passwd and /etc/group, as Docker does before starting a process.

use std::path::Path;

use berth_runtime::User;

use crate::error::{EngineError, Result};
use crate::rootpath;

/// A resolved user and the home directory for `HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub user: User,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read(rootfs: &Path, file: &str) -> String {
    rootpath::resolve(rootfs, file, true)
        .and_then(std::fs::read_to_string)
        .unwrap_or_default()
}

fn passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    read(rootfs, "/etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect()
}

fn groups(rootfs: &Path) -> Vec<GroupEntry> {
    read(rootfs, "/etc/group")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// Resolves a user spec; `extra_groups` are `HostConfig.GroupAdd` entries (names or ids).
pub fn resolve(rootfs: &Path, spec: &str, extra_groups: &[String]) -> Result<Resolved> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(rootfs);
    let all_groups = groups(rootfs);
    let (uid, mut gid, home, name) = if user_part.is_empty() {
        match users.iter().find(|u| u.uid == 0) {
            Some(u) => (0, u.gid, u.home.clone(), Some(u.name.clone())),
            None => (0, 0, "/root".into(), Some("root".into())),
        }
    } else if let Ok(uid) = user_part.parse::<u32>() {
        match users.iter().find(|u| u.uid == uid) {
            Some(u) => (uid, u.gid, u.home.clone(), Some(u.name.clone())),
            None => (uid, 0, "/".into(), None),
        }
    } else {
        match users.iter().find(|u| u.name == user_part) {
            Some(u) => (u.uid, u.gid, u.home.clone(), Some(u.name.clone())),
            None => {
                return Err(EngineError::InvalidArgument(format!(
                    "unable to find user {user_part}: no matching entries in passwd file"
                )));
            }
        }
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = lookup_group(&all_groups, g)?;
    }
    let mut additional: Vec<u32> = Vec::new();
    if group_part.is_none()
        && let Some(name) = &name
    {
        for g in &all_groups {
            if g.members.iter().any(|m| m == name) && g.gid != gid && !additional.contains(&g.gid) {
                additional.push(g.gid);
            }
        }
    }
    for g in extra_groups {
        let id = lookup_group(&all_groups, g)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(Resolved {
        user: User {
            uid,
            gid,
            additional_gids: additional,
        },
        home,
    })
}

fn lookup_group(groups: &[GroupEntry], g: &str) -> Result<u32> {
    if let Ok(id) = g.parse::<u32>() {
        return Ok(id);
    }
    groups
        .iter()
        .find(|e| e.name == g)
        .map(|e| e.gid)
        .ok_or_else(|| {
            EngineError::InvalidArgument(format!(
                "unable to find group {g}: no matching entries in group file"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("etc")).expect("mkdir");
        std::fs::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            tmp.path().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .expect("group");
        tmp
    }

    #[test]
    fn resolves_names_ids_and_groups() {
        let r = rootfs();
        let app = resolve(r.path(), "app", &[]).expect("app");
        assert_eq!((app.user.uid, app.user.gid), (1000, 1000));
        assert_eq!(app.user.additional_gids, vec![10]);
        assert_eq!(app.home, "/home/app");
        let ids = resolve(r.path(), "1234:5678", &[]).expect("ids");
        assert_eq!((ids.user.uid, ids.user.gid), (1234, 5678));
        let named = resolve(r.path(), "nobody:app", &["wheel".into()]).expect("named");
        assert_eq!((named.user.uid, named.user.gid), (65534, 1000));
        assert_eq!(named.user.additional_gids, vec![10]);
        assert!(resolve(r.path(), "ghost", &[]).is_err());
        assert_eq!(resolve(r.path(), "", &[]).expect("root").home, "/root");
    }
}
