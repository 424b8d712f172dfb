//! Printers of kinds users list less often: ControllerRevision, EndpointSlice, IngressClass,
//! RuntimeClass, CertificateSigningRequest, ResourceQuota, PodTemplate and the admission
//! webhook configurations.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;

/// The printer of one of these kinds, if it is one.
pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], super::CellsFn) = match (group, kind) {
        ("apps", "ControllerRevision") => (CONTROLLER_REVISION, controller_revision),
        ("discovery.k8s.io", "EndpointSlice") => (ENDPOINT_SLICE, endpoint_slice),
        ("networking.k8s.io", "IngressClass") => (INGRESS_CLASS, ingress_class),
        ("node.k8s.io", "RuntimeClass") => (RUNTIME_CLASS, runtime_class),
        ("certificates.k8s.io", "CertificateSigningRequest") => (CSR, csr),
        ("", "ResourceQuota") => (RESOURCE_QUOTA, resource_quota),
        ("", "PodTemplate") => (POD_TEMPLATE, pod_template),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => (WEBHOOKS, webhooks),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

#[rustfmt::skip]
const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    ("Controller", "string", "", 0, "Controller of the object"),
    ("Revision", "string", "", 0, "Revision indicates the revision of the state represented by Data."),
    AGE,
];

fn controller_revision(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let controller = list(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o["controller"] == true)
        .map(|o| {
            let api_version = o["apiVersion"].as_str().unwrap_or_default();
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let kind = o["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
            let resource = if group.is_empty() {
                kind
            } else {
                format!("{kind}.{group}")
            };
            format!("{resource}/{}", o["name"].as_str().unwrap_or_default())
        })
        .unwrap_or_else(|| "<none>".into());
    vec![
        name(obj),
        controller.into(),
        int(obj, "/revision").into(),
        age(obj, now),
    ]
}

#[rustfmt::skip]
const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    ("AddressType", "string", "", 0, "addressType specifies the type of address carried by this EndpointSlice."),
    ("Ports", "string", "", 0, "ports specifies the list of network ports exposed by each endpoint in this slice."),
    ("Endpoints", "string", "", 0, "endpoints is a list of unique endpoints in this slice."),
    AGE,
];

fn endpoint_slice(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports: Vec<String> = list(obj, "/ports")
        .iter()
        .map(|p| {
            p["port"]
                .as_i64()
                .map_or("<unset>".into(), |n| n.to_string())
        })
        .collect();
    let addresses: Vec<String> = list(obj, "/endpoints")
        .iter()
        .flat_map(|e| list(e, "/addresses").iter())
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let shown = if addresses.len() > 3 {
        format!(
            "{} + {} more...",
            addresses[..3].join(","),
            addresses.len() - 3
        )
    } else {
        addresses.join(",")
    };
    vec![
        name(obj),
        text(obj, "/addressType").into(),
        none_if_empty(ports.join(",")),
        if shown.is_empty() {
            "<unset>".into()
        } else {
            shown.into()
        },
        age(obj, now),
    ]
}

#[rustfmt::skip]
const INGRESS_CLASS: &[Column] = &[
    NAME,
    ("Controller", "string", "", 0, "controller refers to the name of the controller that should handle this class."),
    ("Parameters", "string", "", 0, "parameters is a link to a custom resource containing additional configuration for the controller."),
    AGE,
];

fn ingress_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match obj.pointer("/spec/parameters") {
        Some(p) if p.is_object() => {
            let kind = p["kind"].as_str().unwrap_or_default();
            let group = p["apiGroup"].as_str().unwrap_or_default();
            let kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            format!("{kind}/{}", p["name"].as_str().unwrap_or_default())
        }
        _ => "<none>".into(),
    };
    vec![
        name(obj),
        text(obj, "/spec/controller").into(),
        parameters.into(),
        age(obj, now),
    ]
}

#[rustfmt::skip]
const RUNTIME_CLASS: &[Column] = &[
    NAME,
    ("Handler", "string", "", 0, "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class."),
    AGE,
];

fn runtime_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), text(obj, "/handler").into(), age(obj, now)]
}

#[rustfmt::skip]
const CSR: &[Column] = &[
    NAME,
    AGE,
    ("SignerName", "string", "", 0, "Only one signer can be set."),
    ("Requestor", "string", "", 0, "Request user name"),
    ("RequestedDuration", "string", "", 0, "Request Duration"),
    ("Condition", "string", "", 0, "Request Conditions"),
];

fn csr(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let has = |kind: &str| {
        list(obj, "/status/conditions")
            .iter()
            .any(|c| c["type"] == kind)
    };
    let mut conditions = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        conditions.push_str(",Failed");
    }
    if !text(obj, "/status/certificate").is_empty() {
        conditions.push_str(",Issued");
    }
    let duration = match obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
    {
        Some(s) => human_duration(s),
        None => "<none>".into(),
    };
    vec![
        name(obj),
        age(obj, now),
        text(obj, "/spec/signerName").into(),
        text(obj, "/spec/username").into(),
        duration.into(),
        conditions.into(),
    ]
}

#[rustfmt::skip]
const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    AGE,
    ("Request", "string", "", 0, "Request represents a minimum amount of cpu/memory that a container may consume."),
    ("Limit", "string", "", 0, "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
];

fn resource_quota(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    let hard = obj.pointer("/status/hard").or(obj.pointer("/spec/hard"));
    let mut keys: Vec<&String> = hard
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    for key in keys {
        let used = obj
            .pointer(&format!("/status/used/{key}"))
            .and_then(Value::as_str)
            .unwrap_or("0");
        let limit = hard
            .and_then(|h| h[key.as_str()].as_str())
            .unwrap_or_default();
        let entry = format!("{key}: {used}/{limit}");
        if key.starts_with("limits.") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(obj),
        age(obj, now),
        requests.join(", ").into(),
        limits.join(", ").into(),
    ]
}

#[rustfmt::skip]
const POD_TEMPLATE: &[Column] = &[
    NAME,
    ("Containers", "string", "", 0, "Names of each container in the template."),
    ("Images", "string", "", 0, "Images referenced by each container in the template."),
    ("Pod Labels", "string", "", 0, "The labels for the pod template."),
];

fn pod_template(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let labels = format_labels(obj.pointer("/template/metadata/labels"));
    let containers = list(obj, "/template/spec/containers");
    let join = |field: &str| -> Value {
        containers
            .iter()
            .map(|c| c[field].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(",")
            .into()
    };
    vec![name(obj), join("name"), join("image"), labels.into()]
}

#[rustfmt::skip]
const WEBHOOKS: &[Column] = &[
    NAME,
    ("Webhooks", "integer", "", 0, "Webhooks is a list of webhooks and the affected resources and operations."),
    AGE,
];

fn webhooks(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), count(obj, "/webhooks").into(), age(obj, now)]
}
