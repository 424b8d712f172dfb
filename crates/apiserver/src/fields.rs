//! Server-side field validation (`fieldValidation=Ignore|Warn|Strict`): fields a write
//! carries that its kind does not have are named with upstream's messages, as a warning or
//! as the error; pruning ([`crate::catalog::Catalog::prune`]) then drops them.

use serde_json::Value;

use crate::api::{Api, FieldValidation, WriteOptions};
use crate::catalog::{Cause, ResourceType};
use crate::error::ApiError;

/// How the object reached the server, which decides upstream's error for `Strict`.
#[derive(Debug, Clone, Copy)]
pub enum FieldSource<'a> {
    /// The body of a create or update.
    Body,
    /// The result of a JSON, merge or strategic merge patch (the patch as sent).
    Patch(&'a [u8]),
    /// A server-side apply configuration.
    Apply,
}

impl Api {
    /// Checks `object` for unknown fields according to `options.field_validation`.
    pub fn check_fields(
        &self,
        resource: &ResourceType,
        object: &Value,
        options: &WriteOptions,
        source: FieldSource<'_>,
    ) -> Result<(), ApiError> {
        if options.field_validation == FieldValidation::Ignore {
            return Ok(());
        }
        let unknown = self.catalog().unknown_fields(resource, object);
        if unknown.is_empty() {
            return Ok(());
        }
        if options.field_validation == FieldValidation::Warn {
            for path in &unknown {
                options.warn(format!("unknown field \"{path}\""));
            }
            return Ok(());
        }
        let listed = unknown
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Err(match source {
            FieldSource::Body => ApiError::BadRequest(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {listed}",
                kind = resource.kind,
                version = resource.version,
            )),
            FieldSource::Patch(patch) => ApiError::Invalid {
                kind: String::new(),
                name: String::new(),
                group: String::new(),
                causes: vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: \"{}\": strict decoding error: {listed}",
                        String::from_utf8_lossy(patch).trim()
                    ),
                    field: "patch".into(),
                }],
            },
            FieldSource::Apply => ApiError::BadRequest(
                unknown
                    .iter()
                    .map(|p| format!(".{p}: field not declared in schema"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        })
    }
}
