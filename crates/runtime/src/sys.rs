//! The few system calls without a safe wrapper in `nix` 0.29: `pidfd_open`, the PTY window
//! size, receiving a file descriptor over a unix socket, the SIGPIPE disposition and bringing
//! up a network namespace's loopback interface.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// A pollable descriptor that becomes readable when process `pid` exits (pidfd_open(2)).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
    // is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("descriptor out of range"))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends SIGKILL to the process of `pidfd` (pidfd_send_signal(2)); an error once it has
/// exited.
pub fn pidfd_kill(pidfd: &OwnedFd) -> io::Result<()> {
    // SAFETY: the call takes a descriptor, a signal number and a null siginfo; no memory is
    // passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the window size of the terminal behind `fd` (TIOCSWINSZ, ioctl_tty(2)).
pub fn set_winsize(fd: &OwnedFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which lives for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one descriptor sent with SCM_RIGHTS on `sock` (the OCI console socket protocol).
pub fn recv_fd(sock: &UnixStream) -> io::Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut received = Vec::new();
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            received.extend(fds);
        }
    }
    let mut owned = received.into_iter().map(|fd| {
        // SAFETY: SCM_RIGHTS installed these descriptors in this process for us alone.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    owned
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no descriptor received"))
}

/// Restores the default disposition of SIGPIPE (called in the container just before exec).
pub fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installing SIG_DFL involves no handler code; the process is single-threaded
    // here (libcontainer's init right before execve).
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Brings up `lo` in the network namespace of process `pid`, then returns to this process'
/// namespace. Only for single-threaded processes (setns(2) on a thread).
pub fn loopback_up(pid: i32) -> io::Result<()> {
    use nix::sched::{CloneFlags, setns};
    let own = std::fs::File::open("/proc/self/ns/net")?;
    let target = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    setns(&target, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    let result = set_lo_up();
    setns(&own, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    result
}

fn set_lo_up() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned here only.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the named interface in `req`, which outlives
    // the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds `ifru_flags`.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads `req`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Shrinks this process' resident set once its busy phase is over: read-only private file
/// mappings that hold no private copy of any page (the text and read-only data of the
/// executable and libraries) are dropped from the page tables (madvise(2) `MADV_DONTNEED`;
/// the pages stay in the page cache and fault back in when used), and freed heap is handed
/// back to the system (`malloc_trim`). The shim calls this after starting a process (the
/// code of creating a container is not needed while it only relays output), the daemon when
/// it has become idle.
pub fn trim_resident() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut ranges = Vec::new();
    // (start, end, read-only private file mapping) of the mapping being read.
    let mut current: Option<(usize, usize, bool)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            let perms = fields.next().unwrap_or("");
            let inode = fields.nth(2).unwrap_or("0");
            let eligible = perms.starts_with('r')
                && !perms.contains('w')
                && perms.ends_with('p')
                && inode != "0";
            current = Some((start, end, eligible));
        } else if first == "Anonymous:"
            && let Some((start, end, true)) = current.take()
            && fields.next() == Some("0")
        {
            ranges.push((start, end));
        }
    }
    for (start, end) in ranges {
        // SAFETY: the range is a whole mapping of this process taken from /proc/self/smaps;
        // it is read-only, private, file-backed and holds no anonymous (copied-on-write)
        // page, so discarding its page-table entries loses nothing: every page is read back
        // from the file on the next access.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
    // SAFETY: malloc_trim only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Installs the seccomp BPF `program` on the calling thread (`seccomp(2)`,
/// SECCOMP_SET_MODE_FILTER, with `flags`).
pub(crate) fn seccomp_set_filter(
    program: &[libc::sock_filter],
    flags: libc::c_uint,
) -> std::io::Result<()> {
    const SET_MODE_FILTER: libc::c_uint = 1;
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| std::io::Error::other("seccomp program too long"))?,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
