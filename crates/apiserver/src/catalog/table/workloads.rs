//! Printers of pods and the apps workloads: Pod, Deployment, ReplicaSet,
//! ReplicationController, StatefulSet and DaemonSet (upstream's `printers.go`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;

#[rustfmt::skip]
pub(super) const CONTAINERS: Column = ("Containers", "string", "", 1, "Names of each container in the template.");
#[rustfmt::skip]
pub(super) const IMAGES: Column = ("Images", "string", "", 1, "Images referenced by each container in the template.");
#[rustfmt::skip]
pub(super) const SELECTOR: Column = ("Selector", "string", "", 1, "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.");

/// The printer of a workload kind, if it is one.
pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], super::CellsFn) = match (group, kind) {
        ("", "Pod") => (POD, pod),
        ("apps", "Deployment") => (DEPLOYMENT, deployment),
        ("apps", "ReplicaSet") => (REPLICA_SET, replica_set),
        ("", "ReplicationController") => (REPLICA_SET, replica_set),
        ("apps", "StatefulSet") => (STATEFUL_SET, stateful_set),
        ("apps", "DaemonSet") => (DAEMON_SET, daemon_set),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

#[rustfmt::skip]
const POD: &[Column] = &[
    NAME,
    ("Ready", "string", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "string", "", 0, "The aggregate status of the containers in this pod."),
    ("Restarts", "string", "", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    AGE,
    ("IP", "string", "", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
    ("Node", "string", "", 1, "NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements."),
    ("Nominated Node", "string", "", 1, "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled."),
    ("Readiness Gates", "string", "", 1, "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"),
];

/// How a terminated container is summarized: its reason, else `Signal:N` or `ExitCode:N`.
fn terminated_reason(terminated: &Value) -> String {
    match terminated["reason"].as_str().filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None if terminated["signal"].as_i64().unwrap_or(0) != 0 => {
            format!("Signal:{}", terminated["signal"])
        }
        None => format!("ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0)),
    }
}

/// The STATUS of a pod as upstream's `printPod` derives it from phase and container states.
fn pod_reason(obj: &Value) -> String {
    let mut reason = match text(obj, "/status/reason") {
        "" => text(obj, "/status/phase").to_string(),
        r => r.to_string(),
    };
    let init_total = list(obj, "/spec/initContainers").len();
    let mut initializing = false;
    for (i, status) in list(obj, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let state = &status["state"];
        let waiting = state.pointer("/waiting/reason").and_then(Value::as_str);
        if state
            .pointer("/terminated/exitCode")
            .and_then(Value::as_i64)
            == Some(0)
        {
            continue;
        }
        if status["started"] == true && state.get("running").is_some() {
            // A restartable init container (sidecar) that has started.
            continue;
        }
        reason = if let Some(terminated) = state.get("terminated") {
            format!("Init:{}", terminated_reason(terminated))
        } else if let Some(w) = waiting.filter(|w| !w.is_empty() && *w != "PodInitializing") {
            format!("Init:{w}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        initializing = true;
        break;
    }
    let initialized = list(obj, "/status/conditions")
        .iter()
        .any(|c| c["type"] == "Initialized" && c["status"] == "True");
    if !initializing || initialized {
        let mut has_running = false;
        for status in list(obj, "/status/containerStatuses").iter().rev() {
            let state = &status["state"];
            let waiting = state.pointer("/waiting/reason").and_then(Value::as_str);
            if let Some(w) = waiting.filter(|w| !w.is_empty()) {
                reason = w.to_string();
            } else if let Some(terminated) = state.get("terminated") {
                reason = terminated_reason(terminated);
            } else if status["ready"] == true && state.get("running").is_some() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready = list(obj, "/status/conditions")
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if ready { "Running" } else { "NotReady" }.into();
        }
    }
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        let phase = text(obj, "/status/phase");
        if text(obj, "/status/reason") == "NodeLost" {
            return "Unknown".into();
        }
        if phase != "Succeeded" && phase != "Failed" {
            return "Terminating".into();
        }
    }
    reason
}

fn pod(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let total = list(obj, "/spec/containers").len();
    let statuses = list(obj, "/status/containerStatuses");
    // Upstream counts a container ready only while it is also running.
    let ready = statuses
        .iter()
        .filter(|s| s["ready"] == true && s.pointer("/state/running").is_some())
        .count();
    let mut restarts = 0;
    let mut last_restart: Option<&str> = None;
    for status in statuses {
        restarts += status["restartCount"].as_i64().unwrap_or(0);
        if let Some(at) = status
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            && last_restart.is_none_or(|l| l < at)
        {
            last_restart = Some(at);
        }
    }
    let restarts = match last_restart {
        Some(at) if restarts > 0 => format!("{restarts} ({} ago)", age_cell(Some(at), now)),
        _ => restarts.to_string(),
    };
    let gates = list(obj, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(obj, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        name(obj),
        format!("{ready}/{total}").into(),
        pod_reason(obj).into(),
        restarts.into(),
        age(obj, now),
        or_none(obj, "/status/podIP"),
        or_none(obj, "/spec/nodeName"),
        or_none(obj, "/status/nominatedNodeName"),
        gates.into(),
    ]
}

/// Container names and images of a pod template, comma-joined.
pub(super) fn template_containers(obj: &Value) -> (Value, Value) {
    let containers = list(obj, "/spec/template/spec/containers");
    let join = |field: &str| -> Value {
        containers
            .iter()
            .map(|c| c[field].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(",")
            .into()
    };
    (join("name"), join("image"))
}

#[rustfmt::skip]
const DEPLOYMENT: &[Column] = &[
    NAME,
    ("Ready", "string", "", 0, "Number of the pod with ready state"),
    ("Up-to-date", "string", "", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    ("Available", "string", "", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn deployment(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = template_containers(obj);
    vec![
        name(obj),
        format!(
            "{}/{}",
            int(obj, "/status/readyReplicas"),
            int(obj, "/spec/replicas")
        )
        .into(),
        int(obj, "/status/updatedReplicas").into(),
        int(obj, "/status/availableReplicas").into(),
        age(obj, now),
        containers,
        images,
        format_selector(obj.pointer("/spec/selector")).into(),
    ]
}

#[rustfmt::skip]
const REPLICA_SET: &[Column] = &[
    NAME,
    ("Desired", "integer", "", 0, "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
    ("Current", "integer", "", 0, "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
    ("Ready", "integer", "", 0, "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn replica_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = template_containers(obj);
    let selector = match obj.pointer("/spec/selector") {
        Some(s) if s.get("matchLabels").is_some() || s.get("matchExpressions").is_some() => {
            format_selector(Some(s))
        }
        other => format_labels(other),
    };
    vec![
        name(obj),
        int(obj, "/spec/replicas").into(),
        int(obj, "/status/replicas").into(),
        int(obj, "/status/readyReplicas").into(),
        age(obj, now),
        containers,
        images,
        selector.into(),
    ]
}

#[rustfmt::skip]
const STATEFUL_SET: &[Column] = &[
    NAME,
    ("Ready", "string", "", 0, "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

fn stateful_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = template_containers(obj);
    vec![
        name(obj),
        format!(
            "{}/{}",
            int(obj, "/status/readyReplicas"),
            int(obj, "/spec/replicas")
        )
        .into(),
        age(obj, now),
        containers,
        images,
    ]
}

#[rustfmt::skip]
const DAEMON_SET: &[Column] = &[
    NAME,
    ("Desired", "integer", "", 0, "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    ("Current", "integer", "", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    ("Ready", "integer", "", 0, "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
    ("Up-to-date", "integer", "", 0, "The total number of nodes that are running updated daemon pod"),
    ("Available", "integer", "", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    ("Node Selector", "string", "", 0, "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn daemon_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = template_containers(obj);
    vec![
        name(obj),
        int(obj, "/status/desiredNumberScheduled").into(),
        int(obj, "/status/currentNumberScheduled").into(),
        int(obj, "/status/numberReady").into(),
        int(obj, "/status/updatedNumberScheduled").into(),
        int(obj, "/status/numberAvailable").into(),
        format_labels(obj.pointer("/spec/template/spec/nodeSelector")).into(),
        age(obj, now),
        containers,
        images,
        format_selector(obj.pointer("/spec/selector")).into(),
    ]
}
