//! The distribution spec's error codes ("Error Codes" table) and the one function that
//! renders them as `{"errors":[{"code","message","detail"}]}` responses.

use http::{HeaderValue, Response, StatusCode, header};

use super::{Body, full};

/// An error code from the spec's table, with the status each is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Blob unknown to registry.
    BlobUnknown,
    /// Blob upload invalid.
    BlobUploadInvalid,
    /// Blob upload unknown to registry.
    BlobUploadUnknown,
    /// Provided digest did not match uploaded content.
    DigestInvalid,
    /// Manifest references a blob unknown to registry.
    ManifestBlobUnknown,
    /// Manifest invalid.
    ManifestInvalid,
    /// Manifest unknown to registry.
    ManifestUnknown,
    /// Invalid repository name.
    NameInvalid,
    /// Repository name not known to registry.
    NameUnknown,
    /// Provided length did not match content length, or content too large.
    SizeInvalid,
    /// Authentication required.
    Unauthorized,
    /// The operation is unsupported.
    Unsupported,
    /// Range not satisfiable (an upload chunk out of order, or a bad `Range`).
    RangeInvalid,
    /// Too large a payload.
    TooLarge,
    /// The registry failed; not the client's fault.
    Internal,
}

impl Code {
    fn wire(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Code::BlobUnknown => ("BLOB_UNKNOWN", S::NOT_FOUND, "blob unknown to registry"),
            Code::BlobUploadInvalid => {
                ("BLOB_UPLOAD_INVALID", S::BAD_REQUEST, "blob upload invalid")
            }
            Code::BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                S::NOT_FOUND,
                "blob upload unknown to registry",
            ),
            Code::DigestInvalid => (
                "DIGEST_INVALID",
                S::BAD_REQUEST,
                "provided digest did not match uploaded content",
            ),
            Code::ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                S::BAD_REQUEST,
                "manifest references a manifest or blob unknown to registry",
            ),
            Code::ManifestInvalid => ("MANIFEST_INVALID", S::BAD_REQUEST, "manifest invalid"),
            Code::ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                S::NOT_FOUND,
                "manifest unknown to registry",
            ),
            Code::NameInvalid => ("NAME_INVALID", S::BAD_REQUEST, "invalid repository name"),
            Code::NameUnknown => (
                "NAME_UNKNOWN",
                S::NOT_FOUND,
                "repository name not known to registry",
            ),
            Code::SizeInvalid => (
                "SIZE_INVALID",
                S::BAD_REQUEST,
                "provided length did not match content length",
            ),
            Code::Unauthorized => ("UNAUTHORIZED", S::UNAUTHORIZED, "authentication required"),
            Code::Unsupported => (
                "UNSUPPORTED",
                S::METHOD_NOT_ALLOWED,
                "the operation is unsupported",
            ),
            Code::RangeInvalid => (
                "BLOB_UPLOAD_INVALID",
                S::RANGE_NOT_SATISFIABLE,
                "requested range not satisfiable",
            ),
            Code::TooLarge => ("SIZE_INVALID", S::PAYLOAD_TOO_LARGE, "payload too large"),
            Code::Internal => ("UNKNOWN", S::INTERNAL_SERVER_ERROR, "internal server error"),
        }
    }
}

/// A request refused with a spec error code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct ApiError {
    /// The code.
    pub code: Code,
    /// Detail for the client (a digest, a name).
    pub detail: String,
}

impl ApiError {
    /// An error with `detail`.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// Renders the spec's JSON body with the code's status.
    pub fn into_response(self, realm: &str) -> Response<Body> {
        let (code, status, message) = self.code.wire();
        let body = serde_json::json!({
            "errors": [{"code": code, "message": message, "detail": self.detail}]
        });
        let mut resp = Response::new(full(body.to_string()));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.code == Code::Unauthorized {
            let challenge = format!("Basic realm=\"{realm}\"");
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// Internal failures (storage) become a 500 without detail, logged once here.
impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        tracing::error!(error = %e, "registry storage failed");
        Self::new(Code::Internal, "storage error")
    }
}
