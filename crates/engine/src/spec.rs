//! Turning a container record into the runtime's engine-neutral [`ContainerConfig`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_runtime::{ContainerConfig, NetworkNamespace, Resources, Ulimit};

use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::model::HostConfig;
use crate::{mounts, runtimes, signal, users};

/// Resources from a `HostConfig` (zero means unset, as in Docker).
pub fn resources(hc: &HostConfig) -> Resources {
    let pos = |v: i64| (v > 0).then_some(v);
    Resources {
        memory: pos(hc.memory),
        memory_swap: (hc.memory_swap != 0).then_some(hc.memory_swap),
        nano_cpus: pos(hc.nano_cpus),
        cpu_shares: (hc.cpu_shares > 0).then_some(hc.cpu_shares as u64),
        cpu_quota: pos(hc.cpu_quota),
        cpu_period: (hc.cpu_period > 0).then_some(hc.cpu_period as u64),
        cpuset_cpus: (!hc.cpuset_cpus.is_empty()).then(|| hc.cpuset_cpus.clone()),
        cpuset_mems: (!hc.cpuset_mems.is_empty()).then(|| hc.cpuset_mems.clone()),
        pids_limit: hc.pids_limit.filter(|p| *p != 0),
    }
}

/// Whether a `SecurityOpt` list turns an option on (`no-new-privileges`,
/// `no-new-privileges:true`, `seccomp=unconfined`).
fn security_opt(hc: &HostConfig, key: &str) -> Option<String> {
    hc.security_opt.iter().flatten().find_map(|o| {
        let (k, v) = o
            .split_once('=')
            .or_else(|| o.split_once(':'))
            .unwrap_or((o.as_str(), "true"));
        (k == key).then(|| v.to_string())
    })
}

/// Stop signal of a container (its `StopSignal`, else SIGTERM).
pub fn stop_signal(c: &Container) -> i32 {
    c.config
        .stop_signal
        .as_deref()
        .and_then(|s| signal::parse(s).ok())
        .unwrap_or(signal::SIGTERM)
}

/// The network namespace for a `NetworkMode`.
pub fn network(mode: &str, pid_of: impl Fn(&str) -> Option<u32>) -> Result<NetworkNamespace> {
    match mode {
        "host" => Ok(NetworkNamespace::Host),
        m if m.starts_with("container:") => {
            let other = &m["container:".len()..];
            let pid = pid_of(other).ok_or_else(|| {
                EngineError::Conflict(format!(
                    "cannot join network namespace of container {other}: it is not running"
                ))
            })?;
            Ok(NetworkNamespace::Path(PathBuf::from(format!(
                "/proc/{pid}/ns/net"
            ))))
        }
        _ => Ok(NetworkNamespace::New),
    }
}

/// Docker's default `PATH` for Linux containers whose environment sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A process environment as Docker composes it: `PATH`, `HOSTNAME` and (with a TTY) `TERM`
/// first, then the given variables replacing or adding to them, and `HOME` of the user when
/// still unset.
pub fn environment<'a>(
    hostname: &str,
    tty: bool,
    vars: impl IntoIterator<Item = &'a String>,
    home: &str,
) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    for var in vars {
        let key = var.split('=').next().unwrap_or_default();
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(slot) => slot.clone_from(var),
            None => env.push(var.clone()),
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Builds the runtime configuration; reads the rootfs' /etc/passwd and /etc/group.
pub fn container_config(
    c: &Container,
    network: NetworkNamespace,
    cgroup_parent: &str,
) -> Result<ContainerConfig> {
    let rootfs = Path::new(&c.rootfs.merged);
    let groups: Vec<String> = c
        .host_config
        .extra
        .get("GroupAdd")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .or_else(|| c.host_config.group_add.clone())
        .unwrap_or_default();
    let resolved = users::resolve(rootfs, &c.config.user, &groups)?;
    let env = environment(
        &c.config.hostname,
        c.config.tty,
        c.config.env.iter().flatten(),
        &resolved.home,
    );
    let mut args = vec![c.path.clone()];
    args.extend(c.args.iter().cloned());
    let hc = &c.host_config;
    let runtime = runtimes::resolve(&hc.runtime)?;
    let ulimits = hc
        .ulimits
        .iter()
        .flatten()
        .map(|u| Ulimit {
            name: u.name.clone(),
            soft: u.soft.max(0) as u64,
            hard: u.hard.max(0) as u64,
        })
        .collect();
    let mut annotations: BTreeMap<String, String> = c.config.labels.clone().unwrap_or_default();
    annotations.insert(
        "org.opencontainers.image.ref.name".into(),
        c.config.image.clone(),
    );
    Ok(ContainerConfig {
        id: c.id.clone(),
        rootfs: rootfs.to_path_buf(),
        readonly_rootfs: hc.readonly_rootfs,
        args,
        env,
        cwd: PathBuf::from(if c.config.working_dir.is_empty() {
            "/"
        } else {
            c.config.working_dir.as_str()
        }),
        user: resolved.user,
        hostname: c.config.hostname.clone(),
        tty: c.config.tty,
        open_stdin: c.config.open_stdin,
        stdin_once: c.config.stdin_once,
        mounts: mounts::runtime_mounts(hc, &c.mounts)?,
        network,
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        privileged: hc.privileged,
        seccomp: security_opt(hc, "seccomp").is_none_or(|v| v != "unconfined"),
        no_new_privileges: security_opt(hc, "no-new-privileges").is_some_and(|v| v != "false"),
        resources: resources(hc),
        ulimits,
        stop_signal: stop_signal(c),
        log_path: PathBuf::from(&c.log_path),
        cgroup_path: format!("{cgroup_parent}/{}", c.id),
        runtime,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options_and_resources() {
        let hc = HostConfig {
            security_opt: Some(vec![
                "seccomp=unconfined".into(),
                "no-new-privileges".into(),
            ]),
            memory: 64 << 20,
            pids_limit: Some(10),
            ..Default::default()
        };
        assert_eq!(security_opt(&hc, "seccomp").as_deref(), Some("unconfined"));
        assert_eq!(
            security_opt(&hc, "no-new-privileges").as_deref(),
            Some("true")
        );
        let r = resources(&hc);
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.pids_limit, Some(10));
        assert_eq!(r.nano_cpus, None);
        assert_eq!(
            network("container:x", |_| Some(42)).expect("net"),
            NetworkNamespace::Path("/proc/42/ns/net".into())
        );
        assert!(network("container:x", |_| None).is_err());
    }

    #[test]
    fn environment_defaults_are_replaced_in_place() {
        let vars = vec![
            "PATH=/x".to_string(),
            "A=1".to_string(),
            "HOSTNAME=h2".into(),
        ];
        assert_eq!(
            environment("h", true, &vars, "/root"),
            ["PATH=/x", "HOSTNAME=h2", "TERM=xterm", "A=1", "HOME=/root"]
        );
        assert_eq!(
            environment("h", false, &[], "/home/app")[..2],
            [format!("PATH={DEFAULT_PATH}"), "HOSTNAME=h".to_string()]
        );
    }
}
