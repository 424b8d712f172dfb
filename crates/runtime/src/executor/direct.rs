//! The built-in runtime's direct path: the shim creates the container's init itself, for
//! the specs berth generates (see [`supports`]); anything else goes to libcontainer.
//!
//! The shim is single-threaded, so it clones the init like a fork, with the new namespaces:
//! the init is the shim's own child and PID 1 of its namespace. The shim moves it into the
//! container's cgroup; the init then enters a cgroup namespace of its own, assembles the
//! rootfs ([`rootfs`]), switches to the container's user and capabilities ([`process`]),
//! reports ready and waits on a pipe for start. An exec process joins the init's namespaces
//! through its pidfd. libcontainer spends about ten milliseconds more on the same container
//! (its intermediate process, a cgroup manager that rereads the mount table per controller,
//! and path checks through fresh procfs handles for every mount).
#![allow(unsafe_code)]

mod process;
mod rootfs;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::ExecutorError as Error;
use super::ProcessIo;
use super::seccomp::Filter;
use crate::cgroups::{Cgroup, CgroupMount, cgroup_mounts, supported_limits};

/// Why a step in the container's init or exec process failed; sent to the shim.
#[derive(Debug)]
pub(super) struct Fail(String);

impl Fail {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    fn sys(what: impl std::fmt::Display, e: Errno) -> Self {
        Self(format!("{what}: {}", e.desc().to_lowercase()))
    }
}

/// A host cgroup hierarchy as the container mounts it.
#[derive(Debug, Clone)]
pub(super) struct HostCgroup {
    /// Its directory under the container's `/sys/fs/cgroup` (`cpu,cpuacct`, `unified`).
    name: String,
    /// cgroup2.
    v2: bool,
    /// The v1 mount data (`cpu,cpuacct`, `name=systemd`).
    options: String,
}

/// The host's hierarchies as the container mounts them, named as the host names them under
/// its own mount points.
fn host_cgroups(mounts: &[CgroupMount]) -> Vec<HostCgroup> {
    let mut out: Vec<HostCgroup> = Vec::new();
    for m in mounts {
        let name = m
            .point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unified".into());
        let options = m
            .options
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro" | "") && !o.starts_with("release_agent="))
            .collect::<Vec<_>>()
            .join(",");
        if out.iter().any(|h| h.name == name) {
            continue;
        }
        out.push(HostCgroup {
            name,
            v2: m.v2,
            options,
        });
    }
    if out.len() > 1 {
        // Hybrid: the cgroup2 hierarchy shows up as `unified`, as Docker shows it.
        for h in &mut out {
            if h.v2 {
                h.name = "unified".into();
            }
        }
    }
    out
}

/// Whether the direct path can create a container from `spec`: berth's own specs, without
/// user namespaces, hooks, joined namespaces other than the network, sysctls, LSM labels or
/// limits outside [`supported_limits`]. A seccomp profile left in the spec (one the filter cache does not
/// serve) also goes to libcontainer.
pub(super) fn supports(spec: &Spec) -> bool {
    let Some(linux) = spec.linux() else {
        return false;
    };
    let Some(process) = spec.process() else {
        return false;
    };
    let namespaces_ok = linux.namespaces().iter().flatten().all(|ns| {
        !matches!(
            ns.typ(),
            LinuxNamespaceType::User | LinuxNamespaceType::Time
        ) && (ns.path().is_none() || ns.typ() == LinuxNamespaceType::Network)
    });
    let has_mount_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::Mount);
    let mounts_ok = spec.mounts().iter().flatten().all(|m| {
        matches!(
            m.typ().as_deref(),
            Some("proc" | "tmpfs" | "devpts" | "sysfs" | "cgroup" | "mqueue" | "bind") | None
        )
    });
    namespaces_ok
        && has_mount_ns
        && mounts_ok
        && spec.hooks().is_none()
        && spec.root().is_some()
        && linux.uid_mappings().as_ref().is_none_or(Vec::is_empty)
        && linux.sysctl().as_ref().is_none_or(|s| s.is_empty())
        && linux.seccomp().is_none()
        && linux.rootfs_propagation().is_none()
        && linux.mount_label().is_none()
        && linux.intel_rdt().is_none()
        && linux.personality().is_none()
        && linux.cgroups_path().is_some()
        && linux
            .resources()
            .as_ref()
            .is_none_or(|r| supported_limits(r).is_some())
        && process.apparmor_profile().is_none()
        && process.selinux_label().is_none()
        && process.io_priority().is_none()
        && process.scheduler().is_none()
}

