//! A file that one task is still writing and one blocking thread already reads: the pull
//! downloads a layer into a temp file while the image store unpacks the bytes that have
//! arrived. The reader sees only bytes the writer published, waits for more, and reaches
//! end of file only once the writer verified the whole blob against its digest, so an
//! unverified or truncated blob can never finish unpacking.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a waiting reader sleeps before it looks at the state again on its own (a
/// safety net: every state change also wakes it).
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    /// Bytes written and flushed to the file.
    published: u64,
    /// `Some(Ok)` once the blob is complete and verified; `Some(Err)` when it never will be.
    end: Option<Result<(), String>>,
}

/// The shared state of one growing file.
#[derive(Debug)]
pub(crate) struct Growing {
    path: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
}

impl Growing {
    /// A growing file at `path` (created by the writer before any reader opens it).
    pub(crate) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    /// Where the bytes go.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer flushed the file up to `len` bytes.
    pub(crate) fn publish(&self, len: u64) {
        self.lock().published = len;
        self.changed.notify_all();
    }

    /// The blob is complete and verified.
    pub(crate) fn complete(&self) {
        let mut st = self.lock();
        if st.end.is_none() {
            st.end = Some(Ok(()));
        }
        drop(st);
        self.changed.notify_all();
    }

    /// The blob will not be completed (download failed or the pull was abandoned); a
    /// reader gets `why` as an error. No effect after [`Self::complete`].
    pub(crate) fn fail(&self, why: &str) {
        let mut st = self.lock();
        if st.end.is_none() {
            st.end = Some(Err(why.to_string()));
        }
        drop(st);
        self.changed.notify_all();
    }

    /// A reader from the start of the file; `on_read` gets the running count of bytes read.
    pub(crate) fn reader(
        self: &Arc<Self>,
        on_read: Box<dyn FnMut(u64) + Send>,
    ) -> io::Result<Follower> {
        Ok(Follower {
            file: File::open(&self.path)?,
            growing: self.clone(),
            pos: 0,
            on_read,
        })
    }
}

/// Reads a [`Growing`] file as it grows (blocking).
pub(crate) struct Follower {
    file: File,
    growing: Arc<Growing>,
    pos: u64,
    on_read: Box<dyn FnMut(u64) + Send>,
}

impl Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let available = {
            let mut st = self.growing.lock();
            loop {
                if st.published > self.pos {
                    break st.published - self.pos;
                }
                match &st.end {
                    Some(Ok(())) => return Ok(0),
                    Some(Err(why)) => return Err(io::Error::other(why.clone())),
                    None => {}
                }
                st = self
                    .growing
                    .changed
                    .wait_timeout(st, RECHECK)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        let want = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is shorter than published", self.growing.path.display()),
            ));
        }
        self.pos += n as u64;
        (self.on_read)(self.pos);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reader_waits_for_published_bytes_and_ends_only_when_complete() {
        let dir = tempfile::tempdir().expect("temp dir");
        let g = Growing::new(dir.path().join("blob"));
        let mut f = File::create(g.path()).expect("create");
        let reader = g.reader(Box::new(|_| {})).expect("reader");
        let t = std::thread::spawn(move || {
            let mut reader = reader;
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map(|_| out)
        });
        f.write_all(b"hello ").expect("write");
        // Written but not published: the reader must not see it yet, nor end.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished());
        g.publish(6);
        f.write_all(b"world").expect("write");
        g.publish(11);
        g.complete();
        assert_eq!(t.join().expect("thread").expect("read"), b"hello world");
    }

    #[test]
    fn reader_fails_when_the_writer_gives_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let g = Growing::new(dir.path().join("blob"));
        let mut f = File::create(g.path()).expect("create");
        f.write_all(b"part").expect("write");
        g.publish(4);
        let mut reader = g.reader(Box::new(|_| {})).expect("reader");
        let g2 = g.clone();
        let t = std::thread::spawn(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out)
        });
        g2.fail("digest mismatch");
        g2.complete(); // too late: the failure stands
        let err = t.join().expect("thread").expect_err("must fail");
        assert!(err.to_string().contains("digest mismatch"), "{err}");
    }
}
