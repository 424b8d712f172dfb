//! Crash safety: a child process creates keys from 8 tasks as fast as it can and prints each
//! acknowledged key; it is killed with SIGKILL mid-stream (for etcd, the etcd server too), the
//! store is reopened, and every acknowledged key must be there with its revision, with later
//! revisions still above every acknowledged one.
//!
//! The child is this test executable re-run on `child_writer` with [`CHILD_TARGET`] set.

#[path = "support/etcd_server.rs"]
mod etcd_server;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::etcd::EtcdStore;
use berth_store::sqlite::SqliteStore;
use berth_store::{Event, Store};
use futures::StreamExt;

/// Where the child writes: `sqlite:<path>` or `etcd:<url>`.
const CHILD_TARGET: &str = "BERTH_STORE_TEST_CHILD_TARGET";
/// Which round the child is in (keeps keys of rounds apart).
const CHILD_ROUND: &str = "BERTH_STORE_TEST_CHILD_ROUND";

async fn open(target: &str) -> Arc<dyn Store> {
    if let Some(path) = target.strip_prefix("sqlite:") {
        Arc::new(SqliteStore::open(path).await.expect("open sqlite"))
    } else if let Some(url) = target.strip_prefix("etcd:") {
        Arc::new(EtcdStore::connect(&[url]).await.expect("connect etcd"))
    } else {
        panic!("unknown target {target}")
    }
}

/// The child: writes until killed. Does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Ok(target) = std::env::var(CHILD_TARGET) else {
        return; // only meaningful as the child of the tests below
    };
    let round = std::env::var(CHILD_ROUND).unwrap_or_default();
    let store = open(&target).await;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = Arc::clone(&store);
            let round = round.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/dur/{round}/{task}/{i:06}");
                    match store.create(&key, vec![b'd'; 500]).await {
                        Ok(rev) => {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "ack {key} {rev}");
                            let _ = out.flush();
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Runs a child against `target` until it acknowledged `acks` creates (or 20 s passed), calls
/// `before_kill`, kills the child with SIGKILL, and returns every acknowledged key.
fn crash_child(
    target: &str,
    round: usize,
    acks: usize,
    before_kill: impl FnOnce(),
) -> BTreeMap<String, i64> {
    let exe = std::env::current_exe().expect("test executable");
    let mut child = Command::new(exe)
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_TARGET, target)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start child writer");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut parts = line.split_whitespace();
            if let (Some("ack"), Some(key), Some(rev)) = (parts.next(), parts.next(), parts.next())
            {
                let rev: i64 = rev.parse().expect("revision");
                if tx.send((key.to_owned(), rev)).is_err() {
                    break;
                }
            }
        }
    });
    let mut acked = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.len() < acks && Instant::now() < deadline {
        if let Ok((key, rev)) = rx.recv_timeout(Duration::from_millis(100)) {
            acked.insert(key, rev);
        }
    }
    before_kill();
    // Child::kill sends SIGKILL to the child's PID.
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    reader.join().expect("stdout reader");
    acked.extend(rx.try_iter());
    acked
}

async fn verify(store: &Arc<dyn Store>, acked: &BTreeMap<String, i64>) {
    for (key, rev) in acked {
        let kv = store
            .get(key)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged {key} lost"));
        assert_eq!(kv.mod_revision, *rev, "{key}");
    }
    let max = acked.values().copied().max().unwrap_or(0);
    let now = store.revision().await.expect("revision");
    assert!(now >= max, "revision {now} went below acknowledged {max}");
    // History stays resumable: a watch from just before the last acknowledged write
    // replays it.
    let mut stream = store
        .watch("/dur/", max - 1)
        .await
        .expect("watch after crash");
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(Event::Put { kv, .. }))) => assert_eq!(kv.mod_revision, max),
        other => panic!("expected the last acknowledged create, got {other:?}"),
    }
    let next = store
        .create(&format!("/after/{max}"), b"x".to_vec())
        .await
        .expect("create");
    assert!(next > now, "new revision {next} above {now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_acknowledged_writes_after_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let target = format!("sqlite:{}", path.display());
    let mut all = BTreeMap::new();
    for (round, acks) in [300, 1500, 3000].into_iter().enumerate() {
        let acked = tokio::task::block_in_place(|| crash_child(&target, round, acks, || {}));
        assert!(
            acked.len() >= acks.min(100),
            "child acknowledged only {}",
            acked.len()
        );
        all.extend(acked);
        let store = open(&target).await;
        verify(&store, &all).await;
        println!(
            "round {round}: {} acknowledged keys survived SIGKILL",
            all.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_keeps_acknowledged_writes_after_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut server) = etcd_server::EtcdServer::start(&dir.path().join("etcd")).await else {
        return;
    };
    let target = format!("etcd:{}", server.endpoint());
    let etcd_pid = server.pid();
    let acked = tokio::task::block_in_place(|| {
        crash_child(&target, 0, 1500, || {
            // SIGKILL etcd itself by PID while the child is writing.
            // std cannot signal a PID it did not spawn here, so use kill(1).
            let _ = Command::new("kill")
                .args(["-9", &etcd_pid.to_string()])
                .status();
        })
    });
    assert!(
        acked.len() >= 100,
        "child acknowledged only {}",
        acked.len()
    );
    server.kill_and_restart().await;
    let store = open(&target).await;
    verify(&store, &acked).await;
    println!(
        "{} acknowledged keys survived SIGKILL of etcd and the writer",
        acked.len()
    );
}
