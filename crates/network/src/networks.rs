//! The public entry point: [`Networks`] owns the state file, the namespace thread and the
//! nftables table, and implements network create/remove, sandboxes, connect/disconnect and
//! port publishing on top of them. Every kernel request runs on the namespace thread.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tracing::{debug, info};

use crate::error::NetworkError;
use crate::ipam::{self, Subnet};
use crate::kernel::{host_routes, make_bridge, plumb, random_hex};
use crate::netlink::{self, NetlinkError};
use crate::netns::{self, NsThread};
use crate::nft;
use crate::state::{Endpoint, Network, Proto, State};

mod names;
mod ports;

/// The default network's name and bridge.
pub const DEFAULT_NETWORK: &str = "bridge";
const DEFAULT_BRIDGE: &str = "berth0";
/// User networks' bridges are `berth-` and 9 hex digits of the id; host veth ends are `bv`
/// and 10 random hex digits: prefixes Docker does not use (`br-`, `veth`), so links left by a
/// crash can be told apart and removed without touching a peer dockerd's.
const BRIDGE_PREFIX: &str = "berth-";
const VETH_PREFIX: &str = "bv";

/// Where [`Networks`] keeps things.
#[derive(Debug, Clone)]
pub struct NetworksConfig {
    /// Directory of the state file `network.json`.
    pub state_dir: PathBuf,
    /// Directory of the sandboxes' bind-mounted namespaces.
    pub netns_dir: PathBuf,
    /// The namespace to manage instead of the process's own (tests pass a throw-away one).
    pub host_netns: Option<PathBuf>,
    /// Also add accept rules for berth's bridges to an existing `ip filter FORWARD` chain
    /// (needed beside dockerd, whose chain drops by default; see `nft::host_forward`).
    pub host_forward_accept: bool,
}

/// What `docker network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    /// Unique name.
    pub name: String,
    /// `bridge` (the default when empty).
    pub driver: String,
    /// CIDR; a free default pool when unset.
    pub subnet: Option<String>,
    /// Gateway address; the subnet's first host when unset.
    pub gateway: Option<String>,
    /// CIDR inside the subnet for dynamic addresses.
    pub ip_range: Option<String>,
    /// No outbound route.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Options of `docker network connect`.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A fixed address.
    pub ip: Option<String>,
    /// DNS aliases on this network (the engine passes the container's name here too).
    pub aliases: Vec<String>,
    /// `--mac-address`; derived from the address (`02:42:` + IPv4) when unset.
    pub mac: Option<String>,
}

