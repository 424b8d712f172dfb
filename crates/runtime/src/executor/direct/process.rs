//! The last steps of a container process, init or exec, in the container: stdio or the
//! terminal, rlimits, working directory, the program's path, user and groups,
//! capabilities, `no_new_privs`, the seccomp filter, then `execve`.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability as Cap};
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Capabilities, Process};

use super::Fail;
use crate::executor::ProcessIo;
use crate::executor::seccomp::Filter;

/// The search path when the process' environment has none (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Puts the process' pipe ends on descriptors 0, 1 and 2.
pub(super) fn dup_stdio(io: &ProcessIo) -> Result<(), Fail> {
    for (fd, target) in [(&io.stdin, 0), (&io.stdout, 1), (&io.stderr, 2)] {
        if let Some(fd) = fd {
            nix::unistd::dup2(fd.as_raw_fd(), target).map_err(|e| Fail::sys("set up stdio", e))?;
        }
    }
    Ok(())
}

/// Sends `fd` over the console socket (the OCI console-socket protocol).
pub(super) fn send_fd(console: &UnixStream, fd: &OwnedFd) -> Result<(), Fail> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        console.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(|e| Fail::sys("send the terminal", e))
}

/// Opens a new terminal master in the current mount namespace's `/dev/ptmx`.
pub(super) fn open_ptmx() -> Result<OwnedFd, Fail> {
    nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: the kernel just returned this descriptor to us.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
    .map_err(|e| Fail::sys("open /dev/ptmx", e))
}

/// Makes `slave` the controlling terminal of a new session and the process' stdio.
pub(super) fn take_terminal(slave: &OwnedFd) -> Result<(), Fail> {
    nix::unistd::setsid().map_err(|e| Fail::sys("new session", e))?;
    // SAFETY: TIOCSCTTY takes an int argument; no memory is passed.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(Fail::sys("set the controlling terminal", Errno::last()));
    }
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target)
            .map_err(|e| Fail::sys("terminal as stdio", e))?;
    }
    Ok(())
}

/// setdomainname(2) in the container's UTS namespace.
pub(super) fn set_domainname(name: &str) -> Result<(), Fail> {
    // SAFETY: the pointer and length describe `name`'s bytes, which live for the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc < 0 {
        return Err(Fail::sys("set domain name", Errno::last()));
    }
    Ok(())
}

/// A process whose user, capabilities and limits are set, ready to execute its program.
pub(super) struct Ready<'a> {
    program: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// The filter still to load right before `execve`.
    filter: Option<&'a Filter>,
}

fn cstring(s: &str, what: &str) -> Result<CString, Fail> {
    CString::new(s).map_err(|_| Fail::new(format!("{what} contains a NUL byte")))
}

fn caps_of(set: &Option<Capabilities>) -> HashSet<Cap> {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse().ok())
        .collect()
}

fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "RLIMIT_AS" => R::RLIMIT_AS,
        "RLIMIT_CORE" => R::RLIMIT_CORE,
        "RLIMIT_CPU" => R::RLIMIT_CPU,
        "RLIMIT_DATA" => R::RLIMIT_DATA,
        "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => R::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => R::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => R::RLIMIT_NICE,
        "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => R::RLIMIT_NPROC,
        "RLIMIT_RSS" => R::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => R::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => R::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => R::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => R::RLIMIT_STACK,
        _ => return None,
    })
}

/// Finds `program` as execve would run it: a path with a `/` as it is, otherwise the first
/// regular executable file of that name in `path`.
fn lookup(program: &str, path: &str) -> Result<PathBuf, Fail> {
    let not_found = || {
        Fail::new(format!(
            "exec: \"{program}\": executable file not found in $PATH"
        ))
    };
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return if Path::new(program).exists() {
            Ok(PathBuf::from(program))
        } else {
            Err(Fail::new(format!(
                "exec: \"{program}\": stat {program}: no such file or directory"
            )))
        };
    }
    if program.is_empty() {
        return Err(not_found());
    }
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|p| executable(p))
        .ok_or_else(not_found)
}

