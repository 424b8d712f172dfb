//! `/volumes/...`: list (filters), create, inspect, remove and prune.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Body, Query};
use crate::engine::Engine;
use crate::error::Result;
use crate::filters::Filters;
use crate::volumes::{ANONYMOUS_LABEL, Volume, volume_json};

/// Body of `POST /volumes/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// Routes `/volumes/...`; `s` are the path segments after `volumes`.
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    s: &[&str],
    q: &Query,
) -> Result<Response<Body>> {
    match (method, s) {
        (&Method::GET, []) => list(&engine, q),
        (&Method::POST, ["create"]) => {
            let body: CreateBody = http::read_json(req.into_body()).await?;
            let v = engine.volumes().create(
                body.name.as_deref().filter(|n| !n.is_empty()),
                body.driver.as_deref().unwrap_or(""),
                body.labels.unwrap_or_default(),
                body.driver_opts.unwrap_or_default(),
            )?;
            volume_event(&engine, "create", &v.name);
            Ok(http::json(201, &volume_json(engine.volumes(), &v)))
        }
        (&Method::POST, ["prune"]) => prune(&engine, q),
        (&Method::GET, [name]) => {
            let v = engine.volumes().get(name)?;
            Ok(http::json(200, &volume_json(engine.volumes(), &v)))
        }
        (&Method::DELETE, [name]) => {
            engine.remove_volume(name, q.flag("force"))?;
            volume_event(&engine, "destroy", name);
            Ok(http::empty(204))
        }
        _ => Err(super::not_found()),
    }
}

fn volume_event(engine: &Engine, action: &str, name: &str) {
    let mut attributes = BTreeMap::new();
    attributes.insert("driver".to_string(), "local".to_string());
    engine.events().publish(crate::events::Event {
        kind: "volume",
        action: action.into(),
        id: name.into(),
        attributes,
        exit_code: None,
        time: chrono::Utc::now(),
    });
}

fn matches(engine: &Engine, f: &Filters, v: &Volume) -> bool {
    let any =
        |key: &str, ok: &dyn Fn(&str) -> bool| f.get(key).is_none_or(|vs| vs.iter().any(|x| ok(x)));
    any("name", &|x| v.name.contains(x))
        && any("driver", &|x| x == v.driver)
        && any("dangling", &|x| {
            (x == "true" || x == "1") == engine.volume_users(&v.name).is_empty()
        })
        && f.labels_match(&v.labels)
}

fn list(engine: &Engine, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["name", "driver", "label", "dangling"])?;
    let out: Vec<Value> = engine
        .volumes()
        .list()
        .iter()
        .filter(|v| matches(engine, &f, v))
        .map(|v| volume_json(engine.volumes(), v))
        .collect();
    Ok(http::json(200, &json!({"Volumes": out, "Warnings": null})))
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// `POST /volumes/prune`: unused anonymous volumes, or all unused with `all=true`.
fn prune(engine: &Engine, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["label", "label!", "all"])?;
    let all = f
        .get("all")
        .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
    let mut deleted = Vec::new();
    let mut space = 0u64;
    for v in engine.volumes().list() {
        if !all && !v.labels.contains_key(ANONYMOUS_LABEL) {
            continue;
        }
        if !f.labels_match(&v.labels) || !engine.volume_users(&v.name).is_empty() {
            continue;
        }
        let size = dir_size(&engine.volumes().mountpoint(&v.name));
        if engine.volumes().remove(&v.name).is_ok() {
            space += size;
            volume_event(engine, "destroy", &v.name);
            deleted.push(v.name);
        }
    }
    Ok(http::json(
        200,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}),
    ))
}
