//! The registry's files under its root: content-addressed blobs (`blobs/sha256/<hex>`),
//! upload temp files (`uploads/<id>`), and per repository (`repos/<name>/`) the blobs it may
//! serve (`_layers/<hex>`), its manifest revisions (`_manifests/revisions/<hex>`, holding
//! the media type) and tags (`_manifests/tags/<tag>`, holding the digest). Internal
//! directories start with `_`, which no repository component may, so names cannot collide.
//!
//! Every visible file appears by `rename` after an `fsync`, so a process killed at any
//! point leaves either the old state or the new one, never a partial blob.

mod gc;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use gc::GcReport;

use crate::name::Digest;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file system call failed.
    #[error("storage i/o on {path}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A stored manifest could not be parsed during garbage collection.
    #[error("stored manifest {0} is corrupt")]
    Corrupt(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// Its media type, as uploaded.
    pub media_type: String,
    /// Its bytes, as uploaded.
    pub bytes: Vec<u8>,
}

/// The registry's storage root.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// Opens (creating) storage under `root`.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        for sub in ["blobs/sha256", "uploads", "repos"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repos").join(name)
    }

    /// Where the blob `digest` lives once committed.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Where upload `id` accumulates.
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Whether the repository has any manifest or blob.
    pub fn repo_exists(&self, name: &str) -> bool {
        self.repo(name).is_dir()
    }

    /// Size of blob `digest` if it exists and is linked into `repo`.
    pub fn blob_size(&self, repo: &str, digest: &Digest) -> Option<u64> {
        let linked = self.repo(repo).join("_layers").join(digest.hex()).exists();
        let meta = fs::metadata(self.blob_path(digest)).ok()?;
        linked.then_some(meta.len())
    }

    /// Whether blob `digest` exists in any repository.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Makes an existing blob servable from `repo`.
    pub fn link_blob(&self, repo: &str, digest: &Digest) -> Result<(), StorageError> {
        let path = self.repo(repo).join("_layers").join(digest.hex());
        write_atomic(&path, b"")
    }

    /// Removes `repo`'s link to a blob; `false` if there was none.
    pub fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool, StorageError> {
        remove_if_exists(&self.repo(repo).join("_layers").join(digest.hex()))
    }

    /// Moves a finished, verified upload file into place as blob `digest`.
    pub fn commit_blob(&self, upload: &Path, digest: &Digest) -> Result<(), StorageError> {
        File::open(upload)
            .and_then(|f| f.sync_all())
            .map_err(io_err(upload))?;
        let target = self.blob_path(digest);
        fs::rename(upload, &target).map_err(io_err(&target))?;
        sync_dir(target.parent().unwrap_or(&self.root))
    }

    /// Stores manifest bytes as a blob and a revision of `repo`, tagging it if `tag` is set.
    pub fn put_manifest(
        &self,
        repo: &str,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<Digest, StorageError> {
        let digest = Digest::of(bytes);
        let blob = self.blob_path(&digest);
        if !blob.exists() {
            write_atomic(&blob, bytes)?;
        }
        let manifests = self.repo(repo).join("_manifests");
        write_atomic(
            &manifests.join("revisions").join(digest.hex()),
            media_type.as_bytes(),
        )?;
        if let Some(tag) = tag {
            write_atomic(
                &manifests.join("tags").join(tag),
                digest.as_str().as_bytes(),
            )?;
        }
        Ok(digest)
    }

    /// Resolves a tag of `repo` to its digest.
    pub fn tag_digest(&self, repo: &str, tag: &str) -> Option<Digest> {
        let path = self.repo(repo).join("_manifests/tags").join(tag);
        Digest::parse(fs::read_to_string(path).ok()?.trim())
    }

    /// Whether `repo` has the manifest revision `digest`.
    pub fn has_manifest(&self, repo: &str, digest: &Digest) -> bool {
        self.repo(repo)
            .join("_manifests/revisions")
            .join(digest.hex())
            .is_file()
    }

    /// Reads manifest `digest` of `repo`.
    pub fn manifest(&self, repo: &str, digest: &Digest) -> Option<StoredManifest> {
        let link = self
            .repo(repo)
            .join("_manifests/revisions")
            .join(digest.hex());
        let media_type = fs::read_to_string(link).ok()?;
        let bytes = fs::read(self.blob_path(digest)).ok()?;
        Some(StoredManifest {
            digest: digest.clone(),
            media_type,
            bytes,
        })
    }

    /// Deletes revision `digest` of `repo` and every tag pointing at it.
    pub fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool, StorageError> {
        let manifests = self.repo(repo).join("_manifests");
        for tag in self.tags(repo).unwrap_or_default() {
            if self.tag_digest(repo, &tag).as_ref() == Some(digest) {
                remove_if_exists(&manifests.join("tags").join(&tag))?;
            }
        }
        remove_if_exists(&manifests.join("revisions").join(digest.hex()))
    }

    /// Deletes a tag (not the manifest it points to).
    pub fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool, StorageError> {
        remove_if_exists(&self.repo(repo).join("_manifests/tags").join(tag))
    }

    /// Tags of `repo`, sorted; `None` if the repository does not exist.
    pub fn tags(&self, repo: &str) -> Option<Vec<String>> {
        if !self.repo_exists(repo) {
            return None;
        }
        let mut tags = list_dir(&self.repo(repo).join("_manifests/tags"));
        tags.sort();
        Some(tags)
    }

    /// Every repository name, sorted.
    pub fn repositories(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk_repos(&self.root.join("repos"), "", &mut out);
        out.sort();
        out
    }
}

fn walk_repos(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for name in list_dir(dir) {
        if name.starts_with('_') {
            continue;
        }
        let path = dir.join(&name);
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if path.join("_manifests").is_dir() || path.join("_layers").is_dir() {
            out.push(full.clone());
        }
        walk_repos(&path, &full, out);
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn remove_if_exists(path: &Path) -> Result<bool, StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes `bytes` to `path` through a synced temp file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
