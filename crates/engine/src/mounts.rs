//! Bind mounts (`-v /host:/ctr[:ro]`, `--mount type=bind`) and tmpfs mounts (`--tmpfs`),
//! turned into inspect's `Mounts` and the runtime's OCI mounts.

use std::path::PathBuf;

use berth_runtime::Mount;

use crate::container::MountPoint;
use crate::error::{EngineError, Result};
use crate::model::HostConfig;

/// A parsed `-v` bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// The options as written (`ro`, `rw,z`), Docker's `Mode`.
    pub mode: String,
}

/// Parses `src:dst[:opts]`; only host paths (named volumes are not supported yet).
pub fn parse_bind(spec: &str) -> Result<Bind> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid volume specification: '{spec}'"
            )));
        }
    };
    if !dst.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    if !src.starts_with('/') && !crate::volumes::valid_name(src) {
        return Err(EngineError::InvalidArgument(format!(
            "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    let mut read_only = false;
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" | "z" | "Z" | "nocopy" | "private" | "rprivate" | "shared" | "rshared"
            | "slave" | "rslave" | "consistent" | "cached" | "delegated" => {}
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid mode: {other}"
                )));
            }
        }
    }
    Ok(Bind {
        source: src.to_string(),
        destination: dst.to_string(),
        read_only,
        mode: mode.to_string(),
    })
}

/// Inspect's `Mounts` for the container's binds (tmpfs is only listed in `HostConfig`).
pub fn mount_points(hc: &HostConfig) -> Result<Vec<MountPoint>> {
    let mut out = Vec::new();
    for b in hc.binds.iter().flatten() {
        let b = parse_bind(b)?;
        if !b.source.starts_with('/') {
            continue; // a named volume: see volumes.rs
        }
        out.push(MountPoint {
            kind: "bind".into(),
            source: b.source,
            destination: b.destination,
            mode: b.mode,
            rw: !b.read_only,
        });
    }
    for m in hc.mounts.iter().flatten() {
        match m.kind.as_str() {
            "bind" => {
                if !m.source.starts_with('/') || !m.target.starts_with('/') {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                        m.target
                    )));
                }
                if !std::path::Path::new(&m.source).exists() {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    )));
                }
                out.push(MountPoint {
                    kind: "bind".into(),
                    source: m.source.clone(),
                    destination: m.target.clone(),
                    mode: String::new(),
                    rw: !m.read_only,
                });
            }
            "tmpfs" | "volume" => {}
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "mount type {other} is not supported yet"
                )));
            }
        }
    }
    Ok(out)
}

/// The OCI mounts of a container: binds (host directories created like `-v` does) and
/// tmpfs with Docker's default options.
pub fn runtime_mounts(hc: &HostConfig, points: &[MountPoint]) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for p in points {
        let from_binds = hc
            .binds
            .iter()
            .flatten()
            .any(|b| parse_bind(b).is_ok_and(|b| b.destination == p.destination));
        if from_binds && !std::path::Path::new(&p.source).exists() {
            std::fs::create_dir_all(&p.source)
                .map_err(|e| EngineError::io(format!("create bind source {}", p.source), e))?;
        }
        out.push(Mount {
            destination: PathBuf::from(&p.destination),
            kind: "bind".into(),
            source: PathBuf::from(&p.source),
            options: vec![
                "rbind".into(),
                if p.rw { "rw".into() } else { "ro".into() },
                "rprivate".into(),
            ],
        });
    }
    let mut tmpfs: Vec<(String, String)> = hc
        .tmpfs
        .iter()
        .flat_map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    for m in hc.mounts.iter().flatten().filter(|m| m.kind == "tmpfs") {
        // `--mount type=tmpfs,tmpfs-size=..,tmpfs-mode=..`
        let t = m.extra.get("TmpfsOptions");
        let mut opts = Vec::new();
        if let Some(size) = t.and_then(|t| t["SizeBytes"].as_i64()).filter(|s| *s > 0) {
            opts.push(format!("size={size}"));
        }
        if let Some(mode) = t.and_then(|t| t["Mode"].as_u64()).filter(|m| *m > 0) {
            opts.push(format!("mode={mode:o}"));
        }
        if m.read_only {
            opts.push("ro".into());
        }
        tmpfs.push((m.target.clone(), opts.join(",")));
    }
    for (dst, opts) in tmpfs {
        let mut options: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "exec" => options.retain(|x| x != "noexec"),
                "suid" => options.retain(|x| x != "nosuid"),
                "dev" => options.retain(|x| x != "nodev"),
                other => {
                    options.retain(|x| x != other);
                    options.push(other.into());
                }
            }
        }
        out.push(Mount {
            destination: PathBuf::from(dst),
            kind: "tmpfs".into(),
            source: PathBuf::from("tmpfs"),
            options,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn parses_binds_and_tmpfs() {
        let b = parse_bind("/src:/dst:ro").expect("bind");
        assert!(b.read_only);
        assert!(parse_bind("vol:/dst").is_ok(), "a named volume");
        assert!(parse_bind("-vol:/dst").is_err());
        assert!(parse_bind("/src:dst").is_err());
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("made");
        let hc = HostConfig {
            binds: Some(vec![format!("{}:/data", src.display())]),
            tmpfs: Some(BTreeMap::from([("/run".into(), "size=1m,exec".into())])),
            ..Default::default()
        };
        let points = mount_points(&hc).expect("points");
        let mounts = runtime_mounts(&hc, &points).expect("mounts");
        assert!(src.is_dir(), "-v creates a missing host directory");
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].options, vec!["nosuid", "nodev", "size=1m"]);
    }
}
