//! Image endpoints: list, inspect, history, load, save, import, tag, remove, prune, and
//! `/commit`.

use std::sync::Arc;

use berth_image::{ContainerDefaults, Image, Removed};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

use super::http::{self, Body, BodyReader, ChannelWriter, Query};
use crate::changes;
use crate::engine::{Engine, familiar};
use crate::error::{EngineError, Result};
use crate::filters::{Filters, glob_match};
use crate::model::Config;

/// Routes `/images/...`; image names may contain slashes, so routes match on suffixes.
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    path: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let rest = path
        .trim_start_matches('/')
        .strip_prefix("images")
        .unwrap_or("");
    let rest = rest.trim_start_matches('/');
    let decoded = http::decode_path(rest);
    let name_before = |suffix: &str| decoded.strip_suffix(suffix).map(str::to_string);
    match (method, decoded.as_str()) {
        (&Method::GET, "json") => list(&engine, q).await,
        (&Method::POST, "load") => load(&engine, req, q).await,
        (&Method::GET, "get") => save(&engine, q.all("names")),
        (&Method::POST, "create") => create(&engine, req, q).await,
        (&Method::POST, "prune") => prune(&engine, q).await,
        (&Method::GET, "search") => Err(EngineError::Internal(
            "searching a registry is not supported".into(),
        )),
        (&Method::GET, _) if decoded.ends_with("/json") => {
            let name = name_before("/json").unwrap_or_default();
            let img = resolve(&engine, &name).await?;
            let iid = img.id.clone();
            let gd = engine
                .with_images(move |s| Ok(s.graph_driver(&iid).ok()))
                .await?;
            Ok(http::json(200, &inspect(&img, gd.as_ref())))
        }
        (&Method::GET, _) if decoded.ends_with("/history") => {
            let name = name_before("/history").unwrap_or_default();
            let rows = engine.with_images(move |s| Ok(s.history(&name)?)).await?;
            let v: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "Id": r.id, "Created": r.created, "CreatedBy": r.created_by,
                        "Tags": if r.tags.is_empty() { Value::Null } else { json!(r.tags) },
                        "Size": r.size, "Comment": r.comment,
                    })
                })
                .collect();
            Ok(http::json(200, &Value::Array(v)))
        }
        (&Method::GET, _) if decoded.ends_with("/get") => {
            save(&engine, vec![name_before("/get").unwrap_or_default()])
        }
        (&Method::POST, _) if decoded.ends_with("/tag") => {
            let name = name_before("/tag").unwrap_or_default();
            let repo = q.get("repo").unwrap_or("").to_string();
            if repo.is_empty() {
                return Err(EngineError::InvalidArgument(
                    "repository name must have at least one component".into(),
                ));
            }
            let target = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo,
            };
            let (n, t) = (name.clone(), target.clone());
            engine.with_images(move |s| Ok(s.tag(&n, &t)?)).await?;
            let img = resolve(&engine, &target).await?;
            engine.image_event("tag", &img.id, Some(&target));
            Ok(http::empty(201))
        }
        (&Method::POST, _) if decoded.ends_with("/push") => {
            let name = name_before("/push").unwrap_or_default();
            super::distribution::push(engine, req, &name, q).await
        }
        (&Method::DELETE, name) if !name.is_empty() => {
            let name = name.to_string();
            let force = q.flag("force");
            let e2 = engine.clone();
            let removed = engine
                .with_images(move |s| {
                    let in_use = |id: &str| e2.container_using_image(id);
                    Ok(s.remove(&name, force, &in_use)?)
                })
                .await?;
            for r in &removed {
                match r {
                    Removed::Untagged(t) => engine.image_event("untag", t, Some(t)),
                    Removed::Deleted(d) => engine.image_event("delete", d, None),
                }
            }
            Ok(http::json(200, &removed_json(&removed)))
        }
        _ => Err(super::not_found()),
    }
}

async fn resolve(engine: &Engine, name: &str) -> Result<Image> {
    let n = name.to_string();
    engine.with_images(move |s| Ok(s.resolve(&n)?)).await
}

fn removed_json(removed: &[Removed]) -> Value {
    Value::Array(
        removed
            .iter()
            .map(|r| match r {
                Removed::Untagged(t) => json!({"Untagged": familiar(t)}),
                Removed::Deleted(d) => json!({"Deleted": d}),
            })
            .collect(),
    )
}

fn created_of(img: &Image) -> chrono::DateTime<chrono::Utc> {
    img.config
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or(img.created, |d| d.with_timezone(&chrono::Utc))
}

