//! `/v2/<name>/blobs/uploads/`: monolithic (`POST ?digest=`), session (`POST`, `PATCH`
//! chunks with `Content-Range`, `PUT ?digest=`), status (`GET`), cancel (`DELETE`) and
//! cross-repository mount (`POST ?mount=&from=`), per the spec's "Pushing blobs". The digest
//! is computed while bytes arrive; a blob becomes visible only after it matched and was
//! synced and renamed into place.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::error::{ApiError, Code};
use super::{Body, State, Upload, blocking, empty, query, set};
use crate::name::{Digest, Hasher, valid_name};

/// Bytes gathered from the socket before a blocking thread hashes and writes them.
const WRITE_BUFFER: usize = 1 << 20;

/// Dispatches an upload request by method.
pub(super) async fn handle(
    state: Arc<State>,
    name: String,
    id: String,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    match (req.method().clone(), id.is_empty()) {
        (Method::POST, true) => start(state, name, req).await,
        (Method::PATCH, false) => {
            let mut up = take(&state, &name, &id)?;
            let r = patch(&state, &id, &mut up, req).await;
            put_back(&state, &id, up);
            r?;
            Ok(accepted(&name, &id, &state, StatusCode::ACCEPTED))
        }
        (Method::PUT, false) => {
            let up = take(&state, &name, &id)?;
            finish(state, name, id, up, req).await
        }
        (Method::GET, false) => {
            let up = take(&state, &name, &id)?;
            put_back(&state, &id, up);
            Ok(accepted(&name, &id, &state, StatusCode::NO_CONTENT))
        }
        (Method::DELETE, false) => {
            take(&state, &name, &id)?;
            let _ = tokio::fs::remove_file(state.storage.upload_path(&id)).await;
            tracing::debug!(repo = %name, upload = %id, "upload cancelled");
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::new(Code::Unsupported, "upload method")),
    }
}

async fn start(
    state: Arc<State>,
    name: String,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = query(&req);
    if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
        let digest =
            Digest::parse(mount).ok_or_else(|| ApiError::new(Code::DigestInvalid, mount))?;
        if valid_name(from) && state.storage.blob_size(from, &digest).is_some() {
            state.storage.link_blob(&name, &digest)?;
            tracing::debug!(repo = %name, %from, %digest, "blob mounted");
            return Ok(created(&name, &digest));
        }
        // Spec: when the mount cannot be done, fall back to an upload session.
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    tokio::fs::File::create(state.storage.upload_path(&id))
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    let mut up = Upload {
        repo: name.clone(),
        size: 0,
        hasher: Hasher::new(),
    };
    if let Some(d) = q.get("digest") {
        let digest =
            Digest::parse(d).ok_or_else(|| ApiError::new(Code::DigestInvalid, d.clone()))?;
        append(&state, &id, &mut up, req.into_body()).await?;
        return commit(&state, &name, &id, up, digest).await;
    }
    state
        .uploads
        .lock()
        .map_err(poisoned)?
        .insert(id.clone(), up);
    tracing::debug!(repo = %name, upload = %id, "upload started");
    Ok(accepted(&name, &id, &state, StatusCode::ACCEPTED))
}

async fn patch(
    state: &Arc<State>,
    id: &str,
    up: &mut Upload,
    req: Request<Incoming>,
) -> Result<(), ApiError> {
    if let Some(range) = req
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let start = range
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(up.size) {
            return Err(ApiError::new(
                Code::RangeInvalid,
                format!("upload is at {} bytes, chunk says {range}", up.size),
            ));
        }
    }
    append(state, id, up, req.into_body()).await
}

async fn finish(
    state: Arc<State>,
    name: String,
    id: String,
    mut up: Upload,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = query(&req);
    let Some(digest) = q.get("digest").and_then(|d| Digest::parse(d)) else {
        put_back(&state, &id, up);
        return Err(ApiError::new(
            Code::DigestInvalid,
            "missing or invalid digest parameter",
        ));
    };
    append(&state, &id, &mut up, req.into_body()).await?;
    commit(&state, &name, &id, up, digest).await
}

/// Verifies the finished digest, then moves the file into place and links it.
async fn commit(
    state: &Arc<State>,
    name: &str,
    id: &str,
    up: Upload,
    digest: Digest,
) -> Result<Response<Body>, ApiError> {
    let path = state.storage.upload_path(id);
    let actual = up.hasher.finish();
    if actual != digest {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(ApiError::new(
            Code::DigestInvalid,
            format!("expected {digest}, content is {actual}"),
        ));
    }
    let storage = state.storage.clone();
    let (repo, d) = (name.to_string(), digest.clone());
    blocking(move || {
        storage.commit_blob(&path, &d)?;
        storage.link_blob(&repo, &d)?;
        Ok(())
    })
    .await?;
    tracing::info!(repo = name, %digest, size = up.size, "blob stored");
    Ok(created(name, &digest))
}

