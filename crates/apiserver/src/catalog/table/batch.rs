//! Printers of batch and autoscaling kinds: Job, CronJob, HorizontalPodAutoscaler and
//! PodDisruptionBudget.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::workloads::{CONTAINERS, IMAGES, SELECTOR, template_containers};
use super::*;

/// The printer of one of these kinds, if it is one.
pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], super::CellsFn) = match (group, kind) {
        ("batch", "Job") => (JOB, job),
        ("batch", "CronJob") => (CRON_JOB, cron_job),
        ("autoscaling", "HorizontalPodAutoscaler") => (HPA, hpa),
        ("policy", "PodDisruptionBudget") => (PDB, pdb),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

#[rustfmt::skip]
const JOB: &[Column] = &[
    NAME,
    ("Status", "string", "", 0, "Status of the job."),
    ("Completions", "string", "", 0, "The desired number of successfully finished pods the job should be run with."),
    ("Duration", "string", "", 0, "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn has_condition(obj: &Value, kind: &str) -> bool {
    list(obj, "/status/conditions")
        .iter()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn job(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = template_containers(obj);
    let succeeded = int(obj, "/status/succeeded");
    let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => match int(obj, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let parse = |p: &str| {
        DateTime::parse_from_rfc3339(text(obj, p))
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let duration = match (parse("/status/startTime"), parse("/status/completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration((now - start).num_seconds()),
        (Some(start), Some(end)) => human_duration((end - start).num_seconds()),
    };
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else {
        "Running"
    };
    vec![
        name(obj),
        status.into(),
        completions.into(),
        duration.into(),
        age(obj, now),
        containers,
        images,
        format_selector(obj.pointer("/spec/selector")).into(),
    ]
}

#[rustfmt::skip]
const CRON_JOB: &[Column] = &[
    NAME,
    ("Schedule", "string", "", 0, "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    ("Timezone", "string", "", 0, "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    ("Suspend", "boolean", "", 0, "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
    ("Active", "integer", "", 0, "A list of pointers to currently running jobs."),
    ("Last Schedule", "string", "", 0, "Information when was the last time the job was successfully scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn cron_job(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let tmpl = obj
        .pointer("/spec/jobTemplate")
        .cloned()
        .unwrap_or(Value::Null);
    let (containers, images) = template_containers(&tmpl);
    let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let last = match obj
        .pointer("/status/lastScheduleTime")
        .and_then(Value::as_str)
    {
        Some(t) => age_cell(Some(t), now),
        None => "<none>".into(),
    };
    vec![
        name(obj),
        text(obj, "/spec/schedule").into(),
        or_none(obj, "/spec/timeZone"),
        suspend.into(),
        count(obj, "/status/active").into(),
        last.into(),
        age(obj, now),
        containers,
        images,
        format_selector(tmpl.pointer("/spec/selector")).into(),
    ]
}

#[rustfmt::skip]
const HPA: &[Column] = &[
    NAME,
    ("Reference", "string", "", 0, "The identifier for the resource being scaled."),
    ("Targets", "string", "", 0, "The current and target values of the metrics used to determine the desired number of replicas."),
    ("MinPods", "string", "", 0, "Lower limit for the number of pods that can be set by the autoscaler, default 1."),
    ("MaxPods", "integer", "", 0, "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas."),
    ("Replicas", "integer", "", 0, "Current number of replicas of pods managed by this autoscaler."),
    AGE,
];

fn hpa(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        text(obj, "/spec/scaleTargetRef/kind"),
        text(obj, "/spec/scaleTargetRef/name")
    );
    let min = match obj.pointer("/spec/minReplicas").and_then(Value::as_i64) {
        Some(n) => n.to_string(),
        None => "<unset>".into(),
    };
    let mut targets: Vec<String> = Vec::new();
    if let Some(target) = obj
        .pointer("/spec/targetCPUUtilizationPercentage")
        .and_then(Value::as_i64)
    {
        let current = obj
            .pointer("/status/currentCPUUtilizationPercentage")
            .and_then(Value::as_i64)
            .map_or("<unknown>".to_string(), |c| format!("{c}%"));
        targets.push(format!("cpu: {current}/{target}%"));
    }
    for metric in list(obj, "/spec/metrics") {
        if metric["type"] == "Resource" {
            let resource = metric
                .pointer("/resource/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(u) = metric
                .pointer("/resource/target/averageUtilization")
                .and_then(Value::as_i64)
            {
                targets.push(format!("{resource}: <unknown>/{u}%"));
            } else if let Some(v) = metric
                .pointer("/resource/target/averageValue")
                .and_then(Value::as_str)
            {
                targets.push(format!("{resource}: <unknown>/{v}"));
            }
        }
    }
    let targets = if targets.is_empty() {
        "<none>".to_string()
    } else {
        targets.join(", ")
    };
    vec![
        name(obj),
        reference.into(),
        targets.into(),
        min.into(),
        int(obj, "/spec/maxReplicas").into(),
        int(obj, "/status/currentReplicas").into(),
        age(obj, now),
    ]
}

#[rustfmt::skip]
const PDB: &[Column] = &[
    NAME,
    ("Min Available", "string", "", 0, "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    ("Max Unavailable", "string", "", 0, "The maximum number of pods that may be unavailable simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    ("Allowed Disruptions", "integer", "", 0, "Number of pod disruptions that are currently allowed."),
    AGE,
];

fn int_or_string(obj: &Value, pointer: &str) -> Value {
    match obj.pointer(pointer) {
        Some(Value::Number(n)) => n.to_string().into(),
        Some(Value::String(s)) => s.clone().into(),
        _ => "N/A".into(),
    }
}

fn pdb(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        int_or_string(obj, "/spec/minAvailable"),
        int_or_string(obj, "/spec/maxUnavailable"),
        int(obj, "/status/disruptionsAllowed").into(),
        age(obj, now),
    ]
}
