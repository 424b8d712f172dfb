//! SQLite watch paths the shared suite does not reach: history replayed in several chunks,
//! and a watcher that falls behind the in-memory buffer and catches up from the table.

use std::sync::Arc;
use std::time::Duration;

use berth_store::sqlite::{SqliteConfig, SqliteStore};
use berth_store::{Event, Store};
use futures::StreamExt;

async fn revisions(stream: &mut berth_store::WatchStream, count: usize) -> Vec<i64> {
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
            Ok(Some(Ok(Event::Put { kv, .. } | Event::Delete { kv }))) => {
                seen.push(kv.mod_revision)
            }
            Ok(Some(Ok(Event::Progress { .. }))) => {}
            other => panic!("after {} events: {other:?}", seen.len()),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SqliteConfig {
        watch_buffer: 16,
        ..SqliteConfig::default()
    };
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_with(dir.path().join("store.db"), config)
            .await
            .expect("open"),
    );
    // 1,200 events of history: replayed in two read chunks.
    for i in 0..1200 {
        store
            .create(&format!("/lag/a{i:05}"), vec![1; 64])
            .await
            .expect("create");
    }
    let mut stream = store.watch("/lag/", 0).await.expect("watch");
    // Writes from 8 tasks while nobody reads the stream: the watch queue fills, the
    // 16-batch buffer overflows and the watcher must catch up from the events table.
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..250 {
                    let key = format!("/lag/b{t}/{i:04}");
                    store.create(&key, vec![2; 64]).await.expect("create");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let seen = revisions(&mut stream, 3200).await;
    let expected: Vec<i64> = (1..=3200).collect();
    assert_eq!(seen, expected, "every revision once, in order");
    let live = store.create("/lag/live", vec![3]).await.expect("create");
    assert_eq!(revisions(&mut stream, 1).await, vec![live]);
}
