//! The same behaviour suite against both backends: SQLite in a temp dir, and a real etcd
//! started by each test (skipped, saying why, when `/usr/bin/etcd` is missing).

#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/suite.rs"]
mod suite;

use std::sync::Arc;

use berth_store::Store;
use berth_store::etcd::EtcdStore;
use berth_store::sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

/// A store and what keeps it alive (its directory, its etcd server).
struct Fixture {
    store: Arc<dyn Store>,
    _etcd: Option<etcd_server::EtcdServer>,
    _dir: TempDir,
}

async fn sqlite() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SqliteConfig {
        progress_interval_ms: 500,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open_with(dir.path().join("store.db"), config)
        .await
        .expect("open sqlite store");
    Some(Fixture {
        store: Arc::new(store),
        _etcd: None,
        _dir: dir,
    })
}

async fn etcd() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = etcd_server::EtcdServer::start(&dir.path().join("etcd")).await?;
    // The server passes its `--etcd-endpoints` list as a Vec<String>.
    let endpoints: Vec<String> = vec![server.endpoint()];
    let store = EtcdStore::connect(&endpoints)
        .await
        .expect("connect to etcd");
    Some(Fixture {
        store: Arc::new(store),
        _etcd: Some(server),
        _dir: dir,
    })
}

macro_rules! suite_for {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(fixture) = super::$backend().await else { return };
                    super::suite::$test(fixture.store.clone()).await;
                }
            )*
        }
    };
}

macro_rules! suite {
    ($($backend:ident),*) => {
        $(
            suite_for!($backend:
                writes_get_increasing_revisions,
                conflicts_and_missing_keys_are_refused,
                guarded_creates_follow_their_guard,
                list_pages_at_one_revision,
                watch_replays_history_then_follows_live,
                watch_has_no_gap_or_duplicate_while_writes_continue,
                compacted_history_is_refused,
                concurrent_creates_are_all_acknowledged,
                racing_creates_get_their_own_answers,
                an_abandoned_create_holds_up_no_other,
                hundred_watchers_see_a_write,
                idle_watch_reports_progress,
                periodic_compaction_keeps_recent_history,
            );
        )*
    };
}

suite!(sqlite, etcd);

#[tokio::test]
async fn sqlite_refuses_a_second_writer_until_the_first_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let first = SqliteStore::open(&path).await.expect("open");
    let rev = first.create("/a", b"1".to_vec()).await.expect("create");
    match SqliteStore::open(&path).await {
        Err(berth_store::StoreError::Backend(message)) => {
            assert!(message.contains("in use"), "{message}");
        }
        other => panic!("expected the second open to fail, got {other:?}"),
    }
    drop(first);
    let second = SqliteStore::open(&path).await.expect("reopen after close");
    assert_eq!(second.revision().await.expect("revision"), rev);
}
