//! What changed in a container: `docker diff` (walk of the upper directory, whiteouts as
//! deletions), `docker export` (tar of the merged tree) and `docker commit` (tar of the
//! upper directory as a new layer).

use std::io::Write;

use crate::{Change, ContainerDefaults, Digest, ImageError, ImageStore};

impl ImageStore {
    /// Changes of a container's filesystem (`docker diff`).
    pub fn diff(&self, container_id: &str) -> Result<Vec<Change>, ImageError> {
        Err(ImageError::NotFound(container_id.into()))
    }

    /// Tar of a container's whole filesystem (`docker export`).
    pub fn export(&self, container_id: &str, out: &mut dyn Write) -> Result<(), ImageError> {
        let _ = out;
        Err(ImageError::NotFound(container_id.into()))
    }

    /// New image from a container's changes on top of its image (`docker commit`).
    pub fn commit(
        &self,
        container_id: &str,
        image_id: &str,
        defaults: ContainerDefaults,
        author: Option<&str>,
        message: Option<&str>,
        reference: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let _ = (container_id, defaults, author, message, reference);
        Err(ImageError::NotFound(image_id.into()))
    }
}
