//! The shim: one monitor process per container, re-executed from the `berth` binary as
//! `berth shim --state-dir DIR --id ID`. It detaches into its own session, becomes a child
//! subreaper, writes the OCI bundle, creates the container through the chosen runtime,
//! reports `{"status":"pid",..}` (or an error) as one line on its stdout, and then serves the
//! control socket until the container has exited and no client remains.

mod jsonlog;
mod process;
mod reaper;
mod requests;
mod server;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Component, Path, PathBuf};

use crate::executor::{self, Executor};
use crate::layout::{self, Layout};
use crate::protocol::{self, ErrorKind, Reply};
use crate::spec::{HostFacts, container_spec};
use crate::{ContainerConfig, NetworkNamespace, RuntimeKind};

pub use jsonlog::JsonLog;
pub use server::Shim;

/// Entry point of `berth shim ...`; see [`crate::shim_main`].
pub fn main(args: &[String]) -> i32 {
    let Some((state_dir, id)) = parse_args(args) else {
        eprintln!("usage: berth shim --state-dir DIR (--id ID | --standby)");
        return 2;
    };
    let id = match id {
        Some(id) => id,
        None => match assignment(&state_dir) {
            Some(id) => id,
            // The daemon went away without using this standby shim.
            None => return 0,
        },
    };
    match setup(&state_dir, &id) {
        Ok((shim, pid)) => {
            if report(&Reply::Pid { pid }) {
                shim.run()
            } else {
                // The daemon that asked is gone before hearing of the container (killed
                // mid-create); its successor found no shim to talk to and dropped the
                // container, so nobody would ever start or remove this one.
                shim.abandon();
                1
            }
        }
        Err(reply) => {
            report(&reply);
            1
        }
    }
}

/// The state directory and the container id, `None` for a standby shim (`--standby`).
fn parse_args(args: &[String]) -> Option<(PathBuf, Option<String>)> {
    let mut state_dir = None;
    let mut id = None;
    let mut standby = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--state-dir" => state_dir = it.next().map(PathBuf::from),
            "--id" => id = Some(it.next()?.clone()),
            "--standby" => standby = true,
            _ => return None,
        }
    }
    match (id, standby) {
        (Some(_), true) | (None, false) => None,
        (id, _) => Some((state_dir?, id)),
    }
}

/// A standby shim, started ahead of need so that a container's start does not wait for the
/// executable to load, waits for its container id as one line on stdin (`None` at end of
/// input: the daemon stopped). It then takes the container's shim log as its stderr and
/// goes on as if started for that id.
fn assignment(state_dir: &Path) -> Option<String> {
    // Waiting costs no more memory than an exited container's shim: the pages of loading
    // fault back in from the page cache once a container comes.
    crate::sys::trim_resident();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    let id = line.trim().to_string();
    if id.is_empty() {
        return None;
    }
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
    }
    if layout::valid_id(&id)
        && let Ok(log) = std::fs::File::create(Layout::new(state_dir, &id).shim_log())
    {
        let _ = nix::unistd::dup2(log.as_raw_fd(), 2);
    }
    Some(id)
}

/// Writes the startup result on stdout, then points stdout at /dev/null so the daemon's
/// pipe is released. False when the daemon's end of the pipe is closed.
fn report(reply: &Reply) -> bool {
    let mut out = std::io::stdout();
    let delivered = out
        .write_all(&protocol::encode(reply))
        .and_then(|()| out.flush())
        .is_ok();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
    delivered
}

fn create_error(message: impl Into<String>) -> Reply {
    Reply::error(
        ErrorKind::Create {
            exec_not_found: false,
        },
        message,
    )
}

