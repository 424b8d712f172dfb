//! Container networking on top of `berth-network`: which networks a container joins (its
//! attachments, persisted beside the network state), the sandbox, endpoints and published
//! ports made at start and released at exit, the per-container /etc/hosts, /etc/hostname and
//! /etc/resolv.conf, and one embedded DNS server per user-defined network.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_network::dns::DnsServer;
use berth_network::files::{self, HostsSpec, ResolvSpec};
use berth_network::{
    ConnectOptions, DEFAULT_NETWORK, Network, NetworkError, Networks, NetworksConfig, PortMapping,
    Proto,
};
use berth_runtime::{Mount, NetworkNamespace};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::container::Container;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::model::HostConfig;

/// One network a container joins, with its endpoint options (`--network-alias`, `--ip`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// Extra DNS names on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A fixed IPv4 address.
    #[serde(default)]
    pub ip: Option<String>,
    /// A fixed MAC address.
    #[serde(default)]
    pub mac: Option<String>,
}

impl Attachment {
    /// The attachment to `network` that a Docker `EndpointSettings` object asks for
    /// (`Aliases`, `IPAMConfig.IPv4Address`, `MacAddress`; absent or empty: none).
    pub fn from_endpoint(network: &str, ep: Option<&Value>) -> Self {
        let ep = ep.unwrap_or(&Value::Null);
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        Self {
            network: network.to_string(),
            aliases: ep["Aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            ip: text(&ep["IPAMConfig"]["IPv4Address"]),
            mac: text(&ep["MacAddress"]),
        }
    }
}

/// The engine's networking: the `Networks` of the daemon, attachments by container id and
/// the running DNS servers.
pub struct Networking {
    nets: Arc<Networks>,
    managed_ns: Option<PathBuf>,
    attachments_path: PathBuf,
    attachments: Mutex<BTreeMap<String, Vec<Attachment>>>,
    dns: Mutex<HashMap<String, CancellationToken>>,
    /// The `--dns` servers of running containers that gave some: the embedded DNS relays
    /// their queries there instead of to the host's servers.
    container_dns: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
}

impl std::fmt::Debug for Networking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Networking")
            .field("managed_ns", &self.managed_ns)
            .finish_non_exhaustive()
    }
}

