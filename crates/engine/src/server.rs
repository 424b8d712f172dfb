//! Serving the API on a unix socket: one hyper HTTP/1 connection (with upgrades for
//! attach and exec) per accepted client, until the cancellation token fires.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// Binds the socket (replacing a stale one) with mode 0660.
pub fn bind(socket: &Path) -> Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(EngineError::io(format!("remove {}", socket.display()), e)),
    }
    let listener = UnixListener::bind(socket)
        .map_err(|e| EngineError::io(format!("bind {}", socket.display()), e))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660));
    Ok(listener)
}

/// Requests being handled and when the last one ended, to notice an idle daemon.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Incremented whenever a request ends.
    ended: AtomicU64,
}

/// How long without requests before the daemon counts as idle.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Gives memory back once the daemon has been idle for [`IDLE_AFTER`]: the code and data of
/// the last requests leave the resident set (see [`berth_runtime::trim_resident`]) until the
/// next request needs them.
async fn trim_when_idle(activity: Arc<Activity>, cancel: CancellationToken) {
    let mut trimmed_at = u64::MAX;
    let mut seen = activity.ended.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(IDLE_AFTER) => {}
        }
        let ended = activity.ended.load(Ordering::Relaxed);
        let quiet = ended == seen && activity.in_flight.load(Ordering::Relaxed) == 0;
        seen = ended;
        if quiet && trimmed_at != ended {
            trimmed_at = ended;
            let _ = tokio::task::spawn_blocking(berth_runtime::trim_resident).await;
        }
    }
}

/// Accepts connections until `cancel` fires.
pub async fn serve(engine: Arc<Engine>, listener: UnixListener, cancel: CancellationToken) {
    let activity = Arc::new(Activity::default());
    tokio::spawn(trim_when_idle(activity.clone(), cancel.clone()));
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let engine = engine.clone();
        let activity = activity.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let engine = engine.clone();
                let activity = activity.clone();
                async move {
                    activity.in_flight.fetch_add(1, Ordering::Relaxed);
                    let resp = crate::api::handle(engine, req).await;
                    activity.in_flight.fetch_sub(1, Ordering::Relaxed);
                    activity.ended.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
