//! `docker rmi` and `docker image prune` with Docker's semantics and messages: removing a
//! reference only untags while others remain; the last reference, or an id, deletes the
//! image unless a container uses it (then Docker's conflict texts, unless forced); layers and
//! blobs no image or snapshot needs are collected afterwards.

use crate::digest::{sha256_hex, short_id};
use crate::reference::{Reference, familiar};
use crate::{Digest, ImageError, ImageStore, Removed};

impl ImageStore {
    /// `docker rmi`: `in_use(image_id)` returns the id of a container using the image, if any.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Removed>, ImageError> {
        let _ops = self.lock_ops();
        let (id, by_ref, tags, has_children) = {
            let st = self.read_state();
            let id = st.lookup(name)?;
            let by_ref = Reference::parse(name)
                .ok()
                .filter(|r| r.digest.is_none())
                .map(|r| r.with_default_tag().to_string())
                .filter(|r| st.refs.get(r) == Some(&id));
            let has_children = st
                .images
                .values()
                .any(|r| r.meta.parent.as_deref() == Some(id.as_str()));
            let tags = st.tags_of(&id);
            (id, by_ref, tags, has_children)
        };
        let container = in_use(&id);
        let mut out = Vec::new();
        if let Some(reference) = by_ref {
            if tags.len() > 1 {
                self.untag(std::slice::from_ref(&reference))?;
                return Ok(vec![Removed::Untagged(familiar(&reference))]);
            }
            if let Some(c) = &container
                && !force
            {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    short_id(c),
                    short_id(&id)
                )));
            }
            self.untag(std::slice::from_ref(&reference))?;
            out.push(Removed::Untagged(familiar(&reference)));
            if container.is_some() || has_children {
                // The image stays (dangling) for its container or child images.
                return Ok(out);
            }
        } else {
            if tags.len() > 1 && !force {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    short_id(&id)
                )));
            }
            if has_children {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                    short_id(&id)
                )));
            }
            if let Some(c) = &container
                && !force
            {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    short_id(&id),
                    short_id(c)
                )));
            }
            self.untag(&tags)?;
            out.extend(tags.iter().map(|t| Removed::Untagged(familiar(t))));
        }
        let mut parent = self
            .read_state()
            .images
            .get(&id)
            .and_then(|r| r.meta.parent.clone());
        let (deleted, _) = self.delete_image(&id)?;
        out.extend(deleted);
        // As Docker: the untagged images it was built on go with it, up to the first one
        // that is tagged, used, or has other children.
        while let Some(p) = parent.take() {
            let next = {
                let st = self.read_state();
                let Some(rec) = st.images.get(&p) else { break };
                let removable = st.tags_of(&p).is_empty()
                    && !st
                        .images
                        .values()
                        .any(|r| r.meta.parent.as_deref() == Some(p.as_str()));
                if !removable || in_use(&p).is_some() {
                    break;
                }
                rec.meta.parent.clone()
            };
            let (deleted, _) = self.delete_image(&p)?;
            out.extend(deleted);
            parent = next;
        }
        Ok(out)
    }

    /// Removes images (only dangling ones unless `all`) that no container uses; returns what
    /// was removed and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Vec<Removed>, u64), ImageError> {
        let _ops = self.lock_ops();
        let mut out = Vec::new();
        let mut reclaimed = 0;
        // Children before parents: repeat until nothing more can go.
        loop {
            let candidates: Vec<(Digest, Vec<String>)> = {
                let st = self.read_state();
                st.images
                    .keys()
                    .filter(|id| {
                        !st.images
                            .values()
                            .any(|r| r.meta.parent.as_deref() == Some(id.as_str()))
                    })
                    .map(|id| (id.clone(), st.tags_of(id)))
                    .filter(|(_, tags)| all || tags.is_empty())
                    .collect()
            };
            let candidates: Vec<_> = candidates
                .into_iter()
                .filter(|(id, _)| in_use(id).is_none())
                .collect();
            if candidates.is_empty() {
                break;
            }
            for (id, tags) in candidates {
                self.untag(&tags)?;
                out.extend(tags.iter().map(|t| Removed::Untagged(familiar(t))));
                let (deleted, bytes) = self.delete_image(&id)?;
                out.extend(deleted);
                reclaimed += bytes;
            }
        }
        Ok((out, reclaimed))
    }

    /// Drops references (normalized) and persists the map. Caller holds the ops lock.
    fn untag(&self, refs: &[String]) -> Result<(), ImageError> {
        if refs.is_empty() {
            return Ok(());
        }
        let mut st = self.write_state();
        for r in refs {
            st.refs.remove(r);
        }
        st.persist_refs(&self.root)?;
        Ok(())
    }

    /// Deletes an image's metadata and collects unused layers; returns Docker's `Deleted`
    /// lines (image, then layers) and the bytes freed. Caller holds the ops lock.
    fn delete_image(&self, id: &str) -> Result<(Vec<Removed>, u64), ImageError> {
        let hex = sha256_hex(id).unwrap_or(id).to_string();
        crate::atomic::remove_any(
            &crate::state::images_dir(&self.root).join(format!("{hex}.json")),
        )?;
        self.write_state().images.remove(id);
        let layers = self.collect_garbage()?;
        let mut out = vec![Removed::Deleted(id.to_string())];
        let mut bytes = 0;
        for l in layers.iter().rev() {
            out.push(Removed::Deleted(l.chain_id.clone()));
            bytes += l.size;
        }
        tracing::info!(image = %id, layers = layers.len(), "image deleted");
        Ok((out, bytes))
    }
}
