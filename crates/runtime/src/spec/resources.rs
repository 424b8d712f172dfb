//! cgroup resources (memory, swap, CPU, cpuset, pids, device rules) and rlimits of the spec.
//! Rlimits are clamped to the hard limits this process inherited: without
//! CAP_SYS_RESOURCE nobody may raise a hard limit, and the runtime would fail to start the
//! container instead.

use nix::sys::resource::{Resource, getrlimit};
use serde_json::{Value, json};

use super::SpecError;
use crate::{Resources, Ulimit};

/// CFS period used for `nano_cpus` (`--cpus`), in microseconds, as Docker does.
const NANO_CPUS_PERIOD_US: i64 = 100_000;

/// Docker's ulimit names with the OCI type and the kernel's resource.
const RLIMITS: &[(&str, &str, Resource)] = &[
    ("as", "RLIMIT_AS", Resource::RLIMIT_AS),
    ("core", "RLIMIT_CORE", Resource::RLIMIT_CORE),
    ("cpu", "RLIMIT_CPU", Resource::RLIMIT_CPU),
    ("data", "RLIMIT_DATA", Resource::RLIMIT_DATA),
    ("fsize", "RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
    ("locks", "RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
    ("memlock", "RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", "RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
    ("nice", "RLIMIT_NICE", Resource::RLIMIT_NICE),
    ("nofile", "RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
    ("nproc", "RLIMIT_NPROC", Resource::RLIMIT_NPROC),
    ("rss", "RLIMIT_RSS", Resource::RLIMIT_RSS),
    ("rtprio", "RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
    ("rttime", "RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
    (
        "sigpending",
        "RLIMIT_SIGPENDING",
        Resource::RLIMIT_SIGPENDING,
    ),
    ("stack", "RLIMIT_STACK", Resource::RLIMIT_STACK),
];

/// Hard limit of every known rlimit in this process, keyed by the `RLIMITS` index.
pub fn probe_hard_limits() -> Vec<(i32, u64)> {
    RLIMITS
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, res))| {
            getrlimit(*res)
                .ok()
                .map(|(_, hard)| (i32::try_from(i).unwrap_or(i32::MAX), hard))
        })
        .collect()
}

/// OCI `process.rlimits` for the ulimits, each soft and hard value clamped to the inherited
/// hard limit (`hard_limits` from [`probe_hard_limits`]).
pub fn clamp_rlimits(
    ulimits: &[Ulimit],
    hard_limits: &[(i32, u64)],
) -> Result<Vec<Value>, SpecError> {
    let mut out = Vec::new();
    for u in ulimits {
        let index = RLIMITS
            .iter()
            .position(|(name, _, _)| *name == u.name)
            .ok_or_else(|| SpecError::UnknownUlimit(u.name.clone()))?;
        let cap = hard_limits
            .iter()
            .find(|(i, _)| usize::try_from(*i).ok() == Some(index))
            .map(|(_, h)| *h)
            .unwrap_or(u64::MAX);
        let hard = u.hard.min(cap);
        let soft = u.soft.min(hard);
        out.push(json!({"type": RLIMITS[index].1, "hard": hard, "soft": soft}));
    }
    Ok(out)
}

/// OCI `linux.resources`: device cgroup rules plus the configured limits.
pub fn linux_resources(r: &Resources, privileged: bool) -> Value {
    let devices = if privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        let mut rules = vec![json!({"allow": false, "access": "rwm"})];
        // Docker's default device cgroup rules: mknod of anything, and the default devices.
        rules.push(json!({"allow": true, "type": "c", "access": "m"}));
        rules.push(json!({"allow": true, "type": "b", "access": "m"}));
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            rules.push(json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}));
        }
        rules.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
        rules.into_iter().collect::<Vec<_>>().into()
    };
    let mut out = json!({"devices": devices});
    let mut memory = serde_json::Map::new();
    if let Some(m) = r.memory.filter(|m| *m > 0) {
        memory.insert("limit".into(), json!(m));
        match r.memory_swap {
            Some(s) if s != 0 => {
                memory.insert("swap".into(), json!(s));
            }
            // Docker: no explicit swap means as much swap as memory.
            _ => {
                memory.insert("swap".into(), json!(m.saturating_mul(2)));
            }
        }
    }
    if !memory.is_empty() {
        out["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = r.nano_cpus.filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(NANO_CPUS_PERIOD_US));
        cpu.insert(
            "quota".into(),
            json!(n.saturating_mul(NANO_CPUS_PERIOD_US) / 1_000_000_000),
        );
    } else {
        if let Some(q) = r.cpu_quota.filter(|q| *q != 0) {
            cpu.insert("quota".into(), json!(q));
        }
        if let Some(p) = r.cpu_period.filter(|p| *p != 0) {
            cpu.insert("period".into(), json!(p));
        }
    }
    if let Some(s) = r.cpu_shares.filter(|s| *s != 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(c) = r.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = r.cpuset_mems.as_ref().filter(|m| !m.is_empty()) {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        out["pids"] = json!({"limit": p});
    }
    out
}
