//! The shim's single-threaded event loop: poll(2) over the control socket, client
//! connections, the processes' output and input descriptors and their pidfds. No timers:
//! every wake-up is an event. Output goes to the json-file log and to every attached
//! client; a slow client stalls reading from the process (back-pressure) instead of growing
//! memory without bound.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::jsonlog::JsonLog;
use super::process::Proc;
use crate::cgroups::Hierarchies;
use crate::executor::Executor;
use crate::protocol::{self, MAX_LINE, Reply, Request, StreamKind};
use crate::{ContainerConfig, ExecConfig, layout};

/// Bytes queued for one client before the shim stops reading the process' output.
const HIGH_WATER: usize = 1 << 20;

/// How long after a process starts the shim shrinks its resident set: not at once, so that a
/// short-lived process (`docker run --rm IMG true`) has its exit reaped and reported without
/// waiting for the trim.
const TRIM_DELAY: Duration = Duration::from_millis(500);

/// Which process a connection or descriptor belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Init,
    Exec(String),
}

pub(super) enum Role {
    Control,
    Output(Target, StreamKind),
    Input(Target),
}

pub(super) struct Conn {
    sock: UnixStream,
    pub(super) inbuf: Vec<u8>,
    pub(super) out: Vec<u8>,
    pub(super) role: Role,
    pub(super) waiting: Option<Target>,
    pub(super) closing: bool,
    /// At least one reply was sent (a connection is not idle before its first request).
    served: bool,
    eof: bool,
    dead: bool,
}

impl Conn {
    pub(super) fn send(&mut self, reply: &Reply) {
        self.served = true;
        self.out.extend_from_slice(&protocol::encode(reply));
        self.flush();
    }

    fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match self.sock.write(&self.out) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
    }
}

pub(super) struct Exec {
    pub(super) config: ExecConfig,
    pub(super) proc: Option<Proc>,
}

/// The shim's state.
pub struct Shim {
    pub(super) config: ContainerConfig,
    pub(super) dir: PathBuf,
    pub(super) executor: Box<dyn Executor>,
    pub(super) hierarchies: Option<Hierarchies>,
    pub(super) listener: UnixListener,
    pub(super) init: Proc,
    pub(super) log: JsonLog,
    pub(super) conns: BTreeMap<u64, Conn>,
    pub(super) next_conn: u64,
    pub(super) started: bool,
    /// When to shrink the resident set (see [`Shim::schedule_trim`]).
    pub(super) trim_at: Option<Instant>,
    pub(super) paused: bool,
    pub(super) execs: BTreeMap<String, Exec>,
    pub(super) reaped: HashMap<i32, i32>,
    pub(super) finished: bool,
    pub(super) consoles: u64,
}

enum Key {
    Listener,
    Conn(u64),
    Output(Target, usize),
    Stdin(Target),
    Pidfd,
}

impl Shim {
    /// A shim supervising the created container `init`.
    pub fn new(
        config: ContainerConfig,
        dir: PathBuf,
        executor: Box<dyn Executor>,
        listener: UnixListener,
        init: Proc,
        log: JsonLog,
    ) -> Self {
        Self {
            config,
            dir,
            executor,
            hierarchies: Hierarchies::probe().ok(),
            listener,
            init,
            log,
            conns: BTreeMap::new(),
            next_conn: 0,
            started: false,
            trim_at: None,
            paused: false,
            execs: BTreeMap::new(),
            reaped: HashMap::new(),
            finished: false,
            consoles: 0,
        }
    }

    pub(super) fn proc_mut(&mut self, t: &Target) -> Option<&mut Proc> {
        match t {
            Target::Init => Some(&mut self.init),
            Target::Exec(id) => self.execs.get_mut(id).and_then(|e| e.proc.as_mut()),
        }
    }

    pub(super) fn procs(&self) -> impl Iterator<Item = (Target, &Proc)> {
        std::iter::once((Target::Init, &self.init)).chain(
            self.execs
                .iter()
                .filter_map(|(id, e)| e.proc.as_ref().map(|p| (Target::Exec(id.clone()), p))),
        )
    }

