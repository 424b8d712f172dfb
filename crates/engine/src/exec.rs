//! `docker exec`: exec instances are kept in memory (as dockerd does); each runs through
//! the runtime's exec calls when started.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_runtime::{AttachStreams, ExecConfig};

use crate::container::Status;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::model::ExecCreateRequest;
use crate::{names, users};

/// Mutable state of an exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i32>,
    pub pid: u32,
}

/// One exec instance.
#[derive(Debug)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub request: ExecCreateRequest,
    pub state: Mutex<ExecState>,
}

impl Exec {
    fn lock(&self) -> std::sync::MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current state.
    pub fn current(&self) -> ExecState {
        self.lock().clone()
    }

    /// Docker's exec inspect JSON.
    pub fn inspect(&self) -> serde_json::Value {
        let st = self.current();
        let cmd = self.request.cmd.clone().unwrap_or_default();
        serde_json::json!({
            "ID": self.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "tty": self.request.tty,
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
                "privileged": self.request.privileged,
                "user": self.request.user,
            },
            "OpenStdin": self.request.attach_stdin,
            "OpenStderr": self.request.attach_stderr,
            "OpenStdout": self.request.attach_stdout,
            "CanRemove": false,
            "ContainerID": self.container_id,
            "DetachKeys": self.request.detach_keys,
            "Pid": st.pid,
        })
    }
}

impl Engine {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name: &str, request: ExecCreateRequest) -> Result<String> {
        let entry = self.lookup(name)?;
        let c = entry.snapshot();
        match c.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is paused, unpause the container before exec",
                    c.id
                )));
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running",
                    c.id
                )));
            }
        }
        if request.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let id = names::new_id();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            request,
            state: Mutex::new(ExecState::default()),
        });
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), exec);
        self.container_event(&c, "exec_create", &[], None);
        Ok(id)
    }

    /// Finds an exec.
    pub fn exec(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// Starts an exec; returns its streams when `attach` (connected before the process runs).
    pub async fn exec_start(
        self: &Arc<Self>,
        exec: &Arc<Exec>,
        attach: bool,
    ) -> Result<Option<AttachStreams>> {
        {
            let mut st = exec.lock();
            if st.started {
                return Err(EngineError::Conflict(format!(
                    "Error: Exec command {} has already run",
                    exec.id
                )));
            }
            st.started = true;
        }
        let entry = self.lookup(&exec.container_id)?;
        let c = entry.snapshot();
        if c.state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let r = &exec.request;
        let user_spec = if r.user.is_empty() {
            c.config.user.clone()
        } else {
            r.user.clone()
        };
        let rootfs = if c.state.pid > 0 {
            PathBuf::from(format!("/proc/{}/root", c.state.pid))
        } else {
            PathBuf::from(&c.rootfs.merged)
        };
        let resolved = users::resolve(&rootfs, &user_spec, &[])?;
        let env = crate::spec::environment(
            &c.config.hostname,
            r.tty,
            c.config.env.iter().flatten().chain(r.env.iter().flatten()),
            &resolved.home,
        );
        let cwd = if r.working_dir.is_empty() {
            None
        } else {
            Some(PathBuf::from(&r.working_dir))
        };
        let config = ExecConfig {
            id: exec.id.clone(),
            args: r.cmd.clone().unwrap_or_default(),
            env,
            cwd,
            user: Some(resolved.user),
            tty: r.tty,
            open_stdin: r.attach_stdin,
            privileged: r.privileged,
        };
        self.runtime.exec_create(&c.id, &config).await?;
        let streams = if attach {
            Some(self.runtime.exec_attach(&c.id, &exec.id).await?)
        } else {
            None
        };
        let pid = match self.runtime.exec_start(&c.id, &exec.id).await {
            Ok(pid) => pid,
            Err(e) => {
                // As Docker: 127 when the program does not exist, 126 when it cannot run.
                let (code, message) = match &e {
                    berth_runtime::RuntimeError::Create {
                        message,
                        exec_not_found,
                    } => (
                        if *exec_not_found { 127 } else { 126 },
                        format!("OCI runtime exec failed: {message}"),
                    ),
                    other => (126, other.to_string()),
                };
                exec.lock().exit_code = Some(code);
                return Err(EngineError::ExecFailed(message));
            }
        };
        {
            let mut st = exec.lock();
            st.running = true;
            st.pid = pid;
        }
        self.container_event(&c, "exec_start", &[("execID", exec.id.clone())], None);
        if !attach {
            let engine = self.clone();
            let exec = exec.clone();
            tokio::spawn(async move {
                engine.exec_finish(&exec).await;
            });
        }
        Ok(streams)
    }

    /// Waits for an exec's exit and records its code.
    pub async fn exec_finish(&self, exec: &Exec) -> i32 {
        let code = match self.runtime.exec_wait(&exec.container_id, &exec.id).await {
            Ok(s) => s.code,
            Err(e) => {
                tracing::warn!(exec = %exec.id, error = %e, "waiting for exec failed");
                126
            }
        };
        let mut st = exec.lock();
        st.running = false;
        st.exit_code = Some(code);
        code
    }
}