/// A port to publish.
#[derive(Debug, Clone, Copy)]
pub struct PortMapping {
    /// Host address, `0.0.0.0` for all.
    pub host_ip: Ipv4Addr,
    /// Host port; 0 picks a free one.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// Parses `aa:bb:cc:dd:ee:ff`.
fn parse_mac(text: &str) -> Result<[u8; 6], NetworkError> {
    let bad = || NetworkError::InvalidMac(text.to_owned());
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// The sandbox namespaces bind-mounted in `dir`, by id.
fn sandboxes_in(dir: &Path) -> Result<BTreeMap<String, PathBuf>, NetworkError> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(NetworkError::Dir)? {
        let entry = entry.map_err(NetworkError::Dir)?;
        if let Some(id) = entry.file_name().to_str() {
            found.insert(id.to_owned(), entry.path());
        }
    }
    Ok(found)
}

/// Bridge networks, sandboxes and published ports of one daemon.
pub struct Networks {
    state_path: PathBuf,
    netns_dir: PathBuf,
    ns: NsThread,
    /// A second thread in the same namespace that deletes links in the background: a
    /// deletion waits for an RCU grace period (tens of ms) that `docker rm` need not wait.
    reaper: NsThread,
    host_forward_accept: bool,
    state: Mutex<State>,
}

impl Networks {
    /// Loads the state, starts the namespace thread and re-applies bridges and rules.
    pub fn open(config: NetworksConfig) -> Result<Self, NetworkError> {
        std::fs::create_dir_all(&config.state_dir).map_err(NetworkError::Dir)?;
        std::fs::create_dir_all(&config.netns_dir).map_err(NetworkError::Dir)?;
        let state_path = config.state_dir.join("network.json");
        let mut state = State::load(&state_path)?;
        state.sandboxes = sandboxes_in(&config.netns_dir)?;
        let reaper = NsThread::spawn(config.host_netns.clone())?;
        let ns = NsThread::spawn(config.host_netns)?;
        let me = Networks {
            state_path,
            netns_dir: config.netns_dir,
            ns,
            reaper,
            host_forward_accept: config.host_forward_accept,
            state: Mutex::new(state),
        };
        me.restore()?;
        Ok(me)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-creates missing bridges and re-applies the nftables table (after a restart).
    pub fn restore(&self) -> Result<(), NetworkError> {
        let state = self.lock().clone();
        let forward = self.host_forward_accept;
        self.ns.run(move |h| {
            let mut ours: BTreeSet<&str> = BTreeSet::new();
            for n in state.networks.values() {
                ours.insert(&n.bridge);
                ours.extend(n.endpoints.values().map(|e| e.host_veth.as_str()));
                if netlink::link_index(&n.bridge).is_err() {
                    make_bridge(h, n)?;
                }
            }
            // Links of ours the state no longer knows (a crash between steps) go.
            for name in h.netlink.link_names()? {
                let mine = name == DEFAULT_BRIDGE
                    || name.starts_with(BRIDGE_PREFIX)
                    || (name.starts_with(VETH_PREFIX) && name.len() == VETH_PREFIX.len() + 10);
                if mine && !ours.contains(name.as_str()) {
                    debug!(link = %name, "removing stale link");
                    let _ = h.netlink.del_link(&name);
                }
            }
            nft::apply(&nft::render(&state))?;
            if forward {
                nft::host_forward::install()?;
            }
            Ok(())
        })?
    }

    /// A copy of the current state (networks, endpoints, ports).
    pub fn state(&self) -> State {
        self.lock().clone()
    }

    /// Creates Docker's default `bridge` network if it does not exist yet.
    pub fn ensure_default_bridge(&self) -> Result<Network, NetworkError> {
        if let Some(n) = self.lock().networks.get(DEFAULT_NETWORK) {
            return Ok(n.clone());
        }
        self.create_network(NetworkSpec {
            name: DEFAULT_NETWORK.into(),
            ..Default::default()
        })
    }

    /// Creates a bridge network; errors are Docker's for a taken name, bad CIDRs, overlaps
    /// and a gateway or range outside the subnet. A failure leaves nothing behind.
    pub fn create_network(&self, spec: NetworkSpec) -> Result<Network, NetworkError> {
        if !(spec.driver.is_empty() || spec.driver == "bridge") {
            return Err(NetworkError::Driver(spec.driver));
        }
        let mut state = self.lock();
        if state.networks.contains_key(&spec.name) {
            return Err(NetworkError::Exists(spec.name));
        }
        let taken: Vec<Subnet> = state.networks.values().map(|n| n.subnet).collect();
        let subnet = match &spec.subnet {
            Some(s) => {
                let s: Subnet = s.parse()?;
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(ipam::IpamError::Overlap.into());
                }
                s
            }
            None => {
                let mut avoid = taken;
                avoid.extend(self.ns.run(|_| host_routes())?);
                ipam::pick_pool(&avoid)?
            }
        };
        let gateway = match &spec.gateway {
            Some(g) => {
                let g = ipam::parse_addr(g)?;
                if !subnet.contains(g) {
                    return Err(ipam::IpamError::GatewayOutside(g).into());
                }
                g
            }
            None => subnet.first_host(),
        };
        let ip_range = match &spec.ip_range {
            Some(r) => {
                let r: Subnet = r.parse()?;
                if !subnet.contains(r.addr) || r.prefix < subnet.prefix {
                    return Err(ipam::IpamError::RangeOutside(r).into());
                }
                Some(r)
            }
            None => None,
        };
        let id = random_hex(32)?;
        let bridge = if spec.name == DEFAULT_NETWORK {
            DEFAULT_BRIDGE.to_owned()
        } else {
            format!("{BRIDGE_PREFIX}{}", &id[..9])
        };
        let net = Network {
            id,
            name: spec.name.clone(),
            driver: "bridge".into(),
            subnet,
            gateway,
            ip_range,
            internal: spec.internal,
            labels: spec.labels,
            bridge,
            endpoints: BTreeMap::new(),
            created: Some(std::time::SystemTime::now()),
        };
        let mut next = state.clone();
        next.networks.insert(net.name.clone(), net.clone());
        let ruleset = nft::render(&next);
        let n = net.clone();
        self.ns.run(move |h| {
            make_bridge(h, &n)?;
            if let Err(e) = nft::apply(&ruleset) {
                let _ = h.netlink.del_link(&n.bridge);
                return Err(e.into());
            }
            Ok::<_, NetworkError>(())
        })??;
        next.save(&self.state_path)?;
        *state = next;
        info!(network = %net.name, subnet = %net.subnet, bridge = %net.bridge, "created network");
        Ok(net)
    }

