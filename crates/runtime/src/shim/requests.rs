//! Handling of the shim's control requests (start, kill, pause, exec, attach, ...).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::process::Proc;
use super::server::{Exec, Role, Shim, Target};
use crate::protocol::{ErrorKind, Reply, Request, StreamKind};
use crate::spec::{HostFacts, exec_process, write_json_atomic};
use crate::{ContainerState, layout};

/// Whether `program` certainly does not exist in the root of process `pid`: no directory
/// entry (not even a symlink) at its path, or in any `PATH` directory for a bare name.
/// Lookups that cannot be decided from the host (a directory on the way is a symlink) count
/// as present, so the runtime reports them.
fn program_missing(pid: i32, program: &str, env: &[String]) -> bool {
    let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
    let absent = |path: &str| {
        let rel = path.trim_start_matches('/');
        let mut dir = root.clone();
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return false;
        };
        for d in dirs {
            dir.push(d);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(_) => return false,
                Err(e) => return e.kind() == std::io::ErrorKind::NotFound,
            }
        }
        matches!(std::fs::symlink_metadata(dir.join(last)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    };
    if program.contains('/') {
        return program.starts_with('/') && absent(program);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .all(|d| absent(&format!("{d}/{program}")))
}

fn not_running() -> Reply {
    Reply::error(ErrorKind::NotRunning, "")
}

fn other(message: impl Into<String>) -> Reply {
    Reply::error(ErrorKind::Other, message)
}

impl Shim {
    fn state(&self) -> ContainerState {
        if let Some(exit) = self.init.exit {
            return ContainerState::Exited(exit);
        }
        let Some(pid) = self.init.pid.and_then(|p| u32::try_from(p).ok()) else {
            return ContainerState::Unknown;
        };
        if !self.started {
            ContainerState::Created { pid }
        } else if self.paused {
            ContainerState::Paused { pid }
        } else {
            ContainerState::Running { pid }
        }
    }

    /// Answers one request of connection `conn`; `None` when the answer comes later (wait).
    pub(super) fn handle_request(&mut self, conn: u64, req: Request) -> Option<Reply> {
        tracing::debug!(?req, "shim request");
        let reply = match req {
            Request::State => Reply::State {
                state: self.state(),
            },
            Request::Start => self.start(),
            Request::Wait => match self.init.exit {
                Some(exit) => Reply::Exit { exit },
                None => return self.park(conn, Target::Init),
            },
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::Pause | Request::Resume => {
                if !self.init.alive() || !self.started {
                    return Some(not_running());
                }
                let pause = req == Request::Pause;
                let result = if pause {
                    self.executor.pause()
                } else {
                    self.executor.resume()
                };
                match result {
                    Ok(()) => {
                        self.paused = pause;
                        Reply::Ok
                    }
                    Err(e) => other(e.message),
                }
            }
            Request::Resize {
                exec_id,
                rows,
                cols,
            } => {
                let t = exec_id.map_or(Target::Init, Target::Exec);
                match self.proc_mut(&t).and_then(|p| p.master.as_ref()) {
                    Some(m) => match crate::sys::set_winsize(m, rows, cols) {
                        Ok(()) => Reply::Ok,
                        Err(e) => other(format!("resize failed: {e}")),
                    },
                    None => other("the process has no terminal"),
                }
            }
            Request::ExecCreate { exec } => {
                if !self.init.alive() || !self.started {
                    not_running()
                } else if !layout::valid_id(&exec.id) {
                    other(format!("invalid exec id {:?}", exec.id))
                } else if self.execs.contains_key(&exec.id) {
                    other(format!("exec {} already exists", exec.id))
                } else {
                    self.execs.insert(
                        exec.id.clone(),
                        Exec {
                            config: exec,
                            proc: None,
                        },
                    );
                    Reply::Ok
                }
            }
            Request::ExecStart { exec_id } => self.exec_start(&exec_id),
            Request::ExecWait { exec_id } => match self.execs.get(&exec_id) {
                None => Reply::error(ErrorKind::NotFound, format!("no such exec: {exec_id}")),
                Some(e) => match e.proc.as_ref().and_then(|p| p.exit) {
                    Some(exit) => Reply::Exit { exit },
                    None => return self.park(conn, Target::Exec(exec_id)),
                },
            },
            Request::Attach { exec_id, stream } => self.attach(conn, exec_id, stream),
        };
        Some(reply)
    }

    fn park(&mut self, conn: u64, t: Target) -> Option<Reply> {
        if self.finished && t != Target::Init {
            return Some(not_running());
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.waiting = Some(t);
        }
        None
    }

    fn start(&mut self) -> Reply {
        if self.started {
            return other("container already started");
        }
        if !self.init.alive() {
            return not_running();
        }
        match self.executor.start() {
            Ok(()) => {
                self.started = true;
                self.schedule_trim();
                Reply::Pid {
                    pid: self
                        .init
                        .pid
                        .and_then(|p| u32::try_from(p).ok())
                        .unwrap_or(0),
                }
            }
            Err(e) => Reply::error(
                ErrorKind::Create {
                    exec_not_found: e.exec_not_found,
                },
                e.message,
            ),
        }
    }

    fn kill(&mut self, signal: i32, all: bool) -> Reply {
        let Some(pid) = self.init.pid.filter(|_| self.init.alive()) else {
            return not_running();
        };
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => return other(format!("invalid signal {signal}")),
        };
        let mut pids = vec![pid];
        if all
            && let Some(h) = &self.hierarchies
            && let Ok(list) = crate::cgroups::processes(h, &self.config.cgroup_path)
        {
            pids = list
                .into_iter()
                .filter_map(|p| i32::try_from(p).ok())
                .collect();
        }
        for p in pids {
            if let Err(e) = kill(Pid::from_raw(p), sig)
                && p == pid
            {
                return other(format!("kill {pid}: {e}"));
            }
        }
        Reply::Ok
    }

    fn exec_start(&mut self, exec_id: &str) -> Reply {
        if !self.init.alive() {
            return not_running();
        }
        let Some(exec) = self.execs.get(exec_id) else {
            return Reply::error(ErrorKind::NotFound, format!("no such exec: {exec_id}"));
        };
        if exec.proc.is_some() {
            return other(format!("exec {exec_id} already started"));
        }
        let config = exec.config.clone();
        // A program that is nowhere in the container is reported without starting the OCI
        // runtime's exec: the built-in runtime could hang on the failing process under load.
        if let (Some(pid), Some(program)) = (self.init.pid, config.args.first())
            && program_missing(pid, program, &config.env)
        {
            return Reply::error(
                ErrorKind::Create {
                    exec_not_found: true,
                },
                format!("exec: \"{program}\": executable file not found in $PATH"),
            );
        }
        let mut process = match exec_process(&self.config, &config, &HostFacts::probe(false)) {
            Ok(p) => p,
            Err(e) => return other(e.to_string()),
        };
        self.executor.prepare_exec(&mut process);
        let path = self.dir.join(format!("exec-{exec_id}.json"));
        if let Err(e) = write_json_atomic(&path, &process) {
            return other(e.to_string());
        }
        self.consoles += 1;
        let console = format!("console-{}.sock", self.consoles);
        let (mut proc, io) =
            match Proc::prepare(config.tty, config.open_stdin, true, &self.dir, &console) {
                Ok(x) => x,
                Err(e) => return other(format!("exec stdio: {e}")),
            };
        let pid = match self.executor.exec(&path, io) {
            Ok(pid) => pid,
            Err(e) => {
                let _ = std::fs::remove_file(&console);
                return Reply::error(
                    ErrorKind::Create {
                        exec_not_found: e.exec_not_found,
                    },
                    e.message,
                );
            }
        };
        let _ = std::fs::remove_file(&path);
        if let Err(e) = proc.receive_console() {
            return other(format!("exec terminal: {e}"));
        }
        match self.take_reaped(pid) {
            Some(code) => {
                proc.pid = Some(pid);
                proc.code = Some(code);
            }
            None => {
                if let Err(e) = proc.set_pid(pid) {
                    // Exited and reaped between the two calls.
                    match self.take_reaped(pid) {
                        Some(code) => proc.code = Some(code),
                        None => return other(format!("cannot watch exec process {pid}: {e}")),
                    }
                }
            }
        }
        if let Some(e) = self.execs.get_mut(exec_id) {
            e.proc = Some(proc);
        }
        self.schedule_trim();
        // Input that arrived before the start goes to the process now.
        let waiting: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(&c.role, Role::Input(Target::Exec(id)) if id == exec_id))
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.process_input(id);
        }
        Reply::Pid {
            pid: u32::try_from(pid).unwrap_or(0),
        }
    }

    fn attach(&mut self, conn: u64, exec_id: Option<String>, stream: StreamKind) -> Reply {
        let (tty, open_stdin, exited) = match &exec_id {
            None => (
                self.config.tty,
                self.config.open_stdin,
                self.init.exit.is_some(),
            ),
            Some(id) => match self.execs.get(id) {
                None => return Reply::error(ErrorKind::NotFound, format!("no such exec: {id}")),
                Some(e) => (
                    e.config.tty,
                    e.config.open_stdin,
                    e.proc.as_ref().is_some_and(|p| p.exit.is_some()),
                ),
            },
        };
        if exited || self.finished {
            return not_running();
        }
        if stream == StreamKind::Stderr && tty {
            return other("a process with a terminal has no separate stderr");
        }
        if stream == StreamKind::Stdin && !open_stdin {
            return other("stdin is not open");
        }
        let t = exec_id.map_or(Target::Init, Target::Exec);
        let Some(c) = self.conns.get_mut(&conn) else {
            return Reply::Ok;
        };
        // The reply is queued before any stream byte; input that followed the request line
        // is forwarded by the caller's loop once the role changed.
        c.role = match stream {
            StreamKind::Stdin => Role::Input(t),
            s => Role::Output(t, s),
        };
        Reply::Ok
    }
}
