//! berth-apiserver: the Kubernetes API (discovery, OpenAPI, REST verbs, watch, patch and
//! apply, subresources, authentication, table printing, CRDs) over a `berth-store`.

pub mod api;
pub mod apply;
pub mod catalog;
pub mod crd;
pub mod delete;
pub mod discovery;
pub mod error;
pub mod fields;
pub mod gc;
pub mod handler;
pub mod http;
pub mod list;
pub mod memory;
pub mod namespaces;
pub mod objects;
pub mod patch;
pub mod patching;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod selector;
pub mod server;
pub mod table;
pub mod tokens;
pub mod watch;
pub mod wire;

pub use api::Api;
pub use error::ApiError;
pub use server::{ServeError, ServerConfig, serve};
pub use tokio_util::sync::CancellationToken;
