//! The behaviour every backend must show, written once against `Arc<dyn Store>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::{Event, KeyValue, ListOptions, Store, StoreError, WatchStream};
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(10);

/// The next non-progress item of a watch, or `None` if the stream ends or stays quiet.
pub async fn next_change(
    stream: &mut WatchStream,
    within: Duration,
) -> Option<Result<Event, StoreError>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(Event::Progress { .. }))) => continue,
            Ok(item) => return item,
            Err(_) => return None,
        }
    }
}

async fn expect_change(stream: &mut WatchStream) -> Event {
    match next_change(stream, WAIT).await {
        Some(Ok(event)) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

fn changed_kv(event: &Event) -> &KeyValue {
    match event {
        Event::Put { kv, .. } | Event::Delete { kv } => kv,
        Event::Progress { .. } => panic!("progress is not a change"),
    }
}

pub async fn writes_get_increasing_revisions(store: Arc<dyn Store>) {
    let start = store.revision().await.expect("revision");
    let a = store.create("/r/a", b"1".to_vec()).await.expect("create a");
    let b = store.create("/r/b", b"2".to_vec()).await.expect("create b");
    assert!(a > start, "{a} > {start}");
    assert_eq!(b, a + 1);
    let got = store.get("/r/a").await.expect("get").expect("a exists");
    assert_eq!(
        got,
        KeyValue {
            key: "/r/a".into(),
            value: b"1".to_vec(),
            create_revision: a,
            mod_revision: a
        }
    );
    let c = store
        .update("/r/a", b"3".to_vec(), Some(a))
        .await
        .expect("update");
    assert_eq!(c, b + 1);
    let got = store.get("/r/a").await.expect("get").expect("a exists");
    assert_eq!(
        (got.value.as_slice(), got.create_revision, got.mod_revision),
        (&b"3"[..], a, c)
    );
    let d = store
        .update("/r/a", b"4".to_vec(), None)
        .await
        .expect("unconditional update");
    assert_eq!(d, c + 1);
    assert_eq!(store.revision().await.expect("revision"), d);
    assert_eq!(store.get("/r/missing").await.expect("get"), None);
}

pub async fn conflicts_and_missing_keys_are_refused(store: Arc<dyn Store>) {
    let rev = store.create("/c/a", b"v1".to_vec()).await.expect("create");
    match store.create("/c/a", b"again".to_vec()).await {
        Err(StoreError::AlreadyExists(key)) => assert_eq!(key, "/c/a"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let newer = store
        .update("/c/a", b"v2".to_vec(), Some(rev))
        .await
        .expect("update");
    match store.update("/c/a", b"stale".to_vec(), Some(rev)).await {
        Err(StoreError::Conflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!((key.as_str(), expected, actual), ("/c/a", rev, newer));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store.delete("/c/a", Some(rev)).await {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, newer),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        store.update("/c/none", b"x".to_vec(), None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update("/c/none", b"x".to_vec(), Some(3)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete("/c/none", None).await,
        Err(StoreError::NotFound(_))
    ));
    // Failed writes do not consume revisions.
    assert_eq!(store.revision().await.expect("revision"), newer);
    let (deleted, last) = store.delete("/c/a", Some(newer)).await.expect("delete");
    assert_eq!(deleted, newer + 1);
    assert_eq!(
        last,
        KeyValue {
            key: "/c/a".into(),
            value: b"v2".to_vec(),
            create_revision: rev,
            mod_revision: deleted
        }
    );
    assert_eq!(store.get("/c/a").await.expect("get"), None);
    let again = store
        .create("/c/a", b"v3".to_vec())
        .await
        .expect("recreate");
    let got = store.get("/c/a").await.expect("get").expect("exists");
    assert_eq!((got.create_revision, got.mod_revision), (again, again));
}

pub async fn guarded_creates_follow_their_guard(store: Arc<dyn Store>) {
    let ns = store
        .create("/g/ns", b"active".to_vec())
        .await
        .expect("guard");
    let rev = store
        .create_guarded("/g/objs/a", b"a".to_vec(), "/g/ns", ns)
        .await
        .expect("guarded create");
    assert!(rev > ns);
    match store
        .create_guarded("/g/objs/a", b"again".to_vec(), "/g/ns", ns)
        .await
    {
        Err(StoreError::AlreadyExists(key)) => assert_eq!(key, "/g/objs/a"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let moved = store
        .update("/g/ns", b"terminating".to_vec(), Some(ns))
        .await
        .expect("move the guard");
    match store
        .create_guarded("/g/objs/b", b"b".to_vec(), "/g/ns", ns)
        .await
    {
        Err(StoreError::Conflict {
            key,
            expected,
            actual,
        }) => assert_eq!((key.as_str(), expected, actual), ("/g/ns", ns, moved)),
        other => panic!("expected Conflict on the guard, got {other:?}"),
    }
    assert_eq!(store.get("/g/objs/b").await.expect("get"), None);
    match store
        .create_guarded("/g/objs/b", b"b".to_vec(), "/g/none", 1)
        .await
    {
        Err(StoreError::Conflict { key, actual, .. }) => {
            assert_eq!((key.as_str(), actual), ("/g/none", 0));
        }
        other => panic!("expected Conflict on the missing guard, got {other:?}"),
    }
    store
        .create_guarded("/g/objs/b", b"b".to_vec(), "/g/ns", moved)
        .await
        .expect("guard at its new revision");
}

fn key(i: usize) -> String {
    format!("/p/k{i:02}")
}

pub async fn list_pages_at_one_revision(store: Arc<dyn Store>) {
    store
        .create("/o", b"before".to_vec())
        .await
        .expect("create");
    for i in 0..25 {
        store
            .create(&key(i), format!("v{i}").into_bytes())
            .await
            .expect("create");
    }
    store
        .create("/p0", b"after the prefix".to_vec())
        .await
        .expect("create");
    store
        .create("/q/x", b"other".to_vec())
        .await
        .expect("create");
    let first = store
        .list(
            "/p/",
            &ListOptions {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("first page");
    assert_eq!(first.items.len(), 10);
    assert!(first.more);
    assert_eq!(first.items[0].key, key(0));
    let at = first.revision;
    assert_eq!(at, store.revision().await.expect("revision"));
    // Change the rest of the range after the first page was read.
    let k15 = store.get(&key(15)).await.expect("get").expect("k15");
    store
        .update(&key(15), b"changed".to_vec(), None)
        .await
        .expect("update");
    store.delete(&key(20), None).await.expect("delete");
    store
        .create(&key(12).replace("k12", "k125"), b"new".to_vec())
        .await
        .expect("create");
    store
        .update(&key(15), b"changed twice".to_vec(), None)
        .await
        .expect("update");
    let mut items = first.items.clone();
    let mut after = first.items.last().map(|kv| kv.key.clone());
    loop {
        let page = store
            .list(
                "/p/",
                &ListOptions {
                    limit: 10,
                    start_after: after.clone(),
                    revision: Some(at),
                },
            )
            .await
            .expect("next page");
        assert_eq!(page.revision, at);
        items.extend(page.items.iter().cloned());
        if !page.more {
            break;
        }
        after = page.items.last().map(|kv| kv.key.clone());
    }
    let keys: Vec<String> = items.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(
        keys,
        (0..25).map(key).collect::<Vec<_>>(),
        "the range as it was at {at}"
    );
    assert_eq!(items[15], k15, "k15 as it was at {at}");
    assert_eq!(items[20].value, b"v20");
    // The latest list sees the changes.
    let latest = store
        .list("/p/", &ListOptions::default())
        .await
        .expect("list");
    assert_eq!(latest.items.len(), 25);
    assert!(!latest.more);
    assert!(latest.items.iter().any(|kv| kv.key == "/p/k125"));
    assert!(latest.items.iter().all(|kv| kv.key != key(20)));
    assert_eq!(store.count("/p/").await.expect("count"), 25);
    // Revision 0 means the latest, as in etcd.
    let zero = ListOptions {
        revision: Some(0),
        ..Default::default()
    };
    let at_zero = store.list("/p/", &zero).await.expect("list at 0");
    assert_eq!(at_zero.items, latest.items);
    assert_eq!(at_zero.revision, latest.revision);
    assert_eq!(store.count("").await.expect("count all"), 28);
}

pub async fn watch_replays_history_then_follows_live(store: Arc<dyn Store>) {
    let from = store.revision().await.expect("revision");
    let created = store.create("/w/a", b"1".to_vec()).await.expect("create");
    store
        .create("/elsewhere", b"x".to_vec())
        .await
        .expect("create");
    let updated = store
        .update("/w/a", b"2".to_vec(), None)
        .await
        .expect("update");
    let (deleted, _) = store.delete("/w/a", None).await.expect("delete");
    let mut stream = store.watch("/w/", from).await.expect("watch");
    match expect_change(&mut stream).await {
        Event::Put { kv, prev: None } => {
            assert_eq!(
                (kv.key.as_str(), kv.mod_revision, kv.value.as_slice()),
                ("/w/a", created, &b"1"[..])
            );
        }
        other => panic!("expected the create, got {other:?}"),
    }
    match expect_change(&mut stream).await {
        Event::Put {
            kv,
            prev: Some(prev),
        } => {
            assert_eq!((kv.mod_revision, kv.value.as_slice()), (updated, &b"2"[..]));
            assert_eq!(
                (prev.mod_revision, prev.value.as_slice()),
                (created, &b"1"[..])
            );
        }
        other => panic!("expected the update, got {other:?}"),
    }
    match expect_change(&mut stream).await {
        Event::Delete { kv } => {
            assert_eq!(kv.mod_revision, deleted);
            assert_eq!(kv.value, b"2", "a delete carries the last value");
            assert_eq!(kv.create_revision, created);
        }
        other => panic!("expected the delete, got {other:?}"),
    }
    let live = store
        .create("/w/b", b"live".to_vec())
        .await
        .expect("create");
    let event = expect_change(&mut stream).await;
    assert_eq!(changed_kv(&event).mod_revision, live);
    assert!(
        next_change(&mut stream, Duration::from_millis(300))
            .await
            .is_none(),
        "no duplicate after the live event"
    );
    // A watch from a later revision sees only what follows it.
    let mut later = store.watch("/w/", updated).await.expect("watch");
    assert_eq!(
        changed_kv(&expect_change(&mut later).await).mod_revision,
        deleted
    );
    assert_eq!(
        changed_kv(&expect_change(&mut later).await).mod_revision,
        live
    );
}

pub async fn watch_has_no_gap_or_duplicate_while_writes_continue(store: Arc<dyn Store>) {
    let from = store.revision().await.expect("revision");
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for i in 0..300 {
                store
                    .create(&format!("/g/{i:04}"), vec![7; 100])
                    .await
                    .expect("create");
            }
        })
    };
    // Start watching while the writes are under way.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut stream = store.watch("/g/", from).await.expect("watch");
    let mut revisions = Vec::new();
    while revisions.len() < 300 {
        revisions.push(changed_kv(&expect_change(&mut stream).await).mod_revision);
    }
    writer.await.expect("writer");
    assert!(
        revisions.windows(2).all(|w| w[0] + 1 == w[1]),
        "consecutive revisions"
    );
    assert_eq!(revisions[0], from + 1);
    assert!(
        next_change(&mut stream, Duration::from_millis(300))
            .await
            .is_none()
    );
}

pub async fn compacted_history_is_refused(store: Arc<dyn Store>) {
    let mut revs = Vec::new();
    for i in 0..6 {
        revs.push(
            store
                .create(&format!("/k/{i}"), b"v".to_vec())
                .await
                .expect("create"),
        );
    }
    store
        .update("/k/0", b"v2".to_vec(), None)
        .await
        .expect("update");
    let point = revs[4];
    store.compact(point).await.expect("compact");
    store
        .compact(revs[2])
        .await
        .expect("compacting below the point again is harmless");
    match store.watch("/k/", revs[1]).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, revs[1]);
            assert!(compacted >= point, "{compacted} >= {point}");
        }
        Ok(mut stream) => match next_change(&mut stream, WAIT).await {
            Some(Err(StoreError::Compacted { .. })) => {}
            other => panic!("expected Compacted, got {other:?}"),
        },
        Err(other) => panic!("expected Compacted, got {other:?}"),
    }
    let below = ListOptions {
        revision: Some(revs[1]),
        ..Default::default()
    };
    assert!(matches!(
        store.list("/k/", &below).await,
        Err(StoreError::Compacted { .. })
    ));
    // At the compaction point everything still reads.
    let at = ListOptions {
        revision: Some(point),
        ..Default::default()
    };
    let listed = store.list("/k/", &at).await.expect("list at the point");
    assert_eq!(listed.items.len(), 5);
    let mut stream = store.watch("/k/", point).await.expect("watch at the point");
    assert_eq!(
        changed_kv(&expect_change(&mut stream).await).mod_revision,
        revs[5]
    );
}

pub async fn concurrent_creates_are_all_acknowledged(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..100 {
                    let key = format!("/cc/{t}/{i:03}");
                    let rev = store.create(&key, vec![b'x'; 500]).await.expect("create");
                    acked.push((key, rev));
                }
                acked
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    // Each task's creates come after one another; creates of different tasks may share a
    // revision when the backend writes them in one transaction (etcd).
    for task in all.chunks(100) {
        assert!(
            task.windows(2).all(|w| w[0].1 < w[1].1),
            "revisions of one client's creates increase"
        );
    }
    assert_eq!(store.count("/cc/").await.expect("count"), 800);
    for (key, rev) in &all {
        let kv = store
            .get(key)
            .await
            .expect("get")
            .expect("acknowledged key exists");
        assert_eq!(kv.mod_revision, *rev);
    }
}

/// Creates that race each other, existing keys and moved guards among them: each gets its
/// own answer even when the backend writes concurrent creates together.
pub async fn racing_creates_get_their_own_answers(store: Arc<dyn Store>) {
    store
        .create("/race/taken", b"t".to_vec())
        .await
        .expect("create");
    let ns = store
        .create("/race/ns", b"n".to_vec())
        .await
        .expect("create");
    let moved = store
        .update("/race/ns", b"n2".to_vec(), None)
        .await
        .expect("update");
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for round in 0..20 {
                    let (own, same) = (
                        format!("/race/own/{t}/{round}"),
                        format!("/race/same/{round}"),
                    );
                    let (stale, guarded) = (
                        format!("/race/stale/{t}/{round}"),
                        format!("/race/guarded/{t}/{round}"),
                    );
                    let own = store.create(&own, vec![b'o'; 100]);
                    let same = store.create(&same, vec![b's'; 100]);
                    let taken = store.create("/race/taken", vec![b'x'; 100]);
                    let stale = store.create_guarded(&stale, vec![b'g'; 100], "/race/ns", ns);
                    let guarded =
                        store.create_guarded(&guarded, vec![b'g'; 100], "/race/ns", moved);
                    let (own, same, taken, stale, guarded) =
                        futures::join!(own, same, taken, stale, guarded);
                    answers.push((own, same, taken, stale, guarded));
                }
                answers
            })
        })
        .collect();
    let mut same_won = [0; 20];
    for task in tasks {
        for (round, (own, same, taken, stale, guarded)) in
            task.await.expect("task").into_iter().enumerate()
        {
            own.expect("a key of its own is created");
            guarded.expect("a create guarded at the current revision succeeds");
            match same {
                Ok(_) => same_won[round] += 1,
                Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => panic!("racing create of one key: {e:?}"),
            }
            assert!(
                matches!(taken, Err(StoreError::AlreadyExists(_))),
                "an existing key: {taken:?}"
            );
            assert!(
                matches!(stale, Err(StoreError::Conflict { ref key, .. }) if key == "/race/ns"),
                "a moved guard: {stale:?}"
            );
        }
    }
    assert_eq!(
        same_won, [1; 20],
        "exactly one create of each raced key wins"
    );
    assert_eq!(store.count("/race/own/").await.expect("count"), 160);
    assert_eq!(store.count("/race/guarded/").await.expect("count"), 160);
    assert_eq!(store.count("/race/stale/").await.expect("count"), 0);
    let taken = store.get("/race/taken").await.expect("get").expect("kept");
    assert_eq!(taken.value, b"t");
}