    /// Removes a network without endpoints.
    pub fn remove_network(&self, name: &str) -> Result<(), NetworkError> {
        let mut state = self.lock();
        let net = state
            .networks
            .get(name)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(name.to_owned()))?;
        if !net.endpoints.is_empty() {
            return Err(NetworkError::InUse {
                name: net.name,
                id: net.id,
            });
        }
        let mut next = state.clone();
        next.networks.remove(name);
        let ruleset = nft::render(&next);
        let bridge = net.bridge.clone();
        self.ns.run(move |h| {
            nft::apply(&ruleset)?;
            match h.netlink.set_down(&bridge) {
                Err(NetlinkError::Kernel {
                    source: nix::Error::ENODEV,
                    ..
                })
                | Ok(()) => Ok(()),
                Err(e) => Err(NetworkError::from(e)),
            }
        })??;
        self.reap(net.bridge);
        next.save(&self.state_path)?;
        *state = next;
        info!(network = name, "removed network");
        Ok(())
    }

    /// Creates the sandbox network namespace of `id` (bind-mounted under the netns directory,
    /// `lo` up) and returns its path.
    pub fn create_sandbox(&self, id: &str) -> Result<PathBuf, NetworkError> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(NetworkError::BadSandboxId(id.to_owned()));
        }
        let mut state = self.lock();
        let path = self.netns_dir.join(id);
        let p = path.clone();
        self.ns.run(move |h| netns::create(h, &p))??;
        // Not saved here: sandboxes are the files of the netns directory, listed again on
        // open, which keeps an fsync off the `docker run` path.
        state.sandboxes.insert(id.to_owned(), path.clone());
        debug!(sandbox = id, ?path, "created sandbox");
        Ok(path)
    }

    /// Disconnects `id` from every network, drops its ports and removes its namespace.
    pub fn remove_sandbox(&self, id: &str) -> Result<(), NetworkError> {
        let nets: Vec<String> = self
            .lock()
            .networks
            .values()
            .filter(|n| n.endpoints.contains_key(id))
            .map(|n| n.name.clone())
            .collect();
        for n in nets {
            self.detach(&n, id, true)?;
        }
        let mut state = self.lock();
        if let Some(path) = state.sandboxes.remove(id) {
            netns::remove(&path)?;
        }
        Ok(())
    }

    /// Attaches sandbox `sandbox` to `network`: a veth pair with one end on the bridge and
    /// the other as the next `ethN` in the sandbox, with its address and (for the first
    /// non-internal network) the default route.
    pub fn connect(
        &self,
        network: &str,
        sandbox: &str,
        opts: ConnectOptions,
    ) -> Result<Endpoint, NetworkError> {
        let mut state = self.lock();
        let ns_path = state
            .sandboxes
            .get(sandbox)
            .cloned()
            .ok_or_else(|| NetworkError::SandboxNotFound(sandbox.to_owned()))?;
        let net = state
            .networks
            .get(network)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(network.to_owned()))?;
        if net.endpoints.contains_key(sandbox) {
            return Err(NetworkError::EndpointExists {
                sandbox: sandbox.to_owned(),
                network: network.to_owned(),
            });
        }
        let mine: Vec<&Endpoint> = state
            .networks
            .values()
            .filter_map(|n| n.endpoints.get(sandbox))
            .collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|name| !mine.iter().any(|e| &e.ifname == name))
            .unwrap_or_else(|| "eth0".into());
        let has_route = state
            .networks
            .values()
            .any(|n| !n.internal && n.endpoints.contains_key(sandbox));
        let want = opts.ip.as_deref().map(ipam::parse_addr).transpose()?;
        let mut used: BTreeSet<Ipv4Addr> = net.endpoints.values().map(|e| e.ip).collect();
        used.insert(net.gateway);
        let ip = ipam::allocate(net.subnet, net.ip_range.unwrap_or(net.subnet), &used, want)?;
        let o = ip.octets();
        let mac = match opts.mac.as_deref() {
            Some(m) => parse_mac(m)?,
            None => [0x02, 0x42, o[0], o[1], o[2], o[3]],
        };
        let ep = Endpoint {
            network: network.to_owned(),
            sandbox: sandbox.to_owned(),
            ip,
            prefix: net.subnet.prefix,
            gateway: net.gateway,
            mac: mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            host_veth: format!("{VETH_PREFIX}{}", &random_hex(5)?),
            ifname,
            aliases: opts.aliases,
        };
        let e = ep.clone();
        let route = !net.internal && !has_route;
        let bridge = net.bridge.clone();
        self.ns
            .run(move |h| plumb(h, &bridge, &ns_path, &e, mac, route))??;
        let mut next = state.clone();
        if let Some(n) = next.networks.get_mut(network) {
            n.endpoints.insert(sandbox.to_owned(), ep.clone());
        }
        if let Err(e) = next.save_unsynced(&self.state_path) {
            let veth = ep.host_veth.clone();
            let _ = self.ns.run(move |h| h.netlink.del_link(&veth));
            return Err(e.into());
        }
        *state = next;
        debug!(network, sandbox, ip = %ep.ip, veth = %ep.host_veth, "connected");
        Ok(ep)
    }

    /// Detaches `sandbox` from `network`, dropping its published ports there.
    pub fn disconnect(&self, network: &str, sandbox: &str) -> Result<(), NetworkError> {
        self.detach(network, sandbox, false)
    }

    /// Detaches; with `background` the host veth is deleted by the reaper (the sandbox is
    /// going away, so nothing can reuse its interface name).
    fn detach(&self, network: &str, sandbox: &str, background: bool) -> Result<(), NetworkError> {
        let mut state = self.lock();
        let mut next = state.clone();
        let net = next
            .networks
            .get_mut(network)
            .ok_or_else(|| NetworkError::NotFound(network.to_owned()))?;
        let ep = net
            .endpoints
            .remove(sandbox)
            .ok_or_else(|| NetworkError::NotConnected {
                sandbox: sandbox.to_owned(),
                network: network.to_owned(),
            })?;
        next.ports
            .retain(|p| !(p.network == network && p.sandbox == sandbox));
        let ruleset = (next.ports != state.ports).then(|| nft::render(&next));
        let veth = ep.host_veth.clone();
        self.ns.run(move |h| {
            if let Some(r) = ruleset {
                nft::apply(&r)?;
            }
            if background {
                return Ok(());
            }
            match h.netlink.del_link(&veth) {
                Err(NetlinkError::Kernel {
                    source: nix::Error::ENODEV,
                    ..
                })
                | Ok(()) => Ok(()),
                Err(e) => Err(NetworkError::from(e)),
            }
        })??;
        if background {
            self.reap(ep.host_veth);
        }
        next.save_unsynced(&self.state_path)?;
        *state = next;
        debug!(network, sandbox, "disconnected");
        Ok(())
    }

    /// Deletes the link `name` in the background.
    fn reap(&self, name: String) {
        let queued = self.reaper.submit(move |h| {
            if let Err(error) = h.netlink.del_link(&name) {
                tracing::warn!(link = %name, %error, "deleting link");
            }
        });
        if queued.is_err() {
            tracing::warn!("link reaper stopped");
        }
    }

    /// Waits until links removed in the background are gone.
    pub fn settle(&self) -> Result<(), NetworkError> {
        self.reaper.run(|_| ())?;
        Ok(())
    }

    /// Removes every bridge, sandbox and the nftables table, and empties the state.
    pub fn teardown(&self) -> Result<(), NetworkError> {
        self.settle()?;
        let mut state = self.lock();
        let old = std::mem::take(&mut *state);
        self.ns.run(move |h| {
            for n in old.networks.values() {
                for e in n.endpoints.values() {
                    let _ = h.netlink.del_link(&e.host_veth);
                }
                let _ = h.netlink.del_link(&n.bridge);
            }
            for path in old.sandboxes.values() {
                let _ = netns::remove(path);
            }
            nft::host_forward::remove()?;
            nft::delete()
        })??;
        state.save(&self.state_path)?;
        Ok(())
    }

    fn apply(&self, state: &State) -> Result<(), NetworkError> {
        let ruleset = nft::render(state);
        self.ns.run(move |_| nft::apply(&ruleset))??;
        Ok(())
    }

    /// Path of the namespace directory.
    pub fn netns_dir(&self) -> &Path {
        &self.netns_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Networks>();
    }

    #[test]
    fn mac_addresses_parse_strictly() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        for bad in [
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "2:42:ac:11:00:02",
            "zz",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
