//! The persisted model: networks, their endpoints (IPAM allocations), sandboxes and port
//! mappings, saved as one JSON file written atomically (temporary file, fsync, rename).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ipam::Subnet;

/// Failure to load or save the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid state JSON.
    #[error("state file {path} is corrupt")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The nftables and Docker spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    /// The sandbox (container) id.
    pub sandbox: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet prefix length.
    pub prefix: u8,
    /// The gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// The container-side MAC address, `02:42:..`.
    pub mac: String,
    /// The host-side veth name.
    pub host_veth: String,
    /// The interface name inside the sandbox (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// DNS aliases on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A network as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digit id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Always `bridge` for now.
    pub driver: String,
    /// The subnet.
    pub subnet: Subnet,
    /// The bridge's address.
    pub gateway: Ipv4Addr,
    /// Where dynamic addresses come from (the subnet when not set).
    pub ip_range: Option<Subnet>,
    /// No outbound route when set.
    pub internal: bool,
    /// User labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The Linux bridge's name.
    pub bridge: String,
    /// Endpoints by sandbox id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    /// When it was created (unset in state files written before this field existed).
    #[serde(default)]
    pub created: Option<std::time::SystemTime>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The network of the endpoint it reaches.
    pub network: String,
    /// The sandbox of the endpoint it reaches.
    pub sandbox: String,
    /// Host address (`0.0.0.0` for all).
    pub host_ip: Ipv4Addr,
    /// Host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// Everything berth-network persists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Networks by name.
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
    /// Sandbox namespace paths by sandbox id (rebuilt from the netns directory on open).
    #[serde(default, skip_serializing)]
    pub sandboxes: BTreeMap<String, PathBuf>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<Published>,
}

impl State {
    /// Loads `path`, or an empty state when it does not exist.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                path: path.to_owned(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(StateError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Saves atomically and durably to `path`: for changes of the networks themselves.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        self.write(path, true)
    }

    /// Saves atomically to `path` without waiting for the disk: for endpoints and
    /// published ports, which describe live sandboxes. A power loss ends those sandboxes
    /// anyway, and the rename still leaves either the old or the new file.
    pub fn save_unsynced(&self, path: &Path) -> Result<(), StateError> {
        self.write(path, false)
    }

    fn write(&self, path: &Path, sync: bool) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| StateError::Corrupt {
            path: path.to_owned(),
            source,
        })?;
        crate::replace::write_file(path, &tmp, &bytes, sync).map_err(io)
    }
}
