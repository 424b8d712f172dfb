//! Printers of storage, networking, RBAC and cluster kinds: PersistentVolume(Claim),
//! StorageClass, Ingress, NetworkPolicy, Role(Binding)s, PriorityClass, Lease, LimitRange
//! and CustomResourceDefinition.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;

/// The printer of one of these kinds, if it is one.
pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], super::CellsFn) = match (group, kind) {
        ("", "PersistentVolumeClaim") => (PVC, pvc),
        ("", "PersistentVolume") => (PV, pv),
        ("", "LimitRange") => (CREATED_AT, created_at),
        ("networking.k8s.io", "Ingress") => (INGRESS, ingress),
        ("networking.k8s.io", "NetworkPolicy") => (NETWORK_POLICY, network_policy),
        ("storage.k8s.io", "StorageClass") => (STORAGE_CLASS, storage_class),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => (CREATED_AT, created_at),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => (BINDING, binding),
        ("scheduling.k8s.io", "PriorityClass") => (PRIORITY_CLASS, priority_class),
        ("coordination.k8s.io", "Lease") => (LEASE, lease),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => (CREATED_AT, created_at),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

#[rustfmt::skip]
const PVC: &[Column] = &[
    NAME,
    ("Status", "string", "", 0, "phase represents the current phase of PersistentVolumeClaim."),
    ("Volume", "string", "", 0, "volumeName is the binding reference to the PersistentVolume backing this claim."),
    ("Capacity", "string", "", 0, "capacity represents the actual resources of the underlying volume."),
    ("Access Modes", "string", "", 0, "accessModes contains the actual access modes the volume backing the PVC has."),
    ("StorageClass", "string", "", 0, "storageClassName is the name of the StorageClass required by the claim."),
    ("VolumeAttributesClass", "string", "", 0, "volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim."),
    AGE,
    ("VolumeMode", "string", "", 1, "volumeMode defines what type of volume is required by the claim."),
];

/// Access modes abbreviated as upstream prints them (`RWO,ROX`).
fn access_modes(obj: &Value, pointer: &str) -> String {
    strings(obj, pointer)
        .iter()
        .map(|m| match m.as_str() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn pvc(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = text(obj, "/status/phase");
    let bound = phase == "Bound";
    let (capacity, modes) = if bound {
        (
            text(obj, "/status/capacity/storage").to_string(),
            access_modes(obj, "/status/accessModes"),
        )
    } else {
        (String::new(), String::new())
    };
    vec![
        name(obj),
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            "Terminating"
        } else {
            phase
        }
        .into(),
        text(obj, "/spec/volumeName").into(),
        capacity.into(),
        modes.into(),
        text(obj, "/spec/storageClassName").into(),
        or_none(obj, "/spec/volumeAttributesClassName"),
        age(obj, now),
        or_none(obj, "/spec/volumeMode"),
    ]
}

#[rustfmt::skip]
const PV: &[Column] = &[
    NAME,
    ("Capacity", "string", "", 0, "capacity is the description of the persistent volume's resources and capacity."),
    ("Access Modes", "string", "", 0, "accessModes contains all ways the volume can be mounted."),
    ("Reclaim Policy", "string", "", 0, "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
    ("Status", "string", "", 0, "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    ("Claim", "string", "", 0, "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    ("StorageClass", "string", "", 0, "storageClassName is the name of StorageClass to which this persistent volume belongs."),
    ("VolumeAttributesClass", "string", "", 0, "Name of VolumeAttributesClass to which this persistent volume belongs."),
    ("Reason", "string", "", 0, "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
    AGE,
    ("VolumeMode", "string", "", 1, "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state."),
];

fn pv(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match text(obj, "/spec/claimRef/name") {
        "" => String::new(),
        n => format!("{}/{n}", text(obj, "/spec/claimRef/namespace")),
    };
    let phase = if obj.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    };
    vec![
        name(obj),
        text(obj, "/spec/capacity/storage").into(),
        access_modes(obj, "/spec/accessModes").into(),
        text(obj, "/spec/persistentVolumeReclaimPolicy").into(),
        phase.into(),
        claim.into(),
        text(obj, "/spec/storageClassName").into(),
        or_none(obj, "/spec/volumeAttributesClassName"),
        text(obj, "/status/reason").into(),
        age(obj, now),
        or_none(obj, "/spec/volumeMode"),
    ]
}

#[rustfmt::skip]
const CREATED_AT: &[Column] = &[
    NAME,
    ("Created At", "date", "", 0, super::AGE_DESCRIPTION),
];

fn created_at(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), obj["metadata"]["creationTimestamp"].clone()]
}

#[rustfmt::skip]
const INGRESS: &[Column] = &[
    NAME,
    ("Class", "string", "", 0, "The name of the IngressClass resource."),
    ("Hosts", "string", "", 0, "Hosts that incoming requests are matched against before the ingress rule"),
    ("Address", "string", "", 0, "Address is a list containing ingress points for the load-balancer"),
    ("Ports", "string", "", 0, "Ports of TLS configurations that open"),
    AGE,
];

fn ingress(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let hosts: Vec<&str> = list(obj, "/spec/rules")
        .iter()
        .map(|r| r["host"].as_str().unwrap_or_default())
        .filter(|h| !h.is_empty())
        .collect();
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else {
        hosts.join(",")
    };
    let address: Vec<&str> = list(obj, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
        .collect();
    let ports = if list(obj, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj),
        or_none(obj, "/spec/ingressClassName"),
        hosts.into(),
        address.join(",").into(),
        ports.into(),
        age(obj, now),
    ]
}

#[rustfmt::skip]
const NETWORK_POLICY: &[Column] = &[
    NAME,
    ("Pod-Selector", "string", "", 0, "podSelector selects the pods to which this NetworkPolicy object applies."),
    AGE,
];

fn network_policy(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let selector = format_selector(obj.pointer("/spec/podSelector"));
    let selector = if selector == "<none>" {
        String::new()
    } else {
        selector
    };
    vec![name(obj), selector.into(), age(obj, now)]
}

#[rustfmt::skip]
const STORAGE_CLASS: &[Column] = &[
    NAME,
    ("Provisioner", "string", "", 0, "provisioner indicates the type of the provisioner."),
    ("ReclaimPolicy", "string", "", 0, "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
    ("VolumeBindingMode", "string", "", 0, "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
    ("AllowVolumeExpansion", "string", "", 0, "allowVolumeExpansion shows whether the storage class allow volume expand."),
    AGE,
];

fn storage_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let annotations = &obj["metadata"]["annotations"];
    let default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| annotations[*k] == "true");
    let mut shown = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if default {
        shown.push_str(" (default)");
    }
    let or = |p: &str, d: &str| -> Value {
        match text(obj, p) {
            "" => d.into(),
            s => s.into(),
        }
    };
    let expansion = obj
        .pointer("/allowVolumeExpansion")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    vec![
        shown.into(),
        text(obj, "/provisioner").into(),
        or("/reclaimPolicy", "Delete"),
        or("/volumeBindingMode", "Immediate"),
        expansion.to_string().into(),
        age(obj, now),
    ]
}

#[rustfmt::skip]
const BINDING: &[Column] = &[
    NAME,
    ("Role", "string", "", 0, "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."),
    AGE,
    ("Users", "string", "", 1, "Users in the roleBinding"),
    ("Groups", "string", "", 1, "Groups in the roleBinding"),
    ("ServiceAccounts", "string", "", 1, "ServiceAccounts in the roleBinding"),
];

fn binding(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        text(obj, "/roleRef/kind"),
        text(obj, "/roleRef/name")
    );
    let subjects = |kind: &str| -> Value {
        list(obj, "/subjects")
            .iter()
            .filter(|s| s["kind"] == kind)
            .map(|s| match (kind, s["namespace"].as_str()) {
                ("ServiceAccount", Some(ns)) => {
                    format!("{ns}/{}", s["name"].as_str().unwrap_or_default())
                }
                _ => s["name"].as_str().unwrap_or_default().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
            .into()
    };
    vec![
        name(obj),
        role.into(),
        age(obj, now),
        subjects("User"),
        subjects("Group"),
        subjects("ServiceAccount"),
    ]
}

#[rustfmt::skip]
const PRIORITY_CLASS: &[Column] = &[
    NAME,
    ("Value", "integer", "", 0, "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
    ("Global-Default", "boolean", "", 0, "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class."),
    AGE,
    ("PreemptionPolicy", "string", "", 0, "preemptionPolicy is the Policy for preempting pods with lower priority."),
];

fn priority_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let global = obj["globalDefault"].as_bool().unwrap_or(false);
    vec![
        name(obj),
        int(obj, "/value").into(),
        global.into(),
        age(obj, now),
        text(obj, "/preemptionPolicy").into(),
    ]
}

#[rustfmt::skip]
const LEASE: &[Column] = &[
    NAME,
    ("Holder", "string", "", 0, "The holder of the lease"),
    AGE,
];

fn lease(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        text(obj, "/spec/holderIdentity").into(),
        age(obj, now),
    ]
}