fn setup(state_dir: &Path, id: &str) -> Result<(Shim, u32), Reply> {
    if !layout::valid_id(id) {
        return Err(create_error(format!("invalid container id {id:?}")));
    }
    // A new session: the shim outlives the daemon and never gets its terminal's signals.
    let _ = nix::unistd::setsid();
    // Orphans of the container (runc's init after `runc create` exits) become our children.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let dir = std::fs::canonicalize(Layout::new(state_dir, id).dir())
        .map_err(|e| create_error(format!("state directory of {id}: {e}")))?;
    std::env::set_current_dir(&dir)
        .map_err(|e| create_error(format!("enter {}: {e}", dir.display())))?;
    let text = std::fs::read(layout::CONFIG)
        .map_err(|e| create_error(format!("read {}: {e}", layout::CONFIG)))?;
    let config: ContainerConfig = serde_json::from_slice(&text)
        .map_err(|e| create_error(format!("parse {}: {e}", layout::CONFIG)))?;

    let bundle = dir.join(layout::BUNDLE);
    let mut spec = container_spec(&config, &HostFacts::probe(config.privileged))
        .map_err(|e| create_error(e.to_string()))?;
    let root = dir.join(layout::RUNTIME_ROOT);
    let kind = config.runtime.clone().unwrap_or(RuntimeKind::Builtin);
    let mut executor = executor::for_kind(&kind, id, &root);
    executor
        .prepare(&mut spec, &state_dir.join(layout::SECCOMP_CACHE))
        .map_err(|e| create_error(e.message))?;
    ensure_cwd(&config.rootfs, &config.cwd).map_err(|e| {
        create_error(format!(
            "create working directory {}: {e}",
            config.cwd.display()
        ))
    })?;
    std::fs::create_dir_all(&bundle)
        .and_then(|()| {
            spec.save(bundle.join("config.json"))
                .map_err(std::io::Error::other)
        })
        .map_err(|e| create_error(format!("write bundle: {e}")))?;
    std::fs::create_dir_all(&root).map_err(|e| create_error(format!("runtime root: {e}")))?;

    let (mut init, io) = process::Proc::prepare(
        config.tty,
        config.open_stdin,
        config.stdin_once,
        &dir,
        "console.sock",
    )
    .map_err(|e| create_error(format!("container stdio: {e}")))?;
    let pid = executor.create(&bundle, io).map_err(|e| {
        Reply::error(
            ErrorKind::Create {
                exec_not_found: e.exec_not_found,
            },
            e.message,
        )
    })?;
    let fail = |executor: &mut Box<dyn Executor>, msg: String| {
        let _ = executor.delete();
        create_error(msg)
    };
    if let Err(e) = init.receive_console() {
        return Err(fail(&mut executor, format!("container terminal: {e}")));
    }
    if config.network == NetworkNamespace::New
        && let Err(e) = crate::sys::loopback_up(pid)
    {
        tracing::warn!(error = %e, "cannot bring up loopback");
    }
    if let Err(e) = init.set_pid(pid) {
        return Err(fail(
            &mut executor,
            format!("watch init process {pid}: {e}"),
        ));
    }
    let _ = std::fs::remove_file(layout::SOCKET);
    let listener = match UnixListener::bind(layout::SOCKET).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    }) {
        Ok(l) => l,
        Err(e) => return Err(fail(&mut executor, format!("control socket: {e}"))),
    };
    let log = if config.log_path.as_os_str().is_empty() {
        JsonLog::disabled()
    } else {
        JsonLog::open(&config.log_path)
    };
    let pid = u32::try_from(pid).unwrap_or(0);
    Ok((Shim::new(config, dir, executor, listener, init, log), pid))
}

/// Creates the working directory inside the rootfs without following symlinks out of it
/// (an existing symlink component is left for the runtime to resolve inside the container).
fn ensure_cwd(rootfs: &Path, cwd: &Path) -> std::io::Result<()> {
    let mut cur = rootfs.to_path_buf();
    for comp in cwd.components() {
        match comp {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(name) => cur.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(std::io::Error::other(
                    "working directory must not contain ..",
                ));
            }
        }
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return Ok(()),
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(std::io::Error::other("not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&cur)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_arguments_parse() {
        let args: Vec<String> = ["--state-dir", "/s", "--id", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse_args(&args),
            Some((PathBuf::from("/s"), Some("abc".to_string())))
        );
        assert_eq!(parse_args(&args[..2]), None);
        let standby: Vec<String> = ["--state-dir", "/s", "--standby"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(parse_args(&standby), Some((PathBuf::from("/s"), None)));
        let both: Vec<String> = args.iter().chain(&standby[2..]).cloned().collect();
        assert_eq!(parse_args(&both), None);
    }

    #[test]
    fn cwd_is_created_inside_rootfs_and_dotdot_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        ensure_cwd(root.path(), Path::new("/work/dir")).expect("create");
        assert!(root.path().join("work/dir").is_dir());
        assert!(ensure_cwd(root.path(), Path::new("/../etc")).is_err());
    }
}
