//! `/v2/<name>/manifests/<reference>`: manifests by tag or digest, stored and served byte
//! for byte with the media type they were pushed with. A pushed manifest must parse, stay
//! under [`MANIFEST_MAX`](super::MANIFEST_MAX), match a digest reference, and reference only
//! blobs (or, for an index, manifests) the repository already has.

use std::sync::Arc;

use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::error::{ApiError, Code};
use super::{Body, MANIFEST_MAX, State, blocking, empty, full, set};
use crate::manifest::Manifest;
use crate::name::{Digest, valid_tag};

/// A reference is a digest or a tag.
fn resolve(state: &State, name: &str, reference: &str) -> Result<Digest, ApiError> {
    if reference.contains(':') {
        return Digest::parse(reference)
            .ok_or_else(|| ApiError::new(Code::DigestInvalid, reference));
    }
    if !valid_tag(reference) {
        return Err(ApiError::new(
            Code::ManifestInvalid,
            format!("invalid tag {reference}"),
        ));
    }
    if !state.storage.repo_exists(name) {
        return Err(ApiError::new(Code::NameUnknown, name));
    }
    state
        .storage
        .tag_digest(name, reference)
        .ok_or_else(|| ApiError::new(Code::ManifestUnknown, reference))
}

/// Serves a manifest or, for `HEAD`, its headers.
pub(super) fn get(
    state: &Arc<State>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let digest = resolve(state, name, reference)?;
    if !state.storage.repo_exists(name) {
        return Err(ApiError::new(Code::NameUnknown, name));
    }
    let stored = state
        .storage
        .manifest(name, &digest)
        .ok_or_else(|| ApiError::new(Code::ManifestUnknown, reference))?;
    let len = stored.bytes.len();
    let mut r = empty(StatusCode::OK);
    if !head {
        *r.body_mut() = full(stored.bytes);
    }
    set(&mut r, header::CONTENT_TYPE, &stored.media_type);
    set(&mut r, header::CONTENT_LENGTH, &len.to_string());
    set(&mut r, header::ETAG, &format!("\"{digest}\""));
    set(
        &mut r,
        "docker-content-digest".parse().expect("static header name"),
        digest.as_str(),
    );
    Ok(r)
}

/// Stores a manifest after checking it.
pub(super) async fn put(
    state: &Arc<State>,
    name: &str,
    reference: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if reference.contains(':') && Digest::parse(reference).is_none() {
        return Err(ApiError::new(Code::DigestInvalid, reference));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MANIFEST_MAX) {
        return Err(ApiError::new(
            Code::TooLarge,
            format!("manifest over {MANIFEST_MAX} bytes"),
        ));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = Limited::new(req.into_body(), MANIFEST_MAX)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                Code::TooLarge,
                format!("manifest over {MANIFEST_MAX} bytes"),
            )
        })?
        .to_bytes();
    let manifest = Manifest::parse(&bytes, content_type.as_deref())
        .map_err(|e| ApiError::new(Code::ManifestInvalid, e.to_string()))?;
    let digest = Digest::of(&bytes);
    let tag = if reference.contains(':') {
        let wanted = Digest::parse(reference)
            .ok_or_else(|| ApiError::new(Code::DigestInvalid, reference))?;
        if wanted != digest {
            return Err(ApiError::new(
                Code::DigestInvalid,
                format!("manifest digest is {digest}, not {wanted}"),
            ));
        }
        None
    } else if valid_tag(reference) {
        Some(reference.to_string())
    } else {
        return Err(ApiError::new(
            Code::ManifestInvalid,
            format!("invalid tag {reference}"),
        ));
    };
    for blob in manifest.required_blobs() {
        if state.storage.blob_size(name, &blob).is_none() {
            return Err(ApiError::new(Code::ManifestBlobUnknown, blob.as_str()));
        }
    }
    for child in &manifest.manifests {
        let known =
            Digest::parse(&child.digest).is_some_and(|d| state.storage.has_manifest(name, &d));
        if !known {
            return Err(ApiError::new(
                Code::ManifestBlobUnknown,
                child.digest.clone(),
            ));
        }
    }
    let storage = state.storage.clone();
    let (repo, media_type) = (name.to_string(), manifest.media_type.clone());
    let stored =
        blocking(move || Ok(storage.put_manifest(&repo, &bytes, &media_type, tag.as_deref())?))
            .await?;
    tracing::info!(repo = name, reference, digest = %stored, media_type = %manifest.media_type, "manifest stored");
    let mut r = empty(StatusCode::CREATED);
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/manifests/{stored}"),
    );
    set(
        &mut r,
        "docker-content-digest".parse().expect("static header name"),
        stored.as_str(),
    );
    Ok(r)
}

/// Deletes a manifest (by digest, with its tags) or only a tag.
pub(super) fn delete(
    state: &Arc<State>,
    name: &str,
    reference: &str,
) -> Result<Response<Body>, ApiError> {
    if !state.storage.repo_exists(name) {
        return Err(ApiError::new(Code::NameUnknown, name));
    }
    let found = if reference.contains(':') {
        let digest = Digest::parse(reference)
            .ok_or_else(|| ApiError::new(Code::DigestInvalid, reference))?;
        state.storage.delete_manifest(name, &digest)?
    } else {
        state.storage.delete_tag(name, reference)?
    };
    if !found {
        return Err(ApiError::new(Code::ManifestUnknown, reference));
    }
    tracing::info!(repo = name, reference, "manifest deleted");
    Ok(empty(StatusCode::ACCEPTED))
}
