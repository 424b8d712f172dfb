//! `/_ping` and `/events`.

use hyper::Method;
use hyper::Response;
use tokio::sync::{broadcast, mpsc};

use super::http::{self, Body, Query};
use crate::engine::Engine;
use crate::error::Result;
use crate::filters::Filters;
use crate::logs::parse_time;

/// `GET|HEAD /_ping`.
pub fn ping(method: &Method) -> Response<Body> {
    let mut r = if method == Method::HEAD {
        http::empty(200)
    } else {
        http::bytes(200, "text/plain; charset=utf-8", "OK")
    };
    let h = r.headers_mut();
    h.insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        "pragma",
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    h.insert(
        "builder-version",
        hyper::header::HeaderValue::from_static("1"),
    );
    r
}

/// `GET /events`: streams events as JSON lines until `until` or the client leaves.
pub fn events(engine: &Engine, query: &Query) -> Result<Response<Body>> {
    let filters = Filters::parse(query.get("filters"))?;
    let until = query.get("until").map(parse_time).transpose()?.flatten();
    let mut rx = engine.events().subscribe();
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(async move {
        let deadline = async {
            match until {
                Some(u) => {
                    let wait = (u - chrono::Utc::now()).to_std().unwrap_or_default();
                    tokio::time::sleep(wait).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if !matches(&filters, &ev) {
                            continue;
                        }
                        let mut line = ev.to_json().to_string().into_bytes();
                        line.push(b'\n');
                        if tx.send(line.into()).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    Ok(http::stream(200, "application/json", out))
}

fn matches(f: &Filters, ev: &crate::events::Event) -> bool {
    let any = |key: &str, value: &str| f.get(key).is_none_or(|vs| vs.iter().any(|v| v == value));
    let name = ev.attributes.get("name").map(String::as_str).unwrap_or("");
    any("type", ev.kind)
        && any("event", &ev.action)
        && (f.get("container").is_none()
            || (ev.kind == "container"
                && (any("container", &ev.id)
                    || any("container", name)
                    || f.get("container")
                        .is_some_and(|vs| vs.iter().any(|v| ev.id.starts_with(v.as_str()))))))
        && (f.get("image").is_none() || ev.attributes.get("image").is_some_and(|i| any("image", i)))
        && f.labels_match(&ev.attributes.clone().into_iter().collect())
}
