//! Changing the limits of a running container's cgroup (`docker update`).

use std::path::Path;

use super::{CgroupError, Hierarchies};
use crate::Resources;

fn write(dir: &Path, file: &str, value: String) -> Result<(), CgroupError> {
    let path = dir.join(file);
    std::fs::write(&path, &value).map_err(|source| CgroupError::Write {
        path,
        value,
        source,
    })
}

/// v2 `cpu.weight` from v1 shares (the conversion runc and crun use).
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// Applies every limit set in `r` to the cgroup `rel`.
pub fn apply_update(h: &Hierarchies, rel: &str, r: &Resources) -> Result<(), CgroupError> {
    if r.memory.is_some() || r.memory_swap.is_some() {
        let dir = h.dir("memory", rel)?;
        if h.is_v1("memory") {
            let mem = r.memory.map(|m| m.to_string());
            let swap = r.memory_swap.map(|s| s.to_string());
            // memsw must stay >= memory: try memory first, then swap, then memory again.
            let first = mem
                .clone()
                .map(|m| write(&dir, "memory.limit_in_bytes", m))
                .transpose();
            if let Some(s) = swap
                && dir.join("memory.memsw.limit_in_bytes").exists()
            {
                write(&dir, "memory.memsw.limit_in_bytes", s)?;
            }
            if first.is_err()
                && let Some(m) = mem
            {
                write(&dir, "memory.limit_in_bytes", m)?;
            }
        } else {
            if let Some(m) = r.memory {
                write(&dir, "memory.max", max_or(m))?;
            }
            if let (Some(s), Some(m)) = (r.memory_swap, r.memory) {
                let swap = if s < 0 { -1 } else { (s - m).max(0) };
                write(&dir, "memory.swap.max", max_or(swap))?;
            }
        }
    }
    let (quota, period) = match r.nano_cpus.filter(|n| *n > 0) {
        Some(n) => (Some(n * 100_000 / 1_000_000_000), Some(100_000)),
        None => (r.cpu_quota, r.cpu_period),
    };
    if quota.is_some() || period.is_some() || r.cpu_shares.is_some() {
        let dir = h.dir("cpu", rel)?;
        if h.is_v1("cpu") {
            if let Some(p) = period {
                write(&dir, "cpu.cfs_period_us", p.to_string())?;
            }
            if let Some(q) = quota {
                write(&dir, "cpu.cfs_quota_us", q.to_string())?;
            }
            if let Some(s) = r.cpu_shares {
                write(&dir, "cpu.shares", s.to_string())?;
            }
        } else {
            if quota.is_some() || period.is_some() {
                let q = quota
                    .filter(|q| *q > 0)
                    .map_or("max".into(), |q| q.to_string());
                write(
                    &dir,
                    "cpu.max",
                    format!("{q} {}", period.unwrap_or(100_000)),
                )?;
            }
            if let Some(s) = r.cpu_shares {
                write(&dir, "cpu.weight", shares_to_weight(s).to_string())?;
            }
        }
    }
    if let Some(cpus) = &r.cpuset_cpus {
        write(&h.dir("cpuset", rel)?, "cpuset.cpus", cpus.clone())?;
    }
    if let Some(mems) = &r.cpuset_mems {
        write(&h.dir("cpuset", rel)?, "cpuset.mems", mems.clone())?;
    }
    if let Some(p) = r.pids_limit {
        let value = if p > 0 { p.to_string() } else { "max".into() };
        write(&h.dir("pids", rel)?, "pids.max", value)?;
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_to_weight_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