    /// Shrinks the resident set [`TRIM_DELAY`] after a process started, unless the
    /// container has exited by then.
    pub(super) fn schedule_trim(&mut self) {
        self.trim_at
            .get_or_insert_with(|| Instant::now() + TRIM_DELAY);
    }

    /// Ends a created container nobody will start: kills its processes, deletes it from
    /// the runtime and removes the control socket.
    pub fn abandon(mut self) {
        // The runtime's state may be gone with the state directory: kill init by pid too.
        if let Some(pid) = self.init.pid {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        let _ = self.executor.delete();
        let _ = std::fs::remove_file(layout::SOCKET);
    }

    /// Runs until the container has exited and every client is gone; returns the exit code
    /// of the shim itself.
    pub fn run(mut self) -> i32 {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.reap();
            self.finalize_ready(&mut buf);
            self.collect_conns();
            if self.finished && self.conns.is_empty() {
                break;
            }
            let events = match self.wait_events() {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "poll failed");
                    return 1;
                }
            };
            for (key, flags) in events {
                self.handle_event(key, flags, &mut buf);
            }
            if self.finished {
                self.trim_at = None;
            }
            if self.trim_at.is_some_and(|at| at <= Instant::now()) {
                self.trim_at = None;
                crate::sys::trim_resident();
            }
        }
        // Relative to the shim's working directory, its own state directory: if that was
        // removed and recreated for a new container of the same id, the paths are not ours.
        let _ = std::fs::remove_file(layout::SOCKET);
        // The listener closes before the runtime's parked state files, whose closing may
        // trim their blocks: a client connecting meanwhile learns at once that we are gone.
        let Shim {
            listener, executor, ..
        } = self;
        drop(listener);
        drop(executor);
        0
    }

    fn backpressured(&self, t: &Target) -> bool {
        self.conns
            .values()
            .any(|c| matches!(&c.role, Role::Output(ct, _) if ct == t) && c.out.len() > HIGH_WATER)
    }

    fn wait_events(&self) -> io::Result<Vec<(Key, PollFlags)>> {
        let mut keys = Vec::new();
        let mut fds = Vec::new();
        keys.push(Key::Listener);
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        for (id, c) in &self.conns {
            let mut ev = PollFlags::empty();
            let input_parked = matches!(&c.role, Role::Input(t) if !self.has_stdin(t));
            if !c.eof && !input_parked {
                ev |= PollFlags::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            keys.push(Key::Conn(*id));
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        for (t, p) in self.procs() {
            if p.exit.is_some() {
                continue;
            }
            if !self.backpressured(&t) {
                for (i, o) in p.outputs.iter().enumerate().filter(|(_, o)| o.open) {
                    keys.push(Key::Output(t.clone(), i));
                    fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
                }
            }
            if let Some(fd) = &p.stdin
                && !p.stdin_buf.is_empty()
            {
                keys.push(Key::Stdin(t.clone()));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            }
            if let Some(fd) = &p.pidfd {
                keys.push(Key::Pidfd);
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let timeout = match self.trim_at {
            Some(at) => {
                // Rounded up: a timeout rounded down to 0 would spin until the instant.
                let ms = at
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        Ok(keys
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, r)| !r.is_empty())
            .collect())
    }

    fn has_stdin(&self, t: &Target) -> bool {
        match t {
            Target::Init => self.init.stdin.is_some(),
            Target::Exec(id) => self
                .execs
                .get(id)
                .and_then(|e| e.proc.as_ref())
                .is_some_and(|p| p.stdin.is_some()),
        }
    }

    fn handle_event(&mut self, key: Key, flags: PollFlags, buf: &mut [u8]) {
        match key {
            Key::Listener => self.accept(),
            Key::Conn(id) => {
                if flags.intersects(PollFlags::POLLOUT)
                    && let Some(c) = self.conns.get_mut(&id)
                {
                    c.flush();
                }
                if flags.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.read_conn(id, buf);
                }
                if flags.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
                    && let Some(c) = self.conns.get_mut(&id)
                    && matches!(c.role, Role::Output(..))
                {
                    c.dead = true;
                }
            }
            Key::Output(t, i) => {
                if let Some((stream, n)) = self.proc_mut(&t).and_then(|p| p.read_output(i, buf)) {
                    self.dispatch(&t, stream, &buf[..n]);
                }
            }
            Key::Stdin(t) => {
                if let Some(p) = self.proc_mut(&t) {
                    p.flush_stdin();
                }
            }
            Key::Pidfd => self.reap(),
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next_conn += 1;
                    self.conns.insert(
                        self.next_conn,
                        Conn {
                            sock,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            role: Role::Control,
                            waiting: None,
                            closing: false,
                            served: false,
                            eof: false,
                            dead: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn read_conn(&mut self, id: u64, buf: &mut [u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match c.sock.read(buf) {
            Ok(0) => c.eof = true,
            Ok(n) => {
                if !matches!(c.role, Role::Output(..)) {
                    c.inbuf.extend_from_slice(&buf[..n]);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                c.eof = true;
                c.dead = true;
            }
        }
        if matches!(c.role, Role::Control) && c.inbuf.len() > MAX_LINE {
            c.dead = true;
        }
        self.process_input(id);
    }

    /// Handles complete request lines of a control connection, or forwards an input
    /// connection's bytes to the process' stdin.
    pub(super) fn process_input(&mut self, id: u64) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            match &c.role {
                Role::Control => {
                    let Some(pos) = c.inbuf.iter().position(|b| *b == b'\n') else {
                        return;
                    };
                    let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
                    let reply = match serde_json::from_slice::<Request>(&line) {
                        Ok(req) => self.handle_request(id, req),
                        Err(e) => Some(Reply::error(
                            protocol::ErrorKind::Other,
                            format!("invalid request: {e}"),
                        )),
                    };
                    if let Some(reply) = reply
                        && let Some(c) = self.conns.get_mut(&id)
                    {
                        c.send(&reply);
                    }
                }
                Role::Input(t) => {
                    let t = t.clone();
                    let data = std::mem::take(&mut c.inbuf);
                    let eof = c.eof;
                    if eof {
                        c.closing = true;
                    }
                    if let Some(p) = self.proc_mut(&t)
                        && p.stdin.is_some()
                    {
                        p.stdin_buf.extend_from_slice(&data);
                        // As Docker: a terminal stays open for the next client.
                        if eof && p.stdin_once && !p.tty {
                            p.stdin_eof = true;
                        }
                        p.flush_stdin();
                    } else if let Some(c) = self.conns.get_mut(&id) {
                        // The process has not started yet: keep the input for it.
                        c.inbuf = data;
                        c.closing = false;
                    }
                    return;
                }
                // A client of an output stream may half-close its side; it is gone only when
                // the socket hangs up (see `handle_event`) or a write fails.
                Role::Output(..) => return,
            }
        }
    }

    /// Sends output of `t` to the log (init only) and to every client attached to it.
    pub(super) fn dispatch(&mut self, t: &Target, stream: StreamKind, data: &[u8]) {
        if *t == Target::Init {
            self.log.write(stream, data);
        }
        for c in self.conns.values_mut() {
            if matches!(&c.role, Role::Output(ct, s) if ct == t && *s == stream) {
                c.out.extend_from_slice(data);
                c.flush();
            }
        }
    }

    fn collect_conns(&mut self) {
        let finished = self.finished;
        self.conns.retain(|_, c| {
            let idle_control = matches!(c.role, Role::Control)
                && c.waiting.is_none()
                && c.inbuf.is_empty()
                && (c.eof || (finished && c.served));
            !(c.dead || (c.out.is_empty() && (c.closing || idle_control)))
        });
    }
}
