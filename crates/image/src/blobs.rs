//! The content-addressed blob store: `<root>/blobs/sha256/<hex>`. Every blob is hashed while
//! it is written and only renamed into place when its digest is what the caller expected.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::atomic::{self, temp_path};
use crate::digest::{HashingWriter, sha256_hex};
use crate::{Digest, ImageError};

/// Largest config or manifest read into memory.
pub const MAX_DOCUMENT: u64 = 16 << 20;

/// Blobs under one directory, named by the hex of their sha256.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    /// Files that will hold a verified blob once complete (see [`BlobOffer`]), by the
    /// offering thread and the digest.
    offers: Mutex<HashMap<OfferKey, Vec<PathBuf>>>,
}

impl BlobStore {
    /// Opens (creating) `<dir>` and removes half-written blobs.
    pub fn open(dir: PathBuf) -> Result<Self, ImageError> {
        fs::create_dir_all(&dir)?;
        atomic::sweep_temp(&dir)?;
        Ok(Self {
            dir,
            offers: Mutex::new(HashMap::new()),
        })
    }

    /// Path of a blob (which may not exist); `None` for a malformed digest.
    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        sha256_hex(digest).map(|hex| self.dir.join(hex))
    }

    /// True when the blob is present.
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_some_and(|p| p.exists())
    }

    /// Reads a whole blob: configs and manifests, at most [`MAX_DOCUMENT`] bytes (layers are
    /// streamed from [`Self::path`]).
    pub fn read(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self
            .path(digest)
            .ok_or_else(|| ImageError::InvalidArchive(format!("malformed digest {digest}")))?;
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len > MAX_DOCUMENT {
            return Err(ImageError::InvalidArchive(format!(
                "blob {digest} is too large for a JSON document ({len} bytes)"
            )));
        }
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(MAX_DOCUMENT).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Stores bytes; returns their digest.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest, ImageError> {
        let (digest, _) = self.put(&mut &data[..], None)?;
        Ok(digest)
    }

    /// Streams `reader` into the store. When `expected` is given, a different digest is
    /// refused and nothing is stored. Returns the digest and size.
    pub fn put(
        &self,
        reader: &mut dyn Read,
        expected: Option<&str>,
    ) -> Result<(Digest, u64), ImageError> {
        let mut writer = self.writer()?;
        io::copy(reader, &mut writer)?;
        writer.commit(expected)
    }

    /// A writer for a blob whose digest becomes known at the end (see [`BlobWriter::commit`]).
    pub fn writer(&self) -> Result<BlobWriter, ImageError> {
        let tmp = temp_path(&self.dir);
        let file = File::create(&tmp)?;
        Ok(BlobWriter {
            dir: self.dir.clone(),
            tmp,
            inner: Some(HashingWriter::new(file)),
            committed: false,
        })
    }

    fn lock_offers(&self) -> MutexGuard<'_, HashMap<OfferKey, Vec<PathBuf>>> {
        self.offers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Announces, for ingests on the calling thread until the guard is dropped, that `path`
    /// (on the store's filesystem) holds the bytes of blob `digest`, verified by the caller,
    /// once the stream the caller gives for that blob ends (see
    /// [`crate::ImageStore::offer_blob`]).
    pub fn offer(&self, digest: &str, path: &Path) -> BlobOffer<'_> {
        let key = (std::thread::current().id(), digest.to_string());
        self.lock_offers()
            .entry(key.clone())
            .or_default()
            .push(path.to_path_buf());
        BlobOffer {
            blobs: self,
            key,
            path: path.to_path_buf(),
            _thread: std::marker::PhantomData,
        }
    }

    /// A file the calling thread offered for `digest`, if any.
    pub fn offered(&self, digest: &str) -> Option<PathBuf> {
        let key = (std::thread::current().id(), digest.to_string());
        self.lock_offers()
            .get(&key)
            .and_then(|paths| paths.first().cloned())
    }

    /// Makes the file at `path`, whose content the caller verified to be `digest`, that
    /// blob: a hard link (a copy across filesystems), not synced (see
    /// [`BlobWriter::commit_unsynced`]). An existing blob is kept.
    pub fn adopt(&self, path: &Path, digest: &str) -> Result<(), ImageError> {
        let Some(dest) = self.path(digest) else {
            return Err(ImageError::InvalidArchive(format!(
                "malformed digest {digest}"
            )));
        };
        if dest.exists() {
            return Ok(());
        }
        let tmp = temp_path(&self.dir);
        let result = (|| {
            match fs::hard_link(path, &tmp) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EXDEV as i32) => {
                    fs::copy(path, &tmp)?;
                }
                Err(e) => return Err(e),
            }
            fs::rename(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        Ok(result?)
    }

    /// Removes a blob; missing is fine.
    pub fn remove(&self, digest: &str) -> Result<(), ImageError> {
        if let Some(path) = self.path(digest) {
            atomic::remove_any(&path)?;
        }
        Ok(())
    }

    /// Digests of every stored blob.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if crate::digest::is_sha256_hex(&name) {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }

    /// Directory holding the blobs.
    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// An offer's scope: the offering thread and the blob's digest.
type OfferKey = (std::thread::ThreadId, Digest);

/// A file announced by [`crate::ImageStore::offer_blob`] for the offering thread's ingests; dropping the
/// guard withdraws it. Not `Send`: an offer belongs to the thread that made it.
#[derive(Debug)]
pub struct BlobOffer<'a> {
    blobs: &'a BlobStore,
    key: OfferKey,
    path: PathBuf,
    _thread: std::marker::PhantomData<*const ()>,
}

