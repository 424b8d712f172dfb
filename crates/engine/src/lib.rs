//! berth-engine: the dockerd role. Containers, images and their state as Docker models,
//! persisted under the daemon's root, served as the Docker Engine API on a unix socket.
//!
//! Wiring (done by `berth daemon`): open a [`berth_image::ImageStore`] on `<root>/image` and
//! a [`berth_runtime::Runtime`], build the [`Engine`], call [`Engine::restore`], bind the
//! socket with [`server::bind`] and run [`server::serve`].

#![recursion_limit = "256"]

pub mod api;
pub mod archive;
pub mod changes;
pub mod container;
pub mod create;
pub mod distribution;
pub mod engine;
pub mod error;
pub mod events;
pub mod exec;
pub mod filters;
pub mod lifecycle;
pub mod logs;
pub mod model;
pub mod mounts;
pub mod names;
pub mod networking;
pub mod restart;
pub mod rootpath;
pub mod runtimes;
pub mod server;
pub mod signal;
pub mod spec;
pub mod stats;
pub mod stdcopy;
pub mod store;
pub mod system;
pub mod top;
pub mod users;
pub mod views;
pub mod volumes;

pub use engine::{Engine, EngineConfig};
pub use error::EngineError;
/// Cancellation of [`server::serve`], re-exported so the binary needs no extra dependency.
pub use tokio_util::sync::CancellationToken;