/// A create abandoned by its caller mid-flight (a client that hung up) leaves no later
/// create waiting.
pub async fn an_abandoned_create_holds_up_no_other(store: Arc<dyn Store>) {
    for round in 0..20 {
        let abandoned = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let _ = store
                    .create(&format!("/gone/{round}"), vec![b'a'; 100])
                    .await;
            })
        };
        let others: Vec<_> = (0..4)
            .map(|t| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .create(&format!("/after/{round}/{t}"), vec![b'b'; 100])
                        .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        abandoned.abort();
        for other in others {
            let created = tokio::time::timeout(Duration::from_secs(10), other)
                .await
                .expect("a create after an abandoned one finishes");
            created.expect("task").expect("create");
        }
    }
    assert_eq!(store.count("/after/").await.expect("count"), 80);
}

pub async fn hundred_watchers_see_a_write(store: Arc<dyn Store>) {
    let from = store.revision().await.expect("revision");
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(store.watch("/fan/", from).await.expect("watch"));
    }
    // Let every watch finish its (empty) replay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = Instant::now();
    let rev = store
        .create("/fan/x", b"hello".to_vec())
        .await
        .expect("create");
    let waits = streams.into_iter().map(|mut stream| async move {
        let event = expect_change(&mut stream).await;
        (changed_kv(&event).mod_revision, written.elapsed())
    });
    let mut seen = futures::future::join_all(waits).await;
    assert!(seen.iter().all(|(r, _)| *r == rev));
    seen.sort_by_key(|(_, elapsed)| *elapsed);
    println!(
        "100 watchers: slowest saw the write {:?} after it was sent",
        seen[99].1
    );
}

