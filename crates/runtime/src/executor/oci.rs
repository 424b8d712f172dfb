//! A runc-compatible OCI runtime command line (`runc`, `crun`):
//! `<rt> --root <dir> create --bundle B --pid-file P [--console-socket S] ID`, `start`,
//! `pause`, `resume`, `exec -d --process F --pid-file P`, `delete --force`. The container's
//! processes are reparented to the shim (a child subreaper) when the runtime exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Executor, ExecutorError, ProcessIo};

/// An OCI runtime binary with its state root.
pub struct OciCli {
    path: PathBuf,
    id: String,
    root: PathBuf,
}

impl OciCli {
    /// Runtime binary `path` for container `id`, state under `root`.
    pub fn new(path: &Path, id: &str, root: &Path) -> Self {
        Self {
            path: path.to_owned(),
            id: id.to_string(),
            root: root.to_owned(),
        }
    }

    fn log(&self) -> PathBuf {
        self.root.join("runtime.log")
    }

    fn command(&self, op: &str) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(self.log())
            .arg("--log-format")
            .arg("json")
            .arg(op)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `c`; on failure the error is the runtime's last error log line or its stderr.
    fn run(&self, mut c: Command, program: Option<&str>) -> Result<(), ExecutorError> {
        let _ = std::fs::remove_file(self.log());
        let out = c.output().map_err(|e| {
            ExecutorError::from_message(format!("failed to run {}: {e}", self.path.display()), None)
        })?;
        if out.status.success() {
            return Ok(());
        }
        let mut message = self.last_log_error().unwrap_or_default();
        if message.is_empty() {
            message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        if message.is_empty() {
            message = format!("{} exited with {}", self.path.display(), out.status);
        }
        Err(ExecutorError::from_message(message, program))
    }

    fn last_log_error(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.log()).ok()?;
        text.lines().rev().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["level"] == "error").then(|| v["msg"].as_str().map(str::to_string))?
        })
    }

    fn read_pid(path: &Path) -> Result<i32, ExecutorError> {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                ExecutorError::from_message(format!("no pid in {}", path.display()), None)
            })
    }
}

fn stdio(fd: Option<std::os::fd::OwnedFd>) -> Stdio {
    fd.map_or_else(Stdio::null, Stdio::from)
}

impl Executor for OciCli {
    fn create(&mut self, bundle: &Path, io: ProcessIo) -> Result<i32, ExecutorError> {
        let pid_file = self.root.join("init.pid");
        let program = super::program_of(&bundle.join("config.json"), false);
        let mut c = self.command("create");
        c.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(s) = &io.console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(&self.id);
        // Without a terminal runc passes its own stdio through to the container's process.
        c.stdin(stdio(io.stdin)).stdout(stdio(io.stdout));
        if let Some(fd) = io.stderr {
            c.stderr(Stdio::from(fd));
        }
        self.run(c, program.as_deref())?;
        Self::read_pid(&pid_file)
    }

    fn start(&mut self) -> Result<(), ExecutorError> {
        let mut c = self.command("start");
        c.arg(&self.id);
        self.run(c, None)
    }

    fn pause(&mut self) -> Result<(), ExecutorError> {
        let mut c = self.command("pause");
        c.arg(&self.id);
        self.run(c, None)
    }

    fn resume(&mut self) -> Result<(), ExecutorError> {
        let mut c = self.command("resume");
        c.arg(&self.id);
        self.run(c, None)
    }

    fn exec(&mut self, process_json: &Path, io: ProcessIo) -> Result<i32, ExecutorError> {
        let name = process_json
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pid_file = self.root.join(format!("{name}.pid"));
        let program = super::program_of(process_json, true);
        let mut c = self.command("exec");
        c.arg("-d")
            .arg("--process")
            .arg(process_json)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(s) = &io.console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(&self.id);
        c.stdin(stdio(io.stdin)).stdout(stdio(io.stdout));
        if let Some(fd) = io.stderr {
            c.stderr(Stdio::from(fd));
        }
        self.run(c, program.as_deref())?;
        Self::read_pid(&pid_file)
    }

    fn delete(&mut self) -> Result<(), ExecutorError> {
        let mut c = self.command("delete");
        c.arg("--force").arg(&self.id);
        self.run(c, None)
    }
}
