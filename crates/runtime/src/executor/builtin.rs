//! The built-in runtime, in the shim's process: berth's own direct path ([`super::direct`])
//! for the specs it supports, youki's `libcontainer` for the rest. Either way the init
//! process is the shim's own child (libcontainer's intermediate process clones it with
//! CLONE_PARENT) and the shim reaps it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use caps::{CapSet, Capability as Cap};
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::{Process, Spec};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor as Workload, ExecutorError, ExecutorValidationError};

use super::direct::{self, Direct};
use super::seccomp::{self, Filter};
use super::{Executor, ExecutorError as Error, ProcessIo};

/// libcontainer's state file in a container's directory under the root.
const STATE_FILE: &str = "state.json";

/// libcontainer, with state under `root`.
pub struct Builtin {
    id: String,
    root: PathBuf,
    container: Option<Container>,
    /// The container's seccomp filter, loaded by [`Payload`] (see [`seccomp`]).
    filter: Option<Arc<Filter>>,
    /// The init process must raise CAP_SYS_ADMIN to load the filter.
    init_grant: bool,
    /// The next exec process must raise CAP_SYS_ADMIN to load the filter.
    exec_grant: bool,
    /// Replaced state files, held open until the shim exits (see
    /// [`Builtin::parked_container`]).
    parked: Vec<std::fs::File>,
    /// The spec's `cgroupsPath`.
    cgroup_path: Option<PathBuf>,
    /// The spec, when the direct path creates the container.
    direct_spec: Option<Spec>,
    /// The container, once created on the direct path.
    direct: Option<Direct>,
}

impl Builtin {
    /// A runtime for container `id` keeping libcontainer's state under `root`.
    pub fn new(id: &str, root: &Path) -> Self {
        Self {
            id: id.to_string(),
            root: root.to_owned(),
            container: None,
            filter: None,
            init_grant: false,
            exec_grant: false,
            parked: Vec::new(),
            cgroup_path: None,
            direct_spec: None,
            direct: None,
        }
    }

    fn builder(&self, io: ProcessIo, grant: bool) -> Result<ContainerBuilder, Error> {
        let payload = Payload {
            filter: self.filter.clone(),
            grant,
        };
        let mut b = ContainerBuilder::new(self.id.clone(), SyscallType::default())
            .with_executor(payload)
            .with_root_path(&self.root)
            .map_err(|e| err(&e, None))?
            .with_console_socket(io.console_socket.as_ref());
        if let Some(fd) = io.stdin {
            b = b.with_stdin(fd);
        }
        if let Some(fd) = io.stdout {
            b = b.with_stdout(fd);
        }
        if let Some(fd) = io.stderr {
            b = b.with_stderr(fd);
        }
        Ok(b)
    }

    fn container(&mut self) -> Result<&mut Container, Error> {
        if self.container.is_none() {
            let c = Container::load(self.root.join(&self.id)).map_err(|e| err(&e, None))?;
            self.container = Some(c);
        }
        self.container
            .as_mut()
            .ok_or_else(|| Error::from_message("no container", None))
    }
}

impl Builtin {
    /// The container, its state file first kept open until the shim exits (unlinked when
    /// `unlink`: libcontainer then writes a new one). Rewriting the file in place (it
    /// truncates) or deleting it frees its blocks at once, and on a filesystem mounted
    /// with `discard` that trims them synchronously, about a millisecond and a half on the
    /// start and exit paths; an open file's blocks are freed at its last close instead.
    /// Only start and delete, once each per shim, do this; pause and resume are off the
    /// run path and would pile up open files.
    fn parked_container(&mut self, unlink: bool) -> Result<&mut Container, Error> {
        self.container()?;
        self.park(&self.root.join(&self.id).join(STATE_FILE), unlink);
        self.container()
    }

    /// Keeps the file at `path` open until the shim exits, unlinking it when `unlink`.
    fn park(&mut self, path: &Path, unlink: bool) {
        if let Ok(file) = std::fs::File::open(path)
            && (!unlink || std::fs::remove_file(path).is_ok())
        {
            self.parked.push(file);
        }
    }
}

fn err(e: &dyn std::error::Error, program: Option<&str>) -> Error {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::from_message(message, program)
}

impl Executor for Builtin {
    fn prepare(&mut self, spec: &mut Spec, cache_dir: &Path) -> Result<(), Error> {
        let Some(linux) = spec.linux_mut() else {
            return Ok(());
        };
        self.cgroup_path = linux.cgroups_path().clone();
        if let Some(profile) = linux.seccomp().clone() {
            // A profile the cache cannot serve (user notification) stays for libcontainer.
            if let Some(filter) =
                Filter::cached(&profile, cache_dir).map_err(|e| Error::from_message(e, None))?
            {
                linux.set_seccomp(None);
                self.filter = Some(Arc::new(filter));
            }
        }
        if direct::supports(spec) {
            // The direct path loads the filter where the process still may.
            self.direct_spec = Some(spec.clone());
            return Ok(());
        }
        if self.filter.is_some() {
            self.init_grant = spec
                .process_mut()
                .as_mut()
                .is_some_and(seccomp::grant_loading);
        }
        Ok(())
    }

