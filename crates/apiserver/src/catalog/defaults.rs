//! Upstream defaulting of built-in kinds (the `SetDefaults_*` functions of `k8s.io/api`'s
//! groups, and what the create strategies and admission plugins add to a new object):
//! workload specs here, pod specs in `defaults/pod.rs`.

mod pod;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Map, Value, json};

/// Sets `key` when it is absent or null.
pub(super) fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        Some(v) if !v.is_null() => {}
        _ => {
            map.insert(key.to_string(), value);
        }
    }
}

/// The object at `key`, created empty when absent or not an object.
pub(super) fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut()
        .expect("the slot was just made an object")
}

/// The objects of the list at `key`, if any.
pub(super) fn items<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Defaults a pod template's spec if the template is present.
fn template(spec: &mut Map<String, Value>) {
    if let Some(Value::Object(template)) = spec.get_mut("template")
        && let Some(Value::Object(pod_spec)) = template.get_mut("spec")
    {
        pod::spec(pod_spec);
    }
}

/// Applies upstream defaulting to a built-in object.
pub(super) fn apply(group: &str, kind: &str, object: &mut Value) {
    let Value::Object(obj) = object else {
        return;
    };
    match (group, kind) {
        ("", "Pod") => pod::pod(obj),
        ("", "PodTemplate") => template(obj),
        ("", "Namespace") => namespace(obj),
        ("", "Service") => service(child(obj, "spec")),
        ("", "Secret") => secret(obj),
        ("", "ReplicationController") => replication_controller(obj),
        ("", "PersistentVolumeClaim") => {
            set(child(obj, "spec"), "volumeMode", json!("Filesystem"));
            set(child(obj, "status"), "phase", json!("Pending"));
        }
        ("", "PersistentVolume") => {
            let spec = child(obj, "spec");
            set(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            set(spec, "volumeMode", json!("Filesystem"));
            set(child(obj, "status"), "phase", json!("Pending"));
        }
        ("", "Endpoints") => {
            for subset in items(obj, "subsets") {
                items(subset, "ports").for_each(|p| set(p, "protocol", json!("TCP")));
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            items(obj, "ports").for_each(|p| set(p, "protocol", json!("TCP")));
        }
        ("apps", "Deployment") => deployment(child(obj, "spec")),
        ("apps", "ReplicaSet") => {
            let spec = child(obj, "spec");
            set(spec, "replicas", json!(1));
            template(spec);
        }
        ("apps", "StatefulSet") => stateful_set(child(obj, "spec")),
        ("apps", "DaemonSet") => daemon_set(child(obj, "spec")),
        ("batch", "Job") => {
            job_selector(obj);
            job(child(obj, "spec"));
        }
        ("batch", "CronJob") => cron_job(child(obj, "spec")),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let v2 = obj.get("apiVersion") == Some(&json!("autoscaling/v2"));
            hpa(child(obj, "spec"), v2);
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(child(obj, "spec")),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            // ServiceAccount subjects keep the core group, which is omitted when empty.
            for subject in items(obj, "subjects") {
                if matches!(
                    subject.get("kind").and_then(Value::as_str),
                    Some("User" | "Group")
                ) {
                    set(subject, "apiGroup", json!("rbac.authorization.k8s.io"));
                }
            }
            set(
                child(obj, "roleRef"),
                "apiGroup",
                json!("rbac.authorization.k8s.io"),
            );
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            set(obj, "preemptionPolicy", json!("PreemptLowerPriority"))
        }
        ("storage.k8s.io", "StorageClass") => {
            set(obj, "reclaimPolicy", json!("Delete"));
            set(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(child(obj, "spec")),
        _ => {}
    }
}

fn namespace(obj: &mut Map<String, Value>) {
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    if name.is_string() {
        // Upstream labels every namespace with its own name (KEP-2161).
        let labels = child(child(obj, "metadata"), "labels");
        labels.insert("kubernetes.io/metadata.name".into(), name);
    }
    set(child(obj, "spec"), "finalizers", json!(["kubernetes"]));
    set(child(obj, "status"), "phase", json!("Active"));
}

/// `SetDefaults_ReplicationController`: selector and labels from the template's labels.
fn replication_controller(obj: &mut Map<String, Value>) {
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = template_labels {
        let spec = child(obj, "spec");
        if spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            spec.insert("selector".into(), labels.clone());
        }
        let meta = child(obj, "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta.insert("labels".into(), labels);
        }
    }
    let spec = child(obj, "spec");
    set(spec, "replicas", json!(1));
    template(spec);
}

fn service(spec: &mut Map<String, Value>) {
    set(spec, "type", json!("ClusterIP"));
    set(spec, "sessionAffinity", json!("None"));
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind != "ExternalName" {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
        // What the REST layer records on create for a single-stack IPv4 cluster.
        set(spec, "ipFamilyPolicy", json!("SingleStack"));
        set(spec, "ipFamilies", json!(["IPv4"]));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    for port in items(spec, "ports") {
        set(port, "protocol", json!("TCP"));
        if let Some(number) = port.get("port").cloned() {
            set(port, "targetPort", number);
        }
    }
}

fn deployment(spec: &mut Map<String, Value>) {
    set(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type") == Some(&json!("RollingUpdate")) {
        let rolling = child(strategy, "rollingUpdate");
        set(rolling, "maxUnavailable", json!("25%"));
        set(rolling, "maxSurge", json!("25%"));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
}

fn stateful_set(spec: &mut Map<String, Value>) {
    set(spec, "replicas", json!(1));
    set(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = child(spec, "updateStrategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type") == Some(&json!("RollingUpdate")) {
        set(child(strategy, "rollingUpdate"), "partition", json!(0));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
    set(retention, "whenDeleted", json!("Retain"));
    set(retention, "whenScaled", json!("Retain"));
    for claim in items(spec, "volumeClaimTemplates") {
        set(child(claim, "spec"), "volumeMode", json!("Filesystem"));
    }
    template(spec);
}

fn daemon_set(spec: &mut Map<String, Value>) {
    let strategy = child(spec, "updateStrategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type") == Some(&json!("RollingUpdate")) {
        let rolling = child(strategy, "rollingUpdate");
        set(rolling, "maxUnavailable", json!(1));
        set(rolling, "maxSurge", json!(0));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    template(spec);
}

fn job(spec: &mut Map<String, Value>) {
    let unset = |spec: &Map<String, Value>, key: &str| spec.get(key).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    set(spec, "backoffLimit", json!(6));
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    set(spec, "manualSelector", json!(false));
    if unset(spec, "podFailurePolicy") {
        set(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    }
    template(spec);
}

/// Upstream's v1 conversion merges the write-only `stringData` into `data` (base64).
fn secret(obj: &mut Map<String, Value>) {
    set(obj, "type", json!("Opaque"));
    if let Some(Value::Object(strings)) = obj.remove("stringData") {
        let data = child(obj, "data");
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            data.insert(key, json!(BASE64_STANDARD.encode(text)));
        }
    }
}

/// The selector and template labels the Job strategy generates from the uid (unless
/// `manualSelector`), once the uid is assigned.
fn job_selector(obj: &mut Map<String, Value>) {
    let meta = obj.get("metadata").cloned().unwrap_or_default();
    let (Some(uid), Some(name)) = (meta["uid"].as_str(), meta["name"].as_str()) else {
        return;
    };
    let spec = child(obj, "spec");
    if spec.get("manualSelector") == Some(&json!(true))
        || spec.get("selector").is_some_and(|s| !s.is_null())
    {
        return;
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let labels = child(child(child(spec, "template"), "metadata"), "labels");
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ] {
        set(labels, key, json!(value));
    }
}

fn cron_job(spec: &mut Map<String, Value>) {
    set(spec, "concurrencyPolicy", json!("Allow"));
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(Value::Object(job_template)) = spec.get_mut("jobTemplate")
        && let Some(Value::Object(job_spec)) = job_template.get_mut("spec")
    {
        template(job_spec);
    }
}

fn hpa(spec: &mut Map<String, Value>, v2: bool) {
    set(spec, "minReplicas", json!(1));
    // autoscaling/v2 defaults missing metrics to 80% CPU; v1 has no metrics field and
    // keeps targetCPUUtilizationPercentage unset.
    if v2
        && spec
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
}

fn network_policy(spec: &mut Map<String, Value>) {
    for rule in items(spec, "ingress") {
        items(rule, "ports").for_each(|p| set(p, "protocol", json!("TCP")));
    }
    for rule in items(spec, "egress") {
        items(rule, "ports").for_each(|p| set(p, "protocol", json!("TCP")));
    }
    if spec.get("policyTypes").is_none_or(Value::is_null) {
        let mut types = vec![json!("Ingress")];
        if spec.get("egress").is_some_and(|e| !e.is_null()) {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

fn crd(spec: &mut Map<String, Value>) {
    set(child(spec, "conversion"), "strategy", json!("None"));
    let names = child(spec, "names");
    if let Some(kind) = names
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        set(names, "singular", json!(kind.to_ascii_lowercase()));
        set(names, "listKind", json!(format!("{kind}List")));
    }
}

#[cfg(test)]
mod tests;
