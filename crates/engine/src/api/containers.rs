//! Container and exec endpoints: `/containers/...` and `/exec/...`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::json;
use tokio::sync::mpsc;

use super::http::{self, Body, ChannelWriter, Query};
use super::stream::{self, Wanted};
use crate::container::{Container, Status};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::filters::Filters;
use crate::logs::{self, LogOptions};
use crate::model::{CreateRequest, ExecCreateRequest, ExecStartRequest, UpdateRequest};
use crate::{archive, signal, stats, top, views};

/// Routes `/containers/...`; `s` are the path segments after `containers`.
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    s: &[&str],
    q: &Query,
) -> Result<Response<Body>> {
    match (method, s) {
        (&Method::GET, ["json"]) => list(&engine, q),
        (&Method::POST, ["create"]) => {
            let body: CreateRequest = http::read_json(req.into_body()).await?;
            let (id, warnings) = engine.create(q.get("name"), body).await?;
            Ok(http::json(201, &json!({"Id": id, "Warnings": warnings})))
        }
        (&Method::POST, ["prune"]) => prune(&engine, q).await,
        (&Method::GET, [id, "json"]) => {
            let c = engine.lookup(id)?.snapshot();
            let mut v = views::inspect(&c);
            super::networks::decorate_inspect(&engine, &c, &mut v);
            Ok(http::json(200, &v))
        }
        (&Method::DELETE, [id]) => {
            let anonymous = match engine.lookup(id) {
                Ok(e) if q.flag("v") => engine.anonymous_volumes_of(&e.snapshot()),
                _ => Vec::new(),
            };
            engine.remove(id, q.flag("force")).await?;
            engine.remove_unused_volumes(&anonymous);
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "start"]) => {
            engine.start(id).await?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "stop"]) => {
            let sig = q
                .get("signal")
                .filter(|s| !s.is_empty())
                .map(signal::parse)
                .transpose()?;
            engine.stop(id, sig, q.int("t")?).await?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "restart"]) => {
            let sig = q
                .get("signal")
                .filter(|s| !s.is_empty())
                .map(signal::parse)
                .transpose()?;
            engine.restart(id, sig, q.int("t")?).await?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "kill"]) => {
            let sig = match q.get("signal").filter(|s| !s.is_empty()) {
                Some(s) => signal::parse(s)?,
                None => signal::SIGKILL,
            };
            engine.kill(id, sig).await?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "pause"]) => {
            engine.pause(id, true).await?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "unpause"]) => {
            engine.pause(id, false).await?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "rename"]) => {
            engine.rename(id, q.get("name").unwrap_or(""))?;
            Ok(http::empty(204))
        }
        (&Method::POST, [id, "update"]) => {
            let body: UpdateRequest = http::read_json(req.into_body()).await?;
            let warnings = engine.update(id, body).await?;
            Ok(http::json(200, &json!({"Warnings": warnings})))
        }
        (&Method::POST, [id, "wait"]) => {
            let fut = engine.wait(id, q.get("condition").unwrap_or(""))?;
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                let code = fut.await;
                let body = format!("{}\n", json!({"StatusCode": code}));
                let _ = tx.send(Bytes::from(body)).await;
            });
            Ok(http::stream(200, "application/json", rx))
        }
        (&Method::POST, [id, "resize"]) => {
            let c = engine.lookup(id)?.snapshot();
            let (h, w) = (q.int("h")?.unwrap_or(0), q.int("w")?.unwrap_or(0));
            if c.state.status.is_alive() {
                engine
                    .runtime
                    .resize(
                        &c.id,
                        None,
                        h.clamp(0, 65535) as u16,
                        w.clamp(0, 65535) as u16,
                    )
                    .await?;
            }
            Ok(http::empty(200))
        }
        (&Method::POST, [id, "attach"]) => attach(&engine, req, id, q).await,
        (&Method::GET, [id, "logs"]) => logs_endpoint(&engine, id, q),
        (&Method::GET, [id, "top"]) => {
            let c = engine.lookup(id)?.snapshot();
            if !c.state.status.is_alive() {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running",
                    c.id
                )));
            }
            let pids = engine.runtime.processes(&c.id).await?;
            Ok(http::json(200, &top::table(&pids)))
        }
        (&Method::GET, [id, "stats"]) => stats_endpoint(&engine, id, q).await,
        (&Method::GET, [id, "changes"]) => {
            let c = engine.lookup(id)?.snapshot();
            let changes = engine.with_images(move |s| Ok(s.diff(&c.id)?)).await?;
            let v: Vec<_> = changes
                .iter()
                .map(|ch| json!({"Path": ch.path, "Kind": ch.kind}))
                .collect();
            Ok(http::json(200, &json!(v)))
        }
        (&Method::GET, [id, "export"]) => {
            let c = engine.lookup(id)?.snapshot();
            let (mut w, rx) = ChannelWriter::new();
            let images = engine.images.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = images.export(&c.id, &mut w) {
                    tracing::warn!(container = %c.id, error = %e, "export failed");
                }
            });
            Ok(http::stream(200, "application/x-tar", rx))
        }
        (&Method::HEAD | &Method::GET | &Method::PUT, [id, "archive"]) => {
            archive_endpoint(&engine, req, method, id, q).await
        }
        (&Method::POST, [id, "exec"]) => {
            let body: ExecCreateRequest = http::read_json(req.into_body()).await?;
            let exec_id = engine.exec_create(id, body)?;
            Ok(http::json(201, &json!({"Id": exec_id})))
        }
        _ => Err(super::not_found()),
    }
}

