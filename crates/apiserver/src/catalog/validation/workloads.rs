//! Validation of the workload kinds (apps/v1, batch/v1 and ReplicationController): replicas,
//! selectors matching template labels, strategies, restart policies, and the fields that are
//! immutable on update (selectors, a StatefulSet's spec outside the updatable fields, a
//! Job's template).

use serde_json::{Map, Value};

use super::super::Cause;
use super::{at_least, forbidden, immutable, invalid, not_supported, pod, required};

/// Validates one workload object of `kind`.
pub(super) fn validate(kind: &str, obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            at_least(causes, obj, "/spec/replicas", 0);
            at_least(causes, obj, "/spec/minReadySeconds", 0);
            at_least(causes, obj, "/spec/revisionHistoryLimit", 0);
            selector_and_template(kind, obj, "/spec", causes);
            restart_always(obj, "/spec/template/spec/restartPolicy", causes);
            if kind == "Deployment" {
                deployment_strategy(spec, causes);
            }
            if let Some(old) = old {
                if spec["selector"] != old["spec"]["selector"] {
                    let selector = &spec["selector"];
                    causes.push(selector_cause(
                        "spec.selector",
                        selector,
                        "field is immutable",
                    ));
                }
                if kind == "StatefulSet" {
                    stateful_set_update(spec, &old["spec"], causes);
                }
            }
        }
        "ReplicationController" => {
            at_least(causes, obj, "/spec/replicas", 0);
            let selector = &spec["selector"];
            let template_labels = &spec["template"]["metadata"]["labels"];
            if let Some(map) = selector.as_object().filter(|m| !m.is_empty()) {
                let matches = map.iter().all(|(k, v)| template_labels.get(k) == Some(v));
                if !matches {
                    causes.push(invalid(
                        "spec.template.metadata.labels",
                        template_labels,
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            pod::template(obj, "/spec/template", causes);
        }
        "Job" => job(obj, old, causes),
        "CronJob" => {
            if spec["schedule"].as_str().unwrap_or_default().is_empty() {
                causes.push(required("spec.schedule", ""));
            }
            if let Some(policy) = spec.get("concurrencyPolicy").filter(|p| !p.is_null()) {
                let supported = ["Allow", "Forbid", "Replace"];
                if !supported.iter().any(|s| policy == s) {
                    causes.push(not_supported("spec.concurrencyPolicy", policy, &supported));
                }
            }
            at_least(causes, obj, "/spec/successfulJobsHistoryLimit", 0);
            at_least(causes, obj, "/spec/failedJobsHistoryLimit", 0);
            pod::template(obj, "/spec/jobTemplate/spec/template", causes);
            job_restart_policy(
                obj,
                "/spec/jobTemplate/spec/template/spec/restartPolicy",
                causes,
            );
        }
        _ => {}
    }
}

/// Go's `%#v` of a string map, as upstream shows template labels.
fn go_map(value: &Value) -> String {
    let pairs: Vec<String> = value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
        .collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// Go's `%#v` of a LabelSelector, as upstream shows selectors in causes.
fn go_selector(selector: &Value) -> String {
    let labels = match selector.get("matchLabels").filter(|m| !m.is_null()) {
        Some(map) => go_map(map),
        None => "map[string]string(nil)".into(),
    };
    let expressions = match selector["matchExpressions"].as_array() {
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let values: Vec<String> = e["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| format!("{:?}", v.as_str().unwrap_or_default()))
                        .collect();
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:[]string{{{}}}}}",
                        e["key"].as_str().unwrap_or_default(),
                        e["operator"].as_str().unwrap_or_default(),
                        values.join(", ")
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
        None => "[]v1.LabelSelectorRequirement(nil)".into(),
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions}}}")
}

/// An invalid selector cause showing the selector as upstream does.
fn selector_cause(field: &str, selector: &Value, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {detail}", go_selector(selector)),
        field: field.into(),
    }
}

/// Whether a LabelSelector selects a label set.
fn selects(selector: &Map<String, Value>, labels: &Value) -> bool {
    let labels_match = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_match = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let value = labels.get(key);
            let values = e["values"].as_array().cloned().unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
    labels_match && expressions_match
}

