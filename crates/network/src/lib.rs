//! berth-network: network namespaces, bridges and veth pairs, IPAM, port publishing and
//! isolation rules (nftables), and the embedded DNS of user-defined networks. Knows containers
//! only as an id and a netns path.
//!
//! [`Networks`] is the entry point; all kernel work runs on one dedicated thread that lives
//! in the managed (host) network namespace, so callers may use it from any thread (the
//! engine calls it through `spawn_blocking`; calls block for a few milliseconds).
//!
//! The `docker run` path, as the engine drives it:
//!
//! ```no_run
//! use berth_network::{ConnectOptions, Networks, NetworksConfig, PortMapping, Proto};
//! # fn main() -> Result<(), berth_network::NetworkError> {
//! let nets = Networks::open(NetworksConfig {
//!     state_dir: "/var/lib/berth/network".into(),
//!     netns_dir: "/run/berth/netns".into(),
//!     host_netns: None,
//!     host_forward_accept: true,
//! })?;
//! nets.ensure_default_bridge()?;
//! let netns = nets.create_sandbox("4f2a...")?; // give this path to the OCI spec
//! let opts = ConnectOptions { aliases: vec!["web".into()], ..Default::default() };
//! let ep = nets.connect("bridge", "4f2a...", opts)?;
//! let map = PortMapping {
//!     host_ip: std::net::Ipv4Addr::UNSPECIFIED,
//!     host_port: 8080,
//!     container_port: 80,
//!     proto: Proto::Tcp,
//! };
//! nets.publish("bridge", "4f2a...", map)?;
//! // ... on exit:
//! nets.remove_sandbox("4f2a...")?;
//! # let _ = (netns, ep); Ok(()) }
//! ```
//!
//! Embedded DNS (user networks): bind with [`Networks::bind_dns`], build a
//! [`dns::DnsServer`] whose lookup calls [`Networks::lookup`], and spawn
//! [`dns::DnsServer::serve`]; the container's resolv.conf comes from
//! [`files::resolv_conf`] with `embedded` set to the network's gateway.

pub mod dns;
mod error;
pub mod files;
pub mod ipam;
mod kernel;
pub mod netlink;
pub mod netns;
mod networks;
pub mod nft;
pub mod replace;
pub mod state;

pub use error::NetworkError;
pub use networks::{
    ConnectOptions, DEFAULT_NETWORK, NetworkSpec, Networks, NetworksConfig, PortMapping,
};
pub use state::{Endpoint, Network, Proto, Published, State};
