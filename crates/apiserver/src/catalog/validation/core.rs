//! Validation of the non-workload kinds users write: Service (ports, type, clusterIP
//! immutability), ConfigMap and Secret (keys, `immutable: true`), PersistentVolumeClaim,
//! Ingress, HorizontalPodAutoscaler, PodDisruptionBudget, RoleBinding roleRef, PriorityClass
//! value.

use std::collections::HashSet;

use serde_json::Value;

use super::super::Cause;
use super::{at_least, duplicate, forbidden, immutable, invalid, not_supported, required};

/// Validates one object of a kind without workload rules.
pub(super) fn validate(
    group: &str,
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
) {
    match (group, kind) {
        ("", "Service") => service(obj, old, causes),
        ("", "ConfigMap") => config_data(obj, old, &["data", "binaryData"], causes),
        ("", "Secret") => {
            config_data(obj, old, &["data", "stringData"], causes);
            if let Some(old) = old
                && obj["type"] != old["type"]
                && !old["type"].is_null()
            {
                causes.push(immutable("type", &obj["type"]));
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            at_least(causes, obj, "/spec/minReplicas", 1);
            at_least(causes, obj, "/spec/maxReplicas", 1);
            let min = obj.pointer("/spec/minReplicas").and_then(Value::as_i64);
            let max = obj.pointer("/spec/maxReplicas").and_then(Value::as_i64);
            if let (Some(min), Some(max)) = (min, max)
                && max < min
            {
                causes.push(invalid(
                    "spec.maxReplicas",
                    &Value::from(max),
                    "must be greater than or equal to `minReplicas`",
                ));
            }
            if obj
                .pointer("/spec/scaleTargetRef/kind")
                .is_none_or(|k| k == "")
            {
                causes.push(required("spec.scaleTargetRef.kind", ""));
            }
            if obj
                .pointer("/spec/scaleTargetRef/name")
                .is_none_or(|k| k == "")
            {
                causes.push(required("spec.scaleTargetRef.name", ""));
            }
        }
        ("", "PersistentVolumeClaim") => claim(obj, old, causes),
        ("networking.k8s.io", "Ingress") => ingress(obj, causes),
        ("policy", "PodDisruptionBudget") => {
            let spec = &obj["spec"];
            if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
                causes.push(invalid(
                    "spec",
                    spec,
                    "minAvailable and maxUnavailable cannot be both set",
                ));
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            if obj["roleRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                causes.push(required("roleRef.name", ""));
            }
            if let Some(old) = old
                && obj["roleRef"] != old["roleRef"]
            {
                causes.push(invalid("roleRef", &obj["roleRef"], "cannot change roleRef"));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            if let Some(old) = old
                && obj["value"] != old["value"]
            {
                causes.push(forbidden("value", "may not be changed in an update."));
            }
        }
        _ => {}
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn claim(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let modes = spec["accessModes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if modes.is_empty() {
        causes.push(required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    for mode in modes {
        if !ACCESS_MODES.iter().any(|m| mode == m) {
            causes.push(not_supported("spec.accessModes", mode, ACCESS_MODES));
        }
    }
    if spec.pointer("/resources/requests/storage").is_none() {
        causes.push(required("spec.resources[storage]", ""));
    }
    if let Some(old) = old {
        let frozen = |spec: &Value| {
            let mut spec = spec.clone();
            if let Value::Object(map) = &mut spec {
                for key in ["resources", "volumeName", "volumeAttributesClassName"] {
                    map.remove(key);
                }
            }
            spec
        };
        if frozen(spec) != frozen(&old["spec"]) {
            causes.push(forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
    }
}

fn ingress(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let rules = spec["rules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if rules.is_empty() && spec["defaultBackend"].is_null() {
        causes.push(invalid(
            "spec",
            spec,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        let paths = rule.pointer("/http/paths").and_then(Value::as_array);
        for (j, path) in paths.into_iter().flatten().enumerate() {
            let at = format!("spec.rules[{i}].http.paths[{j}]");
            match path["pathType"].as_str() {
                None => causes.push(required(
                    &format!("{at}.pathType"),
                    "pathType must be specified",
                )),
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(_) => causes.push(not_supported(
                    &format!("{at}.pathType"),
                    &path["pathType"],
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            if let Some(p) = path["path"].as_str()
                && !p.starts_with('/')
                && path["pathType"] != "ImplementationSpecific"
            {
                causes.push(invalid(
                    &format!("{at}.path"),
                    &path["path"],
                    "must be an absolute path",
                ));
            }
            let service = &path["backend"]["service"];
            if !service.is_null() {
                if service["name"].as_str().unwrap_or_default().is_empty() {
                    causes.push(required(&format!("{at}.backend.service.name"), ""));
                }
                let port = &service["port"];
                if port["name"].is_null() && port["number"].is_null() {
                    causes.push(required(
                        &format!("{at}.backend.service.port"),
                        "port name or number is required",
                    ));
                }
            }
        }
    }
}

fn service(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !TYPES.contains(&kind) {
        causes.push(not_supported("spec.type", &spec["type"], TYPES));
    }
    if let Some(affinity) = spec.get("sessionAffinity").filter(|a| !a.is_null())
        && affinity != "ClientIP"
        && affinity != "None"
    {
        causes.push(not_supported(
            "spec.sessionAffinity",
            affinity,
            &["ClientIP", "None"],
        ));
    }
    let ports = spec["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let headless = spec["clusterIP"] == "None";
    if kind == "ExternalName" {
        if spec["externalName"].as_str().unwrap_or_default().is_empty() {
            causes.push(required("spec.externalName", ""));
        }
    } else if ports.is_empty() && !headless {
        causes.push(required("spec.ports", ""));
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let name = port["name"].as_str().unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            causes.push(required(&format!("{at}.name"), ""));
        } else if !name.is_empty() && !names.insert(name.to_string()) {
            causes.push(duplicate(&format!("{at}.name"), &port["name"]));
        }
        for msg in super::names::dns1123_label(name)
            .into_iter()
            .filter(|_| !name.is_empty())
        {
            causes.push(invalid(&format!("{at}.name"), &port["name"], &msg));
        }
        for key in ["port", "nodePort"] {
            match port[key].as_i64() {
                None if key == "port" => causes.push(required(&format!("{at}.port"), "")),
                Some(n) if !((1..=65535).contains(&n) || key == "nodePort" && n == 0) => causes
                    .push(invalid(
                        &format!("{at}.{key}"),
                        &port[key],
                        "must be between 1 and 65535, inclusive",
                    )),
                _ => {}
            }
        }
        if let Some(n) = port["targetPort"].as_i64()
            && !(1..=65535).contains(&n)
        {
            causes.push(invalid(
                &format!("{at}.targetPort"),
                &port["targetPort"],
                "must be between 1 and 65535, inclusive",
            ));
        }
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        if !["SCTP", "TCP", "UDP"].contains(&protocol) {
            causes.push(not_supported(
                &format!("{at}.protocol"),
                &port["protocol"],
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if !keys.insert((port["port"].as_i64(), protocol.to_string())) {
            causes.push(duplicate(
                &at.to_string(),
                &serde_json::json!({"port": port["port"], "protocol": protocol}),
            ));
        }
    }
    if let Some(old) = old {
        let (new_ip, old_ip) = (&spec["clusterIP"], &old["spec"]["clusterIP"]);
        let set = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
        if set(new_ip) && set(old_ip) && new_ip != old_ip && kind != "ExternalName" {
            causes.push(immutable("spec.clusterIP", new_ip));
        }
    }
}

/// Keys of config data must be valid; with `immutable: true` nothing may change.
fn config_data(obj: &Value, old: Option<&Value>, fields: &[&str], causes: &mut Vec<Cause>) {
    for field in fields {
        for key in obj[*field]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && key != "."
                && key != ".."
                && !key.starts_with("..");
            if !valid {
                causes.push(invalid(
                    &format!("{field}[{key}]"),
                    &Value::String(key.clone()),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    let Some(old) = old else {
        return;
    };
    if old["immutable"] != true {
        return;
    }
    const DETAIL: &str = "field is immutable when `immutable` is set";
    if obj["immutable"] != true {
        causes.push(forbidden("immutable", DETAIL));
    }
    for field in fields {
        if obj[*field] != old[*field] {
            causes.push(forbidden(field, DETAIL));
        }
    }
}