/// `spec.selector` required and non-empty, matching `spec.template.metadata.labels`.
fn selector_and_template(kind: &str, obj: &Value, spec_pointer: &str, causes: &mut Vec<Cause>) {
    let spec = obj.pointer(spec_pointer).unwrap_or(&Value::Null);
    let at = super::field_of(spec_pointer);
    match spec["selector"].as_object() {
        None => causes.push(required(&format!("{at}.selector"), "")),
        Some(selector) => {
            let empty = selector
                .get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
                && selector
                    .get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
            let match_labels = &spec["selector"]["matchLabels"];
            super::labels(match_labels, &format!("{at}.selector.matchLabels"), causes);
            if empty {
                let detail = format!(
                    "empty selector is invalid for {}",
                    kind.to_ascii_lowercase()
                );
                causes.push(invalid(
                    &format!("{at}.selector"),
                    &spec["selector"],
                    &detail,
                ));
            } else {
                let template_labels = &spec["template"]["metadata"]["labels"];
                if !selects(selector, template_labels) {
                    causes.push(Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!(
                            "Invalid value: {}: `selector` does not match template `labels`",
                            go_map(template_labels)
                        ),
                        field: format!("{at}.template.metadata.labels"),
                    });
                }
            }
        }
    }
    pod::template(obj, &format!("{spec_pointer}/template"), causes);
}

fn restart_always(obj: &Value, pointer: &str, causes: &mut Vec<Cause>) {
    if let Some(policy) = obj.pointer(pointer).filter(|p| !p.is_null())
        && policy != "Always"
    {
        causes.push(not_supported(
            &super::field_of(pointer),
            policy,
            &["Always"],
        ));
    }
}

fn job_restart_policy(obj: &Value, pointer: &str, causes: &mut Vec<Cause>) {
    let policy = obj
        .pointer(pointer)
        .cloned()
        .unwrap_or(Value::String(String::new()));
    if policy != "OnFailure" && policy != "Never" {
        let field = super::field_of(pointer);
        causes.push(not_supported(&field, &policy, &["OnFailure", "Never"]));
    }
}

fn deployment_strategy(spec: &Value, causes: &mut Vec<Cause>) {
    let strategy = &spec["strategy"];
    match strategy["type"].as_str() {
        None | Some("RollingUpdate") => {
            let rolling = &strategy["rollingUpdate"];
            let zero = |v: &Value| v == 0 || v == "0" || v == "0%";
            if zero(&rolling["maxUnavailable"]) && zero(&rolling["maxSurge"]) {
                causes.push(invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &rolling["maxUnavailable"],
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        Some("Recreate") => {
            if !strategy["rollingUpdate"].is_null() {
                causes.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        Some(_) => causes.push(not_supported(
            "spec.strategy.type",
            &strategy["type"],
            &["Recreate", "RollingUpdate"],
        )),
    }
    let deadline = spec["progressDeadlineSeconds"].as_i64();
    let min_ready = spec["minReadySeconds"].as_i64().unwrap_or(0);
    if let Some(deadline) = deadline
        && deadline <= min_ready
    {
        causes.push(invalid(
            "spec.progressDeadlineSeconds",
            &Value::from(deadline),
            "must be greater than minReadySeconds",
        ));
    }
}

fn stateful_set_update(spec: &Value, old: &Value, causes: &mut Vec<Cause>) {
    const UPDATABLE: &[&str] = &[
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Value::Object(map) = &mut v {
            UPDATABLE.iter().for_each(|k| {
                map.remove(*k);
            });
        }
        v
    };
    if strip(spec) != strip(old) {
        causes.push(forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

fn job(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    for key in [
        "parallelism",
        "completions",
        "backoffLimit",
        "activeDeadlineSeconds",
    ] {
        at_least(causes, obj, &format!("/spec/{key}"), 0);
    }
    if spec["manualSelector"] == true {
        selector_and_template("Job", obj, "/spec", causes);
    } else {
        pod::template(obj, "/spec/template", causes);
    }
    job_restart_policy(obj, "/spec/template/spec/restartPolicy", causes);
    if let Some(old) = old {
        let old_spec = &old["spec"];
        if !old_spec["selector"].is_null() && spec["selector"] != old_spec["selector"] {
            let selector = &spec["selector"];
            causes.push(selector_cause(
                "spec.selector",
                selector,
                "field is immutable",
            ));
        }
        if spec["completions"] != old_spec["completions"] && spec["completionMode"] != "Indexed" {
            causes.push(immutable("spec.completions", &spec["completions"]));
        }
        // Upstream allows template changes only while a job is suspended.
        if spec["template"] != old_spec["template"] && old_spec["suspend"] != true {
            causes.push(immutable("spec.template", &spec["template"]));
        }
    }
}
