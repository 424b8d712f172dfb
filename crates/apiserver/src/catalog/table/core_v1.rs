//! Printers of the core kinds users list: Service, ConfigMap, Secret, Namespace, Node,
//! Endpoints, ServiceAccount and Event (core/v1 and events.k8s.io/v1).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;

/// The printer of one of these kinds, if it is one.
pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], super::CellsFn) = match (group, kind) {
        ("", "Service") => (SERVICE, service),
        ("", "ConfigMap") => (CONFIG_MAP, config_map),
        ("", "Secret") => (SECRET, secret),
        ("", "Namespace") => (NAMESPACE, namespace),
        ("", "Node") => (NODE, node),
        ("", "Endpoints") => (ENDPOINTS, endpoints),
        ("", "ServiceAccount") => (SERVICE_ACCOUNT, service_account),
        ("", "Event") | ("events.k8s.io", "Event") => (EVENT, event),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

#[rustfmt::skip]
const SERVICE: &[Column] = &[
    NAME,
    ("Type", "string", "", 0, "type determines how the Service is exposed. Defaults to ClusterIP."),
    ("Cluster-IP", "string", "", 0, "clusterIP is the IP address of the service and is usually assigned randomly."),
    ("External-IP", "string", "", 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
    ("Port(s)", "string", "", 0, "The list of ports that are exposed by this service."),
    AGE,
    ("Selector", "string", "", 1, "Route service traffic to pods with label keys and values matching this selector."),
];

fn service(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let kind = match text(obj, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    let mut external = strings(obj, "/spec/externalIPs");
    let external = match kind {
        "LoadBalancer" => {
            let mut ips: Vec<String> = list(obj, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                .map(str::to_string)
                .collect();
            ips.append(&mut external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => text(obj, "/spec/externalName").to_string(),
        _ if external.is_empty() => "<none>".into(),
        _ => external.join(","),
    };
    let ports: Vec<String> = list(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(node) if node != 0 => format!("{}:{node}/{protocol}", p["port"]),
                _ => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    vec![
        name(obj),
        kind.into(),
        or_none(obj, "/spec/clusterIP"),
        external.into(),
        none_if_empty(ports.join(",")),
        age(obj, now),
        format_labels(obj.pointer("/spec/selector")).into(),
    ]
}

#[rustfmt::skip]
const CONFIG_MAP: &[Column] = &[
    NAME,
    ("Data", "string", "", 0, "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
    AGE,
];

fn config_map(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let data = count(obj, "/data") + count(obj, "/binaryData");
    vec![name(obj), data.into(), age(obj, now)]
}

#[rustfmt::skip]
const SECRET: &[Column] = &[
    NAME,
    ("Type", "string", "", 0, "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
    ("Data", "string", "", 0, "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
    AGE,
];

fn secret(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let data = count(obj, "/data") + count(obj, "/stringData");
    vec![
        name(obj),
        text(obj, "/type").into(),
        data.into(),
        age(obj, now),
    ]
}

#[rustfmt::skip]
const NAMESPACE: &[Column] = &[
    NAME,
    ("Status", "string", "", 0, "The status of the namespace"),
    AGE,
];

fn namespace(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), text(obj, "/status/phase").into(), age(obj, now)]
}

#[rustfmt::skip]
const NODE: &[Column] = &[
    NAME,
    ("Status", "string", "", 0, "The status of the node"),
    ("Roles", "string", "", 0, "The roles of the node"),
    AGE,
    ("Version", "string", "", 0, "Kubelet Version reported by the node."),
    ("Internal-IP", "string", "", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
    ("External-IP", "string", "", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
    ("OS-Image", "string", "", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    ("Kernel-Version", "string", "", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    ("Container-Runtime", "string", "", 1, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
];

fn node(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    for c in list(obj, "/status/conditions") {
        if c["type"] == "Ready" {
            status.push(
                if c["status"] == "True" {
                    "Ready"
                } else {
                    "NotReady"
                }
                .into(),
            );
        }
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if obj.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                return (!role.is_empty()).then(|| role.to_string());
            }
            (k == "kubernetes.io/role").then(|| v.as_str().unwrap_or_default().to_string())
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    roles.dedup();
    let address = |kind: &str| -> Value {
        list(obj, "/status/addresses")
            .iter()
            .find(|a| a["type"] == kind)
            .and_then(|a| a["address"].as_str())
            .map_or("<none>".into(), Value::from)
    };
    vec![
        name(obj),
        status.join(",").into(),
        none_if_empty(roles.join(",")),
        age(obj, now),
        text(obj, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP"),
        address("ExternalIP"),
        or_none(obj, "/status/nodeInfo/osImage"),
        or_none(obj, "/status/nodeInfo/kernelVersion"),
        or_none(obj, "/status/nodeInfo/containerRuntimeVersion"),
    ]
}

#[rustfmt::skip]
const ENDPOINTS: &[Column] = &[
    NAME,
    ("Endpoints", "string", "", 0, "Endpoints of the service"),
    AGE,
];

fn endpoints(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut all: Vec<String> = Vec::new();
    for subset in list(obj, "/subsets") {
        let ports = list(subset, "/ports");
        for address in list(subset, "/addresses") {
            let ip = address["ip"].as_str().unwrap_or_default();
            if ports.is_empty() {
                all.push(ip.to_string());
            }
            for port in ports {
                all.push(format!("{ip}:{}", port["port"]));
            }
        }
    }
    // Upstream prints at most three endpoints and counts the rest.
    let shown = if all.len() > 3 {
        format!("{} + {} more...", all[..3].join(","), all.len() - 3)
    } else {
        all.join(",")
    };
    vec![name(obj), none_if_empty(shown), age(obj, now)]
}

#[rustfmt::skip]
const SERVICE_ACCOUNT: &[Column] = &[
    NAME,
    ("Secrets", "string", "", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
    AGE,
];

fn service_account(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), count(obj, "/secrets").into(), age(obj, now)]
}

#[rustfmt::skip]
const EVENT: &[Column] = &[
    ("Last Seen", "string", "", 0, "Time when last Event occurred"),
    ("Type", "string", "", 0, "Type of this event."),
    ("Reason", "string", "", 0, "Reason is why the action was taken. It is human-readable. This field can have at most 128 characters."),
    ("Object", "string", "", 0, "The object that this event is about."),
    ("Subobject", "string", "", 1, "The subobject of the object that this event is about."),
    ("Source", "string", "", 1, "The component reporting this event. Should be a short machine understandable string."),
    ("Message", "string", "", 0, "A human-readable description of the status of this operation."),
    ("First Seen", "string", "", 1, "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
    ("Count", "string", "", 1, "The number of times this event has occurred."),
    ("Name", "string", "name", 1, super::NAME_DESCRIPTION),
];

fn event(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // core/v1 and events.k8s.io/v1 name the same facts differently.
    let pick = |a: &str, b: &str| -> Option<&str> {
        Some(text(obj, a))
            .filter(|s| !s.is_empty())
            .or(Some(text(obj, b)).filter(|s| !s.is_empty()))
    };
    let first = pick("/firstTimestamp", "/deprecatedFirstTimestamp")
        .or(pick("/eventTime", "/metadata/creationTimestamp"));
    let last = pick("/lastTimestamp", "/deprecatedLastTimestamp")
        .or(pick("/series/lastObservedTime", "/eventTime"))
        .or(first);
    let involved = obj
        .get("involvedObject")
        .or(obj.get("regarding"))
        .unwrap_or(&Value::Null);
    let kind = involved["kind"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let object = match involved["name"].as_str().unwrap_or_default() {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let source = pick("/source/component", "/reportingController")
        .or(pick("/deprecatedSource/component", "/reportingComponent"))
        .unwrap_or_default();
    let count = obj["count"]
        .as_i64()
        .or(obj.pointer("/series/count").and_then(Value::as_i64))
        .unwrap_or(1);
    vec![
        age_cell(last, now).into(),
        text(obj, "/type").into(),
        text(obj, "/reason").into(),
        object.into(),
        involved["fieldPath"].as_str().unwrap_or_default().into(),
        source.into(),
        pick("/message", "/note").unwrap_or_default().trim().into(),
        age_cell(first, now).into(),
        count.into(),
        name(obj),
    ]
}
