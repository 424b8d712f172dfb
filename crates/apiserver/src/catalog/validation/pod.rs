//! PodSpec validation (`ValidatePodSpec` for the fields users write): containers and init
//! containers, their names, images, ports, policies, env and volume mounts; volumes; the
//! pod's restart and DNS policies. Used for Pods and for every pod template.

use std::collections::HashSet;

use serde_json::Value;

use super::super::{Cause, names};
use super::{duplicate, invalid, labels, not_found, not_supported, required};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn list<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Validates a Pod; on update only the images and a few fields may change.
pub(super) fn pod(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    spec(&obj["spec"], "spec", causes);
    if let Some(old) = old
        && mutable_view(&obj["spec"]) != mutable_view(&old["spec"])
    {
        causes.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {POD_UPDATE}"),
            field: "spec".into(),
        });
    }
}

/// Upstream's message when a pod update changes a field that may not change.
const POD_UPDATE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod spec without the fields an update may change (images, activeDeadlineSeconds,
/// tolerations, terminationGracePeriodSeconds; nodeName while unset).
fn mutable_view(spec: &Value) -> Value {
    let mut view = spec.clone();
    if let Value::Object(map) = &mut view {
        for key in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "nodeName",
            "ephemeralContainers",
        ] {
            map.remove(key);
        }
        for key in ["containers", "initContainers"] {
            for c in map
                .get_mut(key)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Value::Object(c) = c {
                    c.remove("image");
                    c.remove("resources");
                }
            }
        }
    }
    view
}

/// Validates the pod template at `pointer` (`/spec/template`): its labels and spec.
pub(super) fn template(obj: &Value, pointer: &str, causes: &mut Vec<Cause>) {
    let field = super::field_of(pointer);
    let Some(template) = obj.pointer(pointer) else {
        causes.push(required(&field, ""));
        return;
    };
    labels(
        &template["metadata"]["labels"],
        &format!("{field}.metadata.labels"),
        causes,
    );
    spec(&template["spec"], &format!("{field}.spec"), causes);
}

/// Validates a PodSpec at field path `at`.
pub(super) fn spec(spec: &Value, at: &str, causes: &mut Vec<Cause>) {
    let mut volumes = HashSet::new();
    for (i, volume) in list(spec, "volumes").iter().enumerate() {
        let field = format!("{at}.volumes[{i}].name");
        match volume["name"].as_str().unwrap_or_default() {
            "" => causes.push(required(&field, "")),
            name => {
                for msg in names::dns1123_label(name) {
                    causes.push(invalid(&field, &volume["name"], &msg));
                }
                if !volumes.insert(name.to_string()) {
                    causes.push(duplicate(&field, &volume["name"]));
                }
            }
        }
    }
    let containers = list(spec, "containers");
    if containers.is_empty() {
        causes.push(required(&format!("{at}.containers"), ""));
    }
    let mut seen = HashSet::new();
    for key in ["initContainers", "containers"] {
        for (i, c) in list(spec, key).iter().enumerate() {
            container(c, &format!("{at}.{key}[{i}]"), &volumes, &mut seen, causes);
        }
    }
    for (key, supported) in [
        ("restartPolicy", &["Always", "OnFailure", "Never"][..]),
        (
            "dnsPolicy",
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"][..],
        ),
    ] {
        if let Some(value) = spec.get(key).filter(|v| !v.is_null())
            && !supported.iter().any(|s| value == s)
        {
            causes.push(not_supported(&format!("{at}.{key}"), value, supported));
        }
    }
    if let Some(n) = spec["terminationGracePeriodSeconds"].as_i64()
        && n < 0
    {
        let field = format!("{at}.terminationGracePeriodSeconds");
        causes.push(invalid(
            &field,
            &Value::from(n),
            "must be greater than or equal to 0",
        ));
    }
}

fn container(
    c: &Value,
    at: &str,
    volumes: &HashSet<String>,
    seen: &mut HashSet<String>,
    causes: &mut Vec<Cause>,
) {
    match c["name"].as_str().unwrap_or_default() {
        "" => causes.push(required(&format!("{at}.name"), "")),
        name => {
            for msg in names::dns1123_label(name) {
                causes.push(invalid(&format!("{at}.name"), &c["name"], &msg));
            }
            if !seen.insert(name.to_string()) {
                causes.push(duplicate(&format!("{at}.name"), &c["name"]));
            }
        }
    }
    if c["image"].as_str().unwrap_or_default().trim().is_empty() {
        causes.push(required(&format!("{at}.image"), ""));
    }
    for (key, supported) in [
        ("imagePullPolicy", &["Always", "IfNotPresent", "Never"][..]),
        (
            "terminationMessagePolicy",
            &["File", "FallbackToLogsOnError"][..],
        ),
    ] {
        if let Some(value) = c.get(key).filter(|v| !v.is_null())
            && !supported.iter().any(|s| value == s)
        {
            causes.push(not_supported(&format!("{at}.{key}"), value, supported));
        }
    }
    let mut port_names = HashSet::new();
    for (i, port) in list(c, "ports").iter().enumerate() {
        let field = format!("{at}.ports[{i}]");
        if let Some(name) = port["name"].as_str().filter(|n| !n.is_empty()) {
            for msg in names::port_name(name) {
                causes.push(invalid(&format!("{field}.name"), &port["name"], &msg));
            }
            if !port_names.insert(name.to_string()) {
                causes.push(duplicate(&format!("{field}.name"), &port["name"]));
            }
        }
        match port["containerPort"].as_i64() {
            None | Some(0) => causes.push(required(&format!("{field}.containerPort"), "")),
            Some(n) if !(1..=65535).contains(&n) => causes.push(invalid(
                &format!("{field}.containerPort"),
                &port["containerPort"],
                "must be between 1 and 65535, inclusive",
            )),
            Some(_) => {}
        }
        if let Some(n) = port["hostPort"].as_i64().filter(|n| *n != 0)
            && !(1..=65535).contains(&n)
        {
            causes.push(invalid(
                &format!("{field}.hostPort"),
                &port["hostPort"],
                "must be between 1 and 65535, inclusive",
            ));
        }
        if let Some(protocol) = port.get("protocol").filter(|p| !p.is_null())
            && !PROTOCOLS.iter().any(|p| protocol == p)
        {
            causes.push(not_supported(
                &format!("{field}.protocol"),
                protocol,
                PROTOCOLS,
            ));
        }
    }
    for (i, env) in list(c, "env").iter().enumerate() {
        if env["name"].as_str().unwrap_or_default().is_empty() {
            causes.push(required(&format!("{at}.env[{i}].name"), ""));
        }
    }
    for (i, mount) in list(c, "volumeMounts").iter().enumerate() {
        let field = format!("{at}.volumeMounts[{i}]");
        match mount["name"].as_str().unwrap_or_default() {
            "" => causes.push(required(&format!("{field}.name"), "")),
            name if !volumes.contains(name) => {
                causes.push(not_found(&format!("{field}.name"), &mount["name"]))
            }
            _ => {}
        }
        if mount["mountPath"].as_str().unwrap_or_default().is_empty() {
            causes.push(required(&format!("{field}.mountPath"), ""));
        }
    }
}
