//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`: blobs streamed from disk, with single
//! byte ranges (`Range: bytes=a-b`) answered 206, as the spec's "Pulling blobs" allows.

use std::io::SeekFrom;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_stream::StreamExt;

use super::error::{ApiError, Code};
use super::{Body, State, empty, set};
use crate::name::Digest;

/// Read size when streaming a blob.
const CHUNK: usize = 256 << 10;

fn parse_digest(d: &str) -> Result<Digest, ApiError> {
    Digest::parse(d).ok_or_else(|| ApiError::new(Code::DigestInvalid, d))
}

/// Serves a blob, or its headers for `HEAD`.
pub(super) async fn get<B>(
    state: &Arc<State>,
    name: &str,
    digest: &str,
    req: &Request<B>,
) -> Result<Response<Body>, ApiError> {
    let digest = parse_digest(digest)?;
    let size = state
        .storage
        .blob_size(name, &digest)
        .ok_or_else(|| ApiError::new(Code::BlobUnknown, digest.as_str()))?;
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_range(r, size))
        .transpose()?;
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };
    let body = if req.method() == Method::HEAD || len == 0 {
        super::full(bytes::Bytes::new())
    } else {
        let mut file = tokio::fs::File::open(state.storage.blob_path(&digest))
            .await
            .map_err(|_| ApiError::new(Code::BlobUnknown, digest.as_str()))?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), CHUNK)
            .map(|r| r.map(Frame::data));
        StreamBody::new(stream).boxed()
    };
    let mut resp = empty(if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    });
    *resp.body_mut() = body;
    set(&mut resp, header::CONTENT_LENGTH, &len.to_string());
    set(&mut resp, header::CONTENT_TYPE, "application/octet-stream");
    set(&mut resp, header::ACCEPT_RANGES, "bytes");
    set(&mut resp, header::ETAG, &format!("\"{digest}\""));
    set(
        &mut resp,
        "docker-content-digest".parse().expect("static header name"),
        digest.as_str(),
    );
    if range.is_some() {
        set(
            &mut resp,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{end}/{size}"),
        );
    }
    Ok(resp)
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against a blob of `size` bytes.
fn parse_range(value: &str, size: u64) -> Result<(u64, u64), ApiError> {
    let bad = || ApiError::new(Code::RangeInvalid, value);
    let spec = value.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| bad())?;
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (a, "") => (a.parse().map_err(|_| bad())?, size.saturating_sub(1)),
        (a, b) => {
            let end: u64 = b.parse().map_err(|_| bad())?;
            (
                a.parse().map_err(|_| bad())?,
                end.min(size.saturating_sub(1)),
            )
        }
    };
    if size == 0 || start > end || start >= size {
        return Err(bad());
    }
    Ok((start, end))
}

/// Unlinks a blob from the repository; the bytes go at the next `gc`.
pub(super) fn delete(
    state: &Arc<State>,
    name: &str,
    digest: &str,
) -> Result<Response<Body>, ApiError> {
    let digest = parse_digest(digest)?;
    if !state.storage.unlink_blob(name, &digest)? {
        return Err(ApiError::new(Code::BlobUnknown, digest.as_str()));
    }
    tracing::info!(repo = name, %digest, "blob deleted");
    Ok(empty(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_clamped_and_checked() {
        assert_eq!(parse_range("bytes=0-9", 100).ok(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).ok(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).ok(), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100).ok(), Some((50, 99)));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert!(parse_range("items=0-1", 100).is_err());
    }
}
