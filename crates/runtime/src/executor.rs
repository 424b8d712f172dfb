//! The OCI runtimes a shim drives: youki's `libcontainer` linked in ([`builtin`]) or a
//! runc-compatible command line ([`oci`]). Both create the container stopped before `exec`,
//! start it, pause/resume it, run exec processes in it and delete it; the shim reaps the
//! processes itself (it is their parent or their subreaper).

pub mod builtin;
mod direct;
pub mod oci;
mod seccomp;

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use crate::RuntimeKind;

/// Why an OCI runtime operation failed; `message` is what users see.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ExecutorError {
    /// The runtime's message, as users see it.
    pub message: String,
    /// The process' executable does not exist.
    pub exec_not_found: bool,
}

impl ExecutorError {
    /// An error from a runtime's message, recognising "executable not found" reports.
    pub fn from_message(message: impl Into<String>, program: Option<&str>) -> Self {
        let message = message.into();
        let lower = message.to_ascii_lowercase();
        let exec_not_found = lower.contains("not found in $path")
            || lower.contains("executable file not found")
            || (lower.contains("no such file or directory")
                && (lower.contains("exec") || lower.contains("executable")));
        let message = match (exec_not_found, program) {
            (true, Some(p)) => format!("exec: \"{p}\": executable file not found in $PATH"),
            _ => message,
        };
        Self {
            message,
            exec_not_found,
        }
    }
}

/// The stdio a process gets: pipe/socket ends, or `None` for the console socket case.
#[derive(Debug, Default)]
pub struct ProcessIo {
    /// The process' stdin.
    pub stdin: Option<OwnedFd>,
    /// The process' stdout.
    pub stdout: Option<OwnedFd>,
    /// The process' stderr.
    pub stderr: Option<OwnedFd>,
    /// Path of the unix socket that receives the PTY master (`terminal: true`).
    pub console_socket: Option<std::path::PathBuf>,
}

/// Operations of an OCI runtime on one container.
pub trait Executor {
    /// Adapts the container's spec before it is written to the bundle; `cache_dir` is a
    /// directory the runtime may keep derived data in across containers.
    fn prepare(&mut self, _spec: &mut Spec, _cache_dir: &Path) -> Result<(), ExecutorError> {
        Ok(())
    }
    /// Adapts an exec's process before it is written for [`Executor::exec`].
    fn prepare_exec(&mut self, _process: &mut Process) {}
    /// Creates the container from `bundle`; returns the init pid (stopped before `exec`).
    fn create(&mut self, bundle: &Path, io: ProcessIo) -> Result<i32, ExecutorError>;
    /// Lets the init process `exec` the container's command.
    fn start(&mut self) -> Result<(), ExecutorError>;
    /// Freezes the container.
    fn pause(&mut self) -> Result<(), ExecutorError>;
    /// Thaws the container.
    fn resume(&mut self) -> Result<(), ExecutorError>;
    /// Runs the process described by `process_json` (an OCI `Process`) in the container;
    /// returns its pid.
    fn exec(&mut self, process_json: &Path, io: ProcessIo) -> Result<i32, ExecutorError>;
    /// Removes the runtime's state and the container's cgroup.
    fn delete(&mut self) -> Result<(), ExecutorError>;
    /// [`Executor::delete`] once the init process has exited and been reaped.
    fn delete_exited(&mut self) -> Result<(), ExecutorError> {
        self.delete()
    }
}

/// The program (`args[0]`) of a `config.json` or, with `process_json`, a `process.json`.
pub(crate) fn program_of(bundle_or_process: &Path, process_json: bool) -> Option<String> {
    let text = std::fs::read_to_string(bundle_or_process).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let args = if process_json {
        &v["args"]
    } else {
        &v["process"]["args"]
    };
    args.get(0)?.as_str().map(str::to_string)
}

/// The executor for `kind`, keeping its state under `root`.
pub fn for_kind(kind: &RuntimeKind, id: &str, root: &Path) -> Box<dyn Executor> {
    match kind {
        RuntimeKind::Builtin => Box::new(builtin::Builtin::new(id, root)),
        RuntimeKind::Oci { path, .. } => Box::new(oci::OciCli::new(path, id, root)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_messages_become_docker_style() {
        let e = ExecutorError::from_message("executable 'nope' not found in $PATH", Some("nope"));
        assert!(e.exec_not_found);
        assert_eq!(
            e.message,
            "exec: \"nope\": executable file not found in $PATH"
        );
        let e = ExecutorError::from_message("permission denied", Some("x"));
        assert!(!e.exec_not_found);
        assert_eq!(e.message, "permission denied");
    }
}