impl<'a> Ready<'a> {
    /// Applies the process' rlimits, working directory, user, capabilities and
    /// `no_new_privs`, and finds its program. The seccomp filter is loaded here when the
    /// process will lack the right to load it itself (no `no_new_privs` and no
    /// CAP_SYS_ADMIN at the end), otherwise right before `execve`.
    pub(super) fn prepare(process: &Process, filter: Option<&'a Filter>) -> Result<Self, Fail> {
        for r in process.rlimits().iter().flatten() {
            let name = serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let resource = rlimit_resource(&name)
                .ok_or_else(|| Fail::new(format!("unknown rlimit {name}")))?;
            nix::sys::resource::setrlimit(resource, r.soft(), r.hard())
                .map_err(|e| Fail::sys(format!("set {name}"), e))?;
        }
        let user = process.user();
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
            user.umask().unwrap_or(0o022),
        ));
        let args: Vec<String> = process.args().clone().unwrap_or_default();
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let first = args.first().ok_or_else(|| Fail::new("no command given"))?;
        let caps = process.capabilities().as_ref();
        let bounding = caps_of(&caps.and_then(|c| c.bounding().clone()));
        let effective = caps_of(&caps.and_then(|c| c.effective().clone()));
        let permitted = caps_of(&caps.and_then(|c| c.permitted().clone()));
        let inheritable = caps_of(&caps.and_then(|c| c.inheritable().clone()));
        let ambient = caps_of(&caps.and_then(|c| c.ambient().clone()));
        let nnp = process.no_new_privileges() == Some(true);
        let early = !nnp && !effective.contains(&Cap::CAP_SYS_ADMIN);

        let cwd = process.cwd();
        nix::unistd::chdir(cwd.as_path())
            .map_err(|e| Fail::sys(format!("chdir to cwd ({})", cwd.display()), e))?;
        if nnp {
            nix::sys::prctl::set_no_new_privs().map_err(|e| Fail::sys("set no_new_privs", e))?;
        }
        let mut filter = filter;
        if early && let Some(f) = filter.take() {
            f.load()
                .map_err(|e| Fail::new(format!("load seccomp filter: {e}")))?;
        }
        for cap in caps::runtime::thread_all_supported() {
            if !bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| Fail::new(format!("drop {cap} from the bounding set: {e}")))?;
            }
        }
        // The groups are always set: the process must not keep the shim's.
        let (uid, gid) = (user.uid(), user.gid());
        nix::sys::prctl::set_keepcaps(true).map_err(|e| Fail::sys("keep capabilities", e))?;
        let groups: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).map_err(|e| Fail::sys("set groups", e))?;
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| Fail::sys(format!("set gid {gid}"), e))?;
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| Fail::sys(format!("set uid {uid}"), e))?;
        nix::sys::prctl::set_keepcaps(false).map_err(|e| Fail::sys("keep capabilities", e))?;
        let set = |which: CapSet, caps: &HashSet<Cap>, name: &str| {
            caps::set(None, which, caps)
                .map_err(|e| Fail::new(format!("set {name} capabilities: {e}")))
        };
        set(
            CapSet::Effective,
            &effective.intersection(&permitted).copied().collect(),
            "effective",
        )?;
        set(CapSet::Permitted, &permitted, "permitted")?;
        set(CapSet::Inheritable, &inheritable, "inheritable")?;
        set(CapSet::Effective, &effective, "effective")?;
        if !ambient.is_empty() {
            set(CapSet::Ambient, &ambient, "ambient")?;
        }

        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let program = lookup(first, path)?;
        if nix::unistd::access(&program, nix::unistd::AccessFlags::X_OK).is_err() {
            return Err(Fail::new(format!("exec: \"{first}\": permission denied")));
        }
        Ok(Self {
            program: cstring(&program.to_string_lossy(), "program")?,
            args: args
                .iter()
                .map(|a| cstring(a, "argument"))
                .collect::<Result<_, _>>()?,
            env: env
                .iter()
                .map(|e| cstring(e, "environment"))
                .collect::<Result<_, _>>()?,
            filter,
        })
    }

    /// Loads the filter if still due, restores the signal state a program expects and
    /// executes the program.
    pub(super) fn exec(self) -> Result<std::convert::Infallible, Fail> {
        if let Some(f) = self.filter {
            f.load()
                .map_err(|e| Fail::new(format!("load seccomp filter: {e}")))?;
        }
        crate::sys::default_sigpipe();
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&nix::sys::signal::SigSet::empty()),
            None,
        );
        match nix::unistd::execve(&self.program, &self.args, &self.env) {
            Err(e) => Err(Fail::sys(
                format!("exec: \"{}\"", self.program.to_string_lossy()),
                e,
            )),
            Ok(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_path_like_execvp() {
        assert_eq!(
            lookup("sh", "/nonexistent:/bin").expect("sh"),
            Path::new("/bin/sh")
        );
        let e = lookup("no-such-program", "/bin").expect_err("missing");
        assert_eq!(
            e.0,
            "exec: \"no-such-program\": executable file not found in $PATH"
        );
        assert!(lookup("/no/such", "/bin").is_err());
        assert_eq!(lookup("/bin/sh", "").expect("path"), Path::new("/bin/sh"));
    }
}
