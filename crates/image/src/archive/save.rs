//! `docker save`: a docker-archive that is also an OCI image layout.

use std::io::Write;

use crate::{ImageError, ImageStore};

impl ImageStore {
    /// Writes a docker-archive tar (with `manifest.json`, `repositories`, and also an OCI
    /// layout `index.json`/`oci-layout` as Docker 25+ does) of the named images.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ImageError> {
        let _ = (names, out);
        Err(ImageError::InvalidArchive("not implemented".into()))
    }
}
