//! Name resolution on [`Networks`]: what the embedded DNS answers and the sockets it
//! serves from.

use std::net::Ipv4Addr;

use crate::error::NetworkError;

use super::Networks;

impl Networks {
    /// The address on `network` of the container called `name` (an alias, its full id or
    /// a 12-character short id), case-insensitive; what the embedded DNS answers.
    pub fn lookup(&self, network: &str, name: &str) -> Option<Ipv4Addr> {
        let state = self.lock();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        state
            .networks
            .get(network)?
            .endpoints
            .values()
            .find_map(|e| {
                let by_id = e.sandbox == name || (name.len() >= 12 && e.sandbox.starts_with(&name));
                let by_alias = e.aliases.iter().any(|a| a.to_ascii_lowercase() == name);
                (by_id || by_alias).then_some(e.ip)
            })
    }

    /// The sandbox that has `ip` on `network`: who asks the embedded DNS.
    pub fn sandbox_at(&self, network: &str, ip: Ipv4Addr) -> Option<String> {
        let state = self.lock();
        state
            .networks
            .get(network)?
            .endpoints
            .values()
            .find(|e| e.ip == ip)
            .map(|e| e.sandbox.clone())
    }

    /// The sockets of `network`'s DNS server (port 53 on its gateway and an upstream
    /// socket), bound in the managed namespace, for [`crate::dns::DnsServer::serve`].
    pub fn bind_dns(&self, network: &str) -> Result<crate::dns::DnsSockets, NetworkError> {
        let gw = self
            .lock()
            .networks
            .get(network)
            .map(|n| n.gateway)
            .ok_or_else(|| NetworkError::NotFound(network.to_owned()))?;
        let socks = self
            .ns
            .run(move |_| crate::dns::DnsSockets::bind((gw, 53).into()))?;
        socks.map_err(NetworkError::Dir)
    }
}
