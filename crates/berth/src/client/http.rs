//! A small blocking HTTP/1.1 client for the Docker Engine API over a unix socket, with
//! chunked bodies and connection hijacking (attach, exec).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// API version prefix the client speaks.
pub const API_PREFIX: &str = "/v1.47";

/// Where the daemon listens.
#[derive(Debug, Clone)]
pub struct Endpoint {
    socket: PathBuf,
}

impl Endpoint {
    /// Parses `unix:///path` (or a bare path).
    pub fn parse(host: &str) -> anyhow::Result<Self> {
        let path = host.strip_prefix("unix://").unwrap_or(host);
        if host.contains("://") && !host.starts_with("unix://") {
            bail!("only unix:// hosts are supported: {host}");
        }
        Ok(Self {
            socket: PathBuf::from(path),
        })
    }

    fn connect(&self) -> anyhow::Result<UnixStream> {
        UnixStream::connect(&self.socket).with_context(|| {
            format!(
                "Cannot connect to the berth daemon at unix://{}. Is the daemon running?",
                self.socket.display()
            )
        })
    }

    /// Sends a request; the response body is read lazily.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&mut dyn Read>,
        upgrade: bool,
    ) -> anyhow::Result<Response> {
        self.send_with_headers(method, path, content_type, body, upgrade, &[])
    }

    /// [`Endpoint::send`] with extra request headers (`X-Registry-Auth`).
    pub fn send_with_headers(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&mut dyn Read>,
        upgrade: bool,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        let mut s = self.connect()?;
        let mut head = format!(
            "{method} {API_PREFIX}{path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-cli\r\n"
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if upgrade {
            head.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
        } else {
            head.push_str("Connection: close\r\n");
        }
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        match body {
            Some(b) => {
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                s.write_all(head.as_bytes())?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = b.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    s.write_all(format!("{n:x}\r\n").as_bytes())?;
                    s.write_all(&buf[..n])?;
                    s.write_all(b"\r\n")?;
                }
                s.write_all(b"0\r\n\r\n")?;
            }
            None => {
                head.push_str("Content-Length: 0\r\n\r\n");
                s.write_all(head.as_bytes())?;
            }
        }
        Response::read(s)
    }

    /// A request with a JSON body (or none); returns status and the whole body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let data = json.map(|j| j.to_string().into_bytes());
        let mut slice = data.as_deref();
        let body: Option<&mut dyn Read> = slice.as_mut().map(|s| s as &mut dyn Read);
        let mut r = self.send(method, path, json.map(|_| "application/json"), body, false)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok((r.status, out))
    }

    /// Like [`Endpoint::call`] but turns non-2xx answers into Docker-style errors.
    pub fn ok(
        &self,
        method: &str,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> anyhow::Result<Vec<u8>> {
        let (status, body) = self.call(method, path, json)?;
        check(status, &body)?;
        Ok(body)
    }
}

/// An error answer of the daemon.
#[derive(Debug)]
pub struct ApiError {
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// Fails with the daemon's message for statuses >= 400.
pub fn check(status: u16, body: &[u8]) -> anyhow::Result<()> {
    if status < 400 {
        return Ok(());
    }
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    Err(ApiError { message }.into())
}

/// A response whose body is read on demand (de-chunked); after a `101` the raw stream.
pub struct Response {
    pub status: u16,
    reader: BufReader<UnixStream>,
    chunked: bool,
    remaining: Option<u64>,
    chunk_left: u64,
    done: bool,
}

impl Response {
    fn read(stream: UnixStream) -> anyhow::Result<Self> {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("malformed HTTP status line from the daemon")?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let remaining = if status == 101 || chunked {
            None
        } else {
            get("content-length").and_then(|v| v.parse().ok())
        };
        let done = status == 204 || status == 304 || remaining == Some(0);
        Ok(Self {
            status,
            reader,
            chunked,
            remaining,
            chunk_left: 0,
            done,
        })
    }

    /// The underlying socket (for writing stdin after a hijack).
    pub fn socket(&self) -> anyhow::Result<UnixStream> {
        Ok(self.reader.get_ref().try_clone()?)
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.chunked {
            if self.chunk_left == 0 {
                let mut line = String::new();
                self.reader.read_line(&mut line)?;
                if line.trim().is_empty() {
                    line.clear();
                    self.reader.read_line(&mut line)?;
                }
                let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
                if size == 0 {
                    self.done = true;
                    return Ok(0);
                }
                self.chunk_left = size;
            }
            let max = buf.len().min(self.chunk_left as usize);
            let n = self.reader.read(&mut buf[..max])?;
            if n == 0 {
                self.done = true;
            }
            self.chunk_left -= n as u64;
            if self.chunk_left == 0 {
                let mut crlf = [0u8; 2];
                let _ = self.reader.read_exact(&mut crlf);
            }
            return Ok(n);
        }
        let max = match self.remaining {
            Some(r) => buf.len().min(r as usize),
            None => buf.len(),
        };
        let n = self.reader.read(&mut buf[..max])?;
        if n == 0 {
            self.done = true;
        }
        if let Some(r) = self.remaining.as_mut() {
            *r -= n as u64;
            if *r == 0 {
                self.done = true;
            }
        }
        Ok(n)
    }
}

/// Copies a multiplexed stream to stdout/stderr (or raw to stdout for a TTY).
pub fn demux(mut from: impl Read, tty: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    if tty {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
    }
    let mut err = std::io::stderr();
    let mut header = [0u8; 8];
    loop {
        match from.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        from.read_exact(&mut payload)?;
        if header[0] == 2 {
            err.write_all(&payload)?;
            err.flush()?;
        } else {
            out.write_all(&payload)?;
            out.flush()?;
        }
    }
}
