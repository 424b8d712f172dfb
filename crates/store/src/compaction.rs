//! Periodic compaction of store history, for the server to run beside its store.
//!
//! Like kube-apiserver's compactor, each tick compacts at the revision seen at the previous
//! tick, so at least one interval of history stays available to watches that resume, and
//! at least `retain_revisions` revisions are always kept.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{Store, StoreError};

/// When and how much history to forget.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionPolicy {
    /// Time between compactions, and the least history kept (seconds).
    pub interval_secs: u64,
    /// Revisions always kept below the latest (count).
    pub retain_revisions: i64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            interval_secs: 300,
            retain_revisions: 1000,
        }
    }
}

impl CompactionPolicy {
    /// The revision to compact at, given the latest revision now and at the previous tick.
    pub fn target(&self, latest: i64, previous_tick: i64) -> i64 {
        previous_tick.min(latest - self.retain_revisions).max(0)
    }
}

/// Compacts `store` every `policy.interval_secs` until `cancel` fires.
pub async fn run_compactor(
    store: Arc<dyn Store>,
    policy: CompactionPolicy,
    cancel: CancellationToken,
) {
    let interval = Duration::from_secs(policy.interval_secs.max(1));
    let mut previous = 0;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match compact_once(store.as_ref(), &policy, previous).await {
            Ok(latest) => previous = latest,
            Err(err) => warn!(error = %err, "store compaction failed"),
        }
    }
}

/// One compaction step: compacts at the policy's target and returns the latest revision,
/// to pass as `previous_tick` next time.
pub async fn compact_once(
    store: &dyn Store,
    policy: &CompactionPolicy,
    previous_tick: i64,
) -> Result<i64, StoreError> {
    let latest = store.revision().await?;
    let target = policy.target(latest, previous_tick);
    if target > 0 {
        store.compact(target).await?;
        debug!(target, latest, "compacted store history");
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keeps_one_interval_and_retained_revisions() {
        let policy = CompactionPolicy {
            interval_secs: 1,
            retain_revisions: 100,
        };
        assert_eq!(policy.target(1000, 0), 0);
        assert_eq!(policy.target(1000, 500), 500);
        assert_eq!(policy.target(1000, 950), 900);
        assert_eq!(policy.target(50, 40), 0);
    }
}
