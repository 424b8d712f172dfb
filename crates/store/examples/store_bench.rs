//! Store benchmark: creates per second from concurrent clients on SQLite and on etcd through
//! berth-store, beside etcd's raw put throughput with plain etcd-client puts (and the same
//! create-if-absent transaction berth-store sends, without berth-store); then LIST of
//! 10,000 keys and the delay for a write to reach 100 watchers. Prints medians and ratios.
//!
//! `cargo run --release -p berth-store --example store_bench -- [--runs 5] [--clients 8]
//! [--creates 8000] [--value-size 500] [--no-etcd]`. etcd is started from `/usr/bin/etcd` in a
//! temp dir on free loopback ports and stopped by PID.

#[path = "../tests/support/etcd_server.rs"]
mod etcd_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::etcd::EtcdStore;
use berth_store::sqlite::SqliteStore;
use berth_store::{ListOptions, Store};
use futures::StreamExt;

struct Args {
    runs: usize,
    clients: usize,
    creates: usize,
    value_size: usize,
    etcd: bool,
}

fn args() -> Args {
    let mut args = Args {
        runs: 5,
        clients: 8,
        creates: 8000,
        value_size: 500,
        etcd: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--runs" => args.runs = number(),
            "--clients" => args.clients = number(),
            "--creates" => args.creates = number(),
            "--value-size" => args.value_size = number(),
            "--no-etcd" => args.etcd = false,
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Creates/s of `creates` creates split over `clients` tasks, each writing with `write`.
async fn rate<F, Fut>(clients: usize, creates: usize, write: F) -> f64
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let per_client = creates / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let write = write.clone();
            tokio::spawn(async move {
                for i in 0..per_client {
                    write(format!("/registry/configmaps/bench{c}/cm-{i:06}")).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
    (per_client * clients) as f64 / started.elapsed().as_secs_f64()
}

async fn store_rate(store: Arc<dyn Store>, args: &Args, run: usize) -> f64 {
    let value = vec![b'v'; args.value_size];
    rate(args.clients, args.creates, move |key| {
        let store = Arc::clone(&store);
        let value = value.clone();
        async move {
            store
                .create(&format!("/run{run}{key}"), value)
                .await
                .expect("create");
        }
    })
    .await
}

/// Median ms of listing 10,000 keys, after creating them.
async fn list_ms(store: &Arc<dyn Store>) -> f64 {
    let tasks: Vec<_> = (0..8)
        .map(|c| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                for i in (c..10_000).step_by(8) {
                    let key = format!("/registry/configmaps/list/cm-{i:05}");
                    store.create(&key, vec![b'l'; 500]).await.expect("create");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("filler");
    }
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let listed = store
            .list("/registry/configmaps/list/", &ListOptions::default())
            .await
            .expect("list");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(listed.items.len(), 10_000);
    }
    median(times)
}

/// p99 ms from a write to its arrival at each of 100 watchers, over 30 writes.
async fn watch_p99_ms(store: &Arc<dyn Store>) -> f64 {
    let from = store.revision().await.expect("revision");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..100 {
        let mut stream = store.watch("/fanout/", from).await.expect("watch");
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                if let berth_store::Event::Put { kv, .. } = event {
                    let _ = tx.send((kv.key, Instant::now()));
                }
            }
        });
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut delays = Vec::new();
    for i in 0..30 {
        let key = format!("/fanout/{i}");
        let sent = Instant::now();
        store.create(&key, vec![b'w'; 500]).await.expect("create");
        for _ in 0..100 {
            let (got, at) = rx.recv().await.expect("watch event");
            assert_eq!(got, key);
            delays.push(at.duration_since(sent).as_secs_f64() * 1000.0);
        }
    }
    delays.sort_by(f64::total_cmp);
    delays[(delays.len() * 99) / 100 - 1]
}

/// One round of raw etcd puts through a plain etcd-client, the reference throughput.
async fn raw_put_rate(endpoint: &str, args: &Args, run: usize) -> f64 {
    let client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connect");
    let value = vec![b'v'; args.value_size];
    rate(args.clients, args.creates, move |key| {
        let mut kv = client.kv_client();
        let value = value.clone();
        async move {
            kv.put(format!("/raw{run}{key}"), value, None)
                .await
                .expect("put");
        }
    })
    .await
}

/// One round of create-if-absent transactions through a plain etcd-client: the same etcd
/// request berth-store's create sends, without berth-store.
async fn raw_txn_rate(endpoint: &str, args: &Args, run: usize) -> f64 {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connect");
    let value = vec![b'v'; args.value_size];
    rate(args.clients, args.creates, move |key| {
        let mut kv = client.kv_client();
        let value = value.clone();
        async move {
            let key = format!("/txn{run}{key}");
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value, None)]);
            kv.txn(txn).await.expect("txn");
        }
    })
    .await
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "berth-store benchmark: {} clients, {} creates of {}-byte values per run, {} runs",
        args.clients, args.creates, args.value_size, args.runs
    );
    let server = if args.etcd {
        etcd_server::EtcdServer::start(&dir.path().join("etcd")).await
    } else {
        None
    };
    let endpoint = server.as_ref().map(|s| s.endpoint());
    // Rounds interleave the three measurements, in an order rotated each round, so load from
    // elsewhere and the previous run's write-back hit them alike.
    let (mut sqlite, mut via_store, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    let mut raw_txn = Vec::new();
    for run in 0..args.runs {
        for step in 0..4 {
            match (run + step) % 4 {
                0 => {
                    let path = dir.path().join(format!("bench{run}.db"));
                    let store: Arc<dyn Store> =
                        Arc::new(SqliteStore::open(path).await.expect("open sqlite"));
                    sqlite.push(store_rate(store, &args, run).await);
                }
                1 => {
                    if let Some(endpoint) = &endpoint {
                        let store: Arc<dyn Store> =
                            Arc::new(EtcdStore::connect(&[endpoint]).await.expect("connect"));
                        via_store.push(store_rate(store, &args, run).await);
                    }
                }
                2 => {
                    if let Some(endpoint) = &endpoint {
                        raw.push(raw_put_rate(endpoint, &args, run).await);
                    }
                }
                _ => {
                    if let Some(endpoint) = &endpoint {
                        raw_txn.push(raw_txn_rate(endpoint, &args, run).await);
                    }
                }
            }
        }
    }
    let sqlite_store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("list.db"))
            .await
            .expect("open"),
    );
    let sqlite_list = list_ms(&sqlite_store).await;
    let sqlite_watch = watch_p99_ms(&sqlite_store).await;
    let sqlite_rate = median(sqlite.clone());
    println!("\ncreates/s (median; every run)");
    println!("  sqlite via berth-store  {sqlite_rate:>9.0}   {sqlite:.0?}");
    let Some(endpoint) = endpoint else {
        println!("LIST of 10,000 keys (median ms): sqlite {sqlite_list:.1}");
        println!("write to 100 watchers (p99 ms): sqlite {sqlite_watch:.2}");
        return;
    };
    let etcd_store: Arc<dyn Store> =
        Arc::new(EtcdStore::connect(&[&endpoint]).await.expect("connect"));
    let etcd_list = list_ms(&etcd_store).await;
    let etcd_watch = watch_p99_ms(&etcd_store).await;
    let (store_rate, raw_rate) = (median(via_store.clone()), median(raw.clone()));
    println!("  etcd via berth-store    {store_rate:>9.0}   {via_store:.0?}");
    println!("  etcd raw put            {raw_rate:>9.0}   {raw:.0?}");
    let txn_rate = median(raw_txn.clone());
    println!("  etcd raw create txn     {txn_rate:>9.0}   {raw_txn:.0?}");
    println!("ratios");
    println!(
        "  etcd via berth-store / etcd raw put  {:>6.1} %",
        100.0 * store_rate / raw_rate
    );
    println!(
        "  etcd via berth-store / etcd raw txn  {:>6.1} %",
        100.0 * store_rate / txn_rate
    );
    println!(
        "  sqlite / etcd raw put                {:>6.2} x",
        sqlite_rate / raw_rate
    );
    println!("LIST of 10,000 keys (median ms)");
    println!("  sqlite {sqlite_list:>8.1}   etcd {etcd_list:>8.1}");
    println!("write to 100 watchers (p99 ms over 30 writes)");
    println!("  sqlite {sqlite_watch:>8.2}   etcd {etcd_watch:>8.2}");
    drop(server);
}
