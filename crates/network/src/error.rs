//! The crate error: every failure of a [`crate::Networks`] request, with Docker's messages
//! where the engine passes them to clients.

use std::net::Ipv4Addr;

use crate::ipam::IpamError;
use crate::netlink::NetlinkError;
use crate::netns::NetnsError;
use crate::nft::NftError;
use crate::state::StateError;

/// Failure of a network request.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Address management refused (bad CIDR, overlap, address taken...).
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// A namespace operation failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// nftables refused the ruleset.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A directory or file could not be used.
    #[error("network directory")]
    Dir(#[source] std::io::Error),
    /// A sysctl could not be written.
    #[error("sysctl {key}")]
    Sysctl {
        /// The /proc/sys path.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Only the bridge driver exists.
    #[error("plugin \"{0}\" not found")]
    Driver(String),
    /// The name is taken.
    #[error("network with name {0} already exists")]
    Exists(String),
    /// No such network.
    #[error("network {0} not found")]
    NotFound(String),
    /// The network still has endpoints.
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse {
        /// Network name.
        name: String,
        /// Network id.
        id: String,
    },
    /// No such sandbox.
    #[error("sandbox {0} not found")]
    SandboxNotFound(String),
    /// The sandbox id cannot name a file.
    #[error("invalid sandbox id {0:?}")]
    BadSandboxId(String),
    /// Already connected.
    #[error("endpoint with name {sandbox} already exists in network {network}")]
    EndpointExists {
        /// Sandbox id.
        sandbox: String,
        /// Network name.
        network: String,
    },
    /// Not connected.
    #[error("container {sandbox} is not connected to network {network}")]
    NotConnected {
        /// Sandbox id.
        sandbox: String,
        /// Network name.
        network: String,
    },
    /// The host port is published already.
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortAllocated {
        /// Host address.
        ip: Ipv4Addr,
        /// Host port.
        port: u16,
    },
    /// A MAC address that does not parse.
    #[error("invalid MAC address: {0}")]
    InvalidMac(String),
    /// No ephemeral port was free.
    #[error("no free host port in 49153-65535")]
    NoFreePort,
}
