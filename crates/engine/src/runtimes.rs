//! The OCI runtimes a daemon offers: the built-in one and `runc`/`crun` where installed.

use std::path::PathBuf;

use berth_runtime::RuntimeKind;

use crate::error::{EngineError, Result};

/// Finds an executable on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Resolves a runtime name; `""` is the daemon's default (`None`).
pub fn resolve(name: &str) -> Result<Option<RuntimeKind>> {
    match name {
        "" => Ok(None),
        "builtin" | "berth" => Ok(Some(RuntimeKind::Builtin)),
        "runc" | "crun" => match which(name) {
            Some(path) => Ok(Some(RuntimeKind::Oci {
                name: name.into(),
                path,
            })),
            None => Err(EngineError::InvalidArgument(format!(
                "unknown or invalid runtime name: {name}"
            ))),
        },
        other => Err(EngineError::InvalidArgument(format!(
            "unknown or invalid runtime name: {other}"
        ))),
    }
}

/// Runtimes for `docker info` (name, path).
pub fn available() -> Vec<(String, String)> {
    let mut out = vec![("builtin".to_string(), "berth".to_string())];
    for n in ["runc", "crun"] {
        if let Some(p) = which(n) {
            out.push((n.to_string(), p.display().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_names() {
        assert_eq!(resolve("").ok(), Some(None));
        assert_eq!(resolve("builtin").ok(), Some(Some(RuntimeKind::Builtin)));
        assert!(resolve("kata").is_err());
        assert!(available().iter().any(|(n, _)| n == "builtin"));
    }
}