/// A container created on the direct path.
pub(super) struct Direct {
    /// The init's pid (host namespace).
    pid: i32,
    /// The init's pidfd: signals reach it, never a process that reused its pid.
    pidfd: OwnedFd,
    /// The write end of the init's start pipe, until start.
    start: Option<OwnedFd>,
    cgroup: Cgroup,
    /// The spec's namespaces an exec joins.
    join: CloneFlags,
    filter: Option<Arc<Filter>>,
}

/// Connects to the console socket at `path`, through a handle on its directory when the
/// path is too long for a socket address (state directories under long roots).
fn connect_console(path: &Path) -> Result<UnixStream, Error> {
    let fail =
        |e: std::io::Error| Error::from_message(format!("connect console socket: {e}"), None);
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path).map_err(fail);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return UnixStream::connect(path).map_err(fail);
    };
    let dir = std::fs::File::open(dir).map_err(fail)?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    UnixStream::connect(short).map_err(fail)
}

/// A pipe with both ends close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::from_message(format!("pipe: {e}"), None))
}

/// Forks with `flags` (new namespaces, `CLONE_PARENT`): 0 in the child. The caller is
/// single-threaded, so the child may allocate.
fn clone(flags: CloneFlags) -> Result<i32, Errno> {
    // SAFETY: clone(2) without a new stack and without CLONE_VM behaves like fork(2): the
    // child runs on a copy of this stack. The shim has one thread, so no lock is held
    // by a thread that does not exist in the child.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    i32::try_from(rc).map_err(|_| Errno::EOVERFLOW)
}

/// Makes a child of the shim non-dumpable until it executes the container's program: no
/// process of the container may trace it or open its `/proc/<pid>/exe` (the berth binary
/// on the host) or descriptors meanwhile.
fn non_dumpable() {
    let _ = nix::sys::prctl::set_dumpable(false);
}

/// Ends a child process after a failure: the message goes to the shim on `status`.
fn die(status: RawFd, fail: &Fail) -> ! {
    let mut msg = vec![1u8];
    msg.extend_from_slice(fail.0.as_bytes());
    let _ = nix::unistd::write(
        // SAFETY: `status` is the child's open write end of its status pipe.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(status) },
        &msg,
    );
    // SAFETY: _exit ends the process without running this copy of the shim's exit code.
    unsafe { libc::_exit(1) }
}

/// Clones a child of the shim with `flags` (0 in the child, as fork). The child closes
/// `shim_ends` (the shim's ends of its pipes, so that it sees the shim close them), becomes
/// non-dumpable and runs `body`; a failure goes to the shim on `status` and ends it.
fn spawn(
    flags: CloneFlags,
    shim_ends: &[RawFd],
    status: RawFd,
    body: impl FnOnce() -> Result<std::convert::Infallible, Fail>,
) -> Result<i32, Errno> {
    let pid = clone(flags)?;
    if pid != 0 {
        return Ok(pid);
    }
    non_dumpable();
    for fd in shim_ends {
        // The child never returns to drop the shim's copies of these descriptors.
        let _ = nix::unistd::close(*fd);
    }
    match body() {
        Err(fail) => die(status, &fail),
        Ok(never) => match never {},
    }
}

