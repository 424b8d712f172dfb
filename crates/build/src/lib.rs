//! berth-build: building images from Dockerfiles with the classic builder's semantics and
//! output, on top of `berth-image` (layers, snapshots, commit) and `berth-runtime` (RUN steps
//! run in a container of the build). It never speaks HTTP: the engine feeds it a context tar
//! and turns its [`Progress`] messages into Docker's JSON stream.
//!
//! Every step's result is an image (untagged unless it is the last); the cache maps
//! (parent image, step key) to that image, where the key of COPY/ADD is the content of the
//! sources, so an unchanged rebuild yields the same image id.

mod build;
mod cache;
pub mod context;
mod copy;
pub mod dockerfile;
mod fetch;
mod ignore;
pub mod lex;
mod run;
pub mod tree;
mod view;

use std::collections::BTreeMap;

pub use build::Builder;
pub use context::Context;

/// Options of one build (`docker build` flags).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context (`Dockerfile` by default).
    pub dockerfile: String,
    /// References to tag the result with.
    pub tags: Vec<String>,
    /// Stop after this stage.
    pub target: Option<String>,
    /// `--build-arg KEY=value`; `None` takes the value from nowhere (unset).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label` added to the image.
    pub labels: BTreeMap<String, String>,
    /// Do not use the cache.
    pub no_cache: bool,
    /// `-q`: only the image id is reported.
    pub quiet: bool,
}

/// What the build reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Text for the user (`Step 1/3 : FROM busybox\n`, RUN output).
    Stream(String),
    /// The final image id (`sha256:...`), Docker's `aux` message.
    Aux(String),
}

/// Errors of a build, worded as Docker reports them.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A Dockerfile or argument syntax error.
    #[error("{0}")]
    Syntax(String),
    /// An invalid or unsafe context.
    #[error("{0}")]
    Context(String),
    /// A COPY/ADD failure.
    #[error("{0}")]
    Copy(String),
    /// A base image, stage or target that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A RUN command exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as Docker prints it (`/bin/sh -c exit 3`).
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    /// The runtime failed to run a step's container.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    /// A file-system error in the build's directories.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BuildError {
    /// HTTP status the Docker API would use if the error happens before streaming.
    pub fn status(&self) -> u16 {
        match self {
            Self::Syntax(_) | Self::Context(_) => 400,
            Self::NotFound(_) => 404,
            Self::Image(e) => e.status(),
            _ => 500,
        }
    }

    /// Exit code of a failed RUN (Docker's `errorDetail.code`).
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }
}