/// Routes `/exec/{id}/...`.
pub async fn route_exec(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    s: &[&str],
    q: &Query,
) -> Result<Response<Body>> {
    match (method, s) {
        (&Method::GET, [id, "json"]) => Ok(http::json(200, &engine.exec(id)?.inspect())),
        (&Method::POST, [id, "resize"]) => {
            let exec = engine.exec(id)?;
            let (h, w) = (q.int("h")?.unwrap_or(0), q.int("w")?.unwrap_or(0));
            engine
                .runtime
                .resize(
                    &exec.container_id,
                    Some(&exec.id),
                    h.clamp(0, 65535) as u16,
                    w.clamp(0, 65535) as u16,
                )
                .await?;
            Ok(http::empty(200))
        }
        (&Method::POST, [id, "start"]) => {
            let exec = engine.exec(id)?;
            let mut req = req;
            let upgrade = stream::take_upgrade(&mut req);
            let start: ExecStartRequest = http::read_json(req.into_body()).await?;
            if start.detach {
                engine.exec_start(&exec, false).await?;
                return Ok(http::empty(200));
            }
            let tty = exec.request.tty || start.tty;
            let wanted = Wanted {
                stdin: exec.request.attach_stdin,
                stdout: exec.request.attach_stdout,
                stderr: exec.request.attach_stderr,
                detach_keys: stream::parse_detach_keys(&exec.request.detach_keys)?,
            };
            // As Docker, the process starts once the connection is hijacked (output cannot
            // overtake the 101 answer), and a failed start is reported on the connection;
            // the client then reads the exit code (126/127) from the exec.
            let start_engine = engine.clone();
            let start_exec = exec.clone();
            let streams: stream::StreamsFuture = Box::pin(async move {
                match start_engine.exec_start(&start_exec, true).await {
                    Ok(streams) => streams.map(Ok),
                    Err(e) => Some(Err(e.message())),
                }
            });
            let finish_engine = engine.clone();
            let finish_exec = exec.clone();
            let finish: stream::Finish = Box::pin(async move {
                finish_engine.exec_finish(&finish_exec).await;
            });
            Ok(stream::session(
                upgrade,
                tty,
                wanted,
                Vec::new(),
                streams,
                Some(finish),
            ))
        }
        _ => Err(super::not_found()),
    }
}

fn list(engine: &Engine, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    f.only(&[
        "name",
        "status",
        "label",
        "ancestor",
        "id",
        "exited",
        "before",
        "since",
        "network",
        "volume",
        "health",
        "isolation",
        "is-task",
        "publish",
        "expose",
    ])?;
    let all = q.flag("all");
    let mut cs: Vec<Container> = engine.containers();
    cs.sort_by_key(|c| std::cmp::Reverse(c.created));
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for c in cs {
        let has_status_filter = f.get("status").is_some() || f.get("exited").is_some();
        if !all && !has_status_filter && !c.state.status.is_alive() {
            continue;
        }
        if !matches_filters(engine, &f, &c) {
            continue;
        }
        let mut v = views::summary(&c, now);
        super::networks::decorate_summary(engine, &c, &mut v);
        out.push(v);
    }
    if let Some(limit) = q.int("limit")?.filter(|l| *l > 0) {
        out.truncate(limit as usize);
    }
    Ok(http::json(200, &json!(out)))
}