fn summary(img: &Image, containers: i64) -> Value {
    json!({
        "Id": img.id,
        "ParentId": img.parent.clone().unwrap_or_default(),
        "RepoTags": img.tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": img.digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "Created": created_of(img).timestamp(),
        "Size": img.size,
        "SharedSize": -1,
        "Labels": img.config.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default(),
        "Containers": containers,
    })
}

/// `GET /images/{name}/json`.
pub fn inspect(img: &Image, graph: Option<&berth_image::Snapshot>) -> Value {
    let data = match graph {
        Some(g) => {
            let mut d = json!({
                "UpperDir": g.upper.display().to_string(),
                "WorkDir": g.work.display().to_string(),
                "MergedDir": g.merged.display().to_string(),
            });
            if !g.lower.is_empty() {
                d["LowerDir"] = g
                    .lower
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
                    .into();
            }
            d
        }
        None => Value::Null,
    };
    json!({
        "Id": img.id,
        "RepoTags": img.tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": img.digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "Parent": img.parent.clone().unwrap_or_default(),
        "Comment": img.config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": created_of(img).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "DockerVersion": img.config.extra.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": img.config.author.clone().unwrap_or_default(),
        "Config": img.config.config.clone().unwrap_or_default(),
        "Architecture": img.config.architecture,
        "Os": img.config.os,
        "Size": img.size,
        "GraphDriver": {"Name": "overlay2", "Data": data},
        "RootFS": {"Type": if img.config.rootfs.kind.is_empty() { "layers" } else { img.config.rootfs.kind.as_str() }, "Layers": img.config.rootfs.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

async fn list(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["dangling", "label", "reference", "before", "since", "until"])?;
    let mut images = engine.with_images(|s| Ok(s.list()?)).await?;
    images.sort_by_key(|i| std::cmp::Reverse(created_of(i)));
    let containers = engine.containers();
    // As Docker: without `all`, untagged images that other images were built on (the
    // intermediate images of builds) are not listed, nor counted as dangling.
    let parents: std::collections::HashSet<String> =
        images.iter().filter_map(|i| i.parent.clone()).collect();
    let all = q.flag("all");
    let mut out = Vec::new();
    for img in &images {
        let intermediate = img.tags.is_empty() && parents.contains(&img.id);
        if intermediate && !all {
            continue;
        }
        let dangling = img.tags.is_empty() && !intermediate;
        if let Some(d) = f.get("dangling")
            && !d.iter().any(|v| (v == "true" || v == "1") == dangling)
        {
            continue;
        }
        let mut shown = img.clone();
        if let Some(refs) = f.get("reference") {
            shown.tags.retain(|t| {
                let fam = familiar(t);
                let repo = fam.rsplit_once(':').map_or(fam.as_str(), |(r, _)| r);
                refs.iter()
                    .any(|p| glob_match(p, &fam) || glob_match(p, repo))
            });
            if shown.tags.is_empty() {
                continue;
            }
        }
        let labels = img
            .config
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if !f.labels_match(&labels) {
            continue;
        }
        let used = containers.iter().filter(|c| c.image_id == img.id).count() as i64;
        out.push(summary(&shown, used));
    }
    Ok(http::json(200, &json!(out)))
}

fn message_line(v: Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

async fn load(engine: &Arc<Engine>, req: Request<Incoming>, _q: &Query) -> Result<Response<Body>> {
    let mut reader = BodyReader::new(req.into_body());
    let loaded = engine
        .with_images(move |s| Ok(s.load(&mut reader)?))
        .await?;
    let mut body = Vec::new();
    for (id, refs) in &loaded {
        if refs.is_empty() {
            body.extend_from_slice(&message_line(
                json!({"stream": format!("Loaded image ID: {id}\n")}),
            ));
        }
        for r in refs {
            body.extend_from_slice(&message_line(
                json!({"stream": format!("Loaded image: {}\n", familiar(r))}),
            ));
        }
        engine.image_event("load", id, refs.first().map(String::as_str));
    }
    Ok(http::bytes(200, "application/json", body))
}

fn save(engine: &Arc<Engine>, names: Vec<String>) -> Result<Response<Body>> {
    if names.is_empty() {
        return Err(EngineError::InvalidArgument("no images specified".into()));
    }
    for n in &names {
        engine.images.resolve(n)?;
    }
    let (mut w, rx) = ChannelWriter::new();
    let images = engine.images.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = images.save(&names, &mut w) {
            tracing::warn!(error = %e, "save failed");
        }
    });
    Ok(http::stream(200, "application/x-tar", rx))
}

async fn create(engine: &Arc<Engine>, req: Request<Incoming>, q: &Query) -> Result<Response<Body>> {
    if q.get("fromImage").is_some() {
        return super::distribution::pull(engine.clone(), req.headers(), q).await;
    }
    if q.get("fromSrc") != Some("-") {
        return Err(EngineError::InvalidArgument(
            "only fromSrc=- (the request body) is supported for import".into(),
        ));
    }
    let repo = q.get("repo").unwrap_or("");
    let reference = match (repo, q.get("tag").filter(|t| !t.is_empty())) {
        ("", _) => None,
        (r, Some(t)) => Some(format!("{r}:{t}")),
        (r, None) => Some(r.to_string()),
    };
    let mut defaults = ContainerDefaults::default();
    changes::apply(&mut defaults, &q.all("changes"))?;
    let message = q.get("message").filter(|m| !m.is_empty()).map(String::from);
    let mut reader = BodyReader::new(req.into_body());
    let r2 = reference.clone();
    let id = engine
        .with_images(move |s| {
            Ok(s.import(&mut reader, r2.as_deref(), defaults, message.as_deref())?)
        })
        .await?;
    engine.image_event("import", &id, reference.as_deref());
    Ok(http::bytes(
        200,
        "application/json",
        message_line(json!({"status": id})),
    ))
}

async fn prune(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    let all = f
        .get("dangling")
        .is_some_and(|d| d.iter().any(|v| v == "false" || v == "0"));
    let e2 = engine.clone();
    let (removed, space) = engine
        .with_images(move |s| {
            let in_use = |id: &str| e2.container_using_image(id);
            Ok(s.prune(all, &in_use)?)
        })
        .await?;
    let deleted = if removed.is_empty() {
        Value::Null
    } else {
        removed_json(&removed)
    };
    Ok(http::json(
        200,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": space}),
    ))
}

/// Image defaults of a committed container: its config, with `overrides` from the body.
fn defaults_of(config: &Config) -> ContainerDefaults {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    ContainerDefaults {
        user: non_empty(&config.user),
        exposed_ports: config.exposed_ports.clone(),
        env: config.env.clone(),
        entrypoint: config.entrypoint.clone(),
        cmd: config.cmd.clone(),
        volumes: config.volumes.clone(),
        working_dir: non_empty(&config.working_dir),
        labels: config.labels.clone(),
        stop_signal: config.stop_signal.clone(),
        extra: Default::default(),
    }
}

/// `POST /commit`.
pub async fn commit(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    q: &Query,
) -> Result<Response<Body>> {
    let name = q
        .get("container")
        .ok_or_else(|| EngineError::InvalidArgument("container is required".into()))?;
    let c = engine.lookup(name)?.snapshot();
    let body: Option<Config> = {
        let data = http::read_body(req.into_body()).await?;
        if data.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice::<Option<Config>>(&data)
                .map_err(|e| EngineError::InvalidArgument(format!("invalid JSON: {e}")))?
        }
    };
    let mut defaults = defaults_of(&c.config);
    if let Some(b) = body {
        let o = defaults_of(&b);
        if o.cmd.is_some() {
            defaults.cmd = o.cmd;
        }
        if o.entrypoint.is_some() {
            defaults.entrypoint = o.entrypoint;
        }
        if o.env.as_ref().is_some_and(|e| !e.is_empty()) {
            defaults.env = o.env;
        }
        if o.working_dir.is_some() {
            defaults.working_dir = o.working_dir;
        }
        if o.user.is_some() {
            defaults.user = o.user;
        }
        if o.labels.is_some() {
            defaults.labels = o.labels;
        }
    }
    changes::apply(&mut defaults, &q.all("changes"))?;
    let reference = match (
        q.get("repo").unwrap_or(""),
        q.get("tag").filter(|t| !t.is_empty()),
    ) {
        ("", _) => None,
        (r, Some(t)) => Some(format!("{r}:{t}")),
        (r, None) => Some(r.to_string()),
    };
    let author = q.get("author").filter(|a| !a.is_empty()).map(String::from);
    let comment = q.get("comment").filter(|a| !a.is_empty()).map(String::from);
    let pause = q.flag_or("pause", true) && c.state.status == crate::container::Status::Running;
    if pause {
        let _ = engine.runtime.pause(&c.id).await;
    }
    let (cid, iid, r2) = (c.id.clone(), c.image_id.clone(), reference.clone());
    let result = engine
        .with_images(move |s| {
            Ok(s.commit(
                &cid,
                &iid,
                defaults,
                author.as_deref(),
                comment.as_deref(),
                r2.as_deref(),
            )?)
        })
        .await;
    if pause {
        let _ = engine.runtime.resume(&c.id).await;
    }
    let id = result?;
    engine.image_event("commit", &id, reference.as_deref());
    Ok(http::json(201, &json!({"Id": id})))
}
