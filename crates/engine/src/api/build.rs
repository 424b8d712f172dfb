//! `POST /build`: the classic builder's endpoint. The request body is the context tar; the
//! answer streams Docker's JSON messages (`{"stream": ...}`, `{"aux": {"ID": ...}}`, and on
//! failure `{"errorDetail": ..., "error": ...}`). Errors found before the build starts (an
//! unreadable context, a Dockerfile syntax error, a bad tag) are plain API errors.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use berth_build::{BuildError, BuildOptions, Builder, Progress};
use berth_runtime::NetworkNamespace;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;
use tokio::sync::mpsc;

use super::http::{self, Body, BodyReader, Query};
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// Roots whose build temporary files were already swept by this process.
fn swept() -> &'static Mutex<HashSet<PathBuf>> {
    static SWEPT: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    SWEPT.get_or_init(Mutex::default)
}

fn builder(engine: &Engine) -> Result<Builder> {
    let root = engine.config.root.join("build");
    let first = swept()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(root.clone());
    // RUN gets what `--network host` means for this daemon: the namespace it manages when
    // given one (so a test daemon never touches the machine's), else the host's.
    let network = match &engine.config.network_namespace {
        Some(p) if p.exists() => NetworkNamespace::Path(p.clone()),
        Some(_) => NetworkNamespace::New,
        None => NetworkNamespace::Host,
    };
    Ok(
        Builder::new(engine.images.clone(), engine.runtime.clone(), &root, first)
            .map_err(map_error)?
            .with_network(network),
    )
}

/// The engine error for a build error found before streaming starts.
fn map_error(e: BuildError) -> EngineError {
    match e.status() {
        400 => EngineError::InvalidArgument(e.to_string()),
        404 => EngineError::NotFound(e.to_string()),
        _ => EngineError::Internal(e.to_string()),
    }
}

fn json_map<T: serde::de::DeserializeOwned + Default>(q: &Query, key: &str) -> Result<T> {
    match q.get(key).filter(|s| !s.trim().is_empty()) {
        None => Ok(T::default()),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| EngineError::InvalidArgument(format!("invalid {key} parameter: {e}"))),
    }
}

fn options(q: &Query) -> Result<BuildOptions> {
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(EngineError::InvalidArgument(
            "building from a remote context is not supported".into(),
        ));
    }
    if q.get("version") == Some("2") {
        return Err(EngineError::InvalidArgument(
            "BuildKit (builder version 2) is not supported; use the classic builder (DOCKER_BUILDKIT=0)".into(),
        ));
    }
    let tags = q.all("t");
    for t in &tags {
        berth_image::Reference::parse(t).map_err(|e| {
            EngineError::InvalidArgument(format!(
                "invalid tag {t:?}: invalid reference format: {e}"
            ))
        })?;
    }
    Ok(BuildOptions {
        dockerfile: q.get("dockerfile").unwrap_or("Dockerfile").to_string(),
        tags,
        target: q.get("target").filter(|t| !t.is_empty()).map(String::from),
        build_args: json_map::<BTreeMap<String, Option<String>>>(q, "buildargs")?,
        labels: json_map::<BTreeMap<String, String>>(q, "labels")?,
        no_cache: q.flag("nocache"),
        quiet: q.flag("q"),
    })
}

fn line(v: serde_json::Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

/// Handles `POST /build`.
pub async fn build(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    q: &Query,
) -> Result<Response<Body>> {
    let opts = options(q)?;
    let builder = builder(&engine)?;
    let mut reader = BodyReader::new(req.into_body());
    let (b2, name) = (builder.clone(), opts.dockerfile.clone());
    let (ctx, df) = tokio::task::spawn_blocking(move || {
        let prepared = b2.prepare(&mut reader, &name);
        // The tar ends before the body does (end-of-archive blocks, the last chunk): read
        // the body to its end before answering, or an early answer (a failed build, a bad
        // Dockerfile) closes the connection while the CLI still writes, and it reports a
        // broken pipe instead of the message.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        prepared
    })
    .await
    .map_err(|e| EngineError::Internal(format!("build task failed: {e}")))?
    .map_err(map_error)?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let (ptx, mut prx) = mpsc::unbounded_channel::<Progress>();
        let fwd_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let msg = match p {
                    Progress::Stream(s) => json!({ "stream": s }),
                    Progress::Aux(id) => json!({ "aux": { "ID": id } }),
                };
                if fwd_tx.send(line(msg)).await.is_err() {
                    break;
                }
            }
        });
        let result = builder.build(&ctx, &df, &opts, ptx).await;
        let _ = forward.await;
        match result {
            Ok(id) => {
                tracing::info!(image = %id, "build finished");
                for t in &opts.tags {
                    engine.image_event("tag", &id, Some(t));
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "build failed");
                let message = e.to_string();
                let detail = match e.code() {
                    Some(code) => json!({ "code": code, "message": message }),
                    None => json!({ "message": message }),
                };
                let _ = tx
                    .send(line(json!({ "errorDetail": detail, "error": message })))
                    .await;
            }
        }
        // The answer ends here; the context's files are removed after, off the client's clock.
        drop(tx);
        let _ = tokio::task::spawn_blocking(move || drop(ctx)).await;
    });
    Ok(http::stream(200, "application/json", rx))
}
