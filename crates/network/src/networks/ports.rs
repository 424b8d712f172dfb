//! Port publishing on [`Networks`]: host port allocation (Docker's conflict message, free
//! ephemeral ports for `-P`) and the DNAT rules that follow from the state.

use crate::error::NetworkError;
use crate::kernel::bindable;
use crate::state::{Published, State};
use tracing::debug;

use super::{Networks, PortMapping};

impl Networks {
    /// Publishes a port of the endpoint of `sandbox` on `network`; a host port already in
    /// use is refused with Docker's message.
    pub fn publish(
        &self,
        network: &str,
        sandbox: &str,
        map: PortMapping,
    ) -> Result<Published, NetworkError> {
        let mut state = self.lock();
        let ep = state
            .networks
            .get(network)
            .and_then(|n| n.endpoints.get(sandbox))
            .cloned()
            .ok_or_else(|| NetworkError::NotConnected {
                sandbox: sandbox.to_owned(),
                network: network.to_owned(),
            })?;
        let clash = |s: &State, port: u16| {
            s.ports.iter().any(|p| {
                p.proto == map.proto
                    && p.host_port == port
                    && (p.host_ip == map.host_ip
                        || p.host_ip.is_unspecified()
                        || map.host_ip.is_unspecified())
            })
        };
        let host_port = if map.host_port == 0 {
            let (ip, proto) = (map.host_ip, map.proto);
            let free: Vec<u16> = (49153..=65535)
                .filter(|p| !clash(&state, *p))
                .take(64)
                .collect();
            self.ns
                .run(move |_| free.into_iter().find(|p| bindable(ip, *p, proto)))?
                .ok_or(NetworkError::NoFreePort)?
        } else if clash(&state, map.host_port) {
            return Err(NetworkError::PortAllocated {
                ip: map.host_ip,
                port: map.host_port,
            });
        } else {
            map.host_port
        };
        let published = Published {
            network: network.to_owned(),
            sandbox: sandbox.to_owned(),
            host_ip: map.host_ip,
            host_port,
            container_ip: ep.ip,
            container_port: map.container_port,
            proto: map.proto,
        };
        let mut next = state.clone();
        next.ports.push(published.clone());
        self.apply(&next)?;
        next.save_unsynced(&self.state_path)?;
        *state = next;
        debug!(network, sandbox, host_port, "published port");
        Ok(published)
    }

    /// Removes a published port.
    pub fn unpublish(&self, published: &Published) -> Result<(), NetworkError> {
        let mut state = self.lock();
        let mut next = state.clone();
        next.ports.retain(|p| p != published);
        self.apply(&next)?;
        next.save_unsynced(&self.state_path)?;
        *state = next;
        Ok(())
    }
}
