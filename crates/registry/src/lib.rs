//! berth-registry: the OCI distribution API, both sides: a client that pulls and pushes images
//! (auth challenges, docker config credentials) and the `berth registry` server.

pub mod client;
pub mod manifest;
pub mod name;
pub mod server;
pub mod storage;

pub use client::{ClientConfig, ClientError, Endpoint, Progress, RegistryClient};
pub use server::{Config, ServerError};
pub use storage::{GcReport, Storage, StorageError};
/// Stops [`server::run`]; re-exported so callers need not depend on tokio-util.
pub use tokio_util::sync::CancellationToken;
