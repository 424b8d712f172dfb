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
use crate::error::EngineError;
use crate::stdcopy::{self, StreamId};

/// Which streams a client wants, and the key sequence that detaches it.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Vec<u8>,
}

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// Parses Docker's detach key notation (`ctrl-p,ctrl-q`, `a,ctrl-@`); empty means the default.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, EngineError> {
    if spec.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let invalid = || EngineError::InvalidArgument(format!("Invalid detach keys ({spec}) provided"));
    spec.split(',')
        .map(|key| match key.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => match c.as_bytes()[0] {
                b @ b'a'..=b'z' => Ok(b - b'a' + 1),
                b @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_') => Ok(b - b'@'),
                _ => Err(invalid()),
            },
            None if key.len() == 1 => Ok(key.as_bytes()[0]),
            _ => Err(invalid()),
        })
        .collect()
}

/// Copies client input to the process until the input ends (`false`) or the client types
/// the detach sequence (`true`; the sequence itself is not forwarded).
async fn copy_input<R, W>(mut from: R, to: &mut W, keys: &[u8]) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    // How many bytes of the sequence were typed last (held back until it is decided).
    let mut matched = 0;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n + matched);
        for &b in &buf[..n] {
            if keys.is_empty() {
                out.push(b);
                continue;
            }
            if matched > 0 && b != keys[matched] {
                // Not the sequence after all: the held-back bytes are input.
                out.extend_from_slice(&keys[..matched]);
                matched = 0;
            }
            if b != keys[matched] {
                out.push(b);
                continue;
            }
            matched += 1;
            if matched == keys.len() {
                let _ = to.write_all(&out).await;
                return true;
            }
        }
        if !out.is_empty() && to.write_all(&out).await.is_err() {
            return false;
        }
    }
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
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let keys = wanted.detach_keys.clone();
    let stdin_task = match (wanted.stdin, streams.stdin) {
        (true, Some(mut stdin)) => Some(tokio::spawn(async move {
            if copy_input(&mut rd, &mut stdin, &keys).await {
                let _ = detached_tx.send(());
            } else if !tty {
                // As Docker: the end of a client's input closes a pipe stdin; a terminal
                // stays open for the next client.
                let _ = stdin.shutdown().await;
            }
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
    let mut was_detached = false;
    loop {
        tokio::select! {
            chunk = rx.recv() => {
                let Some(chunk) = chunk else { break };
                if !client_gone
                    && (wr.write_all(&chunk).await.is_err() || wr.flush().await.is_err())
                {
                    client_gone = true;
                }
            }
            Ok(()) = &mut detached => {
                was_detached = true;
                break;
            }
        }
    }
    if let Some(f) = finish {
        if was_detached {
            // The process goes on; its exit is still recorded.
            tokio::spawn(f);
        } else {
            f.await;
        }
    }
    let _ = wr.shutdown().await;
    if let Some(t) = stdin_task {
        t.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_follow_docker_notation() {
        assert_eq!(parse_detach_keys("").expect("default"), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").expect("keys"), [16, 17]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-[").expect("keys"),
            [b'a', 0, 27]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[tokio::test]
    async fn input_is_forwarded_until_the_detach_sequence() {
        let mut out = Vec::new();
        // A lone ctrl-p is forwarded; ctrl-p ctrl-q detaches and is swallowed.
        let input: &[u8] = b"ab\x10c\x10\x11never";
        assert!(copy_input(input, &mut out, &[16, 17]).await);
        assert_eq!(out, b"ab\x10c");
        let mut out = Vec::new();
        assert!(!copy_input(&b"plain"[..], &mut out, &[16, 17]).await);
        assert_eq!(out, b"plain");
    }
}