/// Appends a request body to the upload file, hashing as it goes; on failure the file and
/// digest state are rolled back so the client may retry the chunk.
///
/// The bytes are gathered into batches of [`WRITE_BUFFER`] that a blocking thread hashes
/// and writes while the next batch arrives: the server's single runtime thread only moves
/// buffers, concurrent uploads hash on as many cores as there are, and no thread is held
/// by a slow client between batches.
async fn append(
    state: &Arc<State>,
    id: &str,
    up: &mut Upload,
    mut body: Incoming,
) -> Result<(), ApiError> {
    let path = state.storage.upload_path(id);
    let io = |e: std::io::Error| ApiError::new(Code::Internal, e.to_string());
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io)?;
    let mut sink = Some(Sink {
        file,
        hasher: up.hasher.clone(),
        size: up.size,
    });
    let mut in_flight: Option<tokio::task::JoinHandle<std::io::Result<Sink>>> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0usize;
    let result: Result<(), ApiError> = async {
        loop {
            let frame = body.frame().await;
            let end = frame.is_none();
            if let Some(frame) = frame {
                let frame =
                    frame.map_err(|e| ApiError::new(Code::BlobUploadInvalid, e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    batched += data.len();
                    batch.push(data);
                }
            }
            if batched < WRITE_BUFFER && !end {
                continue;
            }
            // One batch at a time: wait for the previous one, then hand this one over.
            if let Some(task) = in_flight.take() {
                sink = Some(joined(task).await?);
            }
            if !batch.is_empty() {
                let mut s = sink
                    .take()
                    .ok_or_else(|| io(std::io::Error::other("no sink")))?;
                let work = std::mem::take(&mut batch);
                batched = 0;
                in_flight = Some(tokio::task::spawn_blocking(move || {
                    for b in &work {
                        s.hasher.update(b);
                        s.file.write_all(b)?;
                        s.size += b.len() as u64;
                    }
                    Ok(s)
                }));
            }
            if end {
                if let Some(task) = in_flight.take() {
                    sink = Some(joined(task).await?);
                }
                return Ok(());
            }
        }
    }
    .await;
    match (result, sink) {
        (Ok(()), Some(s)) => {
            up.hasher = s.hasher;
            up.size = s.size;
            Ok(())
        }
        (result, _) => {
            // Let a batch still being written finish before cutting the file back.
            if let Some(task) = in_flight.take() {
                let _ = task.await;
            }
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
                let _ = f.set_len(up.size);
            }
            Err(result
                .err()
                .unwrap_or_else(|| ApiError::new(Code::Internal, "upload sink lost")))
        }
    }
}

/// The upload file and its running digest, owned by whichever batch is being written.
struct Sink {
    file: std::fs::File,
    hasher: Hasher,
    size: u64,
}

async fn joined(task: tokio::task::JoinHandle<std::io::Result<Sink>>) -> Result<Sink, ApiError> {
    task.await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))
}

fn take(state: &Arc<State>, name: &str, id: &str) -> Result<Upload, ApiError> {
    let mut map = state.uploads.lock().map_err(poisoned)?;
    match map.remove(id) {
        Some(up) if up.repo == name => Ok(up),
        Some(up) => {
            map.insert(id.to_string(), up);
            Err(ApiError::new(Code::BlobUploadUnknown, id))
        }
        None => Err(ApiError::new(Code::BlobUploadUnknown, id)),
    }
}

fn put_back(state: &Arc<State>, id: &str, up: Upload) {
    if let Ok(mut map) = state.uploads.lock() {
        map.insert(id.to_string(), up);
    }
}

fn poisoned<T>(_: T) -> ApiError {
    ApiError::new(Code::Internal, "upload table poisoned")
}

fn accepted(name: &str, id: &str, state: &Arc<State>, status: StatusCode) -> Response<Body> {
    let size = state
        .uploads
        .lock()
        .ok()
        .and_then(|m| m.get(id).map(|u| u.size))
        .unwrap_or(0);
    let mut r = empty(status);
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/blobs/uploads/{id}"),
    );
    set(
        &mut r,
        header::RANGE,
        &format!("0-{}", size.saturating_sub(1)),
    );
    set(
        &mut r,
        "docker-upload-uuid".parse().expect("static header name"),
        id,
    );
    r
}

fn created(name: &str, digest: &Digest) -> Response<Body> {
    let mut r = empty(StatusCode::CREATED);
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/blobs/{digest}"),
    );
    set(
        &mut r,
        "docker-content-digest".parse().expect("static header name"),
        digest.as_str(),
    );
    r
}
