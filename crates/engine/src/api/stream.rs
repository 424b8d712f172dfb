//! Hijacked connections for attach and exec: `Upgrade: tcp` → `101`, then the raw stream,
//! framed with stdcopy headers unless the process has a TTY. Clients that do not ask for an
//! upgrade get the output as a plain streamed response body.

use std::future::Future;
use std::pin::Pin;

use berth_runtime::AttachStreams;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::http::Body;
use crate::stdcopy::{self, StreamId};

/// Which streams a client wants.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Work run after the output ended and before the connection is closed (an exec records its
/// exit code there, so that the client's inspect right after sees it).
pub type Finish = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the streams come from once the client is connected: `None` ends the session at
/// once, `Err(text)` reports a failure on the connection (as Docker reports a failed exec
/// start after the hijack) and ends it.
pub type StreamsFuture =
    Pin<Box<dyn Future<Output = Option<Result<AttachStreams, String>>> + Send>>;

/// Whether the request asks to hijack the connection.
pub fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| !v.is_empty())
}

fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Takes the pending upgrade of a request that asks to hijack the connection.
pub fn take_upgrade(req: &mut Request<Incoming>) -> Option<OnUpgrade> {
    wants_upgrade(req).then(|| hyper::upgrade::on(req))
}

/// Answers the request and runs the session: with `101` and the upgraded connection when
/// asked, else as a streamed body (output only).
pub fn session(
    upgrade: Option<OnUpgrade>,
    tty: bool,
    wanted: Wanted,
    preamble: Vec<Bytes>,
    streams: StreamsFuture,
    finish: Option<Finish>,
) -> Response<Body> {
    if let Some(on_upgrade) = upgrade {
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    pump(io, tty, wanted, preamble, streams, finish).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
        let mut r = super::http::empty(101);
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("Upgrade"),
        );
        h.insert(
            hyper::header::UPGRADE,
            hyper::header::HeaderValue::from_static("tcp"),
        );
        h.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type(tty)),
        );
        return r;
    }
    let (near, far) = tokio::io::duplex(64 * 1024);
    let wanted = Wanted {
        stdin: false,
        ..wanted
    };
    tokio::spawn(pump(near, tty, wanted, preamble, streams, finish));
    let body = tokio_util::io::ReaderStream::new(far).map(|r| r.map(Frame::data));
    let mut r = Response::new(StreamBody::new(body).boxed_unsync());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type(tty)),
    );
    r
}

async fn forward(
    mut from: Box<dyn AsyncRead + Send + Unpin>,
    id: StreamId,
    framed: bool,
    keep: bool,
    tx: mpsc::Sender<Bytes>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if !keep {
                    continue;
                }
                let chunk = if framed {
                    stdcopy::frame(id, &buf[..n])
                } else {
                    Bytes::copy_from_slice(&buf[..n])
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Copies client input to stdin and the process' output to the client until the output
/// ends, then runs `finish` and closes the connection.
pub async fn pump<S>(
    io: S,
    tty: bool,
    wanted: Wanted,
    preamble: Vec<Bytes>,
    streams: StreamsFuture,
    finish: Option<Finish>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    for b in preamble {
        if wr.write_all(&b).await.is_err() {
            return;
        }
    }
    let _ = wr.flush().await;
    let streams = match streams.await {
        Some(Ok(streams)) => streams,
        outcome => {
            if let Some(Err(text)) = outcome {
                let text = format!("{text}\r\n");
                let chunk = if tty {
                    Bytes::from(text)
                } else {
                    stdcopy::frame(StreamId::Stdout, text.as_bytes())
                };
                let _ = wr.write_all(&chunk).await;
            }
            let _ = wr.shutdown().await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let stdin_task = match (wanted.stdin, streams.stdin) {
        (true, Some(mut stdin)) => Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut rd, &mut stdin).await;
            let _ = stdin.shutdown().await;
        })),
        _ => None,
    };
    tokio::spawn(forward(
        streams.stdout,
        StreamId::Stdout,
        !tty,
        wanted.stdout,
        tx.clone(),
    ));
    if let Some(stderr) = streams.stderr {
        tokio::spawn(forward(
            stderr,
            StreamId::Stderr,
            !tty,
            wanted.stderr,
            tx.clone(),
        ));
    }
    drop(tx);
    let mut client_gone = false;
    while let Some(chunk) = rx.recv().await {
        if !client_gone && (wr.write_all(&chunk).await.is_err() || wr.flush().await.is_err()) {
            client_gone = true;
        }
    }
    if let Some(f) = finish {
        f.await;
    }
    let _ = wr.shutdown().await;
    if let Some(t) = stdin_task {
        t.abort();
    }
}
