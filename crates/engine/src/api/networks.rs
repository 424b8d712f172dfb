//! `/networks/...`: list, inspect, create, remove, prune, connect and disconnect, and the
//! network part of container inspect and list (`NetworkSettings`, `Ports`).

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_network::{DEFAULT_NETWORK, Network, NetworkSpec};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Body, Query};
use crate::container::Container;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::events::Event;
use crate::filters::Filters;
use crate::networking::{Attachment, check_attachment, mode};

/// Networks that exist on every daemon and cannot be removed.
const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];

/// Body of `POST /networks/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: Option<String>,
    internal: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
    labels: Option<BTreeMap<String, String>>,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    driver: Option<String>,
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: Option<String>,
    #[serde(rename = "IPRange")]
    ip_range: Option<String>,
    gateway: Option<String>,
}

/// Body of `POST /networks/{id}/connect` and `/disconnect`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: Option<String>,
    endpoint_config: Option<Value>,
    force: bool,
}

/// Routes `/networks/...`; `s` are the path segments after `networks`.
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    s: &[&str],
    q: &Query,
) -> Result<Response<Body>> {
    match (method, s) {
        (&Method::GET, []) => list(&engine, q),
        (&Method::POST, ["create"]) => {
            let body: CreateBody = http::read_json(req.into_body()).await?;
            create(&engine, body).await
        }
        (&Method::POST, ["prune"]) => prune(&engine, q).await,
        (&Method::GET, [id]) => {
            let v = find_json(&engine, id)?;
            Ok(http::json(200, &v))
        }
        (&Method::DELETE, [id]) => {
            remove(&engine, id).await?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "connect"]) => {
            let body: ConnectBody = http::read_json(req.into_body()).await?;
            connect(&engine, id, body).await?;
            Ok(http::empty(200))
        }
        (&Method::POST, [id, "disconnect"]) => {
            let body: ConnectBody = http::read_json(req.into_body()).await?;
            disconnect(&engine, id, body).await?;
            Ok(http::empty(200))
        }
        _ => Err(super::not_found()),
    }
}

fn pseudo_id(name: &str) -> String {
    format!("{:0<64}", hex::encode(name))
}

fn builtin_json(name: &str, driver: &str) -> Value {
    json!({
        "Name": name, "Id": pseudo_id(name), "Created": "0001-01-01T00:00:00Z",
        "Scope": "local", "Driver": driver, "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""},
        "ConfigOnly": false, "Containers": {}, "Options": {}, "Labels": {},
    })
}

fn endpoint_id(net: &Network, sandbox: &str) -> String {
    let a = sandbox.get(..32).unwrap_or(sandbox);
    let b = net.id.get(32..).unwrap_or(&net.id);
    format!("{a}{b}")
}

