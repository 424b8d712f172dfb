//! The engine's error type and its mapping to HTTP status codes of the Docker Engine API.

use berth_image::ImageError;
use berth_runtime::RuntimeError;

/// Everything an engine operation can fail with; each variant knows its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404 with Docker's text, for example `No such container: x`.
    #[error("{0}")]
    NotFound(String),
    /// 409, for example a name already in use or a running container removed without force.
    #[error("{0}")]
    Conflict(String),
    /// 400: invalid options or a malformed body.
    #[error("{0}")]
    InvalidArgument(String),
    /// 403, for example removing a network in use or a pre-defined one.
    #[error("{0}")]
    Forbidden(String),
    /// 304: the container is already in the requested state.
    #[error("{0}")]
    NotModified(String),
    /// 500 with the runtime's message.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Errors of the image store, mapped by kind.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// 500: reading or writing state under the root.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// 500: an exec process could not be started (its exit code is recorded as 126/127).
    #[error("{0}")]
    ExecFailed(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// `No such container: <name>`.
    pub fn no_such_container(name: &str) -> Self {
        Self::NotFound(format!("No such container: {name}"))
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// HTTP status code Docker uses for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::InvalidArgument(_) => 400,
            Self::NotModified(_) => 304,
            Self::Forbidden(_) => 403,
            Self::Image(e) => e.status(),
            Self::Runtime(e) => match e {
                RuntimeError::NotFound(_) => 404,
                RuntimeError::NotRunning(_) => 409,
                RuntimeError::Create {
                    exec_not_found: true,
                    ..
                } => 400,
                _ => 500,
            },
            Self::Io { .. } | Self::ExecFailed(_) | Self::Internal(_) => 500,
        }
    }

    /// The message shown to users (`{"message": ...}`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Result of engine operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_docker() {
        assert_eq!(EngineError::no_such_container("x").status(), 404);
        assert_eq!(
            EngineError::no_such_container("x").message(),
            "No such container: x"
        );
        assert_eq!(
            EngineError::from(ImageError::NotFound("busybox".into())).status(),
            404
        );
        assert_eq!(EngineError::Conflict("c".into()).status(), 409);
        assert_eq!(EngineError::InvalidArgument("c".into()).status(), 400);
        assert_eq!(EngineError::NotModified("c".into()).status(), 304);
    }
}
