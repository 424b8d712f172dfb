//! OCI runtime spec generation: turns an engine-neutral [`ContainerConfig`] into the
//! `config.json` of a bundle with Docker's defaults (namespaces, mounts, capabilities,
//! masked paths, devices, seccomp, rlimits, cgroup resources), and an [`ExecConfig`] into the
//! `process.json` of an exec.

mod mounts;
mod resources;
pub(crate) mod seccomp;
mod security;

use std::path::Path;

use oci_spec::runtime::{Process, Spec};
use serde_json::{Value, json};

use crate::{ContainerConfig, ExecConfig, NetworkNamespace, User};

pub use resources::{clamp_rlimits, linux_resources};
pub use security::{capability_set, default_capabilities};

/// Errors of spec generation.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A capability name the kernel does not know.
    #[error("unknown capability {0}")]
    UnknownCapability(String),
    /// A ulimit name Docker does not know.
    #[error("unknown ulimit {0}")]
    UnknownUlimit(String),
    /// A configuration value the spec cannot express.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The generated JSON is not a valid OCI spec.
    #[error("generated spec does not deserialize")]
    Encode(#[source] serde_json::Error),
    /// A spec file could not be written.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Host facts the spec depends on (kept apart so spec generation is testable without root).
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// Hard limit of each rlimit resource in this process (`RLIMIT_*` number → hard).
    pub hard_limits: Vec<(i32, u64)>,
    /// Host devices given to privileged containers.
    pub devices: Vec<Value>,
}

impl HostFacts {
    /// Reads the facts of the running host.
    pub fn probe(privileged: bool) -> Self {
        Self {
            hard_limits: resources::probe_hard_limits(),
            devices: if privileged {
                mounts::host_devices()
            } else {
                Vec::new()
            },
        }
    }
}

/// Builds the full runtime spec for a container.
pub fn container_spec(config: &ContainerConfig, host: &HostFacts) -> Result<Spec, SpecError> {
    let caps = capability_set(config.privileged, &config.cap_add, &config.cap_drop)?;
    let cap_names: Vec<String> = caps.iter().map(|c| format!("CAP_{c}")).collect();
    let rlimits = clamp_rlimits(&config.ulimits, &host.hard_limits)?;
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match &config.network {
        NetworkNamespace::New => namespaces.push(json!({"type": "network"})),
        NetworkNamespace::Host => {}
        NetworkNamespace::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": format!("/{}", config.cgroup_path.trim_start_matches('/')),
        "resources": linux_resources(&config.resources, config.privileged),
    });
    if config.privileged {
        linux["devices"] = Value::Array(host.devices.clone());
    } else {
        linux["maskedPaths"] = json!(security::MASKED_PATHS);
        linux["readonlyPaths"] = json!(security::READONLY_PATHS);
        if config.seccomp {
            linux["seccomp"] = seccomp::default_profile(&caps);
        }
    }
    let process = json!({
        "terminal": config.tty,
        "user": user_json(&config.user),
        "args": config.args,
        "env": config.env,
        "cwd": config.cwd,
        "capabilities": {
            "bounding": cap_names, "effective": cap_names, "permitted": cap_names,
        },
        "rlimits": rlimits,
    });
    let mut process = process;
    set_no_new_privileges(&mut process, config.no_new_privileges);
    if config.args.is_empty() {
        return Err(SpecError::Invalid {
            field: "args",
            reason: "no command given".into(),
        });
    }
    if !config.cwd.is_absolute() {
        return Err(SpecError::Invalid {
            field: "cwd",
            reason: format!("{} is not absolute", config.cwd.display()),
        });
    }
    let value = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": config.rootfs, "readonly": config.readonly_rootfs},
        "hostname": config.hostname,
        "mounts": mounts::container_mounts(config),
        "annotations": config.annotations,
        "linux": linux,
    });
    serde_json::from_value(value).map_err(SpecError::Encode)
}

/// Builds the process of an exec in a container created from `config`.
pub fn exec_process(
    config: &ContainerConfig,
    exec: &ExecConfig,
    host: &HostFacts,
) -> Result<Process, SpecError> {
    if exec.args.is_empty() {
        return Err(SpecError::Invalid {
            field: "args",
            reason: "no command given".into(),
        });
    }
    let privileged = config.privileged || exec.privileged;
    let caps = capability_set(privileged, &config.cap_add, &config.cap_drop)?;
    let cap_names: Vec<String> = caps.iter().map(|c| format!("CAP_{c}")).collect();
    let mut env = config.env.clone();
    for kv in &exec.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    let value = json!({
        "terminal": exec.tty,
        "user": user_json(exec.user.as_ref().unwrap_or(&config.user)),
        "args": exec.args,
        "env": env,
        "cwd": exec.cwd.as_deref().unwrap_or(&config.cwd),
        "capabilities": {
            "bounding": cap_names, "effective": cap_names, "permitted": cap_names,
        },
        "rlimits": clamp_rlimits(&config.ulimits, &host.hard_limits)?,
    });
    let mut value = value;
    set_no_new_privileges(&mut value, config.no_new_privileges);
    serde_json::from_value(value).map_err(SpecError::Encode)
}

/// Sets `noNewPrivileges` only when true: libcontainer 0.7 treats a present `false` like
/// `true` when it orders seccomp after the capability drop, and the filter then fails to
/// load without CAP_SYS_ADMIN.
fn set_no_new_privileges(process: &mut Value, on: bool) {
    if on {
        process["noNewPrivileges"] = Value::Bool(true);
    }
}

fn user_json(user: &User) -> Value {
    let mut v = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        v["additionalGids"] = json!(user.additional_gids);
    }
    v
}

/// Writes `value` as JSON to `path` atomically (temporary file, fsync, rename).
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), SpecError> {
    crate::exit::write_atomic(path, &serde_json::to_vec(value).map_err(SpecError::Encode)?).map_err(
        |source| SpecError::Write {
            path: path.to_owned(),
            source,
        },
    )
}

#[cfg(test)]
pub(crate) mod tests;
