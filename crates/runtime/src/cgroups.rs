//! Reading and writing a container's cgroup directly in cgroupfs, for cgroup v1, hybrid
//! (v1 controllers plus an empty cgroup2) and pure v2 hosts: which hierarchy holds a
//! controller is taken from `/proc/self/mountinfo`, so hybrid hosts use v1 for every
//! controller mounted there and v2 for the rest.

mod create;
mod devices;
mod stats;
mod update;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use create::{Cgroup, supported_limits};
pub use stats::read_stats;
pub use update::apply_update;

/// Errors of cgroup access.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No hierarchy serves the controller.
    #[error("no cgroup hierarchy holds the {0} controller")]
    NoController(String),
    /// A cgroup file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A cgroup file could not be written.
    #[error("failed to write {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The value.
        value: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where each controller's hierarchy is mounted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// v1 controller name → mount point.
    v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount point, if any.
    unified: Option<PathBuf>,
}

impl Hierarchies {
    /// Reads the current process' mount table.
    pub fn probe() -> Result<Self, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::parse_mountinfo(&text))
    }

    /// Parses `/proc/<pid>/mountinfo` (proc(5)).
    pub fn parse_mountinfo(text: &str) -> Self {
        Self::from_mounts(&cgroup_mounts(text))
    }

    /// The hierarchies of `mounts`: the first cgroup2 mount, and for each v1 controller the
    /// first hierarchy that has it.
    pub fn from_mounts(mounts: &[CgroupMount]) -> Self {
        let mut out = Self::default();
        for m in mounts {
            if m.v2 {
                out.unified.get_or_insert_with(|| m.point.clone());
                continue;
            }
            for opt in m.options.split(',') {
                if matches!(
                    opt,
                    "cpu"
                        | "cpuacct"
                        | "cpuset"
                        | "memory"
                        | "pids"
                        | "freezer"
                        | "devices"
                        | "blkio"
                        | "hugetlb"
                ) {
                    out.v1
                        .entry(opt.to_string())
                        .or_insert_with(|| m.point.clone());
                }
            }
        }
        out
    }

    /// Whether `controller` is served by a v1 hierarchy.
    pub fn is_v1(&self, controller: &str) -> bool {
        self.v1.contains_key(controller)
    }

    /// Directory of the cgroup `rel` (relative to the hierarchy root) for `controller`.
    pub fn dir(&self, controller: &str, rel: &str) -> Result<PathBuf, CgroupError> {
        let rel = rel.trim_start_matches('/');
        if let Some(root) = self.v1.get(controller) {
            return Ok(root.join(rel));
        }
        match &self.unified {
            Some(root) if !self.v1.is_empty() && !unified_has(root, controller) => {
                Err(CgroupError::NoController(controller.to_string()))
            }
            Some(root) => Ok(root.join(rel)),
            None => Err(CgroupError::NoController(controller.to_string())),
        }
    }
}

fn unified_has(root: &Path, controller: &str) -> bool {
    std::fs::read_to_string(root.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().any(|c| c == controller))
        .unwrap_or(false)
}

/// What [`favor_dynamic_changes`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Favor {
    /// No cgroup2 hierarchy is mounted (pure cgroup v1).
    NoUnified,
    /// The option was already on.
    AlreadyOn(PathBuf),
    /// The hierarchy at this mount point was remounted with it.
    TurnedOn(PathBuf),
}

/// Turns on cgroup2's `favordynmods` mount option (Linux 6.0+): migrating a process into a
/// cgroup then no longer waits for an RCU grace period (about 10 ms here, once per container
/// start and per exec), for a slightly dearer fork and exit. The lock it concerns is shared by
/// every hierarchy, so on hybrid hosts the empty cgroup2 mount speeds up the v1 writes too.
/// The super-block options and per-mount flags of the mount are kept as they are.
pub fn favor_dynamic_changes() -> Result<Favor, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = read(path)?;
    let Some((mount_point, mount_opts, super_opts)) = text.lines().find_map(unified_mount) else {
        return Ok(Favor::NoUnified);
    };
    let mount_point = PathBuf::from(mount_point);
    if super_opts.split(',').any(|o| o == "favordynmods") {
        return Ok(Favor::AlreadyOn(mount_point));
    }
    let mut data: Vec<&str> = super_opts
        .split(',')
        .filter(|o| !matches!(*o, "rw" | "ro" | ""))
        .collect();
    data.push("favordynmods");
    let data = data.join(",");
    use nix::mount::MsFlags;
    let mut flags = MsFlags::MS_REMOUNT;
    for opt in mount_opts.split(',') {
        flags |= match opt {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            _ => MsFlags::empty(),
        };
    }
    nix::mount::mount(
        None::<&str>,
        &mount_point,
        None::<&str>,
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| CgroupError::Write {
        path: mount_point.clone(),
        value: format!("remount,{data}"),
        source: e.into(),
    })?;
    Ok(Favor::TurnedOn(mount_point))
}

