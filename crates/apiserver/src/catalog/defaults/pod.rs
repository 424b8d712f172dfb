//! Pod defaulting: `SetDefaults_PodSpec`, `SetDefaults_Container`, probes, ports, volumes,
//! and for Pods themselves what the create strategy and the default admission plugins add
//! (Pending phase and QoS class, the `default` service account, priority 0, the
//! not-ready/unreachable tolerations).

use serde_json::{Map, Value, json};

use super::{child, items, set};

/// Defaults a Pod object: its spec plus what creation adds.
pub(super) fn pod(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    set(spec, "enableServiceLinks", json!(true));
    for key in ["containers", "initContainers"] {
        items(spec, key).for_each(requests_from_limits);
    }
    spec_admission(spec);
    spec_defaults(spec);
    let qos = qos_class(spec);
    let status = child(obj, "status");
    set(status, "phase", json!("Pending"));
    set(status, "qosClass", json!(qos));
}

/// Defaults a PodSpec (of a Pod or of a template).
pub(super) fn spec(spec: &mut Map<String, Value>) {
    spec_defaults(spec);
}

fn spec_admission(spec: &mut Map<String, Value>) {
    set(spec, "serviceAccountName", json!("default"));
    if let Some(name) = spec.get("serviceAccountName").cloned() {
        set(spec, "serviceAccount", name);
    }
    set(spec, "priority", json!(0));
    set(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    // DefaultTolerationSeconds: tolerate not-ready and unreachable nodes for 300 s unless
    // the pod already tolerates them.
    let mut tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for taint in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = tolerations.iter().any(|t| {
            (t["key"] == taint || t["key"].is_null() && t["operator"] == "Exists")
                && (t["effect"].is_null() || t["effect"] == "NoExecute" || t["effect"] == "")
        });
        if !tolerated {
            tolerations.push(json!({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec.insert("tolerations".into(), Value::Array(tolerations));
}

fn spec_defaults(spec: &mut Map<String, Value>) {
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "securityContext", json!({}));
    set(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers"] {
        items(spec, key).for_each(container);
    }
    items(spec, "ephemeralContainers").for_each(container);
    for volume in items(spec, "volumes") {
        for (source, mode_key) in [
            ("secret", "defaultMode"),
            ("configMap", "defaultMode"),
            ("downwardAPI", "defaultMode"),
            ("projected", "defaultMode"),
        ] {
            if let Some(Value::Object(inner)) = volume.get_mut(source) {
                set(inner, mode_key, json!(420));
            }
        }
        if let Some(Value::Object(host_path)) = volume.get_mut("hostPath") {
            set(host_path, "type", json!(""));
        }
    }
}

/// `SetDefaults_Pod`: a limit without a request makes the request equal to the limit.
fn requests_from_limits(c: &mut Map<String, Value>) {
    let resources = child(c, "resources");
    let Some(Value::Object(limits)) = resources.get("limits").cloned() else {
        return;
    };
    let requests = child(resources, "requests");
    for (name, quantity) in limits {
        requests.entry(name).or_insert(quantity);
    }
}

/// `IfNotPresent` for a tagged image other than `:latest`, else `Always`.
fn pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn container(c: &mut Map<String, Value>) {
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    if let Some(image) = c.get("image").and_then(Value::as_str) {
        let policy = pull_policy(image);
        set(c, "imagePullPolicy", json!(policy));
    }
    set(c, "resources", json!({}));
    items(c, "ports").for_each(|p| set(p, "protocol", json!("TCP")));
    for env in items(c, "env") {
        if let Some(Value::Object(from)) = env.get_mut("valueFrom")
            && let Some(Value::Object(field_ref)) = from.get_mut("fieldRef")
        {
            set(field_ref, "apiVersion", json!("v1"));
        }
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(probe)) = c.get_mut(key) {
            set(probe, "timeoutSeconds", json!(1));
            set(probe, "periodSeconds", json!(10));
            set(probe, "successThreshold", json!(1));
            set(probe, "failureThreshold", json!(3));
            if let Some(Value::Object(http)) = probe.get_mut("httpGet") {
                set(http, "path", json!("/"));
                set(http, "scheme", json!("HTTP"));
            }
        }
    }
}

/// Upstream's QoS class from the containers' requests and limits.
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        any |= requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty());
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_defaults_pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v2"), "IfNotPresent");
        assert_eq!(pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }
}
