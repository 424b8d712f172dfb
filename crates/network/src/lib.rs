//! berth-network: network namespaces, bridges and veth pairs, IPAM, port publishing and
//! isolation rules (nftables), and the embedded DNS of user-defined networks. Knows containers
//! only as an id and a netns path.
//!
//! [`Networks`] is the entry point; all kernel work runs on one dedicated thread that lives
//! in the managed (host) network namespace, so callers may use it from any thread (the
//! engine calls it through `spawn_blocking`).

pub mod dns;
mod error;
pub mod files;
pub mod ipam;
mod kernel;
pub mod netlink;
pub mod netns;
mod networks;
pub mod nft;
pub mod state;

pub use error::NetworkError;
pub use networks::{
    ConnectOptions, DEFAULT_NETWORK, NetworkSpec, Networks, NetworksConfig, PortMapping,
};
pub use state::{Endpoint, Network, Proto, Published, State};