/// The mount point, per-mount options and super-block options of a cgroup2 mountinfo line.
fn unified_mount(line: &str) -> Option<(&str, &str, &str)> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let mount_point = left.nth(4)?;
    let mount_opts = left.next()?;
    let mut right = right.split(' ');
    if right.next()? != "cgroup2" {
        return None;
    }
    let _source = right.next();
    Some((mount_point, mount_opts, right.next().unwrap_or_default()))
}

/// Reads a cgroup file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Value of `key` in a flat-keyed file (`memory.stat`, `memory.events`, `cpu.stat`).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Host pids of every process in the cgroup.
pub fn processes(h: &Hierarchies, rel: &str) -> Result<Vec<u32>, CgroupError> {
    let controller = if h.is_v1("pids") { "pids" } else { "memory" };
    let dir = h.dir(controller, rel)?;
    let text = read(&dir.join("cgroup.procs"))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Whether the memory cgroup's OOM killer killed a process (v1 `memory.oom_control`
/// `oom_kill`, v2 `memory.events` `oom_kill`).
pub fn oom_killed(h: &Hierarchies, rel: &str) -> bool {
    let Ok(dir) = h.dir("memory", rel) else {
        return false;
    };
    let file = if h.is_v1("memory") {
        "memory.oom_control"
    } else {
        "memory.events"
    };
    read(&dir.join(file))
        .ok()
        .and_then(|t| keyed(&t, "oom_kill"))
        .is_some_and(|n| n > 0)
}

/// A cgroup hierarchy's mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Its mount point.
    pub point: PathBuf,
    /// cgroup2; otherwise a v1 hierarchy (a named one too).
    pub v2: bool,
    /// Its super-block options (`rw,cpu,cpuacct`, `rw,xattr,name=systemd`).
    pub options: String,
}

/// Every cgroup hierarchy mounted in a mountinfo text (proc(5)), in the table's order.
pub fn cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let v2 = match right.next()? {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let _source = right.next();
            Some(CgroupMount {
                point: PathBuf::from(point),
                v2,
                options: right.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Removes the cgroup `rel` from every hierarchy, as an OCI runtime's delete does for a
/// stopped container: whatever is still in it gets SIGKILL, then its directories go. The
/// mount table is read once (libcgroups reads it once per controller, twice over). An
/// error if a directory stays, for instance while a killed process has not exited yet.
pub fn remove(rel: &str) -> Result<(), CgroupError> {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return Err(CgroupError::NoController(String::new()));
    }
    let text = read(Path::new("/proc/self/mountinfo"))?;
    let dirs: Vec<PathBuf> = cgroup_mounts(&text)
        .into_iter()
        .map(|m| m.point.join(rel))
        .collect();
    remove_dirs(&dirs)
}

/// Removes a cgroup's directories, one per hierarchy. An empty cgroup goes at the first
/// rmdir (the common case: the init has been reaped and its namespace's other processes with
/// it); what stays busy has its processes killed first.
fn remove_dirs(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    let busy: Vec<&PathBuf> = dirs
        .iter()
        .filter(|d| match std::fs::remove_dir(d) {
            Ok(()) => false,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        })
        .collect();
    for dir in &busy {
        let procs = read(&dir.join("cgroup.procs"))?;
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    for dir in busy {
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CgroupError::Write {
                    path: dir.clone(),
                    value: "rmdir".into(),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
29 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn mountinfo_maps_v1_controllers_and_unified() {
        let h = Hierarchies::parse_mountinfo(HYBRID);
        assert!(h.is_v1("memory"));
        assert!(h.is_v1("cpuacct"));
        assert!(!h.is_v1("pids"));
        assert_eq!(
            h.dir("cpu", "/berth/x").expect("cpu"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/x")
        );
        assert_eq!(h.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn pure_v2_uses_unified_for_everything() {
        let h = Hierarchies::parse_mountinfo(
            "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert!(!h.is_v1("memory"));
        assert_eq!(
            h.dir("memory", "berth/x").expect("memory"),
            PathBuf::from("/sys/fs/cgroup/berth/x")
        );
    }

    #[test]
    fn unified_mount_line_gives_both_option_sets() {
        let line = "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";
        assert_eq!(
            unified_mount(line),
            Some((
                "/sys/fs/cgroup",
                "rw,nosuid,nodev",
                "rw,nsdelegate,memory_recursiveprot"
            ))
        );
        assert_eq!(unified_mount(HYBRID.lines().nth(2).expect("line")), None);
    }

    #[test]
    fn every_cgroup_hierarchy_is_listed() {
        let mut text = HYBRID.to_string();
        text.push_str(
            "31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n",
        );
        text.push_str("32 1 0:29 / /proc rw - proc proc rw\n");
        let mounts: Vec<PathBuf> = cgroup_mounts(&text).into_iter().map(|m| m.point).collect();
        assert_eq!(
            mounts,
            [
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/net_cls,net_prio",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn keyed_files_parse() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(text, "oom_kill"), Some(3));
        assert_eq!(keyed(text, "missing"), None);
    }
}
