//! Statistics of a container's cgroup (CPU, memory, pids) on v1 and v2, plus the host CPU
//! time the docker CLI needs to compute a percentage.

use super::{CgroupError, Hierarchies, keyed, read};
use crate::Stats;

/// v1 reports "no limit" as a page-aligned i64::MAX.
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// Reads the statistics of the cgroup `rel`.
pub fn read_stats(h: &Hierarchies, rel: &str) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    let host = host_cpu();
    stats.system_cpu_usage_ns = host.0;
    stats.online_cpus = host.1;
    let host_mem = host_memory();

    if h.is_v1("cpuacct") {
        let dir = h.dir("cpuacct", rel)?;
        stats.cpu_usage_ns = read(&dir.join("cpuacct.usage"))?
            .trim()
            .parse()
            .unwrap_or(0);
    } else if let Ok(dir) = h.dir("cpu", rel) {
        let text = read(&dir.join("cpu.stat")).unwrap_or_default();
        stats.cpu_usage_ns = keyed(&text, "usage_usec").unwrap_or(0).saturating_mul(1000);
    }

    let mem = h.dir("memory", rel)?;
    let mem_stat = read(&mem.join("memory.stat")).unwrap_or_default();
    if h.is_v1("memory") {
        stats.memory_usage = read(&mem.join("memory.usage_in_bytes"))?
            .trim()
            .parse()
            .unwrap_or(0);
        let limit: u64 = read(&mem.join("memory.limit_in_bytes"))?
            .trim()
            .parse()
            .unwrap_or(V1_UNLIMITED);
        stats.memory_limit = if limit >= V1_UNLIMITED {
            host_mem
        } else {
            limit
        };
        stats.memory_cache = keyed(&mem_stat, "total_inactive_file").unwrap_or(0);
    } else {
        // A v2 cgroup only has the files of the controllers enabled for it: without the
        // memory controller there is nothing to report, which is not an error.
        stats.memory_usage = read(&mem.join("memory.current"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        stats.memory_limit = read(&mem.join("memory.max"))
            .ok()
            .and_then(|s| parse_max(&s))
            .unwrap_or(host_mem);
        stats.memory_cache = keyed(&mem_stat, "inactive_file").unwrap_or(0);
    }

    if let Ok(dir) = h.dir("pids", rel) {
        stats.pids_current = read(&dir.join("pids.current"))
            .map(|s| s.trim().parse().unwrap_or(0))
            .unwrap_or(0);
        stats.pids_limit = read(&dir.join("pids.max"))
            .ok()
            .and_then(|s| parse_max(&s))
            .unwrap_or(0);
    }
    Ok(stats)
}

/// `max` → `None`, a number → `Some`.
fn parse_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Total host CPU time in nanoseconds and the number of CPUs, from /proc/stat.
fn host_cpu() -> (u64, u32) {
    // USER_HZ is 100 on every Linux ABI (proc(5)).
    const NS_PER_TICK: u64 = 10_000_000;
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut total = 0u64;
    let mut cpus = 0u32;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            total = rest
                .split_whitespace()
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
                .saturating_mul(NS_PER_TICK);
        } else if line.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus)
}

/// Host memory in bytes, from /proc/meminfo.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_cpu_counts_cpus_and_time() {
        let (total, cpus) = host_cpu();
        assert!(total > 0);
        assert!(cpus >= 1);
        assert!(host_memory() > 0);
        assert_eq!(parse_max("max\n"), None);
        assert_eq!(parse_max("1024\n"), Some(1024));
    }
}
