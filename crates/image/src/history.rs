//! `docker image history`: one row per history entry, newest first.

/// One row of `docker image history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// Image id of the row's layer, or `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The command that created the layer.
    pub created_by: String,
    /// Tags of the image with this id.
    pub tags: Vec<String>,
    /// Bytes the entry added.
    pub size: u64,
    /// Comment of the entry.
    pub comment: String,
}