/// Maps a network library error to Docker's status and message.
pub fn net_err(e: NetworkError) -> EngineError {
    use berth_network::ipam::IpamError;
    match e {
        NetworkError::NotFound(_) | NetworkError::SandboxNotFound(_) => {
            EngineError::NotFound(e.to_string())
        }
        NetworkError::Exists(_) => EngineError::Conflict(e.to_string()),
        NetworkError::InUse { .. } => EngineError::Forbidden(e.to_string()),
        NetworkError::Ipam(IpamError::Overlap) => EngineError::Forbidden(e.to_string()),
        NetworkError::Ipam(IpamError::AddressInUse) => EngineError::Conflict(e.to_string()),
        NetworkError::Ipam(IpamError::NoPool | IpamError::Exhausted) => {
            EngineError::Internal(e.to_string())
        }
        NetworkError::Driver(_) => EngineError::NotFound(e.to_string()),
        NetworkError::Ipam(_) | NetworkError::InvalidMac(_) | NetworkError::BadSandboxId(_) => {
            EngineError::InvalidArgument(e.to_string())
        }
        NetworkError::EndpointExists { .. } => EngineError::Forbidden(e.to_string()),
        NetworkError::NotConnected { .. } => EngineError::NotFound(e.to_string()),
        other => EngineError::Internal(error_chain(&other)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replacing(path, bytes, true)
}

/// Writes one of a container's hosts, hostname and resolv.conf: atomically, but not
/// synced, since every start writes them again.
fn write_container_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replacing(path, bytes, false)
}

fn write_replacing(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    berth_network::replace::write_file(path, &path.with_extension("tmp"), bytes, sync)
}

impl Networking {
    /// Opens the network state under `<root>/network`, managing `managed_ns` (a private
    /// namespace created on first use) or the daemon's own namespace, and makes sure the
    /// default bridge exists.
    pub fn open(root: &Path, managed_ns: Option<PathBuf>) -> Result<Self> {
        let dir = root.join("network");
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("create network dir", e))?;
        if let Some(ns) = &managed_ns {
            berth_network::netns::ensure_persistent(ns).map_err(|e| {
                EngineError::Internal(format!(
                    "network namespace {}: {}",
                    ns.display(),
                    error_chain(&e)
                ))
            })?;
        }
        let nets = Networks::open(NetworksConfig {
            state_dir: dir.clone(),
            netns_dir: dir.join("netns"),
            host_netns: managed_ns.clone(),
            host_forward_accept: true,
        })
        .map_err(net_err)?;
        nets.ensure_default_bridge().map_err(net_err)?;
        let attachments_path = dir.join("containers.json");
        let attachments = match std::fs::read(&attachments_path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        Ok(Self {
            nets: Arc::new(nets),
            managed_ns,
            attachments_path,
            attachments: Mutex::new(attachments),
            dns: Mutex::default(),
            container_dns: Arc::default(),
        })
    }

    /// The library handle.
    pub fn networks(&self) -> &Arc<Networks> {
        &self.nets
    }

    fn attachments(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Attachment>>> {
        self.attachments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The attachments of a container.
    pub fn attachments_of(&self, id: &str) -> Vec<Attachment> {
        self.attachments().get(id).cloned().unwrap_or_default()
    }

    fn save_attachments(&self, map: &BTreeMap<String, Vec<Attachment>>, sync: bool) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(map)
            .map_err(|e| EngineError::Internal(format!("encoding attachments: {e}")))?;
        write_replacing(&self.attachments_path, &bytes, sync)
            .map_err(|e| EngineError::io("saving network attachments", e))
    }

    /// Replaces the attachments of `id` (none: forget it). Forgetting is not synced: an
    /// entry that a crash brings back belongs to no container and the next start drops it
    /// ([`Engine::restore_networks`]).
    pub fn set_attachments(&self, id: &str, list: Option<Vec<Attachment>>) -> Result<()> {
        let mut map = self.attachments();
        let mut next = map.clone();
        let sync = list.is_some();
        match list {
            Some(l) => next.insert(id.to_string(), l),
            None => next.remove(id),
        };
        self.save_attachments(&next, sync)?;
        *map = next;
        Ok(())
    }

    /// Finds a network by name, full id or unique id prefix.
    pub fn find(&self, name: &str) -> Result<Network> {
        let state = self.nets.state();
        if let Some(n) = state.networks.get(name) {
            return Ok(n.clone());
        }
        if let Some(n) = state.networks.values().find(|n| n.id == name) {
            return Ok(n.clone());
        }
        let found: Vec<&Network> = state
            .networks
            .values()
            .filter(|n| !name.is_empty() && n.id.starts_with(name))
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound(format!("network {name} not found"))),
            _ => Err(EngineError::NotFound(format!(
                "network {name} is ambiguous ({} matches found based on ID prefix)",
                found.len()
            ))),
        }
    }

    /// Starts the DNS server of a user-defined network (idempotent).
    pub fn start_dns(&self, network: &str) {
        if network == DEFAULT_NETWORK {
            return;
        }
        let mut dns = self.dns.lock().unwrap_or_else(|p| p.into_inner());
        if dns.contains_key(network) {
            return;
        }
        let sockets = match self.nets.bind_dns(network) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(network, error = %error_chain(&e), "embedded dns not started");
                return;
            }
        };
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let host_upstreams: Vec<SocketAddr> = files::upstreams(&ResolvSpec::default(), &host)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        let (nets, name) = (self.nets.clone(), network.to_string());
        let lookup = Arc::new(move |q: &str| nets.lookup(&name, q));
        let (nets, name, per_container) = (
            self.nets.clone(),
            network.to_string(),
            self.container_dns.clone(),
        );
        let upstreams = Arc::new(move |client: IpAddr| {
            let asking = match client {
                IpAddr::V4(ip) => nets.sandbox_at(&name, ip),
                IpAddr::V6(_) => None,
            };
            let own = asking.and_then(|id| {
                per_container
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .cloned()
            });
            match own {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 53)).collect(),
                None => host_upstreams.clone(),
            }
        });
        let server = Arc::new(DnsServer::with_upstreams(lookup, upstreams));
        let cancel = CancellationToken::new();
        dns.insert(network.to_string(), cancel.clone());
        let net = network.to_string();
        tokio::spawn(async move {
            if let Err(e) = server.serve(sockets, cancel).await {
                tracing::warn!(network = %net, error = %e, "embedded dns stopped");
            }
        });
    }

    /// Records the `--dns` servers of a container being started (none: the host's).
    fn set_container_dns(&self, id: &str, servers: Vec<IpAddr>) {
        let mut map = self.container_dns.lock().unwrap_or_else(|p| p.into_inner());
        if servers.is_empty() {
            map.remove(id);
        } else {
            map.insert(id.to_string(), servers);
        }
    }

    /// Stops the DNS server of a network.
    pub fn stop_dns(&self, network: &str) {
        if let Some(c) = self
            .dns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(network)
        {
            c.cancel();
        }
    }
}

