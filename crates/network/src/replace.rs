//! Replacing a file by renaming a new one over it, without paying for the old one's blocks
//! in the caller.
//!
//! Freeing a file's blocks can be slow: on a filesystem mounted with `discard` the kernel
//! trims them synchronously (about a millisecond per file here), and a rename over a file
//! frees the old one inside the rename. Holding the old file open moves the freeing to its
//! last close, which a background thread does; the rename stays atomic.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{self, Sender};

/// Replaces `path` with `bytes` atomically: written to `tmp` (synced when `sync`), then
/// renamed over `path` with [`rename_over`].
pub fn write_file(path: &Path, tmp: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let mut f = File::create(tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    rename_over(tmp, path)
}

/// Renames `tmp` over `path`; the file it replaces is released on a background thread.
pub fn rename_over(tmp: &Path, path: &Path) -> std::io::Result<()> {
    let old = File::open(path).ok();
    std::fs::rename(tmp, path)?;
    if let Some(old) = old {
        release_later(old);
    }
    Ok(())
}

/// Closes `file` on the releasing thread (or here, if that thread cannot start).
fn release_later(file: File) {
    static RELEASER: Mutex<Option<Sender<File>>> = Mutex::new(None);
    let mut releaser = RELEASER.lock().unwrap_or_else(|p| p.into_inner());
    let file = match releaser.as_ref() {
        Some(tx) => match tx.send(file) {
            Ok(()) => return,
            Err(mpsc::SendError(file)) => file,
        },
        None => file,
    };
    let (tx, rx) = mpsc::channel::<File>();
    let started = std::thread::Builder::new()
        .name("file-release".into())
        .spawn(move || rx.into_iter().for_each(drop));
    if started.is_ok() && tx.send(file).is_ok() {
        *releaser = Some(tx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_content_replaces_the_old() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        let tmp = dir.path().join("state.json.tmp");
        std::fs::write(&path, "old").expect("write");
        for round in 0..3 {
            std::fs::write(&tmp, format!("new {round}")).expect("write");
            rename_over(&tmp, &path).expect("rename");
            assert_eq!(
                std::fs::read_to_string(&path).expect("read"),
                format!("new {round}")
            );
            assert!(!tmp.exists());
        }
        // A first write has nothing to replace.
        let fresh = dir.path().join("fresh");
        std::fs::write(&tmp, "first").expect("write");
        rename_over(&tmp, &fresh).expect("rename");
        assert_eq!(std::fs::read_to_string(&fresh).expect("read"), "first");
    }
}