/// Moves the shim's child `pid` into `cgroup`, then lets it go on (one byte on `sync`).
fn admit(cgroup: &Cgroup, pid: i32, sync: &OwnedFd) -> Result<(), Error> {
    cgroup
        .join(pid)
        .map_err(|e| Error::from_message(format!("join cgroup: {e}"), None))?;
    nix::unistd::write(sync, &[0])
        .map(drop)
        .map_err(|e| Error::from_message(format!("signal child: {e}"), None))
}

/// Reads a child's report: `Ok(true)` for the ready byte, `Ok(false)` at end of input (the
/// child executed its program), the child's message as an error.
fn report(mut file: &std::fs::File, program: Option<&str>) -> Result<bool, Error> {
    let mut first = [0u8; 1];
    loop {
        match file.read(&mut first) {
            Ok(0) => return Ok(false),
            Ok(_) if first[0] == 0 => return Ok(true),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from_message(format!("read child status: {e}"), None)),
        }
    }
    let mut message = String::new();
    let _ = file.read_to_string(&mut message);
    Err(Error::from_message(message, program))
}

fn wait_child(pid: i32) {
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}

impl Direct {
    /// Creates the container of `spec`; its init waits for [`Direct::start`].
    pub(super) fn create(
        spec: &Spec,
        filter: Option<Arc<Filter>>,
        io: ProcessIo,
    ) -> Result<Self, Error> {
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::from_message("spec has no linux section", None))?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::from_message("spec has no process", None))?;
        let program = process.args().as_ref().and_then(|a| a.first()).cloned();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::from_message(format!("read mountinfo: {e}"), None))?;
        let mounts = cgroup_mounts(&mountinfo);
        let cgroups = host_cgroups(&mounts);
        let rel = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let limits = linux
            .resources()
            .as_ref()
            .and_then(supported_limits)
            .unwrap_or_default();
        let devices = linux
            .resources()
            .as_ref()
            .and_then(|r| r.devices().clone())
            .unwrap_or_default();
        let mut new = CloneFlags::empty();
        let mut join = CloneFlags::empty();
        let mut netns = None;
        let mut cgroupns = false;
        for ns in linux.namespaces().iter().flatten() {
            let flag = match ns.typ() {
                LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
                LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
                LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
                LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
                LinuxNamespaceType::Cgroup => {
                    cgroupns = true;
                    join |= CloneFlags::CLONE_NEWCGROUP;
                    continue;
                }
                _ => continue,
            };
            join |= flag;
            match ns.path() {
                Some(p) => {
                    let f = std::fs::File::open(p).map_err(|e| {
                        Error::from_message(format!("open namespace {}: {e}", p.display()), None)
                    })?;
                    netns = Some(OwnedFd::from(f));
                }
                None => new |= flag,
            }
        }
        let console = io
            .console_socket
            .as_deref()
            .map(connect_console)
            .transpose()?;
        let (sync_r, sync_w) = pipe()?;
        let (status_r, status_w) = pipe()?;
        let cgroup = Cgroup::create(&rel, &limits, &devices, &mounts)
            .map_err(|e| Error::from_message(format!("create cgroup {rel}: {e}"), None))?;
        let status = status_w.as_raw_fd();
        let spawned = spawn(
            new,
            &[sync_w.as_raw_fd(), status_r.as_raw_fd()],
            status,
            || {
                Init {
                    spec,
                    io: &io,
                    console: console.as_ref(),
                    netns: netns.as_ref(),
                    cgroups: &cgroups,
                    cgroupns,
                    sync: &sync_r,
                    status,
                    filter: filter.as_deref(),
                }
                .run()
            },
        );
        let pid = match spawned {
            Ok(pid) => pid,
            Err(e) => {
                let _ = cgroup.remove();
                return Err(Error::from_message(format!("clone: {e}"), None));
            }
        };
        drop(sync_r);
        drop(status_w);
        drop(console);
        drop(io);
        let pidfd = crate::sys::pidfd_open(pid)
            .map_err(|e| Error::from_message(format!("pidfd of the init: {e}"), None));
        let ready = admit(&cgroup, pid, &sync_w)
            .and_then(|()| report(&std::fs::File::from(status_r), program.as_deref()))
            .and_then(|ready| pidfd.map(|fd| (ready, fd)));
        match ready {
            Ok((true, pidfd)) => Ok(Self {
                pid,
                pidfd,
                start: Some(sync_w),
                cgroup,
                join,
                filter,
            }),
            failed => {
                // Not reaped yet, so the pid is still this child's.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                wait_child(pid);
                let _ = cgroup.remove();
                Err(failed
                    .err()
                    .unwrap_or_else(|| Error::from_message("container init exited early", None)))
            }
        }
    }

    /// The init's pid.
    pub(super) fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the init execute the container's process.
    pub(super) fn start(&mut self) -> Result<(), Error> {
        let fd = self
            .start
            .take()
            .ok_or_else(|| Error::from_message("container already started", None))?;
        std::fs::File::from(fd)
            .write_all(&[1])
            .map_err(|e| Error::from_message(format!("start container: {e}"), None))
    }

    /// Freezes or thaws the container.
    pub(super) fn freeze(&self, frozen: bool) -> Result<(), Error> {
        self.cgroup
            .freeze(frozen)
            .map_err(|e| Error::from_message(e.to_string(), None))
    }

    /// Kills what is left of the container and removes its cgroup.
    pub(super) fn delete(&mut self) -> Result<(), Error> {
        // A created init waiting for start leaves when its pipe closes.
        self.start = None;
        let _ = crate::sys::pidfd_kill(&self.pidfd);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match self.cgroup.remove() {
                Ok(()) => return Ok(()),
                Err(e) if std::time::Instant::now() > deadline => {
                    return Err(Error::from_message(e.to_string(), None));
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    }

    /// Runs `process` in the container: a child joins the cgroup and the init's namespaces
    /// and forks the process as the shim's own child (`CLONE_PARENT`).
    pub(super) fn exec(&self, process: &Process, io: ProcessIo) -> Result<i32, Error> {
        let program = process.args().as_ref().and_then(|a| a.first()).cloned();
        let pidfd = &self.pidfd;
        let console = io
            .console_socket
            .as_deref()
            .map(connect_console)
            .transpose()?;
        let (sync_r, sync_w) = pipe()?;
        let (status_r, status_w) = pipe()?;
        let (pid_r, pid_w) = pipe()?;
        let status = status_w.as_raw_fd();
        let shim_ends = [sync_w.as_raw_fd(), status_r.as_raw_fd(), pid_r.as_raw_fd()];
        let helper = spawn(CloneFlags::empty(), &shim_ends, status, || {
            Exec {
                process,
                io: &io,
                console: console.as_ref(),
                pidfd,
                join: self.join,
                sync: &sync_r,
                pid: pid_w,
                filter: self.filter.as_deref(),
            }
            .run()
        })
        .map_err(|e| Error::from_message(format!("fork: {e}"), None))?;
        drop(sync_r);
        drop(status_w);
        drop(console);
        drop(io);
        let joined = admit(&self.cgroup, helper, &sync_w);
        let status_r = std::fs::File::from(status_r);
        // The helper reports the process' pid on its own pipe and leaves (or reports a
        // failure on the status pipe); the process reports on the status pipe, which ends
        // when it executes its program.
        let pid = joined.and_then(|()| {
            let mut buf = [0u8; 4];
            match std::fs::File::from(pid_r).read_exact(&mut buf) {
                Ok(()) => Ok(i32::from_ne_bytes(buf)),
                Err(_) => match report(&status_r, program.as_deref()) {
                    Err(e) => Err(e),
                    Ok(_) => Err(Error::from_message("exec helper exited", None)),
                },
            }
        });
        wait_child(helper);
        let pid = pid?;
        match report(&status_r, program.as_deref()) {
            Ok(_) => Ok(pid),
            Err(e) => {
                wait_child(pid);
                Err(e)
            }
        }
    }
}

/// What the init process needs, borrowed from the shim's copy of memory.
struct Init<'a> {
    spec: &'a Spec,
    io: &'a ProcessIo,
    console: Option<&'a UnixStream>,
    netns: Option<&'a OwnedFd>,
    cgroups: &'a [HostCgroup],
    cgroupns: bool,
    sync: &'a OwnedFd,
    status: RawFd,
    filter: Option<&'a Filter>,
}

