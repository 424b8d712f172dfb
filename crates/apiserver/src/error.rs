//! Errors of request handling and their one mapping to upstream `Status` objects
//! (`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":...,"code":...}`).

use berth_store::StoreError;
use serde_json::{Value, json};

use crate::catalog::Cause;

/// What a request failed with; [`ApiError::status`] renders it the way upstream does.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The object (or the resource type) does not exist.
    #[error("{}", not_found_message(.resource, .name))]
    NotFound {
        /// Resource plural with group (`configmaps`, `deployments.apps`).
        resource: String,
        /// Object name; empty when the whole resource type is missing.
        name: String,
    },
    /// A create found the object present.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Resource plural with group.
        resource: String,
        /// Object name.
        name: String,
    },
    /// Optimistic concurrency or precondition failure (`409 Conflict`).
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        /// Resource plural with group.
        resource: String,
        /// Object name.
        name: String,
        /// Why, as upstream phrases it.
        message: String,
    },
    /// Server-side apply found fields owned by other managers.
    #[error("{message}")]
    ApplyConflict {
        /// `Apply failed with N conflicts: ...`.
        message: String,
        /// One cause per conflicting field.
        causes: Vec<Cause>,
    },
    /// Validation failed (`422 Invalid`).
    #[error("{}", invalid_message(.kind, .name, .causes))]
    Invalid {
        /// Kind of the object.
        kind: String,
        /// Object name.
        name: String,
        /// Group of the kind, for `details.group`.
        group: String,
        /// Every invalid field.
        causes: Vec<Cause>,
    },
    /// The request itself is malformed (`400 BadRequest`).
    #[error("{0}")]
    BadRequest(String),
    /// The request is refused (`403 Forbidden`), e.g. a terminating namespace.
    #[error("{message}")]
    Forbidden {
        /// Upstream's message.
        message: String,
        /// Optional cause reason such as `NamespaceTerminating`.
        cause: Option<String>,
    },
    /// No valid credentials (`401`).
    #[error("Unauthorized")]
    Unauthorized,
    /// The verb is not served for this resource (`405`).
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// The content type of the body is not supported (`415`).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
    )]
    UnsupportedMediaType,
    /// No representation in an acceptable format (`406`).
    #[error("only the following media types are accepted: {0}")]
    NotAcceptable(String),
    /// The body is larger than allowed (`413`).
    #[error("the request body is too large (limit {limit} bytes)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The requested history is gone (`410 Gone`).
    #[error("{0}")]
    Gone(String),
    /// The store failed.
    #[error("storage failure")]
    Store(#[source] StoreError),
    /// Anything else on the server's side.
    #[error("internal error: {0}")]
    Internal(String),
}

fn not_found_message(resource: &str, name: &str) -> String {
    if name.is_empty() {
        "the server could not find the requested resource".to_string()
    } else {
        format!("{resource} \"{name}\" not found")
    }
}

/// `Kind "name" is invalid: ...`; without a kind (a patch that does not decode) only the
/// causes, which kubectl prints as `The request is invalid: ...`.
fn invalid_message(kind: &str, name: &str, causes: &[Cause]) -> String {
    if kind.is_empty() {
        join_causes(causes)
    } else {
        format!("{kind} \"{name}\" is invalid: {}", join_causes(causes))
    }
}

fn join_causes(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        parts.join("")
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Compacted { .. } => {
                ApiError::Gone("The resourceVersion for the provided list is too old.".to_string())
            }
            other => ApiError::Store(other),
        }
    }
}

fn cause_json(c: &Cause) -> Value {
    json!({"reason": c.reason, "message": c.message, "field": c.field})
}

impl ApiError {
    /// The HTTP status code and upstream `Status` object of this error.
    pub fn status(&self) -> (u16, Value) {
        let message = self.to_string();
        let (code, reason, details): (u16, &str, Option<Value>) = match self {
            ApiError::NotFound { resource, name } => {
                let (group, kind) = split_resource(resource);
                let details = if name.is_empty() {
                    None
                } else {
                    Some(json!({"name": name, "group": group, "kind": kind}))
                };
                (404, "NotFound", details)
            }
            ApiError::AlreadyExists { resource, name } => {
                let (group, kind) = split_resource(resource);
                (
                    409,
                    "AlreadyExists",
                    Some(json!({"name": name, "group": group, "kind": kind})),
                )
            }
            ApiError::Conflict { resource, name, .. } => {
                let (group, kind) = split_resource(resource);
                (
                    409,
                    "Conflict",
                    Some(json!({"name": name, "group": group, "kind": kind})),
                )
            }
            ApiError::ApplyConflict { causes, .. } => (
                409,
                "Conflict",
                Some(json!({"causes": causes.iter().map(cause_json).collect::<Vec<_>>()})),
            ),
            ApiError::Invalid {
                kind,
                name,
                group,
                causes,
            } => (
                422,
                "Invalid",
                Some(json!({
                    "name": name, "group": group, "kind": kind,
                    "causes": causes.iter().map(cause_json).collect::<Vec<_>>(),
                })),
            ),
            ApiError::BadRequest(_) => (400, "BadRequest", None),
            ApiError::Forbidden { cause, .. } => (
                403,
                "Forbidden",
                cause
                    .as_ref()
                    .map(|c| json!({"causes": [{"reason": c, "message": message}]})),
            ),
            ApiError::Unauthorized => (401, "Unauthorized", None),
            ApiError::MethodNotAllowed => (405, "MethodNotAllowed", None),
            ApiError::UnsupportedMediaType => (415, "UnsupportedMediaType", None),
            ApiError::NotAcceptable(_) => (406, "NotAcceptable", None),
            ApiError::TooLarge { .. } => (413, "RequestEntityTooLarge", None),
            ApiError::Gone(_) => (410, "Expired", None),
            ApiError::Store(StoreError::NotFound(_)) => (404, "NotFound", None),
            ApiError::Store(_) | ApiError::Internal(_) => (500, "InternalError", None),
        };
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        });
        if let (Some(details), Some(map)) = (details, status.as_object_mut()) {
            map.insert("details".to_string(), details);
        }
        (code, status)
    }
}

/// `deployments.apps` → (`apps`, `deployments`).
fn split_resource(resource: &str) -> (&str, &str) {
    match resource.split_once('.') {
        Some((plural, group)) => (group, plural),
        None => ("", resource),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_renders_upstream_status() {
        let (code, status) = ApiError::NotFound {
            resource: "configmaps".into(),
            name: "x".into(),
        }
        .status();
        assert_eq!(code, 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "configmaps \"x\" not found");
        assert_eq!(status["details"]["kind"], "configmaps");
    }

    #[test]
    fn invalid_lists_causes() {
        let (code, status) = ApiError::Invalid {
            kind: "ConfigMap".into(),
            name: "Bad".into(),
            group: String::new(),
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"Bad\"".into(),
                field: "metadata.name".into(),
            }],
        }
        .status();
        assert_eq!(code, 422);
        assert_eq!(
            status["message"],
            "ConfigMap \"Bad\" is invalid: metadata.name: Invalid value: \"Bad\""
        );
        assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    }
}
