//! Where a container's runtime state lives under `RuntimeConfig::state_dir`:
//! `<state_dir>/<id>/` holds `container.json` (the [`ContainerConfig`](crate::ContainerConfig)),
//! `bundle/config.json`, `shim.sock`, `exit.json`, `shim.log` and the OCI runtime's own state.

use std::path::{Path, PathBuf};

/// Paths of one container's state.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout of container `id` under `state_dir`.
    pub fn new(state_dir: &Path, id: &str) -> Self {
        Self {
            dir: state_dir.join(id),
        }
    }

    /// The container's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The container's configuration as the daemon handed it over.
    pub fn config(&self) -> PathBuf {
        self.dir.join(CONFIG)
    }

    /// The OCI bundle directory.
    pub fn bundle(&self) -> PathBuf {
        self.dir.join(BUNDLE)
    }

    /// The shim's control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET)
    }

    /// The persisted exit status.
    pub fn exit(&self) -> PathBuf {
        self.dir.join(EXIT)
    }

    /// The shim's own diagnostics (its stderr).
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }
}

/// File name of the container configuration inside the state directory.
pub const CONFIG: &str = "container.json";
/// Bundle directory name inside the state directory.
pub const BUNDLE: &str = "bundle";
/// Control socket name inside the state directory.
pub const SOCKET: &str = "shim.sock";
/// Exit record name inside the state directory.
pub const EXIT: &str = "exit.json";
/// Root directory of the OCI runtime's state inside the state directory.
pub const RUNTIME_ROOT: &str = "oci";
/// Directory of the state directory (beside the containers' directories) where the
/// built-in runtime keeps compiled seccomp filters.
pub const SECCOMP_CACHE: &str = ".seccomp";
/// Directory of the state directory holding removed containers' state until it is deleted.
pub const TRASH: &str = ".trash";

/// Removes a directory tree; one that does not exist is already removed.
pub(crate) fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Whether `id` is safe as a directory name and an OCI container id.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
}