/// Waits for one byte from the shim on `sync`; false at end of input.
fn await_byte(sync: &OwnedFd) -> Result<bool, Fail> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sync.as_raw_fd(), &mut b) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Fail::sys("wait for the shim", e)),
        }
    }
}

impl Init<'_> {
    fn run(self) -> Result<std::convert::Infallible, Fail> {
        let process = self
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| Fail::new("no process"))?;
        let terminal = process.terminal() == Some(true);
        if !terminal {
            process::dup_stdio(self.io)?;
        }
        if let Some(ns) = self.netns {
            nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| Fail::sys("join network namespace", e))?;
        }
        let root_path: PathBuf = self
            .spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .ok_or_else(|| Fail::new("no root"))?;
        let rootfs = rootfs::Rootfs::prepare(&root_path)?;
        // The shim moves this process into the container's cgroup, then the cgroup
        // namespace can be made with that cgroup as its root (before any cgroup mount).
        let mut joined = false;
        let mut enter_cgroup = || -> Result<(), Fail> {
            if !joined {
                joined = true;
                if !await_byte(self.sync)? {
                    return Err(Fail::new("the shim went away"));
                }
                if self.cgroupns {
                    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                        .map_err(|e| Fail::sys("new cgroup namespace", e))?;
                }
            }
            Ok(())
        };
        let mut dev_tmpfs = false;
        for m in self.spec.mounts().iter().flatten() {
            if m.typ().as_deref() == Some("cgroup") {
                enter_cgroup()?;
            }
            rootfs.mount(m, self.cgroups)?;
            if m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs") {
                dev_tmpfs = true;
            }
        }
        enter_cgroup()?;
        if dev_tmpfs {
            if let Some(devices) = self
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.devices().as_ref())
            {
                rootfs.devices(devices)?;
            }
            rootfs.default_devices()?;
        }
        let tty = if terminal {
            let (master, slave) = rootfs.terminal()?;
            let console = self
                .console
                .ok_or_else(|| Fail::new("terminal without a console socket"))?;
            process::send_fd(console, &master)?;
            Some(slave)
        } else {
            None
        };
        rootfs.pivot()?;
        rootfs::protect(self.spec)?;
        if let Some(h) = self.spec.hostname().as_deref()
            && !h.is_empty()
        {
            nix::unistd::sethostname(h).map_err(|e| Fail::sys("set hostname", e))?;
        }
        if let Some(d) = self.spec.domainname().as_deref()
            && !d.is_empty()
        {
            process::set_domainname(d)?;
        }
        if let Some(adj) = process.oom_score_adj() {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|e| Fail::new(format!("set oom_score_adj: {e}")))?;
        }
        if let Some(slave) = &tty {
            process::take_terminal(slave)?;
        }
        drop(tty);
        let ready = process::Ready::prepare(process, self.filter)?;
        // Ready: the shim returns from create; start sends the next byte.
        let _ = nix::unistd::write(
            // SAFETY: the init's open write end of its status pipe.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(self.status) },
            &[0],
        );
        if !await_byte(self.sync)? {
            // Deleted before start.
            // SAFETY: leaving this copy of the shim without running its exit code.
            unsafe { libc::_exit(0) }
        }
        ready.exec()
    }
}