fn network_json(engine: &Engine, n: &Network) -> Value {
    let mut containers = serde_json::Map::new();
    for (id, ep) in &n.endpoints {
        let name = engine
            .lookup(id)
            .map(|e| e.lock().name.clone())
            .unwrap_or_default();
        containers.insert(
            id.clone(),
            json!({
                "Name": name,
                "EndpointID": endpoint_id(n, id),
                "MacAddress": ep.mac,
                "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                "IPv6Address": "",
            }),
        );
    }
    let mut config = json!({"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()});
    if let Some(r) = n.ip_range {
        config["IPRange"] = json!(r.to_string());
    }
    let mut options = serde_json::Map::new();
    if n.name == DEFAULT_NETWORK {
        for (k, v) in [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            ("com.docker.network.driver.mtu", "1500"),
        ] {
            options.insert(k.into(), json!(v));
        }
    }
    options.insert("com.docker.network.bridge.name".into(), json!(n.bridge));
    let created = n
        .created
        .map(|t| crate::container::docker_time(Some(chrono::DateTime::<chrono::Utc>::from(t))))
        .unwrap_or_else(|| crate::container::docker_time(None));
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [config]},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

fn all_json(engine: &Engine) -> Vec<Value> {
    let state = engine.networking().networks().state();
    let mut out: Vec<Value> = state
        .networks
        .values()
        .map(|n| network_json(engine, n))
        .collect();
    out.push(builtin_json("host", "host"));
    out.push(builtin_json("none", "null"));
    out
}

fn find_json(engine: &Engine, name: &str) -> Result<Value> {
    match name {
        "host" | "none" => Ok(builtin_json(
            name,
            if name == "host" { "host" } else { "null" },
        )),
        _ => {
            let all = all_json(engine);
            if let Some(v) = all
                .iter()
                .find(|v| v["Name"] == name || v["Id"] == name)
                .or_else(|| {
                    let m: Vec<&Value> = all
                        .iter()
                        .filter(|v| v["Id"].as_str().is_some_and(|i| i.starts_with(name)))
                        .collect();
                    (m.len() == 1 && !name.is_empty()).then(|| m[0])
                })
            {
                return Ok(v.clone());
            }
            Err(EngineError::NotFound(format!("network {name} not found")))
        }
    }
}

fn matches(f: &Filters, v: &Value) -> bool {
    let name = v["Name"].as_str().unwrap_or("");
    let id = v["Id"].as_str().unwrap_or("");
    let builtin = PREDEFINED.contains(&name);
    let labels: BTreeMap<String, String> =
        serde_json::from_value(v["Labels"].clone()).unwrap_or_default();
    let any =
        |key: &str, ok: &dyn Fn(&str) -> bool| f.get(key).is_none_or(|vs| vs.iter().any(|x| ok(x)));
    any("name", &|x| name.contains(x))
        && any("id", &|x| id.starts_with(x))
        && any("driver", &|x| v["Driver"] == x)
        && any("type", &|x| (x == "builtin") == builtin)
        && any("dangling", &|x| {
            let empty = v["Containers"].as_object().is_none_or(|m| m.is_empty()) && !builtin;
            (x == "true" || x == "1") == empty
        })
        && f.labels_match(&labels)
}

fn list(engine: &Engine, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["name", "id", "label", "driver", "type", "dangling", "scope"])?;
    let out: Vec<Value> = all_json(engine)
        .into_iter()
        .filter(|v| matches(&f, v))
        .collect();
    Ok(http::json(200, &Value::Array(out)))
}

fn event(engine: &Engine, action: &str, id: &str, name: &str, container: Option<&str>) {
    let mut attributes = BTreeMap::new();
    attributes.insert("name".to_string(), name.to_string());
    attributes.insert("type".to_string(), "bridge".to_string());
    if let Some(c) = container {
        attributes.insert("container".to_string(), c.to_string());
    }
    engine.events().publish(Event {
        kind: "network",
        action: action.into(),
        id: id.into(),
        attributes,
        exit_code: None,
        time: chrono::Utc::now(),
    });
}

async fn create(engine: &Arc<Engine>, body: CreateBody) -> Result<Response<Body>> {
    if body.name.is_empty() {
        return Err(EngineError::InvalidArgument(
            "invalid name: name cannot be empty".into(),
        ));
    }
    if PREDEFINED.contains(&body.name.as_str()) {
        return Err(EngineError::Forbidden(format!(
            "operation is not permitted on predefined {} network ",
            body.name
        )));
    }
    let driver = body.driver.unwrap_or_default();
    if matches!(driver.as_str(), "host" | "null") {
        return Err(EngineError::Forbidden(format!(
            "only one instance of \"{driver}\" network is allowed"
        )));
    }
    let ipam = body.ipam.unwrap_or_default();
    let ipam_driver = ipam.driver.unwrap_or_default();
    if !(ipam_driver.is_empty() || ipam_driver == "default") {
        return Err(EngineError::NotFound(format!(
            "plugin \"{ipam_driver}\" not found"
        )));
    }
    let configs = ipam.config.unwrap_or_default();
    let v4: Vec<&IpamConfig> = configs
        .iter()
        .filter(|c| !c.subnet.as_deref().unwrap_or("").contains(':'))
        .collect();
    if v4.len() > 1 {
        return Err(EngineError::InvalidArgument(
            "only one IPv4 subnet per network is supported".into(),
        ));
    }
    let first = v4.first();
    let opt = |s: Option<&Option<String>>| s.and_then(|s| s.clone()).filter(|s| !s.is_empty());
    if opt(first.map(|c| &c.subnet)).is_none()
        && (opt(first.map(|c| &c.gateway)).is_some() || opt(first.map(|c| &c.ip_range)).is_some())
    {
        return Err(EngineError::InvalidArgument(
            "invalid pool request: a gateway or ip-range needs a subnet".into(),
        ));
    }
    let mut labels = body.labels.unwrap_or_default();
    let _ = body.options;
    labels.retain(|k, _| !k.is_empty());
    let spec = NetworkSpec {
        name: body.name.clone(),
        driver,
        subnet: opt(first.map(|c| &c.subnet)),
        gateway: opt(first.map(|c| &c.gateway)),
        ip_range: opt(first.map(|c| &c.ip_range)),
        internal: body.internal.unwrap_or(false),
        labels,
    };
    let net = engine.with_nets(move |n| n.create_network(spec)).await?;
    engine.networking().start_dns(&net.name);
    event(engine, "create", &net.id, &net.name, None);
    Ok(http::json(201, &json!({"Id": net.id, "Warning": ""})))
}

async fn remove(engine: &Arc<Engine>, name: &str) -> Result<()> {
    if PREDEFINED.contains(&name) {
        return Err(EngineError::Forbidden(format!(
            "{name} is a pre-defined network and cannot be removed"
        )));
    }
    let net = engine.networking().find(name)?;
    if net.name == DEFAULT_NETWORK {
        return Err(EngineError::Forbidden(format!(
            "{} is a pre-defined network and cannot be removed",
            net.name
        )));
    }
    let n = net.name.clone();
    engine.networking().stop_dns(&n);
    let removed = engine.with_nets(move |nets| nets.remove_network(&n)).await;
    if let Err(e) = removed {
        engine.networking().start_dns(&net.name);
        return Err(e);
    }
    event(engine, "destroy", &net.id, &net.name, None);
    Ok(())
}

async fn prune(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["label", "label!", "until"])?;
    let state = engine.networking().networks().state();
    let mut deleted = Vec::new();
    for n in state.networks.values() {
        if n.name == DEFAULT_NETWORK || !n.endpoints.is_empty() || !f.labels_match(&n.labels) {
            continue;
        }
        if remove(engine, &n.name).await.is_ok() {
            deleted.push(n.name.clone());
        }
    }
    Ok(http::json(200, &json!({"NetworksDeleted": deleted})))
}

