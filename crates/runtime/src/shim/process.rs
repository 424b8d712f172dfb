//! One process the shim supervises (the container's init or an exec): its stdio ends on the
//! shim's side, its pid and pidfd, and its exit. Without a terminal stdin, stdout and stderr
//! are three pipes (the shim ignores SIGPIPE, so a write to a closed stdin gives EPIPE); with
//! one, the PTY master arrives over a console socket (the OCI console-socket protocol).
//!
//! Stdin is a pipe, not a socket pair: a process that splices its stdin into its stdout
//! (busybox `cat` uses sendfile) holds the stdout pipe's lock while it waits on a socket for
//! input, and the shim's next read of stdout then waits for that lock while the input it
//! would deliver waits for the shim. Waiting on an empty pipe releases the lock.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use crate::ExitStatus;
use crate::executor::ProcessIo;
use crate::protocol::StreamKind;

/// An output stream of the process, read by the shim.
pub struct Output {
    pub fd: OwnedFd,
    pub stream: StreamKind,
    pub open: bool,
}

/// A supervised process.
pub struct Proc {
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub pid: Option<i32>,
    pub pidfd: Option<OwnedFd>,
    pub outputs: Vec<Output>,
    /// The shim's end of stdin (socket, or a clone of the PTY master).
    pub stdin: Option<OwnedFd>,
    /// Input waiting for the process to read it.
    pub stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written.
    pub stdin_eof: bool,
    pub master: Option<OwnedFd>,
    /// Raw exit code once reaped.
    pub code: Option<i32>,
    /// Set once the exit is final (streams drained).
    pub exit: Option<ExitStatus>,
    /// Listener of the console socket until the PTY master arrives.
    console: Option<(UnixListener, PathBuf)>,
}

fn nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

impl Proc {
    /// Prepares the stdio of a new process; `console` is the name of the console socket to
    /// bind in the current directory when `tty` (its absolute path is `dir/console`).
    pub fn prepare(
        tty: bool,
        open_stdin: bool,
        stdin_once: bool,
        dir: &Path,
        console: &str,
    ) -> io::Result<(Self, ProcessIo)> {
        let mut proc = Proc {
            tty,
            open_stdin,
            stdin_once,
            pid: None,
            pidfd: None,
            outputs: Vec::new(),
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_eof: false,
            master: None,
            code: None,
            exit: None,
            console: None,
        };
        let mut io = ProcessIo::default();
        if tty {
            let _ = std::fs::remove_file(console);
            // Bound by its relative name: the absolute path may exceed sun_path's 108 bytes.
            let listener = UnixListener::bind(console)?;
            listener.set_nonblocking(true)?;
            io.console_socket = Some(dir.join(console));
            proc.console = Some((listener, PathBuf::from(console)));
            return Ok((proc, io));
        }
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        nonblocking(&out_r)?;
        nonblocking(&err_r)?;
        proc.outputs.push(Output {
            fd: out_r,
            stream: StreamKind::Stdout,
            open: true,
        });
        proc.outputs.push(Output {
            fd: err_r,
            stream: StreamKind::Stderr,
            open: true,
        });
        io.stdout = Some(out_w);
        io.stderr = Some(err_w);
        if open_stdin {
            let (theirs, ours) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
            nonblocking(&ours)?;
            proc.stdin = Some(ours);
            io.stdin = Some(theirs);
        } else {
            io.stdin = Some(std::fs::File::open("/dev/null")?.into());
        }
        Ok((proc, io))
    }

    /// After the runtime created the process: takes the PTY master from the console socket.
    pub fn receive_console(&mut self) -> io::Result<()> {
        let Some((listener, name)) = self.console.take() else {
            return Ok(());
        };
        let _ = std::fs::remove_file(&name);
        let (conn, _) = listener.accept().map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::other("the runtime did not send the terminal")
            } else {
                e
            }
        })?;
        conn.set_nonblocking(false)?;
        let master = crate::sys::recv_fd(&conn)?;
        nonblocking(&master)?;
        self.outputs.push(Output {
            fd: master.try_clone()?,
            stream: StreamKind::Stdout,
            open: true,
        });
        if self.open_stdin {
            self.stdin = Some(master.try_clone()?);
        }
        self.master = Some(master);
        Ok(())
    }

    /// Starts supervising `pid`.
    pub fn set_pid(&mut self, pid: i32) -> io::Result<()> {
        self.pid = Some(pid);
        self.pidfd = Some(crate::sys::pidfd_open(pid)?);
        Ok(())
    }

    /// Whether the process runs (started and not reaped).
    pub fn alive(&self) -> bool {
        self.pid.is_some() && self.code.is_none()
    }

    /// Reads what is available on output `i`: `Ok(None)` when nothing is (or the stream
    /// ended, which closes it).
    pub fn read_output(&mut self, i: usize, buf: &mut [u8]) -> Option<(StreamKind, usize)> {
        let out = self.outputs.get_mut(i)?;
        if !out.open {
            return None;
        }
        match nix::unistd::read(out.fd.as_raw_fd(), buf) {
            Ok(0) => {
                out.open = false;
                None
            }
            Ok(n) => Some((out.stream, n)),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => None,
            // EIO: the PTY's slave side is closed.
            Err(_) => {
                out.open = false;
                None
            }
        }
    }

    /// Writes pending input; closes stdin when asked to and everything is written.
    pub fn flush_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    self.stdin_buf.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
        if self.stdin_eof && !self.tty {
            // Closing the pipe's only write end is the process' end of file.
            drop(self.stdin.take());
        }
    }
}