/// What an exec's helper and process need.
struct Exec<'a> {
    process: &'a Process,
    io: &'a ProcessIo,
    console: Option<&'a UnixStream>,
    pidfd: &'a OwnedFd,
    join: CloneFlags,
    sync: &'a OwnedFd,
    /// Where the helper reports the process' pid.
    pid: OwnedFd,
    filter: Option<&'a Filter>,
}

impl Exec<'_> {
    /// The helper: waits until the shim moved it into the cgroup, joins the namespaces,
    /// forks the process as the shim's child, reports its pid and leaves.
    fn run(self) -> Result<std::convert::Infallible, Fail> {
        if !await_byte(self.sync)? {
            return Err(Fail::new("the shim went away"));
        }
        nix::sched::setns(self.pidfd, self.join)
            .map_err(|e| Fail::sys("join the container's namespaces", e))?;
        let pid = clone(CloneFlags::CLONE_PARENT).map_err(|e| Fail::sys("fork", e))?;
        if pid != 0 {
            let _ = nix::unistd::write(&self.pid, &pid.to_ne_bytes());
            // SAFETY: leaving this copy of the shim without running its exit code.
            unsafe { libc::_exit(0) }
        }
        drop(self.pid);
        // The exec process, in the container's namespaces.
        let _ = nix::unistd::chdir("/");
        if self.process.terminal() == Some(true) {
            let master = process::open_ptmx()?;
            let slave = open_slave(&master)?;
            let console = self
                .console
                .ok_or_else(|| Fail::new("terminal without a console socket"))?;
            process::send_fd(console, &master)?;
            drop(master);
            process::take_terminal(&slave)?;
        } else {
            process::dup_stdio(self.io)?;
        }
        // The status pipe ends when the program runs; a failure before is reported on it.
        process::Ready::prepare(self.process, self.filter)?.exec()
    }
}