fn matches_filters(engine: &Engine, f: &Filters, c: &Container) -> bool {
    let one_of = |key: &str, pred: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vs| vs.iter().any(|v| pred(v)))
    };
    let status = c.state.status.as_str();
    one_of("name", &|v| {
        let v = v.strip_prefix('/').unwrap_or(v);
        c.name.contains(v)
    }) && one_of("id", &|v| c.id.starts_with(v))
        && one_of("status", &|v| v == status)
        && one_of("exited", &|v| {
            c.state.status == Status::Exited
                && c.state.finished_at.is_some()
                && v.parse::<i32>().ok() == Some(c.state.exit_code)
        })
        && one_of("ancestor", &|v| {
            c.config.image == v
                || c.image_id == v
                || c.image_id.trim_start_matches("sha256:").starts_with(v)
                || engine
                    .images
                    .resolve(v)
                    .is_ok_and(|img| img.id == c.image_id)
        })
        && f.labels_match(&c.config.labels.clone().unwrap_or_default())
}

async fn prune(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>> {
    let f = Filters::parse(q.get("filters"))?;
    let until = f
        .get("until")
        .and_then(|v| v.first())
        .map(|v| logs::parse_time(v))
        .transpose()?
        .flatten();
    let mut deleted = Vec::new();
    for c in engine.containers() {
        if c.state.status.is_alive() || c.state.status == Status::Restarting {
            continue;
        }
        if until.is_some_and(|u| c.created > u) {
            continue;
        }
        if !f.labels_match(&c.config.labels.clone().unwrap_or_default()) {
            continue;
        }
        if engine.remove(&c.id, false).await.is_ok() {
            deleted.push(c.id);
        }
    }
    Ok(http::json(
        200,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}

async fn attach(
    engine: &Arc<Engine>,
    mut req: Request<Incoming>,
    id: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let upgrade = stream::take_upgrade(&mut req);
    let entry = engine.lookup(id)?;
    let c = entry.snapshot();
    let wanted = Wanted {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        detach_keys: stream::parse_detach_keys(q.get("detachKeys").unwrap_or_default())?,
    };
    let mut preamble = Vec::new();
    if q.flag("logs") {
        let opts = LogOptions {
            stdout: wanted.stdout,
            stderr: wanted.stderr,
            multiplexed: !c.config.tty,
            ..Default::default()
        };
        let path = PathBuf::from(&c.log_path);
        preamble = tokio::task::spawn_blocking(move || logs::read_existing(&path, &opts))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
            .0;
    }
    let streams: stream::StreamsFuture = if !q.flag("stream") {
        Box::pin(async { None })
    } else {
        match c.state.status {
            Status::Running | Status::Paused => {
                let s = engine.runtime.attach(&c.id).await?;
                Box::pin(async move { Some(Ok(s)) })
            }
            Status::Created | Status::Restarting | Status::Exited
                if c.state.status != Status::Exited || !c.has_been_started =>
            {
                let (tx, rx) = tokio::sync::oneshot::channel();
                entry
                    .pending_attach
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(tx);
                Box::pin(async move { rx.await.ok().map(Ok) })
            }
            _ => {
                if q.flag("logs") {
                    Box::pin(async { None })
                } else {
                    return Err(EngineError::Conflict(
                        "You cannot attach to a stopped container, start it first".into(),
                    ));
                }
            }
        }
    };
    Ok(stream::session(
        upgrade,
        c.config.tty,
        wanted,
        preamble,
        streams,
        None,
    ))
}

fn logs_endpoint(engine: &Arc<Engine>, id: &str, q: &Query) -> Result<Response<Body>> {
    let entry = engine.lookup(id)?;
    let c = entry.snapshot();
    let opts = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        follow: q.flag("follow"),
        tail: match q.get("tail") {
            None | Some("") | Some("all") => None,
            Some(t) => Some(t.parse::<i64>().map_or(usize::MAX, |n| n.max(0) as usize)),
        },
        since: q.get("since").map(logs::parse_time).transpose()?.flatten(),
        until: q.get("until").map(logs::parse_time).transpose()?.flatten(),
        timestamps: q.flag("timestamps"),
        multiplexed: !c.config.tty,
    };
    if !opts.stdout && !opts.stderr {
        return Err(EngineError::InvalidArgument(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    let content_type = if c.config.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let (tx, rx) = mpsc::channel(64);
    let path = PathBuf::from(&c.log_path);
    let mut events = engine.events().subscribe();
    tokio::spawn(async move {
        let (p, o) = (path.clone(), opts.clone());
        let Ok(Ok((lines, mut offset))) =
            tokio::task::spawn_blocking(move || logs::read_existing(&p, &o)).await
        else {
            return;
        };
        for l in lines {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if !opts.follow {
            return;
        }
        // Woken by writes to the file and by the container's events (its exit); the slow
        // tick only covers a file replaced under the watch.
        let watch = logs::LogWatch::new(&path).ok();
        loop {
            let alive = {
                let s = entry.lock().state.status;
                s.is_alive() || s == Status::Restarting
            };
            let (p, o) = (path.clone(), opts.clone());
            let Ok(Ok((lines, next))) =
                tokio::task::spawn_blocking(move || logs::read_from(&p, offset, &o)).await
            else {
                return;
            };
            offset = next;
            for l in lines {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            if !alive {
                return;
            }
            let written = async {
                match &watch {
                    Some(w) => w.changed().await,
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            tokio::select! {
                _ = written => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = events.recv() => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(http::stream(200, content_type, rx))
}

async fn stats_endpoint(engine: &Arc<Engine>, id: &str, q: &Query) -> Result<Response<Body>> {
    let entry = engine.lookup(id)?;
    let c = entry.snapshot();
    let streaming = q.flag_or("stream", true) && !q.flag("one-shot");
    if !c.state.status.is_alive() {
        let v = stats::empty(&c.id, &c.name);
        if !streaming {
            return Ok(http::json(200, &v));
        }
    }
    if !streaming {
        let now = chrono::Utc::now();
        let s = engine.runtime.stats(&c.id).await?;
        return Ok(http::json(
            200,
            &stats::sample(&c.id, &c.name, now, &s, None),
        ));
    }
    let (tx, rx) = mpsc::channel(4);
    let engine = engine.clone();
    tokio::spawn(async move {
        let mut previous: Option<(berth_runtime::Stats, chrono::DateTime<chrono::Utc>)> = None;
        loop {
            let (id, name, alive) = {
                let g = entry.lock();
                (g.id.clone(), g.name.clone(), g.state.status.is_alive())
            };
            let now = chrono::Utc::now();
            let v = match (alive, engine.runtime.stats(&id).await) {
                (true, Ok(s)) => {
                    let v =
                        stats::sample(&id, &name, now, &s, previous.as_ref().map(|(p, t)| (p, *t)));
                    previous = Some((s, now));
                    v
                }
                _ => stats::empty(&id, &name),
            };
            let line = format!("{v}\n");
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(http::stream(200, "application/json", rx))
}

async fn archive_endpoint(
    engine: &Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    id: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let c = engine.lookup(id)?.snapshot();
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| EngineError::InvalidArgument("path is required".into()))?
        .to_string();
    let root = if c.state.pid > 0 && c.state.status.is_alive() {
        PathBuf::from(format!("/proc/{}/root", c.state.pid))
    } else {
        let cid = c.id.clone();
        let snap = engine
            .with_images(move |s| Ok(s.mount_snapshot(&cid)?))
            .await?;
        snap.merged
    };
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    match *method {
        Method::PUT => {
            let mut reader = http::BodyReader::new(req.into_body());
            tokio::task::spawn_blocking(move || {
                let extracted = archive::extract_tar(&root, &path, &mut reader);
                // The tar reader stops at the end-of-archive marker; the client may still be
                // sending padding, and answering before the body is read breaks its pipe.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                extracted
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
            Ok(http::empty(200))
        }
        _ => {
            let (r, p) = (root.clone(), path.clone());
            let header = tokio::task::spawn_blocking(move || archive::stat_header(&r, &p))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??;
            let mut resp = if *method == Method::HEAD {
                http::empty(200)
            } else {
                let (mut w, rx) = ChannelWriter::new();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = archive::write_tar(&root, &path, &mut w) {
                        tracing::warn!(error = %e, "archive failed");
                    }
                });
                http::stream(200, "application/x-tar", rx)
            };
            if let Ok(v) = hyper::header::HeaderValue::from_str(&header) {
                resp.headers_mut().insert("x-docker-container-path-stat", v);
            }
            Ok(resp)
        }
    }
}
