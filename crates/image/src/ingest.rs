//! Adding images whose parts come from elsewhere (a registry pull, an archive): layers are
//! extracted only when missing, each verified against the config's diff ids; and reading
//! layers back out (a registry push).

use std::fs::File;
use std::io::Read;

use crate::digest::chain_ids;
use crate::reference::Reference;
use crate::state::{reference_error, tag_reference};
use crate::{Digest, ImageConfig, ImageError, ImageStore};

/// Opens the blob of layer `i` (plain or gzip tar).
pub type LayerOpener<'a> = dyn FnMut(usize) -> Result<Box<dyn Read + 'a>, ImageError> + 'a;

fn parse_config(config: &[u8]) -> Result<ImageConfig, ImageError> {
    serde_json::from_slice(config)
        .map_err(|e| ImageError::InvalidArchive(format!("invalid image config: {e}")))
}

impl ImageStore {
    /// Indexes (base first) of the config's layers not in the store yet: what a puller must
    /// download.
    pub fn missing_layers(&self, config: &[u8]) -> Result<Vec<usize>, ImageError> {
        let config = parse_config(config)?;
        let st = self.read_state();
        Ok(chain_ids(&config.rootfs.diff_ids)
            .iter()
            .enumerate()
            .filter(|(_, c)| !st.layers.contains_key(*c))
            .map(|(i, _)| i)
            .collect())
    }

    /// Adds an image from its config bytes (kept byte for byte, so the id is the registry's)
    /// and its layers: `open(i)` is called only for missing layers. `reference` is tagged
    /// and `repo_digest` (`name@sha256:<manifest>`) recorded when given.
    pub fn add_image(
        &self,
        config: &[u8],
        open: &mut LayerOpener<'_>,
        reference: Option<&str>,
        repo_digest: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let reference = reference.map(tag_reference).transpose()?;
        let digests = repo_digest
            .map(|d| {
                let r = Reference::parse(d).map_err(reference_error)?;
                match &r.digest {
                    Some(digest) => Ok(format!("{}@{digest}", r.name())),
                    None => Err(ImageError::InvalidReference(format!("{d} has no digest"))),
                }
            })
            .transpose()?;
        let parsed = parse_config(config)?;
        let _pins = self.pin(&chain_ids(&parsed.rootfs.diff_ids));
        self.ensure_layers(&parsed.rootfs.diff_ids, open, false)?;
        let _ops = self.lock_ops();
        let refs: Vec<String> = reference.iter().map(|r| r.to_string()).collect();
        let id = self.register_image(config, None, digests.into_iter().collect(), &refs)?;
        let _ = self.collect_garbage()?;
        Ok(id)
    }

    /// Adds an image made on top of `parent` (a build step): like [`Self::add_image`] without
    /// a reference, recording `parent` as Docker's `Parent`, which hides it from image lists
    /// while it has children and no tag.
    pub fn add_child_image(
        &self,
        config: &[u8],
        open: &mut LayerOpener<'_>,
        parent: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let parsed = parse_config(config)?;
        let _pins = self.pin(&chain_ids(&parsed.rootfs.diff_ids));
        self.ensure_layers(&parsed.rootfs.diff_ids, open, false)?;
        let _ops = self.lock_ops();
        let parent = match parent {
            Some(p) => Some(self.read_state().lookup(p)?),
            None => None,
        };
        let id = self.register_image(config, parent, Vec::new(), &[])?;
        let _ = self.collect_garbage()?;
        Ok(id)
    }

    /// Extracts one layer tar on top of the layer chain `parent` (a chain id; `None`: a base
    /// layer) and returns its diff id, for a caller that learns the digest by writing the
    /// layer (a build step) instead of writing it twice. Until an image names the layer,
    /// garbage collection may take it again; [`Self::add_child_image`] then asks for it.
    pub fn add_layer(
        &self,
        reader: &mut dyn Read,
        parent: Option<&Digest>,
    ) -> Result<Digest, ImageError> {
        let extracted = self.layers.extract(&self.blobs, reader, parent, None)?;
        let _ops = self.lock_ops();
        let rec = self.layers.commit(extracted)?;
        let diff_id = rec.diff_id.clone();
        self.write_state().layers.insert(rec.chain_id.clone(), rec);
        Ok(diff_id)
    }

    /// Extracts every missing layer of `diff_ids`, verifying each. With `locked` the caller
    /// holds the ops lock; without, the caller pinned the layers ([`Self::pin`]) and each
    /// layer is extracted without the lock (a pull's download may take minutes), which is
    /// taken only to put it in place.
    pub(crate) fn ensure_layers(
        &self,
        diff_ids: &[Digest],
        open: &mut LayerOpener<'_>,
        locked: bool,
    ) -> Result<(), ImageError> {
        let chain = chain_ids(diff_ids);
        for (i, chain_id) in chain.iter().enumerate() {
            if self.read_state().layers.contains_key(chain_id) {
                continue;
            }
            let mut reader = open(i)?;
            let parent = i.checked_sub(1).map(|p| &chain[p]);
            let extracted =
                self.layers
                    .extract(&self.blobs, &mut reader, parent, Some(&diff_ids[i]))?;
            let _ops = (!locked).then(|| self.lock_ops());
            let rec = self.layers.commit(extracted)?;
            self.write_state().layers.insert(rec.chain_id.clone(), rec);
        }
        Ok(())
    }

    /// Keeps the layers `chains` from garbage collection until the guard is dropped, for an
    /// ingest that adds them (or relies on them) without holding the ops lock throughout.
    pub(crate) fn pin(&self, chains: &[Digest]) -> Pinned<'_> {
        let mut pins = self.lock_pins();
        for c in chains {
            *pins.entry(c.clone()).or_default() += 1;
        }
        Pinned {
            store: self,
            chains: chains.to_vec(),
        }
    }

    /// For a pull that downloads a layer into the file at `path` (under [`Self::root`])
    /// while the store unpacks it: announces that the stream the caller's opener gives for
    /// blob `digest` reads that file and ends only once the caller verified the whole blob
    /// against `digest` (an error otherwise). When that blob is an uncompressed layer tar
    /// (its digest is the diff id), the store then takes the caller's verification as the
    /// diff id's instead of hashing the same bytes again, and keeps that file as the layer
    /// blob (a hard link) instead of writing its own copy. The offer covers ingests on the
    /// calling thread only and is withdrawn when the guard is dropped.
    pub fn offer_blob(&self, digest: &str, path: &std::path::Path) -> crate::BlobOffer<'_> {
        self.blobs.offer(digest, path)
    }

    /// The uncompressed tar of a stored layer, by diff id (what `save` writes and a push
    /// uploads).
    pub fn open_layer(&self, diff_id: &str) -> Result<File, ImageError> {
        let path = self
            .blobs
            .path(diff_id)
            .filter(|p| p.exists())
            .ok_or_else(|| ImageError::NotFound(format!("layer {diff_id}")))?;
        Ok(File::open(path)?)
    }
}

/// Layers pinned by [`ImageStore::pin`].
pub(crate) struct Pinned<'a> {
    store: &'a ImageStore,
    chains: Vec<Digest>,
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        let mut pins = self.store.lock_pins();
        for c in &self.chains {
            if let Some(n) = pins.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(c);
                }
            }
        }
    }
}
