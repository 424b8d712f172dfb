//! The build cache: `(parent image, step key)` → the image the step produced. One small file
//! per entry under `<build root>/cache`, written atomically; an entry whose image is gone is
//! a miss.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Opens (creating) the cache under `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, parent: Option<&str>, key: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(parent.unwrap_or("scratch").as_bytes());
        h.update(b"\n");
        h.update(key.as_bytes());
        self.dir.join(hex::encode(h.finalize()))
    }

    /// The image recorded for this step, if any.
    pub fn get(&self, parent: Option<&str>, key: &str) -> Option<String> {
        let id = fs::read_to_string(self.path(parent, key)).ok()?;
        let id = id.trim();
        (id.starts_with("sha256:") && id.len() == 71).then(|| id.to_string())
    }

    /// Records the image a step produced (temp file, fsync, rename).
    pub fn put(&self, parent: Option<&str>, key: &str, image: &str) -> std::io::Result<()> {
        let path = self.path(parent, key);
        let tmp = path.with_extension(format!("tmp-{}", rand::random::<u64>()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(image.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        Ok(())
    }
}
