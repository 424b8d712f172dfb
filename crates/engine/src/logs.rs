//! Reading Docker's json-file logs written by the runtime's shim: selecting streams, `tail`,
//! `since`/`until`, timestamps, and following a growing file.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{EngineError, Result};
use crate::stdcopy::{self, StreamId};

/// What `GET /containers/{id}/logs` asked for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub timestamps: bool,
    /// Frame output with stdcopy headers (not a tty).
    pub multiplexed: bool,
}

#[derive(Debug, Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: DateTime<Utc>,
}

/// Parses `since`/`until`: unix seconds with an optional fraction, or RFC 3339.
pub fn parse_time(text: &str) -> Result<Option<DateTime<Utc>>> {
    let t = text.trim();
    if t.is_empty() || t == "0" {
        return Ok(None);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(Some(d.with_timezone(&Utc)));
    }
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: i64 = secs
        .parse()
        .map_err(|_| EngineError::InvalidArgument(format!("invalid time value: {text}")))?;
    let mut nanos_text = frac.chars().take(9).collect::<String>();
    while nanos_text.len() < 9 {
        nanos_text.push('0');
    }
    let nanos: u32 = nanos_text.parse().unwrap_or(0);
    Ok(DateTime::from_timestamp(secs, nanos))
}

/// Turns one log line into the bytes sent to the client, or `None` if filtered out.
fn render(raw: &str, opts: &LogOptions) -> Option<Bytes> {
    let line: Line = serde_json::from_str(raw).ok()?;
    let stream = match line.stream.as_str() {
        "stderr" if opts.stderr => StreamId::Stderr,
        "stdout" if opts.stdout => StreamId::Stdout,
        _ => return None,
    };
    if opts.since.is_some_and(|s| line.time <= s) || opts.until.is_some_and(|u| line.time > u) {
        return None;
    }
    let mut text = String::new();
    if opts.timestamps {
        text.push_str(
            &line
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        );
        text.push(' ');
    }
    text.push_str(&line.log);
    Some(if opts.multiplexed {
        stdcopy::frame(stream, text.as_bytes())
    } else {
        Bytes::from(text)
    })
}

/// Reads the log file from the start; returns the rendered chunks and the offset reached.
pub fn read_existing(path: &Path, opts: &LogOptions) -> Result<(Vec<Bytes>, u64)> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(EngineError::io(format!("read {}", path.display()), e)),
    };
    let mut reader = BufReader::new(file);
    let mut lines = Vec::new();
    let mut offset = 0u64;
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| EngineError::io(format!("read {}", path.display()), e))?;
        if n == 0 || !buf.ends_with('\n') {
            break;
        }
        offset += n as u64;
        if let Some(b) = render(buf.trim_end_matches('\n'), opts) {
            lines.push(b);
        }
    }
    if let Some(t) = opts.tail
        && lines.len() > t
    {
        lines.drain(..lines.len() - t);
    }
    Ok((lines, offset))
}

/// Reads complete lines appended after `offset`; returns chunks and the new offset.
pub fn read_from(path: &Path, offset: u64, opts: &LogOptions) -> Result<(Vec<Bytes>, u64)> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return Ok((Vec::new(), offset)),
    };
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| EngineError::io(format!("seek {}", path.display()), e))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut pos = offset;
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| EngineError::io(format!("read {}", path.display()), e))?;
        if n == 0 || !buf.ends_with('\n') {
            break;
        }
        pos += n as u64;
        if let Some(b) = render(buf.trim_end_matches('\n'), opts) {
            out.push(b);
        }
    }
    Ok((out, pos))
}

/// Wakes a follower when the log file is written (inotify) instead of polling it.
pub struct LogWatch {
    fd: tokio::io::unix::AsyncFd<WatchFd>,
}

struct WatchFd(nix::sys::inotify::Inotify);

impl std::os::fd::AsRawFd for WatchFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

impl LogWatch {
    /// Watches `path` for writes; needs a tokio runtime.
    pub fn new(path: &Path) -> std::io::Result<Self> {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(
            path,
            AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_DELETE_SELF
                | AddWatchFlags::IN_MOVE_SELF,
        )?;
        // SAFETY: `WatchFd` owns the inotify descriptor and the `AsyncFd` owns the
        // `WatchFd`, so the descriptor stays open for as long as it is registered.
        #[allow(unsafe_code)]
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                WatchFd(inotify),
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(std::io::Error::from)?;
        Ok(Self { fd })
    }

    /// Resolves at the next change of the file (at once if changes are pending).
    pub async fn changed(&self) {
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            match ready.get_inner().0.read_events() {
                Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_log(dir: &Path) -> std::path::PathBuf {
        let p = dir.join("c-json.log");
        std::fs::write(
            &p,
            concat!(
                "{\"log\":\"out1\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:01.5Z\"}\n",
                "{\"log\":\"err1\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:02Z\"}\n",
                "{\"log\":\"out2\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:03Z\"}\n",
                "{\"log\":\"partial"
            ),
        )
        .expect("write");
        p
    }

    #[test]
    fn selects_streams_tail_and_since() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = write_log(tmp.path());
        let opts = LogOptions {
            stdout: true,
            ..Default::default()
        };
        let (lines, off) = read_existing(&p, &opts).expect("read");
        assert_eq!(lines, vec![Bytes::from("out1\n"), Bytes::from("out2\n")]);
        let (more, _) = read_from(&p, off, &opts).expect("read more");
        assert!(more.is_empty(), "an incomplete line is not sent");
        let opts = LogOptions {
            stdout: true,
            stderr: true,
            tail: Some(1),
            multiplexed: true,
            ..Default::default()
        };
        let (lines, _) = read_existing(&p, &opts).expect("read");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0][0], 1);
        let opts = LogOptions {
            stderr: true,
            stdout: true,
            since: parse_time("1767225601.6").expect("time"),
            timestamps: true,
            ..Default::default()
        };
        let (lines, _) = read_existing(&p, &opts).expect("read");
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(b"2026-01-01T00:00:02.000000000Z err1"));
    }
}
