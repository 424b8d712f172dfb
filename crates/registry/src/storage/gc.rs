//! Mark and sweep: every manifest revision of every repository marks itself and what it
//! references; blobs left unmarked are deleted, with stale upload files. Run it while the
//! server is stopped, as the reference registry requires, or a blob uploaded between mark
//! and sweep could go.

use std::collections::HashSet;
use std::fs;

use super::{Storage, StorageError, io_err, list_dir};
use crate::manifest::Manifest;
use crate::name::Digest;

/// What a collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs kept.
    pub kept: usize,
    /// Blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed.
    pub freed_bytes: u64,
}

impl Storage {
    /// Removes every blob no manifest references, and abandoned uploads.
    pub fn collect_garbage(&self) -> Result<GcReport, StorageError> {
        let mut marked = HashSet::new();
        for repo in self.repositories() {
            let revisions = self.repo(&repo).join("_manifests/revisions");
            for hex in list_dir(&revisions) {
                let Some(digest) = Digest::parse(&format!("sha256:{hex}")) else {
                    continue;
                };
                let Some(stored) = self.manifest(&repo, &digest) else {
                    continue;
                };
                let m = Manifest::parse(&stored.bytes, Some(&stored.media_type))
                    .map_err(|_| StorageError::Corrupt(digest.to_string()))?;
                marked.extend(m.references());
                marked.insert(digest);
            }
        }
        let mut report = GcReport::default();
        let blobs = self.root.join("blobs/sha256");
        for hex in list_dir(&blobs) {
            let digest = Digest::parse(&format!("sha256:{hex}"));
            if digest.as_ref().is_some_and(|d| marked.contains(d)) {
                report.kept += 1;
                continue;
            }
            let path = blobs.join(&hex);
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path).map_err(io_err(&path))?;
            tracing::debug!(blob = %hex, len, "gc removed blob");
            report.freed_bytes += len;
            report.removed.extend(digest);
        }
        let uploads = self.root.join("uploads");
        for id in list_dir(&uploads) {
            let path = uploads.join(id);
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(report)
    }
}