impl Drop for BlobOffer<'_> {
    fn drop(&mut self) {
        let mut offers = self.blobs.lock_offers();
        if let Some(paths) = offers.get_mut(&self.key) {
            paths.retain(|p| p != &self.path);
            if paths.is_empty() {
                offers.remove(&self.key);
            }
        }
    }
}

/// A blob being written; dropped without [`BlobWriter::commit`] it leaves nothing behind.
pub struct BlobWriter {
    dir: PathBuf,
    tmp: PathBuf,
    inner: Option<HashingWriter<File>>,
    committed: bool,
}

impl BlobWriter {
    /// Verifies the digest against `expected` (if any), fsyncs and renames the blob into
    /// place. An existing blob with the same digest is kept.
    pub fn commit(self, expected: Option<&str>) -> Result<(Digest, u64), ImageError> {
        self.finish(expected, true)
    }

    /// Like [`Self::commit`] without the fsyncs, for a blob written as part of something
    /// the store syncs as a whole later (a layer, before an image names it).
    pub fn commit_unsynced(self, expected: Option<&str>) -> Result<(Digest, u64), ImageError> {
        self.finish(expected, false)
    }

    fn finish(mut self, expected: Option<&str>, sync: bool) -> Result<(Digest, u64), ImageError> {
        let inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("blob writer already finished"))?;
        let (digest, len, file) = inner.finish();
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(ImageError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest,
            });
        }
        if sync {
            file.sync_all()?;
        }
        drop(file);
        let hex = sha256_hex(&digest).unwrap_or_default().to_string();
        let dest = self.dir.join(hex);
        if !sync && dest.exists() {
            // Keep the copy that is already durable; Drop removes the unsynced one.
            return Ok((digest, len));
        }
        fs::rename(&self.tmp, dest)?;
        self.committed = true;
        if sync {
            atomic::sync_dir(&self.dir)?;
        }
        Ok((digest, len))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("blob writer already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;

    #[test]
    fn put_verifies_digest_and_leaves_nothing_on_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path().join("blobs")).expect("open");
        let good = sha256_digest(b"data");
        let (d, n) = store.put(&mut &b"data"[..], Some(&good)).expect("put");
        assert_eq!((d.as_str(), n), (good.as_str(), 4));
        assert_eq!(store.read(&good).expect("read"), b"data");
        let err = store
            .put(&mut &b"other"[..], Some(&good))
            .expect_err("mismatch");
        assert!(matches!(err, ImageError::DigestMismatch { .. }));
        assert_eq!(store.list().expect("list"), vec![good]);
        assert_eq!(fs::read_dir(store.dir()).expect("dir").count(), 1);
    }
}
