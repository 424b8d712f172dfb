//! HTTP plumbing of the API: body types, query parsing with Docker's boolean rules, JSON and
//! error responses, and adapters between async bodies and blocking readers and writers.

use std::io::{Read, Write};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use crate::error::{EngineError, Result};
use crate::system::API_VERSION;

/// Response body of every handler.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Largest JSON request body accepted.
const MAX_JSON_BODY: usize = 16 << 20;

/// Decoded query parameters, in order, repeated keys kept.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes one path segment.
pub fn decode_path(s: &str) -> String {
    percent_decode(s, false)
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw else {
            return Self::default();
        };
        Self(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k, true), percent_decode(v, true))
                })
                .collect(),
        )
    }

    /// First value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a key.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's boolean rule: absent, empty, `0`, `false`, `no` are false.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false" | "no"),
        }
    }

    /// Like [`Query::flag`] with a default when absent.
    pub fn flag_or(&self, key: &str, default: bool) -> bool {
        if self.get(key).is_some() {
            self.flag(key)
        } else {
            default
        }
    }

    /// An integer parameter; invalid numbers are a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| EngineError::InvalidArgument(format!("invalid value for {key}: {v}"))),
        }
    }
}

/// Adds the headers every Docker API response carries.
pub fn with_headers(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(
        "api-version",
        hyper::header::HeaderValue::from_static(API_VERSION),
    );
    h.insert(
        "docker-experimental",
        hyper::header::HeaderValue::from_static("false"),
    );
    h.insert("ostype", hyper::header::HeaderValue::from_static("linux"));
    h.insert(
        "server",
        hyper::header::HeaderValue::from_static("Docker/berth (linux)"),
    );
    resp
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A response with a body and content type.
pub fn bytes(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status(code);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON response.
pub fn json(code: u16, value: &serde_json::Value) -> Response<Body> {
    let mut body = value.to_string().into_bytes();
    body.push(b'\n');
    bytes(code, "application/json", body)
}

/// A response without a body (204, 201, 304, 200).
pub fn empty(code: u16) -> Response<Body> {
    let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *r.status_mut() = status(code);
    r
}

/// The one mapping of engine errors to Docker's `{"message": ...}` responses.
pub fn error(err: &EngineError) -> Response<Body> {
    let code = err.status();
    if code >= 500 {
        tracing::warn!(error = %err, status = code, "request failed");
    } else {
        tracing::debug!(error = %err, status = code, "request refused");
    }
    if code == 304 {
        return empty(304);
    }
    json(code, &serde_json::json!({"message": err.message()}))
}

/// A streaming response fed by a channel.
pub fn stream(code: u16, content_type: &str, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let s = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(s).boxed_unsync());
    *r.status_mut() = status(code);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Reads a whole (bounded) request body.
pub async fn read_body(body: Incoming) -> Result<Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_JSON_BODY);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| EngineError::InvalidArgument(format!("reading request body: {e}")))
}

/// Parses a JSON body; an empty body is `T::default()`.
pub async fn read_json<T: serde::de::DeserializeOwned + Default>(body: Incoming) -> Result<T> {
    let data = read_body(body).await?;
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: serde_json::Value = serde_json::from_slice(&data)
        .map_err(|e| EngineError::InvalidArgument(format!("invalid JSON: {e}")))?;
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v)
        .map_err(|e| EngineError::InvalidArgument(format!("invalid JSON: {e}")))
}

/// A blocking reader over a streamed request body (for tar uploads).
pub struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl BodyReader {
    /// Starts pumping `body` into a reader usable from a blocking thread.
    pub fn new(body: Incoming) -> Self {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut frames = body.into_data_stream();
            while let Some(item) = frames.next().await {
                let item = item.map_err(std::io::Error::other);
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A blocking writer whose output becomes a streamed response.
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    /// A writer and the receiver to stream from.
    pub fn new() -> (Self, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(16);
        (
            Self {
                tx,
                buf: Vec::with_capacity(64 * 1024),
            },
            rx,
        )
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_and_flags() {
        let q = Query::parse(Some(
            "all=1&filters=%7B%22a%22%3A1%7D&names=a&names=b+c&force=false&t=5&bad=x",
        ));
        assert!(q.flag("all"));
        assert!(!q.flag("force"));
        assert!(!q.flag("missing"));
        assert_eq!(q.get("filters"), Some("{\"a\":1}"));
        assert_eq!(q.all("names"), vec!["a".to_string(), "b c".to_string()]);
        assert_eq!(q.int("t").ok().flatten(), Some(5));
        assert!(q.int("bad").is_err());
        assert_eq!(decode_path("sha256%3Aab"), "sha256:ab");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
    }
}