    fn prepare_exec(&mut self, process: &mut Process) {
        if self.direct.is_some() {
            return;
        }
        self.exec_grant = self.filter.is_some() && seccomp::grant_loading(process);
    }

    fn create(&mut self, bundle: &Path, io: ProcessIo) -> Result<i32, Error> {
        if let Some(spec) = &self.direct_spec {
            let d = Direct::create(spec, self.filter.clone(), io)?;
            let pid = d.pid();
            self.direct = Some(d);
            return Ok(pid);
        }
        let program = super::program_of(&bundle.join("config.json"), false);
        let container = self
            .builder(io, self.init_grant)?
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| err(&e, program.as_deref()))?;
        let pid = container
            .pid()
            .ok_or_else(|| Error::from_message("container has no init pid", None))?;
        self.container = Some(container);
        Ok(pid.as_raw())
    }

    fn start(&mut self) -> Result<(), Error> {
        if let Some(d) = &mut self.direct {
            return d.start();
        }
        self.parked_container(true)?
            .start()
            .map_err(|e| err(&e, None))
    }

    fn pause(&mut self) -> Result<(), Error> {
        if let Some(d) = &self.direct {
            return d.freeze(true);
        }
        self.container()?.pause().map_err(|e| err(&e, None))
    }

    fn resume(&mut self) -> Result<(), Error> {
        if let Some(d) = &self.direct {
            return d.freeze(false);
        }
        self.container()?.resume().map_err(|e| err(&e, None))
    }

    fn exec(&mut self, process_json: &Path, io: ProcessIo) -> Result<i32, Error> {
        if let Some(d) = &self.direct {
            let process: Process = std::fs::read(process_json)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_slice(&text).map_err(|e| e.to_string()))
                .map_err(|e| {
                    Error::from_message(format!("read {}: {e}", process_json.display()), None)
                })?;
            return d.exec(&process, io);
        }
        let program = super::program_of(process_json, true);
        let pid = self
            .builder(io, self.exec_grant)?
            .as_tenant()
            .with_process(Some(process_json))
            .with_detach(true)
            .build()
            .map_err(|e| err(&e, program.as_deref()))?;
        Ok(pid.as_raw())
    }

    fn delete(&mut self) -> Result<(), Error> {
        if let Some(d) = &mut self.direct {
            return d.delete();
        }
        let result = self
            .parked_container(false)?
            .delete(true)
            .map_err(|e| err(&e, None));
        self.container = None;
        result
    }

    /// What libcontainer's delete does for a stopped container without hooks (berth's specs
    /// have none): remove its cgroup and its state directory. libcontainer first builds a
    /// cgroup manager, which reads the mount table and the process' cgroups once per
    /// controller through fresh procfs handles: about 3 ms here, on the path of every
    /// container's exit. Anything unexpected falls back to libcontainer's delete.
    fn delete_exited(&mut self) -> Result<(), Error> {
        if self.direct.is_some() {
            return self.delete();
        }
        let removed = self
            .cgroup_path
            .as_ref()
            .is_some_and(|p| crate::cgroups::remove(&p.to_string_lossy()).is_ok());
        if !removed {
            return self.delete();
        }
        self.container = None;
        let dir = self.root.join(&self.id);
        // Its files stay open until the shim exits, as in parked_container.
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                self.park(&entry.path(), false);
            }
        }
        crate::layout::remove_tree(&dir)
            .map_err(|e| Error::from_message(format!("remove container state: {e}"), None))
    }
}

/// The container's workload: loads the container's seccomp filter (raising and then
/// dropping CAP_SYS_ADMIN when the process was granted it for that), restores the default
/// SIGPIPE disposition (the shim, a Rust program, ignores SIGPIPE and an ignored signal
/// stays ignored across `execve`), then executes the process like libcontainer's default
/// executor.
#[derive(Clone)]
struct Payload {
    filter: Option<Arc<Filter>>,
    grant: bool,
}

impl Payload {
    fn load_filter(&self) -> Result<(), ExecutorError> {
        let Some(filter) = &self.filter else {
            return Ok(());
        };
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            ExecutorError::Other(format!("seccomp: {what}: {e}"))
        };
        if self.grant {
            caps::raise(None, CapSet::Effective, Cap::CAP_SYS_ADMIN)
                .map_err(|e| fail("raise CAP_SYS_ADMIN", &e))?;
        }
        filter.load().map_err(|e| fail("load filter", &e))?;
        if self.grant {
            for set in [CapSet::Effective, CapSet::Permitted] {
                caps::drop(None, set, Cap::CAP_SYS_ADMIN)
                    .map_err(|e| fail("drop CAP_SYS_ADMIN", &e))?;
            }
        }
        Ok(())
    }
}

impl Workload for Payload {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        self.load_filter()?;
        crate::sys::default_sigpipe();
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}