/// The network mode with Docker's spellings folded (`default` and empty are `bridge`).
pub fn mode(hc: &HostConfig) -> &str {
    match hc.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    }
}

/// `80/tcp` → (80, tcp).
pub fn parse_port_key(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid proto '{other}'"
            )));
        }
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| EngineError::InvalidArgument(format!("invalid port '{port}'")))?;
    Ok((port, proto))
}

/// One wanted host binding of a container port: host address and host port range
/// (`0..=0` for a random port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: Ipv4Addr,
    pub host_ports: (u16, u16),
}

/// The port bindings of a `HostConfig` (`PortBindings`, and `PublishAllPorts` for the
/// exposed ports), validated.
pub fn bindings(hc: &HostConfig, exposed: &[String]) -> Result<Vec<Binding>> {
    let mut out = Vec::new();
    let pb: BTreeMap<String, Option<Vec<Value>>> = hc
        .extra
        .get("PortBindings")
        .filter(|v| !v.is_null())
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
        .map_err(|e| EngineError::InvalidArgument(format!("invalid PortBindings: {e}")))?
        .unwrap_or_default();
    for (key, list) in &pb {
        let (port, proto) = parse_port_key(key)?;
        for b in list.iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            if ip.contains(':') {
                continue; // IPv6 host addresses: this engine publishes on IPv4 only.
            }
            let host_ip: Ipv4Addr = if ip.is_empty() {
                Ipv4Addr::UNSPECIFIED
            } else {
                ip.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid IP address: {ip}"))
                })?
            };
            let hp = b["HostPort"].as_str().unwrap_or("");
            let range = if hp.is_empty() {
                (0, 0)
            } else {
                let (a, z) = hp.split_once('-').unwrap_or((hp, hp));
                let p = |s: &str| {
                    s.parse::<u16>().map_err(|_| {
                        EngineError::InvalidArgument(format!("invalid hostPort: {hp}"))
                    })
                };
                let (a, z) = (p(a)?, p(z)?);
                if z < a {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid hostPort: {hp}"
                    )));
                }
                (a, z)
            };
            out.push(Binding {
                container_port: port,
                proto,
                host_ip,
                host_ports: range,
            });
        }
    }
    let publish_all = hc
        .extra
        .get("PublishAllPorts")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if publish_all {
        for key in exposed {
            if pb
                .get(key)
                .is_some_and(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
            {
                continue;
            }
            let (port, proto) = parse_port_key(key)?;
            out.push(Binding {
                container_port: port,
                proto,
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_ports: (0, 0),
            });
        }
    }
    Ok(out)
}

fn exposed_ports(c: &Container) -> Vec<String> {
    let mut keys: Vec<String> = c
        .config
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys().cloned())
        .collect();
    if let Some(Value::Object(pb)) = c.host_config.extra.get("PortBindings") {
        keys.extend(pb.keys().cloned());
    }
    keys.sort();
    keys.dedup();
    keys
}

