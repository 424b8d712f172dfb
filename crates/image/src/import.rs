//! `docker import`: a rootfs tar (plain or gzip) becomes a one-layer image with a history
//! entry saying where it came from.

use std::io::Read;

use crate::archive::host_architecture;
use crate::state::tag_reference;
use crate::{ContainerDefaults, Digest, History, ImageConfig, ImageError, ImageStore, RootFs};

/// Docker's history comment for an import from stdin.
const DEFAULT_COMMENT: &str = "Imported from -";

impl ImageStore {
    /// Creates a one-layer image from a rootfs tar (`docker import`), with config changes
    /// already applied by the caller in `defaults`.
    pub fn import(
        &self,
        tar: &mut dyn Read,
        reference: Option<&str>,
        defaults: ContainerDefaults,
        message: Option<&str>,
    ) -> Result<Digest, ImageError> {
        let reference = reference.map(tag_reference).transpose()?;
        let _ops = self.lock_ops();
        let layer = self.layers.create(&self.blobs, tar, None, None)?;
        self.write_state()
            .layers
            .insert(layer.chain_id.clone(), layer.clone());
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let config = ImageConfig {
            architecture: host_architecture().to_string(),
            os: "linux".into(),
            created: Some(now.clone()),
            config: Some(defaults),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                comment: Some(message.unwrap_or(DEFAULT_COMMENT).to_string()),
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        let bytes = serde_json::to_vec(&config).map_err(std::io::Error::other)?;
        let refs: Vec<String> = reference.iter().map(|r| r.to_string()).collect();
        self.register_image(&bytes, None, Vec::new(), &refs)
    }
}
