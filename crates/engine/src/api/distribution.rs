//! `POST /images/create?fromImage=` (pull), `POST /images/{name}/push` and `POST /auth`:
//! request parsing and Docker's streamed JSON progress. A failure before the first progress
//! message is an ordinary error response (so `docker pull` of an unknown image prints
//! `Error response from daemon: ...`); a later one is an `errorDetail` message, as dockerd
//! does once the 200 status has been sent.

use std::sync::Arc;

use berth_image::Reference;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{HeaderMap, Request, Response};
use serde_json::json;
use tokio::sync::mpsc;

use super::http::{self, Body, Query};
use crate::distribution::{AuthConfig, Step};
use crate::engine::Engine;
use crate::error::{EngineError, Result};

fn invalid_reference(input: &str) -> EngineError {
    EngineError::InvalidArgument(format!("invalid reference format: {input}"))
}

fn auth_of(headers: &HeaderMap) -> Result<AuthConfig> {
    match headers.get("x-registry-auth") {
        None => Ok(AuthConfig::default()),
        Some(v) => AuthConfig::from_header(v.to_str().map_err(|_| {
            EngineError::InvalidArgument("invalid X-Registry-Auth header: not ASCII".into())
        })?),
    }
}

/// The reference of a pull: `fromImage` (which may carry a tag or digest) and `tag` (a tag
/// or, for `name@sha256:...`, the digest, as the docker CLI sends it).
pub fn pull_reference(q: &Query) -> Result<Reference> {
    let image = q.get("fromImage").unwrap_or("");
    let mut r = Reference::parse(image).map_err(|_| invalid_reference(image))?;
    if let Some(tag) = q.get("tag").filter(|t| !t.is_empty()) {
        let joined = if tag.contains(':') {
            format!("{}@{tag}", r.name())
        } else {
            format!("{}:{tag}", r.name())
        };
        let parsed = Reference::parse(&joined).map_err(|_| invalid_reference(&joined))?;
        if parsed.digest.is_some() {
            r.digest = parsed.digest;
        } else {
            r.tag = parsed.tag;
        }
    }
    Ok(r.with_default_tag())
}

/// `POST /images/create?fromImage=...&tag=...`.
pub async fn pull(engine: Arc<Engine>, headers: &HeaderMap, q: &Query) -> Result<Response<Body>> {
    let reference = pull_reference(q)?;
    let auth = auth_of(headers)?;
    tracing::info!(reference = %reference, "pull");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(engine.pull(reference, auth, tx));
    progress_response(rx).await
}

/// `POST /images/{name}/push?tag=...`: an empty tag pushes every tag of the repository.
pub async fn push(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    name: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let auth = auth_of(req.headers())?;
    let repo = Reference::parse(name).map_err(|_| invalid_reference(name))?;
    if repo.digest.is_some() {
        return Err(EngineError::InvalidArgument(format!(
            "cannot push a digest reference: {name}"
        )));
    }
    let tag = q.get("tag").filter(|t| !t.is_empty()).map(str::to_string);
    let tag = tag.or_else(|| repo.tag.clone());
    let mut targets = Vec::new();
    match tag {
        Some(t) => {
            let joined = format!("{}:{t}", repo.name());
            let target = Reference::parse(&joined).map_err(|_| invalid_reference(&joined))?;
            if engine.images.resolve(&target.to_string()).is_err() {
                return Err(EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    target.familiar()
                )));
            }
            targets.push(target);
        }
        None => {
            let prefix = format!("{}:", repo.name());
            let images = engine.with_images(|s| Ok(s.list()?)).await?;
            let mut tags: Vec<String> = images
                .iter()
                .flat_map(|i| i.tags.iter())
                .filter(|t| t.starts_with(&prefix))
                .cloned()
                .collect();
            tags.sort();
            for t in tags {
                targets.push(Reference::parse(&t).map_err(|_| invalid_reference(&t))?);
            }
            if targets.is_empty() {
                return Err(EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    repo.familiar_name()
                )));
            }
        }
    }
    tracing::info!(repository = %repo.name(), tags = targets.len(), "push");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(engine.push(targets, auth, tx));
    progress_response(rx).await
}

/// `POST /auth`.
pub async fn auth(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let body = http::read_body(req.into_body()).await?;
    let auth: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| EngineError::InvalidArgument(format!("invalid JSON: {e}")))?;
    match engine.login(&auth).await? {
        Ok(()) => Ok(http::json(
            200,
            &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        )),
        Err(message) => Ok(http::json(401, &json!({"message": message}))),
    }
}

fn line(v: &serde_json::Value) -> Bytes {
    let mut b = v.to_string().into_bytes();
    b.push(b'\n');
    Bytes::from(b)
}

fn step_line(step: Step) -> Bytes {
    match step {
        Step::Message(v) => line(&v),
        Step::Failed(e) => {
            let message = e.message();
            tracing::warn!(error = %message, "distribution failed after progress was sent");
            line(&json!({"errorDetail": {"message": message}, "error": message}))
        }
    }
}

/// Waits for the first step: a failure becomes the error response, anything else starts a
/// 200 stream of JSON lines.
async fn progress_response(mut rx: mpsc::UnboundedReceiver<Step>) -> Result<Response<Body>> {
    let first = match rx.recv().await {
        None => {
            return Err(EngineError::Internal(
                "the operation ended without a result".into(),
            ));
        }
        Some(Step::Failed(e)) => return Err(e),
        Some(step) => step_line(step),
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|s| (Ok::<_, std::io::Error>(Frame::data(step_line(s))), rx))
    });
    let stream = futures::StreamExt::chain(
        futures::stream::iter([Ok::<_, std::io::Error>(Frame::data(first))]),
        rest,
    );
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_reference_takes_tag_or_digest_from_the_tag_parameter() {
        let q = |s: &str| Query::parse(Some(s));
        let r = pull_reference(&q("fromImage=127.0.0.1:5000/a/b&tag=v1")).expect("parses");
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference(&q(&format!("fromImage=busybox&tag={d}"))).expect("parses");
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        let r = pull_reference(&q("fromImage=busybox")).expect("parses");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert!(pull_reference(&q("fromImage=Bad/../x")).is_err());
        assert!(pull_reference(&q("fromImage=x&tag=sha256:zz")).is_err());
    }
}