/// `--add-host name:ip` entries (`ExtraHosts`), also accepting `name=ip`.
fn extra_hosts(hc: &HostConfig) -> Result<Vec<(String, IpAddr)>> {
    let list: Vec<String> = hc
        .extra
        .get("ExtraHosts")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    list.iter()
        .map(|e| {
            let (name, ip) = e
                .split_once('=')
                .or_else(|| e.split_once(':'))
                .ok_or_else(|| EngineError::InvalidArgument(format!("invalid extra host: {e}")))?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = if ip == "host-gateway" {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                ip.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "invalid IP address in add-host: \"{ip}\""
                    ))
                })?
            };
            Ok((name.to_string(), ip))
        })
        .collect()
}

fn string_list(hc: &HostConfig, key: &str) -> Vec<String> {
    hc.extra
        .get(key)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The `--dns` servers of a container (checked at create, see below).
fn dns_servers(hc: &HostConfig) -> Vec<IpAddr> {
    string_list(hc, "Dns")
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect()
}

/// Checks `HostConfig` fields that only networking reads (`Dns`, `ExtraHosts`,
/// `PortBindings`).
pub fn validate(hc: &HostConfig) -> Result<()> {
    for d in string_list(hc, "Dns") {
        d.parse::<IpAddr>()
            .map_err(|_| EngineError::InvalidArgument(format!("{d} is not an ip address")))?;
    }
    extra_hosts(hc)?;
    bindings(hc, &[])?;
    Ok(())
}

fn bind_file(src: PathBuf, dst: &str) -> Mount {
    Mount {
        destination: PathBuf::from(dst),
        kind: "bind".into(),
        source: src,
        options: vec!["rbind".into(), "rprivate".into()],
    }
}

impl Engine {
    /// The networking part of the engine.
    pub fn networking(&self) -> &Networking {
        &self.net
    }

    /// Runs blocking work on the networks off the async threads.
    pub(crate) async fn with_nets<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Networks) -> Result<T, NetworkError> + Send + 'static,
    {
        let nets = self.net.nets.clone();
        tokio::task::spawn_blocking(move || f(&nets))
            .await
            .map_err(|e| EngineError::Internal(format!("network task failed: {e}")))?
            .map_err(net_err)
    }

    /// At create: validates the network mode and `NetworkingConfig.EndpointsConfig` and
    /// returns the container's attachments.
    pub(crate) fn net_plan(
        &self,
        hc: &HostConfig,
        networking_config: Option<&Value>,
    ) -> Result<Vec<Attachment>> {
        validate(hc)?;
        let m = mode(hc);
        let endpoints: BTreeMap<String, Value> = networking_config
            .and_then(|v| v.get("EndpointsConfig"))
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if matches!(m, "host" | "none") || m.starts_with("container:") {
            if let Some(other) = m.strip_prefix("container:") {
                self.lookup(other)?;
            }
            if endpoints.keys().any(|k| k != m && k != &hc.network_mode) {
                return Err(EngineError::InvalidArgument(
                    "conflicting options: cannot attach both user-defined and non-user-defined network-modes".into(),
                ));
            }
            return Ok(Vec::new());
        }
        let primary = self.net.find(m)?;
        let mut plan = vec![Attachment {
            network: primary.name.clone(),
            ..Default::default()
        }];
        for (key, ep) in &endpoints {
            let key = if key == "default" {
                DEFAULT_NETWORK
            } else {
                key
            };
            let net = self.net.find(key)?;
            let att = Attachment::from_endpoint(&net.name, Some(ep));
            check_attachment(&net, &att)?;
            match plan.iter_mut().find(|a| a.network == net.name) {
                Some(a) => *a = att,
                None => plan.push(att),
            }
        }
        if let Some(mac) = hc.extra.get("MacAddress").and_then(Value::as_str)
            && !mac.is_empty()
        {
            plan[0].mac.get_or_insert_with(|| mac.to_string());
        }
        Ok(plan)
    }

    /// At start: the network namespace for the runtime and the bind mounts of /etc/hosts,
    /// /etc/hostname and /etc/resolv.conf. On error nothing is left connected.
    pub(crate) async fn net_setup(
        self: &Arc<Self>,
        c: &Container,
    ) -> Result<(NetworkNamespace, Vec<Mount>)> {
        // The rootfs is mounted now: volumes get their backing and the image's content.
        self.volume_setup(c)?;
        let dir = self.store.container_dir(&c.id);
        let hc = &c.host_config;
        let m = mode(hc).to_string();
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = ResolvSpec {
            embedded: None,
            dns: dns_servers(hc),
            search: string_list(hc, "DnsSearch"),
            options: string_list(hc, "DnsOptions"),
        };
        self.net.set_container_dns(&c.id, resolv.dns.clone());
        let mut hosts = HostsSpec {
            hostname: c.config.hostname.clone(),
            domainname: c.config.domainname.clone(),
            addresses: Vec::new(),
            extra_hosts: extra_hosts(hc)?,
        };
        let mut files_from: Option<PathBuf> = None;
        let ns = if m == "host" {
            match &self.net.managed_ns {
                Some(p) => NetworkNamespace::Path(p.clone()),
                None => NetworkNamespace::Host,
            }
        } else if m == "none" {
            NetworkNamespace::New
        } else if let Some(other) = m.strip_prefix("container:") {
            let entry = self.lookup(other)?;
            let o = entry.snapshot();
            if !o.state.status.is_alive() || o.state.pid == 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join network namespace of a non running container: container {} is {}",
                    o.id,
                    o.state.status.as_str()
                )));
            }
            files_from = Some(self.store.container_dir(&o.id));
            let sandbox = self.net.nets.netns_dir().join(&o.id);
            if sandbox.exists() && self.net.nets.state().sandboxes.contains_key(&o.id) {
                NetworkNamespace::Path(sandbox)
            } else {
                NetworkNamespace::Path(PathBuf::from(format!("/proc/{}/ns/net", o.state.pid)))
            }
        } else {
            let plan = self.net.attachments_of(&c.id);
            let plan = if plan.is_empty() {
                vec![Attachment {
                    network: self.net.find(&m)?.name,
                    ..Default::default()
                }]
            } else {
                plan
            };
            let path = self.net_connect_all(c, &plan).await?;
            let state = self.net.nets.state();
            let mut embedded = None;
            for a in &plan {
                if let Some(ep) = state
                    .networks
                    .get(&a.network)
                    .and_then(|n| n.endpoints.get(&c.id))
                {
                    hosts.addresses.push(IpAddr::V4(ep.ip));
                    if a.network != DEFAULT_NETWORK && embedded.is_none() {
                        embedded = Some(IpAddr::V4(ep.gateway));
                    }
                }
            }
            let spec = ResolvSpec {
                embedded,
                ..resolv.clone()
            };
            if let Err(e) = write_files(&dir, &hosts, &spec, &host_resolv) {
                self.net_release(&c.id).await;
                return Err(e);
            }
            return Ok((NetworkNamespace::Path(path), file_mounts(&dir, None)));
        };
        if m == "host" {
            let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            let mut extra = String::new();
            for (name, ip) in &hosts.extra_hosts {
                extra.push_str(&format!("{ip}\t{name}\n"));
            }
            write_container_file(&dir.join("hosts"), format!("{text}{extra}").as_bytes())
                .map_err(|e| EngineError::io("writing hosts", e))?;
            write_container_file(
                &dir.join("hostname"),
                files::hostname(&c.config.hostname).as_bytes(),
            )
            .map_err(|e| EngineError::io("writing hostname", e))?;
            write_container_file(
                &dir.join("resolv.conf"),
                files::resolv_conf(&resolv, &host_resolv).as_bytes(),
            )
            .map_err(|e| EngineError::io("writing resolv.conf", e))?;
        } else if files_from.is_none() {
            write_files(&dir, &hosts, &resolv, &host_resolv)?;
        } else {
            write_container_file(
                &dir.join("hostname"),
                files::hostname(&c.config.hostname).as_bytes(),
            )
            .map_err(|e| EngineError::io("writing hostname", e))?;
        }
        Ok((ns, file_mounts(&dir, files_from.as_deref())))
    }

    /// Creates the sandbox of `c` and connects it to every planned network, publishing
    /// its ports on the first; undoes everything on failure.
    async fn net_connect_all(&self, c: &Container, plan: &[Attachment]) -> Result<PathBuf> {
        let id = c.id.clone();
        let name = c.name.clone();
        let plan = plan.to_vec();
        let bindings = bindings(&c.host_config, &exposed_ports(c))?;
        let result = self
            .with_nets(move |n| {
                if n.state().sandboxes.contains_key(&id) {
                    n.remove_sandbox(&id)?;
                }
                let path = n.create_sandbox(&id)?;
                let done = (|| {
                    for a in &plan {
                        let mut aliases = Vec::new();
                        if a.network != DEFAULT_NETWORK {
                            aliases.push(name.clone());
                            aliases.extend(a.aliases.iter().cloned());
                        }
                        n.connect(
                            &a.network,
                            &id,
                            ConnectOptions {
                                ip: a.ip.clone(),
                                aliases,
                                mac: a.mac.clone(),
                            },
                        )?;
                    }
                    if let Some(first) = plan.first() {
                        for b in &bindings {
                            publish(n, &first.network, &id, b)?;
                        }
                    }
                    Ok(())
                })();
                match done {
                    Ok(()) => Ok(path),
                    Err(e) => {
                        let _ = n.remove_sandbox(&id);
                        Err(e)
                    }
                }
            })
            .await;
        result.map_err(|e| match e {
            EngineError::Conflict(m) | EngineError::Internal(m) if m.contains("already allocated") => {
                EngineError::Internal(format!(
                    "failed to set up container networking: driver failed programming external connectivity on endpoint {} ({}): {m}",
                    c.name, c.id
                ))
            }
            other => other,
        })
    }

    /// At exit, failed start or removal: removes the sandbox, its endpoints and ports.
    pub(crate) async fn net_release(&self, id: &str) {
        self.net.set_container_dns(id, Vec::new());
        let sid = id.to_string();
        if let Err(e) = self
            .with_nets(move |n| {
                if n.state().sandboxes.contains_key(&sid)
                    || n.state()
                        .networks
                        .values()
                        .any(|net| net.endpoints.contains_key(&sid))
                {
                    n.remove_sandbox(&sid)?;
                }
                Ok(())
            })
            .await
        {
            tracing::warn!(container = %id, error = %e, "releasing the network failed");
        }
    }

    /// At removal: releases the network, forgets the container's attachments and, for an
    /// `AutoRemove` container, removes its anonymous volumes.
    pub(crate) async fn net_forget(&self, c: &Container) {
        self.net_release(&c.id).await;
        if let Err(e) = self.net.set_attachments(&c.id, None) {
            tracing::warn!(container = %c.id, error = %e, "forgetting attachments failed");
        }
        if c.host_config.auto_remove {
            self.remove_unused_volumes(&self.anonymous_volumes_of(c));
        }
    }

    /// After [`Engine::restore`]: starts the DNS servers and releases the sandboxes of
    /// containers that are gone or no longer running.
    pub async fn restore_networks(self: &Arc<Self>) {
        for name in self.net.nets.state().networks.keys() {
            self.net.start_dns(name);
        }
        let sandboxes: Vec<String> = self.net.nets.state().sandboxes.keys().cloned().collect();
        for id in sandboxes {
            match self.lookup(&id) {
                Ok(entry) => {
                    let _op = entry.op.lock().await;
                    let c = entry.snapshot();
                    if c.state.status.is_alive() {
                        self.net.set_container_dns(&id, dns_servers(&c.host_config));
                    } else {
                        self.net_release(&id).await;
                    }
                }
                Err(_) => self.net_release(&id).await,
            }
        }
        let known: Vec<String> = self.net.attachments().keys().cloned().collect();
        for id in known {
            if self.lookup(&id).is_err() {
                let _ = self.net.set_attachments(&id, None);
            }
        }
    }
}

