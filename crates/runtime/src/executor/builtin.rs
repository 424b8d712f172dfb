//! The built-in runtime: youki's `libcontainer`, driven in the shim's process. The init
//! process is cloned with CLONE_PARENT by libcontainer's intermediate process, so it is the
//! shim's own child and the shim reaps it.

use std::path::{Path, PathBuf};

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor as Workload, ExecutorError, ExecutorValidationError};

use super::{Executor, ExecutorError as Error, ProcessIo};

/// libcontainer, with state under `root`.
pub struct Builtin {
    id: String,
    root: PathBuf,
    container: Option<Container>,
}

impl Builtin {
    /// A runtime for container `id` keeping libcontainer's state under `root`.
    pub fn new(id: &str, root: &Path) -> Self {
        Self {
            id: id.to_string(),
            root: root.to_owned(),
            container: None,
        }
    }

    fn builder(&self, io: ProcessIo) -> Result<ContainerBuilder, Error> {
        let mut b = ContainerBuilder::new(self.id.clone(), SyscallType::default())
            .with_executor(Payload)
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
    fn create(&mut self, bundle: &Path, io: ProcessIo) -> Result<i32, Error> {
        let program = super::program_of(&bundle.join("config.json"), false);
        let container = self
            .builder(io)?
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
        self.container()?.start().map_err(|e| err(&e, None))
    }

    fn pause(&mut self) -> Result<(), Error> {
        self.container()?.pause().map_err(|e| err(&e, None))
    }

    fn resume(&mut self) -> Result<(), Error> {
        self.container()?.resume().map_err(|e| err(&e, None))
    }

    fn exec(&mut self, process_json: &Path, io: ProcessIo) -> Result<i32, Error> {
        let program = super::program_of(process_json, true);
        let pid = self
            .builder(io)?
            .as_tenant()
            .with_process(Some(process_json))
            .with_detach(true)
            .build()
            .map_err(|e| err(&e, program.as_deref()))?;
        Ok(pid.as_raw())
    }

    fn delete(&mut self) -> Result<(), Error> {
        let result = self.container()?.delete(true).map_err(|e| err(&e, None));
        self.container = None;
        result
    }
}

/// The container's workload: restores the default SIGPIPE disposition (the shim, a Rust
/// program, ignores SIGPIPE and an ignored signal stays ignored across `execve`), then
/// executes the process like libcontainer's default executor.
#[derive(Clone)]
struct Payload;

impl Workload for Payload {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        crate::sys::default_sigpipe();
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}
