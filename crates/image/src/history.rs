//! `docker image history`: one row per history entry, newest first, with the layer size of
//! entries that made a layer; rows belonging to an image (or a parent image) present in the
//! store carry its id and tags, the others `<missing>` as Docker shows them.

use crate::reference::familiar;
use crate::{Digest, ImageError, ImageStore};

/// Docker's id for history rows whose image is not in the store.
pub const MISSING: &str = "<missing>";

/// One row of `docker image history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// Image id of the row's layer, or `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The command that created the layer.
    pub created_by: String,
    /// Tags (familiar form) of the image with this id.
    pub tags: Vec<String>,
    /// Bytes the entry added.
    pub size: u64,
    /// Comment of the entry.
    pub comment: String,
}

fn unix_seconds(created: Option<&str>) -> i64 {
    created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or(0, |t| t.timestamp())
}

impl ImageStore {
    /// `docker image history` of an image, newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ImageError> {
        let st = self.read_state();
        let id = st.lookup(name)?;
        let image = st
            .images
            .get(&id)
            .ok_or_else(|| ImageError::NotFound(name.into()))?;
        let layer_sizes: Vec<u64> = image
            .chain
            .iter()
            .map(|c| st.layers.get(c).map_or(0, |l| l.size))
            .collect();
        // Row index (in history order) → image id, for this image and its local parents.
        let mut owners: Vec<(usize, Digest)> = Vec::new();
        let mut current = Some(id.clone());
        let mut depth = 0;
        while let Some(cur) = current.take() {
            let Some(rec) = st.images.get(&cur) else {
                break;
            };
            let rows = if rec.config.history.is_empty() {
                rec.chain.len()
            } else {
                rec.config.history.len()
            };
            if rows > 0 {
                owners.push((rows - 1, cur.clone()));
            }
            depth += 1;
            if depth > 128 {
                break;
            }
            current = rec.meta.parent.clone();
        }
        let owner_of = |row: usize| {
            owners
                .iter()
                .find(|(r, _)| *r == row)
                .map(|(_, id)| id.clone())
        };
        let mut rows = Vec::new();
        if image.config.history.is_empty() {
            for (i, size) in layer_sizes.iter().enumerate() {
                rows.push((i, None, String::new(), String::new(), *size));
            }
        } else {
            let mut layer = 0;
            for (i, h) in image.config.history.iter().enumerate() {
                let size = if h.empty_layer {
                    0
                } else {
                    let s = layer_sizes.get(layer).copied().unwrap_or(0);
                    layer += 1;
                    s
                };
                rows.push((
                    i,
                    h.created.clone(),
                    h.created_by.clone().unwrap_or_default(),
                    h.comment.clone().unwrap_or_default(),
                    size,
                ));
            }
        }
        let image_created = image.config.created.clone();
        let mut out: Vec<HistoryItem> = rows
            .into_iter()
            .map(|(i, created, created_by, comment, size)| {
                let owner = owner_of(i);
                HistoryItem {
                    tags: owner
                        .as_deref()
                        .map(|o| st.tags_of(o).iter().map(|t| familiar(t)).collect())
                        .unwrap_or_default(),
                    id: owner.unwrap_or_else(|| MISSING.to_string()),
                    created: unix_seconds(created.as_deref().or(image_created.as_deref())),
                    created_by,
                    size,
                    comment,
                }
            })
            .collect();
        out.reverse();
        Ok(out)
    }
}
