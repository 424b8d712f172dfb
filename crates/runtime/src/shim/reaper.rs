//! Reaping: collecting exit statuses with waitpid(2) when a pidfd fires, draining an exited
//! process' output, and publishing its exit (waiters, attached clients, the exit record and
//! the runtime's delete for the container's init).

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::server::{Role, Shim, Target};
use crate::layout;
use crate::protocol::{self, Reply};

impl Shim {
    /// Collects the exit status of every child that exited.
    pub(super) fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    self.reaped.insert(pid.as_raw(), code);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.reaped.insert(pid.as_raw(), 128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let reaped = &mut self.reaped;
        let procs = std::iter::once(&mut self.init)
            .chain(self.execs.values_mut().filter_map(|e| e.proc.as_mut()));
        for p in procs {
            if let Some(pid) = p.pid
                && p.code.is_none()
                && let Some(code) = reaped.remove(&pid)
            {
                p.code = Some(code);
                p.pidfd = None;
            }
        }
    }

    /// Whether `pid` was already reaped (an exec that exited before its pid was known).
    pub(super) fn take_reaped(&mut self, pid: i32) -> Option<i32> {
        self.reap();
        self.reaped.remove(&pid)
    }

    pub(super) fn finalize_ready(&mut self, buf: &mut [u8]) {
        let mut ready: Vec<Target> = self
            .procs()
            .filter(|(_, p)| p.code.is_some() && p.exit.is_none())
            .map(|(t, _)| t)
            .collect();
        // Execs first: the container's exit ends the shim's work.
        ready.sort_by_key(|t| *t == Target::Init);
        for t in ready {
            self.finalize(&t, buf);
        }
    }

    /// Drains the output of an exited process and publishes its exit status.
    fn finalize(&mut self, t: &Target, buf: &mut [u8]) {
        let mut chunks = Vec::new();
        if let Some(p) = self.proc_mut(t) {
            for i in 0..p.outputs.len() {
                while let Some((stream, n)) = p.read_output(i, buf) {
                    chunks.push((stream, buf[..n].to_vec()));
                }
            }
        }
        for (stream, data) in chunks {
            self.dispatch(t, stream, &data);
        }
        let oom_killed = *t == Target::Init
            && self
                .hierarchies
                .as_ref()
                .is_some_and(|h| crate::cgroups::oom_killed(h, &self.config.cgroup_path));
        let Some(p) = self.proc_mut(t) else {
            return;
        };
        let exit = crate::ExitStatus {
            code: p.code.unwrap_or(-1),
            oom_killed,
            finished_at: chrono::Utc::now(),
        };
        p.exit = Some(exit);
        p.outputs.clear();
        p.stdin = None;
        p.master = None;
        if *t == Target::Init {
            self.log.flush();
            if let Err(e) = self.executor.delete_exited() {
                tracing::warn!(error = %e, "runtime delete failed");
            }
            if let Err(e) = crate::exit::write(std::path::Path::new(layout::EXIT), &exit) {
                tracing::error!(error = %e, "cannot persist exit status");
            }
            self.finished = true;
        }
        for c in self.conns.values_mut() {
            match &c.role {
                Role::Output(ct, _) | Role::Input(ct) if ct == t => c.closing = true,
                _ => {}
            }
            if c.waiting.as_ref() == Some(t) {
                c.waiting = None;
                c.send(&Reply::Exit { exit });
            }
        }
        if self.finished {
            // Execs never started cannot run any more.
            for c in self.conns.values_mut() {
                if c.waiting.is_some() {
                    c.waiting = None;
                    c.send(&Reply::error(protocol::ErrorKind::NotRunning, ""));
                }
                if matches!(c.role, Role::Output(..) | Role::Input(..)) {
                    c.closing = true;
                }
            }
        }
    }
}
