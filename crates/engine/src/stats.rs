//! `docker stats`: the runtime's cgroup statistics in the JSON the docker CLI computes its
//! CPU and memory columns from (`cpu_stats`, `precpu_stats`, `memory_stats`, `pids_stats`).

use berth_runtime::Stats;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::container::docker_time;

fn cpu(s: Option<&Stats>) -> Value {
    match s {
        Some(s) => json!({
            "cpu_usage": {"total_usage": s.cpu_usage_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": s.system_cpu_usage_ns,
            "online_cpus": s.online_cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }),
        None => json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }),
    }
}

/// One stats sample; `previous` fills `precpu_stats`.
pub fn sample(
    id: &str,
    name: &str,
    now: DateTime<Utc>,
    current: &Stats,
    previous: Option<(&Stats, DateTime<Utc>)>,
) -> Value {
    json!({
        "id": id,
        "name": format!("/{name}"),
        "read": docker_time(Some(now)),
        "preread": docker_time(previous.map(|(_, t)| t)),
        "pids_stats": {"current": current.pids_current, "limit": current.pids_limit},
        "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(Some(current)),
        "precpu_stats": cpu(previous.map(|(s, _)| s)),
        "memory_stats": {
            "usage": current.memory_usage,
            "limit": current.memory_limit,
            "stats": {
                "total_inactive_file": current.memory_cache,
                "inactive_file": current.memory_cache,
                "cache": current.memory_cache,
            },
        },
        "networks": {},
    })
}

/// Stats of a container that is not running (all zeros), as dockerd sends them.
pub fn empty(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "name": format!("/{name}"),
        "read": docker_time(None),
        "preread": docker_time(None),
        "pids_stats": {},
        "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(None),
        "precpu_stats": cpu(None),
        "memory_stats": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_has_the_fields_the_cli_reads() {
        let s = Stats {
            cpu_usage_ns: 10,
            system_cpu_usage_ns: 100,
            online_cpus: 2,
            memory_usage: 1000,
            memory_limit: 4000,
            memory_cache: 100,
            pids_current: 3,
            pids_limit: 10,
        };
        let v = sample(
            "id",
            "n",
            Utc::now(),
            &s,
            Some((&Stats::default(), Utc::now())),
        );
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 10);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 0);
        assert_eq!(v["memory_stats"]["stats"]["total_inactive_file"], 100);
        assert_eq!(v["pids_stats"]["current"], 3);
        assert_eq!(v["name"], "/n");
    }
}
