//! Watches of the etcd backend: an etcd watch stream turned into [`Event`]s, with the
//! previous values etcd attaches (`prev_kv`), compaction mapped to
//! [`StoreError::Compacted`] and empty progress notifications to [`Event::Progress`].

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions, WatchResponse};
use tracing::debug;

use super::{key_value, request_error};
use crate::{Event, KeyValue, StoreError, WatchStream};

/// An etcd watch and the events of its last response not yet handed out.
struct Watch {
    stream: etcd_client::WatchStream,
    pending: VecDeque<Result<Event, StoreError>>,
    /// Every event at or below this revision has been handed out.
    covered: i64,
    done: bool,
}

/// Starts an etcd watch of `[start, end)` for events after `from`.
pub(super) async fn start(
    client: &Client,
    start: Vec<u8>,
    end: Vec<u8>,
    from: i64,
) -> Result<WatchStream, StoreError> {
    let options = WatchOptions::new()
        .with_range(end)
        .with_start_revision(from + 1)
        .with_prev_key()
        .with_progress_notify();
    let stream = client
        .watch_client()
        .max_decoding_message_size(super::MAX_RESPONSE_BYTES)
        .watch(start, Some(options))
        .await
        .map_err(request_error)?;
    let watch = Watch {
        stream,
        pending: VecDeque::new(),
        covered: from,
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(watch, next)))
}

async fn next(mut watch: Watch) -> Option<(Result<Event, StoreError>, Watch)> {
    loop {
        if let Some(item) = watch.pending.pop_front() {
            return Some((item, watch));
        }
        if watch.done {
            return None;
        }
        match watch.stream.message().await {
            Ok(Some(resp)) => watch.absorb(resp),
            Ok(None) => return None,
            Err(err) => {
                watch.done = true;
                return Some((Err(request_error(err)), watch));
            }
        }
    }
}

impl Watch {
    fn absorb(&mut self, resp: WatchResponse) {
        if resp.canceled() {
            self.done = true;
            let err = if resp.compact_revision() > 0 {
                StoreError::Compacted {
                    requested: self.covered,
                    compacted: resp.compact_revision(),
                }
            } else {
                StoreError::Backend(format!(
                    "etcd cancelled the watch: {}",
                    resp.cancel_reason()
                ))
            };
            debug!(covered = self.covered, error = %err, "etcd watch ended");
            self.pending.push_back(Err(err));
            return;
        }
        if resp.events().is_empty() {
            if !resp.created()
                && let Some(header) = resp.header()
            {
                self.covered = self.covered.max(header.revision());
                self.pending.push_back(Ok(Event::Progress {
                    revision: header.revision(),
                }));
            }
            return;
        }
        for event in resp.events() {
            let converted = convert(event);
            if let Some(kv) = converted.as_ref().ok().and_then(Event::kv) {
                self.covered = kv.mod_revision;
            }
            self.pending.push_back(converted);
        }
    }
}

fn convert(event: &etcd_client::Event) -> Result<Event, StoreError> {
    let kv = event
        .kv()
        .ok_or_else(|| StoreError::Backend("etcd watch event without a key".into()))?;
    let prev = event.prev_kv().map(key_value).transpose()?;
    match event.event_type() {
        EventType::Put => Ok(Event::Put {
            kv: key_value(kv)?,
            prev,
        }),
        EventType::Delete => {
            // etcd's delete carries only the key and the deletion's revision; the last value
            // and its create_revision come from prev_kv.
            let deleted = key_value(kv)?;
            let kv = match prev {
                Some(last) => KeyValue {
                    mod_revision: deleted.mod_revision,
                    ..last
                },
                None => deleted,
            };
            Ok(Event::Delete { kv })
        }
    }
}

/// The compaction point, from a watch at revision 1 that etcd cancels with it.
pub(super) async fn compact_revision(client: &Client, fallback: i64) -> i64 {
    let options = WatchOptions::new().with_start_revision(1);
    let Ok(mut stream) = client.watch_client().watch([0u8], Some(options)).await else {
        return fallback;
    };
    let probe = async {
        while let Ok(Some(resp)) = stream.message().await {
            if resp.compact_revision() > 0 {
                return Some(resp.compact_revision());
            }
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(1), probe).await {
        Ok(Some(revision)) => revision,
        _ => fallback,
    }
}
