//! Creating a container's cgroup on every hierarchy, applying its spec's limits, moving a
//! process into it, and freezing or thawing it: what the built-in runtime's direct path
//! ([`crate::executor::builtin`]) does with one read of the mount table.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{CgroupError, CgroupMount, Hierarchies, apply_update, read, remove_dirs};
use crate::Resources;

/// A container's cgroup: its directory on each hierarchy.
#[derive(Debug, Clone)]
pub struct Cgroup {
    hierarchies: Hierarchies,
    rel: String,
    /// The cgroup's directory on every mounted hierarchy (v1 ones, named ones, cgroup2).
    dirs: Vec<PathBuf>,
}

/// The limits of `r` the direct path applies (the ones berth's specs carry), or `None` when
/// `r` sets anything else (block I/O, huge pages, kernel memory, ...).
pub fn supported_limits(r: &LinuxResources) -> Option<Resources> {
    if r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
    {
        return None;
    }
    let mut out = Resources::default();
    if let Some(m) = r.memory() {
        if m.reservation().is_some()
            || m.kernel().is_some()
            || m.kernel_tcp().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some()
        {
            return None;
        }
        out.memory = m.limit();
        out.memory_swap = m.swap();
    }
    if let Some(c) = r.cpu() {
        if c.realtime_runtime().is_some()
            || c.realtime_period().is_some()
            || c.idle().is_some()
            || c.burst().is_some()
        {
            return None;
        }
        out.cpu_quota = c.quota();
        out.cpu_period = c.period();
        out.cpu_shares = c.shares();
        out.cpuset_cpus = c.cpus().clone();
        out.cpuset_mems = c.mems().clone();
    }
    if let Some(p) = r.pids() {
        out.pids_limit = Some(p.limit());
    }
    Some(out)
}

impl Cgroup {
    /// Creates cgroup `rel` (relative to each hierarchy's root) on every hierarchy of
    /// `mounts` and applies `limits` and the device rules.
    pub fn create(
        rel: &str,
        limits: &Resources,
        devices: &[LinuxDeviceCgroup],
        mounts: &[CgroupMount],
    ) -> Result<Self, CgroupError> {
        let rel = rel.trim_start_matches('/').to_string();
        if rel.is_empty() {
            return Err(CgroupError::NoController(String::new()));
        }
        let hierarchies = Hierarchies::from_mounts(mounts);
        let mut dirs = Vec::new();
        for m in mounts {
            let unified = hierarchies.unified.as_ref() == Some(&m.point);
            dirs.push(make_dirs(&m.point, &rel, unified)?);
        }
        let cgroup = Self {
            hierarchies,
            rel,
            dirs,
        };
        cgroup.apply(limits, devices)?;
        Ok(cgroup)
    }

    fn apply(&self, limits: &Resources, devices: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
        apply_update(&self.hierarchies, &self.rel, limits)?;
        if self.hierarchies.is_v1("devices") && !devices.is_empty() {
            let dir = self.hierarchies.dir("devices", &self.rel)?;
            for rule in devices {
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(&dir.join(file), &device_rule(rule))?;
            }
        }
        if !self.hierarchies.is_v1("devices")
            && !devices.is_empty()
            && let Some(unified) = &self.hierarchies.unified
        {
            super::devices::attach(&unified.join(&self.rel), devices)?;
        }
        Ok(())
    }

    /// Moves process `pid` into the cgroup on every hierarchy.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Removes the cgroup's directories, killing what is left in them (see
    /// [`super::remove`]).
    pub fn remove(&self) -> Result<(), CgroupError> {
        remove_dirs(&self.dirs)
    }

    /// Freezes (`true`) or thaws every process of the cgroup and waits until it took
    /// effect: v1 `freezer.state`, v2 `cgroup.freeze`.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let v1 = self.hierarchies.is_v1("freezer");
        let dir = if v1 {
            self.hierarchies.dir("freezer", &self.rel)?
        } else {
            self.hierarchies
                .unified
                .as_ref()
                .map(|u| u.join(&self.rel))
                .ok_or_else(|| CgroupError::NoController("freezer".into()))?
        };
        let (file, value, done): (&str, &str, fn(&str) -> bool) = match (v1, frozen) {
            (true, true) => ("freezer.state", "FROZEN", |s| s.trim() == "FROZEN"),
            (true, false) => ("freezer.state", "THAWED", |s| s.trim() == "THAWED"),
            (false, true) => ("cgroup.freeze", "1", |s| {
                s.lines().any(|l| l.trim() == "frozen 1")
            }),
            (false, false) => ("cgroup.freeze", "0", |s| {
                s.lines().any(|l| l.trim() == "frozen 0")
            }),
        };
        let state = if v1 { "freezer.state" } else { "cgroup.events" };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            write(&dir.join(file), value)?;
            if done(&read(&dir.join(state))?) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(CgroupError::Write {
                    path: dir.join(file),
                    value: value.into(),
                    source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// A v1 device rule line: `type major:minor access`.
fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let typ = rule.typ().unwrap_or_default();
    let kind = typ.as_str();
    if kind == "a" {
        return "a".into();
    }
    let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    format!(
        "{kind} {}:{} {}",
        num(rule.major()),
        num(rule.minor()),
        rule.access().as_deref().unwrap_or("rwm")
    )
}

/// Creates `mount/rel` level by level. A new v1 cpuset level gets its parent's cpus and
/// memory nodes (it starts with none, and no process could join it); on cgroup2 each
/// level's parent hands down the controllers it has.
fn make_dirs(mount: &Path, rel: &str, unified: bool) -> Result<PathBuf, CgroupError> {
    let mut dir = mount.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let parent = dir.clone();
        dir.push(part);
        if unified {
            enable_controllers(&parent);
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                if parent.join("cpuset.cpus").exists() && !unified {
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let own = read(&dir.join(file))?;
                        if own.trim().is_empty() {
                            write(&dir.join(file), read(&parent.join(file))?.trim())?;
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::Write {
                    path: dir,
                    value: "mkdir".into(),
                    source,
                });
            }
        }
    }
    Ok(dir)
}

/// Hands the controllers `dir` has down to its children (cgroup2 `cgroup.subtree_control`);
/// a controller that cannot be enabled there is left off.
fn enable_controllers(dir: &Path) {
    let Ok(available) = std::fs::read_to_string(dir.join("cgroup.controllers")) else {
        return;
    };
    let Ok(enabled) = std::fs::read_to_string(dir.join("cgroup.subtree_control")) else {
        return;
    };
    for c in available.split_whitespace() {
        if matches!(c, "cpu" | "cpuset" | "memory" | "pids" | "io")
            && !enabled.split_whitespace().any(|e| e == c)
        {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    #[test]
    fn device_rules_read_like_the_v1_files() {
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .expect("rule");
        assert_eq!(device_rule(&all), "a");
        let null = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .expect("rule");
        assert_eq!(device_rule(&null), "c 1:3 rwm");
        let pts = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(136)
            .access("rwm")
            .build()
            .expect("rule");
        assert_eq!(device_rule(&pts), "c 136:* rwm");
    }

    #[test]
    fn limits_outside_berths_specs_are_not_supported() {
        let plain: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 2097152},
            "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 20}
        }))
        .expect("resources");
        let r = supported_limits(&plain).expect("supported");
        assert_eq!(r.memory, Some(1_048_576));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(r.pids_limit, Some(20));
        let blkio: LinuxResources =
            serde_json::from_value(serde_json::json!({"blockIO": {"weight": 10}}))
                .expect("resources");
        assert!(supported_limits(&blkio).is_none());
    }
}