/// Unlocks the PTY of `master` and opens its slave (TIOCGPTPEER: no path lookup).
pub(super) fn open_slave(master: &OwnedFd) -> Result<OwnedFd, Fail> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which lives for the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(Fail::sys("unlock the terminal", Errno::last()));
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor or -1.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Fail::sys("open the terminal's slave", Errno::last()));
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
29 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
";

    #[test]
    fn host_hierarchies_keep_their_names_and_mount_data() {
        let h = host_cgroups(&cgroup_mounts(HYBRID));
        let names: Vec<_> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["unified", "memory", "cpu,cpuacct", "systemd"]);
        assert_eq!(h[2].options, "cpu,cpuacct");
        assert_eq!(h[3].options, "xattr,name=systemd");
        assert!(h[0].v2 && !h[1].v2);
        let v2 = host_cgroups(&cgroup_mounts(
            "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        ));
        assert_eq!(v2.len(), 1);
        assert!(v2[0].v2);
    }

    #[test]
    fn berths_specs_take_the_direct_path_and_others_do_not() {
        let config = crate::spec::tests::config();
        let mut spec = crate::spec::container_spec(&config, &Default::default()).expect("spec");
        // The filter cache takes the seccomp profile out before the choice.
        assert!(!supports(&spec));
        if let Some(l) = spec.linux_mut() {
            l.set_seccomp(None);
        }
        assert!(supports(&spec));
        let mut hooked = spec.clone();
        hooked.set_hooks(Some(Default::default()));
        assert!(!supports(&hooked));
        let mut privileged = crate::spec::tests::config();
        privileged.privileged = true;
        let host = crate::spec::HostFacts {
            hard_limits: Vec::new(),
            devices: vec![serde_json::json!({
                "path": "/dev/sda", "type": "b", "major": 8, "minor": 0
            })],
        };
        let spec = crate::spec::container_spec(&privileged, &host).expect("spec");
        assert!(
            supports(&spec),
            "privileged containers' device nodes are made here"
        );
        let mut joined = spec.clone();
        if let Some(l) = joined.linux_mut() {
            let mut ns = l.namespaces().clone().unwrap_or_default();
            ns.push(
                oci_spec::runtime::LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Ipc)
                    .path("/proc/1/ns/ipc")
                    .build()
                    .expect("namespace"),
            );
            l.set_namespaces(Some(ns));
        }
        assert!(!supports(&joined));
    }
}