pub async fn idle_watch_reports_progress(store: Arc<dyn Store>) {
    let rev = store
        .create("/idle/a", b"v".to_vec())
        .await
        .expect("create");
    store
        .create("/busy/a", b"v".to_vec())
        .await
        .expect("create");
    let mut stream = store.watch("/idle/", rev).await.expect("watch");
    match tokio::time::timeout(Duration::from_secs(15), stream.next()).await {
        Ok(Some(Ok(Event::Progress { revision }))) => {
            assert!(revision >= rev, "{revision} >= {rev}");
        }
        other => panic!("expected a progress event, got {other:?}"),
    }
}

pub async fn periodic_compaction_keeps_recent_history(store: Arc<dyn Store>) {
    use berth_store::compaction::{CompactionPolicy, compact_once};
    let policy = CompactionPolicy {
        interval_secs: 1,
        retain_revisions: 5,
    };
    let first = store.create("/pc/0", b"v".to_vec()).await.expect("create");
    // The first tick only records where the store was.
    let tick = compact_once(store.as_ref(), &policy, 0)
        .await
        .expect("first tick");
    for i in 1..20 {
        store
            .create(&format!("/pc/{i}"), b"v".to_vec())
            .await
            .expect("create");
    }
    compact_once(store.as_ref(), &policy, tick)
        .await
        .expect("second tick");
    // History up to the previous tick is gone, everything after it is still watchable.
    assert!(matches!(
        store.watch("/pc/", first - 1).await.map(|_| ()),
        Err(StoreError::Compacted { .. })
    ));
    let mut stream = store
        .watch("/pc/", tick)
        .await
        .expect("watch from the last tick");
    assert_eq!(
        changed_kv(&expect_change(&mut stream).await).mod_revision,
        tick + 1
    );
}