async fn connect(engine: &Arc<Engine>, network: &str, body: ConnectBody) -> Result<()> {
    if matches!(network, "host" | "none") {
        return Err(EngineError::Forbidden(
            "container cannot be disconnected from host network or connected to host network"
                .into(),
        ));
    }
    let net = engine.networking().find(network)?;
    let entry = engine.lookup(body.container.as_deref().unwrap_or(""))?;
    let _op = entry.op.lock().await;
    let c = entry.snapshot();
    let m = mode(&c.host_config);
    if m == "host" || m == "none" || m.starts_with("container:") {
        return Err(EngineError::Forbidden(
            "container sharing network namespace with another container or host cannot be connected to any other network".into(),
        ));
    }
    let att = Attachment::from_endpoint(&net.name, body.endpoint_config.as_ref());
    check_attachment(&net, &att)?;
    let mut list = engine.networking().attachments_of(&c.id);
    if list.iter().any(|a| a.network == net.name) {
        return Err(EngineError::Forbidden(format!(
            "endpoint with name {} already exists in network {}",
            c.name, net.name
        )));
    }
    if c.state.status.is_alive() {
        let (id, name, a) = (c.id.clone(), c.name.clone(), att.clone());
        engine
            .with_nets(move |n| {
                let mut aliases = vec![name];
                aliases.extend(a.aliases.iter().cloned());
                n.connect(
                    &a.network,
                    &id,
                    berth_network::ConnectOptions {
                        ip: a.ip.clone(),
                        aliases,
                        mac: a.mac.clone(),
                    },
                )
            })
            .await?;
    }
    list.push(att);
    engine.networking().set_attachments(&c.id, Some(list))?;
    event(engine, "connect", &net.id, &net.name, Some(&c.id));
    Ok(())
}

async fn disconnect(engine: &Arc<Engine>, network: &str, body: ConnectBody) -> Result<()> {
    let _ = body.force;
    if matches!(network, "host" | "none") {
        return Err(EngineError::Forbidden(
            "container cannot be disconnected from host network or connected to host network"
                .into(),
        ));
    }
    let net = engine.networking().find(network)?;
    let entry = engine.lookup(body.container.as_deref().unwrap_or(""))?;
    let _op = entry.op.lock().await;
    let c = entry.snapshot();
    let mut list = engine.networking().attachments_of(&c.id);
    if !list.iter().any(|a| a.network == net.name) {
        return Err(EngineError::Forbidden(format!(
            "container {} is not connected to network {}",
            c.id, net.name
        )));
    }
    if net.endpoints.contains_key(&c.id) {
        let (id, name) = (c.id.clone(), net.name.clone());
        engine.with_nets(move |n| n.disconnect(&name, &id)).await?;
    }
    list.retain(|a| a.network != net.name);
    engine.networking().set_attachments(&c.id, Some(list))?;
    event(engine, "disconnect", &net.id, &net.name, Some(&c.id));
    Ok(())
}