/// Checks `--ip`/`--network-alias` against a network (Docker refuses them on the default
/// bridge, and an address outside the subnet).
pub fn check_attachment(net: &Network, a: &Attachment) -> Result<()> {
    if net.name == DEFAULT_NETWORK {
        if a.ip.is_some() {
            return Err(EngineError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !a.aliases.is_empty() {
            return Err(EngineError::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
    }
    if let Some(ip) = &a.ip {
        let addr: Ipv4Addr = ip
            .parse()
            .map_err(|_| EngineError::InvalidArgument(format!("invalid IPv4 address: {ip}")))?;
        if !net.subnet.contains(addr) {
            return Err(EngineError::InvalidArgument(format!(
                "no configured subnet or ip-range contain the IP address {addr}"
            )));
        }
    }
    Ok(())
}

/// Publishes one binding, trying each port of a host range until one is free.
fn publish(n: &Networks, network: &str, id: &str, b: &Binding) -> Result<(), NetworkError> {
    let (first, last) = b.host_ports;
    let mut err = None;
    for port in first..=last {
        let map = PortMapping {
            host_ip: b.host_ip,
            host_port: port,
            container_port: b.container_port,
            proto: b.proto,
        };
        match n.publish(network, id, map) {
            Ok(_) => return Ok(()),
            Err(e @ NetworkError::PortAllocated { .. }) => err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(err.unwrap_or(NetworkError::NoFreePort))
}

fn write_files(dir: &Path, hosts: &HostsSpec, resolv: &ResolvSpec, host: &str) -> Result<()> {
    let io = |what: &str, e| EngineError::io(format!("writing {what}"), e);
    write_container_file(&dir.join("hosts"), files::hosts(hosts).as_bytes())
        .map_err(|e| io("hosts", e))?;
    write_container_file(
        &dir.join("hostname"),
        files::hostname(&hosts.hostname).as_bytes(),
    )
    .map_err(|e| io("hostname", e))?;
    write_container_file(
        &dir.join("resolv.conf"),
        files::resolv_conf(resolv, host).as_bytes(),
    )
    .map_err(|e| io("resolv.conf", e))
}

/// Bind mounts of the three files; hosts and resolv.conf come from `shared` (the container
/// whose namespace is joined) when set.
fn file_mounts(dir: &Path, shared: Option<&Path>) -> Vec<Mount> {
    let from = shared.unwrap_or(dir);
    vec![
        bind_file(from.join("hosts"), "/etc/hosts"),
        bind_file(dir.join("hostname"), "/etc/hostname"),
        bind_file(from.join("resolv.conf"), "/etc/resolv.conf"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_bindings_parse_like_docker() {
        let hc: HostConfig = serde_json::from_value(serde_json::json!({
            "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
                "81/tcp": [{"HostIp": "", "HostPort": "9000-9005"}],
            },
            "PublishAllPorts": true,
        }))
        .expect("host config");
        let b = bindings(&hc, &["80/tcp".into(), "443/tcp".into()]).expect("valid");
        assert_eq!(b.len(), 4);
        assert!(b.contains(&Binding {
            container_port: 53,
            proto: Proto::Udp,
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: (5353, 5353)
        }));
        assert!(
            b.iter()
                .any(|x| x.container_port == 81 && x.host_ports == (9000, 9005))
        );
        assert!(
            b.iter()
                .any(|x| x.container_port == 443 && x.host_ports == (0, 0))
        );
        let bad: HostConfig = serde_json::from_value(serde_json::json!({
            "PortBindings": {"80/sctp": [{"HostPort": "1"}]},
        }))
        .expect("host config");
        assert!(bindings(&bad, &[]).is_err());
    }

    #[test]
    fn extra_hosts_and_dns_are_validated() {
        let hc: HostConfig = serde_json::from_value(serde_json::json!({
            "ExtraHosts": ["db:10.0.0.5", "gw=10.0.0.1"], "Dns": ["1.1.1.1"],
        }))
        .expect("host config");
        assert!(validate(&hc).is_ok());
        assert_eq!(extra_hosts(&hc).expect("valid")[1].0, "gw");
        let bad: HostConfig =
            serde_json::from_value(serde_json::json!({"Dns": ["nope"]})).expect("host config");
        assert!(validate(&bad).is_err());
    }
}
