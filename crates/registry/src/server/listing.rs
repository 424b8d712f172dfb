//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, paginated with `n` and `last` and an
//! RFC 5988 `Link: <...>; rel="next"` header when more entries remain (spec "Listing Tags").

use std::sync::Arc;

use http::{Request, Response, StatusCode, header};

use super::error::{ApiError, Code};
use super::{Body, State, empty, full, query, set};

/// One page of `all` (sorted) after `last`, at most `n` long, and whether more follow.
fn page<'a, B>(
    all: &'a [String],
    req: &Request<B>,
) -> Result<(&'a [String], Option<usize>), ApiError> {
    let q = query(req);
    let start = match q.get("last") {
        Some(last) => all.partition_point(|x| x.as_str() <= last.as_str()),
        None => 0,
    };
    let rest = &all[start..];
    match q.get("n") {
        Some(n) => {
            let n: usize = n
                .parse()
                .map_err(|_| ApiError::new(Code::Unsupported, format!("invalid n={n}")))?;
            let take = n.min(rest.len());
            Ok((&rest[..take], (take < rest.len() && take > 0).then_some(n)))
        }
        None => Ok((rest, None)),
    }
}

fn json(body: serde_json::Value, next: Option<String>) -> Response<Body> {
    let text = body.to_string();
    let mut r = empty(StatusCode::OK);
    set(&mut r, header::CONTENT_LENGTH, &text.len().to_string());
    *r.body_mut() = full(text);
    set(&mut r, header::CONTENT_TYPE, "application/json");
    if let Some(link) = next {
        set(&mut r, header::LINK, &format!("<{link}>; rel=\"next\""));
    }
    r
}

/// Lists a repository's tags.
pub(super) fn tags<B>(
    state: &Arc<State>,
    name: &str,
    req: &Request<B>,
) -> Result<Response<Body>, ApiError> {
    let all = state
        .storage
        .tags(name)
        .ok_or_else(|| ApiError::new(Code::NameUnknown, name))?;
    let (items, more) = page(&all, req)?;
    let next = more.and_then(|n| {
        items
            .last()
            .map(|l| format!("/v2/{name}/tags/list?n={n}&last={l}"))
    });
    Ok(json(serde_json::json!({"name": name, "tags": items}), next))
}

/// Lists repositories.
pub(super) fn catalog<B>(state: &Arc<State>, req: &Request<B>) -> Result<Response<Body>, ApiError> {
    let all = state.storage.repositories();
    let (items, more) = page(&all, req)?;
    let next = more.and_then(|n| items.last().map(|l| format!("/v2/_catalog?n={n}&last={l}")));
    Ok(json(serde_json::json!({"repositories": items}), next))
}
