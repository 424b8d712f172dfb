//! Docker's json-file log driver format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"<RFC3339 with nanoseconds>"}`. Output is split at
//! newlines; a line longer than 16 KiB is written in 16 KiB pieces without a newline, and a
//! last partial line is written when the stream ends, as Docker does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use chrono::SecondsFormat;

use crate::protocol::StreamKind;

/// Longest piece written as one record.
const MAX_RECORD: usize = 16 * 1024;

/// An open json-file log.
pub struct JsonLog {
    file: Option<File>,
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    /// Opens (appending) or creates the log at `path`; a failure to open leaves logging off.
    pub fn open(path: &Path) -> Self {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new().create(true).append(true).open(path);
        if let Err(e) = &file {
            tracing::warn!(?path, error = %e, "cannot open container log");
        }
        Self {
            file: file.ok(),
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// A log that discards everything.
    pub fn disabled() -> Self {
        Self {
            file: None,
            partial: [Vec::new(), Vec::new()],
        }
    }

    fn index(stream: StreamKind) -> usize {
        usize::from(stream == StreamKind::Stderr)
    }

    /// Appends output of `stream`; complete lines are written at once.
    pub fn write(&mut self, stream: StreamKind, data: &[u8]) {
        if self.file.is_none() {
            return;
        }
        let i = Self::index(stream);
        self.partial[i].extend_from_slice(data);
        let mut out = Vec::new();
        let time = now();
        loop {
            let buf = &mut self.partial[i];
            let cut = match buf.iter().position(|b| *b == b'\n') {
                Some(n) if n < MAX_RECORD => n + 1,
                _ if buf.len() >= MAX_RECORD => MAX_RECORD,
                _ => break,
            };
            let piece: Vec<u8> = buf.drain(..cut).collect();
            record(&mut out, &piece, stream, &time);
        }
        self.append(&out);
    }

    /// Writes the partial lines left when the process' streams end.
    pub fn flush(&mut self) {
        let time = now();
        let mut out = Vec::new();
        for stream in [StreamKind::Stdout, StreamKind::Stderr] {
            let piece = std::mem::take(&mut self.partial[Self::index(stream)]);
            if !piece.is_empty() {
                record(&mut out, &piece, stream, &time);
            }
        }
        self.append(&out);
    }

    fn append(&mut self, out: &[u8]) {
        if out.is_empty() {
            return;
        }
        if let Some(f) = &mut self.file
            && let Err(e) = f.write_all(out)
        {
            tracing::warn!(error = %e, "cannot write container log");
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn record(out: &mut Vec<u8>, piece: &[u8], stream: StreamKind, time: &str) {
    let line = serde_json::json!({
        "log": String::from_utf8_lossy(piece),
        "stream": match stream {
            StreamKind::Stderr => "stderr",
            _ => "stdout",
        },
        "time": time,
    });
    if let Ok(mut bytes) = serde_json::to_vec(&line) {
        bytes.push(b'\n');
        out.extend_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_partial_lines_flushed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&path);
        log.write(StreamKind::Stdout, b"hello\nwor");
        log.write(StreamKind::Stderr, b"oops\n");
        log.write(StreamKind::Stdout, b"ld\ntail");
        log.flush();
        let text = std::fs::read_to_string(&path).expect("read");
        let recs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        let got: Vec<(&str, &str)> = recs
            .iter()
            .map(|r| {
                (
                    r["log"].as_str().expect("log"),
                    r["stream"].as_str().expect("stream"),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("hello\n", "stdout"),
                ("oops\n", "stderr"),
                ("world\n", "stdout"),
                ("tail", "stdout")
            ]
        );
        let time = recs[0]["time"].as_str().expect("time");
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok());
        assert!(time.ends_with('Z'));
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("long.log");
        let mut log = JsonLog::open(&path);
        log.write(StreamKind::Stdout, &vec![b'a'; MAX_RECORD + 10]);
        log.write(StreamKind::Stdout, b"\n");
        let text = std::fs::read_to_string(&path).expect("read");
        let lens: Vec<usize> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["log"].as_str().expect("log").len()
            })
            .collect();
        assert_eq!(lens, vec![MAX_RECORD, 11]);
    }
}