/// `NetworkSettings` of container inspect: the configured networks with the live endpoint
/// of each while the container runs, and the published ports.
pub fn container_settings(engine: &Engine, c: &Container) -> Value {
    let state = engine.networking().networks().state();
    let m = mode(&c.host_config);
    let running = c.state.status.is_alive();
    let sandbox = state.sandboxes.get(&c.id).filter(|_| running);
    let mut networks = serde_json::Map::new();
    let empty_ep = |net_id: &str, aliases: Value| {
        json!({
            "IPAMConfig": null, "Links": null, "Aliases": aliases, "MacAddress": "",
            "DriverOpts": null, "GwPriority": 0, "NetworkID": net_id, "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null,
        })
    };
    if matches!(m, "host" | "none") {
        networks.insert(m.to_string(), empty_ep(&pseudo_id(m), Value::Null));
    }
    let mut primary: Option<Value> = None;
    for a in engine.networking().attachments_of(&c.id) {
        let Some(net) = state.networks.get(&a.network) else {
            continue;
        };
        let aliases = if a.aliases.is_empty() {
            Value::Null
        } else {
            json!(a.aliases)
        };
        let mut v = empty_ep(&net.id, aliases);
        if let Some(ip) = &a.ip {
            v["IPAMConfig"] = json!({"IPv4Address": ip});
        }
        if let Some(ep) = net.endpoints.get(&c.id).filter(|_| running) {
            v["MacAddress"] = json!(ep.mac);
            v["EndpointID"] = json!(endpoint_id(net, &c.id));
            v["Gateway"] = json!(ep.gateway.to_string());
            v["IPAddress"] = json!(ep.ip.to_string());
            v["IPPrefixLen"] = json!(ep.prefix);
            if net.name != DEFAULT_NETWORK {
                let mut names = vec![json!(c.name), json!(c.short_id())];
                names.extend(a.aliases.iter().map(|x| json!(x)));
                v["DNSNames"] = Value::Array(names);
            }
        }
        if primary.is_none() && net.name == DEFAULT_NETWORK {
            primary = Some(v.clone());
        }
        networks.insert(net.name.clone(), v);
    }
    let mut ports = serde_json::Map::new();
    for key in c.config.exposed_ports.iter().flat_map(|m| m.keys()).chain(
        c.host_config
            .extra
            .get("PortBindings")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys()),
    ) {
        ports.insert(key.clone(), Value::Null);
    }
    if running {
        for p in state.ports.iter().filter(|p| p.sandbox == c.id) {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            let entry = ports.entry(key).or_insert(Value::Null);
            if !entry.is_array() {
                *entry = json!([]);
            }
            if let Some(list) = entry.as_array_mut() {
                list.push(
                    json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}),
                );
            }
        }
    }
    let sandbox_key = match sandbox {
        Some(p) => p.display().to_string(),
        None if running && c.state.pid > 0 => format!("/proc/{}/ns/net", c.state.pid),
        None => String::new(),
    };
    let p = primary.unwrap_or_else(|| json!({}));
    let s = |k: &str| p.get(k).cloned().unwrap_or(json!(""));
    json!({
        "Bridge": "",
        "SandboxID": if sandbox_key.is_empty() { String::new() } else { c.id.clone() },
        "SandboxKey": sandbox_key,
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": s("EndpointID"),
        "Gateway": s("Gateway"),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": s("IPAddress"),
        "IPPrefixLen": p.get("IPPrefixLen").cloned().unwrap_or(json!(0)),
        "IPv6Gateway": "",
        "MacAddress": s("MacAddress"),
        "Networks": networks,
    })
}

/// `Ports` of a container list entry.
pub fn container_ports(engine: &Engine, c: &Container) -> Value {
    let settings = container_settings(engine, c);
    let mut out = Vec::new();
    for (key, list) in settings["Ports"].as_object().into_iter().flatten() {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let port: u16 = port.parse().unwrap_or(0);
        match list.as_array() {
            Some(l) if !l.is_empty() => {
                for b in l {
                    out.push(json!({
                        "IP": b["HostIp"],
                        "PrivatePort": port,
                        "PublicPort": b["HostPort"].as_str().and_then(|p| p.parse::<u16>().ok()),
                        "Type": proto,
                    }));
                }
            }
            _ => out.push(json!({"PrivatePort": port, "Type": proto})),
        }
    }
    Value::Array(out)
}

/// Overlays the network parts of container inspect (`NetworkSettings`, the /etc file
/// paths).
pub fn decorate_inspect(engine: &Engine, c: &Container, v: &mut Value) {
    v["NetworkSettings"] = container_settings(engine, c);
    crate::volumes::decorate_mounts(engine, c, v);
    if c.has_been_started {
        let dir = engine.store.container_dir(&c.id);
        v["HostsPath"] = json!(dir.join("hosts"));
        v["HostnamePath"] = json!(dir.join("hostname"));
        v["ResolvConfPath"] = json!(dir.join("resolv.conf"));
    }
}

/// Overlays the network parts of a container list entry (`Ports`, `Networks`).
pub fn decorate_summary(engine: &Engine, c: &Container, v: &mut Value) {
    let settings = container_settings(engine, c);
    v["Ports"] = container_ports(engine, c);
    v["NetworkSettings"] = json!({"Networks": settings["Networks"]});
}
