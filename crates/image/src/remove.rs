//! `docker rmi` and `docker image prune` with Docker's semantics and messages.

use crate::{Digest, ImageError, ImageStore, Removed};

impl ImageStore {
    /// `docker rmi`: `in_use(image_id)` returns the id of a container using the image, if any.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Removed>, ImageError> {
        let _ = (force, in_use);
        Err(ImageError::NotFound(name.into()))
    }

    /// Removes images (only dangling ones unless `all`) that no container uses; returns what
    /// was removed and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Vec<Removed>, u64), ImageError> {
        let _ = (all, in_use);
        let _: Option<Digest> = None;
        Ok((Vec::new(), 0))
    }
}
