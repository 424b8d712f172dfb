//! API server benchmark through the HTTPS API, the way clients see it: ConfigMap creates
//! per second from concurrent clients (each its own keep-alive TLS connection, bearer
//! token), on SQLite and on etcd, beside etcd's own put throughput (plain etcd-client puts
//! from as many clients, of a value as large as the benchmark's ConfigMap as berth stores it
//! in etcd) measured in the same run; an unpaginated LIST of
//! 10,000 ConfigMaps; the delay from a write to its event at 100 watchers (p99); the
//! resident memory of `berth server` holding 10,000 ConfigMaps. Prints medians.
//!
//! `cargo run --release -p berth-apiserver --example api_bench -- --berth target/release/berth
//! [--runs 3] [--clients 8] [--creates 10000] [--watchers 100] [--events 200]
//! [--datastores sqlite,etcd]`. Servers and etcd run in temp dirs on free loopback ports
//! and are stopped by PID.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Args {
    berth: PathBuf,
    runs: usize,
    clients: usize,
    creates: usize,
    watchers: usize,
    events: usize,
    datastores: Vec<String>,
}

fn args() -> Args {
    let mut args = Args {
        berth: PathBuf::from("target/release/berth"),
        runs: 3,
        clients: 8,
        creates: 10_000,
        watchers: 100,
        events: 200,
        datastores: vec!["sqlite".into(), "etcd".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--berth" => args.berth = PathBuf::from(value()),
            "--runs" => args.runs = value().parse().expect("--runs is a number"),
            "--clients" => args.clients = value().parse().expect("--clients is a number"),
            "--creates" => args.creates = value().parse().expect("--creates is a number"),
            "--watchers" => args.watchers = value().parse().expect("--watchers is a number"),
            "--events" => args.events = value().parse().expect("--events is a number"),
            "--datastores" => args.datastores = value().split(',').map(String::from).collect(),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// A child process stopped by PID (SIGTERM, then SIGKILL) when dropped.
struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_etcd(dir: &Path) -> (Process, String) {
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .arg("--name=bench")
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={endpoint}"))
        .arg(format!("--advertise-client-urls={endpoint}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=bench={peer_url}"))
        .arg("--log-level=error")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("etcd.log")).expect("etcd log"))
        .spawn()
        .expect("etcd (Debian package etcd-server) starts");
    let addr: SocketAddr = format!("127.0.0.1:{client}").parse().expect("address");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Process { child }, endpoint)
}

/// A `berth server` and what a client needs to reach it.
struct Server {
    process: Process,
    addr: SocketAddr,
    token: String,
    connector: TlsConnector,
}

fn start_server(berth: &Path, dir: &Path, extra: &[String]) -> Server {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let data = dir.join("server");
    let child = Command::new(berth)
        .arg("server")
        .arg("--data-dir")
        .arg(&data)
        .arg("--https-listen")
        .arg(addr.to_string())
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).expect("server log"))
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", berth.display()));
    let process = Process { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(data.join("token").exists()
        && data.join("ca.crt").exists()
        && std::net::TcpStream::connect(addr).is_ok())
    {
        assert!(Instant::now() < deadline, "berth server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = std::fs::read_to_string(data.join("token"))
        .expect("token")
        .trim()
        .to_string();
    let pem = std::fs::read(data.join("ca.crt")).expect("ca.crt");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Server {
        process,
        addr,
        token,
        connector: TlsConnector::from(Arc::new(config)),
    }
}

impl Server {
    async fn connect(&self) -> SendRequest<Full<Bytes>> {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        let tls = self.connector.connect(name, tcp).await.expect("TLS");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
        tokio::spawn(connection);
        sender
    }

    fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request")
    }

    async fn call(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Bytes) {
        sender.ready().await.expect("connection ready");
        let response = sender
            .send_request(self.request(method, path, body))
            .await
            .expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    }

    fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

fn configmap(name: &str) -> Vec<u8> {
    // About 500 bytes of data, like the store benchmark's values.
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": {"payload": "x".repeat(440)},
    }))
    .expect("JSON")
}

async fn create_namespace(server: &Server, name: &str) {
    let mut sender = server.connect().await;
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .expect("JSON");
    let (status, text) = server
        .call(&mut sender, Method::POST, "/api/v1/namespaces", Some(body))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&text)
    );
}

/// Creates `total` ConfigMaps in `namespace` from `clients` connections; creates/s.
async fn creates(server: &Arc<Server>, namespace: &str, clients: usize, total: usize) -> f64 {
    create_namespace(server, namespace).await;
    let mut senders = Vec::new();
    for _ in 0..clients {
        senders.push(server.connect().await);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut sender) in senders.into_iter().enumerate() {
        let server = server.clone();
        let path = format!("/api/v1/namespaces/{namespace}/configmaps");
        let count = total / clients + usize::from(c < total % clients);
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let body = configmap(&format!("c{c}-{i}"));
                let (status, text) = server
                    .call(&mut sender, Method::POST, &path, Some(body))
                    .await;
                assert_eq!(
                    status,
                    StatusCode::CREATED,
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// The ConfigMap of the benchmark as `berth server` stores it in etcd (with uid,
/// timestamps and managedFields): created through the API and read back from etcd, so the
/// reference puts carry values of the same size.
async fn stored_configmap(server: &Server, endpoint: &str) -> Vec<u8> {
    create_namespace(server, "probe").await;
    let mut sender = server.connect().await;
    let (status, text) = server
        .call(
            &mut sender,
            Method::POST,
            "/api/v1/namespaces/probe/configmaps",
            Some(configmap("c0-0")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&text)
    );
    let mut client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("etcd client");
    let resp = client
        .get("/registry/configmaps/probe/c0-0", None)
        .await
        .expect("etcd get");
    let kv = resp.kvs().first().expect("the probe ConfigMap is in etcd");
    kv.value().to_vec()
}

/// etcd's own put throughput: `clients` etcd-client connections putting `total` copies of
/// `value` (a ConfigMap as stored).
async fn etcd_puts(endpoint: &str, value: &[u8], clients: usize, total: usize, run: usize) -> f64 {
    let mut handles = Vec::new();
    for _ in 0..clients {
        handles.push(
            etcd_client::Client::connect([endpoint], None)
                .await
                .expect("etcd client"),
        );
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut client) in handles.into_iter().enumerate() {
        let value = value.to_vec();
        let count = total / clients + usize::from(c < total % clients);
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                client
                    .put(format!("/reference/{run}/{c}/{i}"), value.clone(), None)
                    .await
                    .expect("etcd put");
            }
        }));
    }
    for task in tasks {
        task.await.expect("etcd client task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Milliseconds of an unpaginated LIST of `namespace`, checking it holds `expected` items.
async fn list_ms(server: &Server, namespace: &str, expected: usize) -> f64 {
    let mut sender = server.connect().await;
    let path = format!("/api/v1/namespaces/{namespace}/configmaps");
    let start = Instant::now();
    let (status, body) = server.call(&mut sender, Method::GET, &path, None).await;
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&body).expect("list JSON");
    let items = list["items"].as_array().map_or(0, Vec::len);
    assert_eq!(items, expected, "LIST returned {items} items");
    elapsed
}

/// Delays (ms) from the start of each write to its ADDED event at each watcher.
async fn watch_fanout(server: &Arc<Server>, watchers: usize, events: usize) -> Vec<f64> {
    let namespace = "fanout";
    create_namespace(server, namespace).await;
    let mut writer = server.connect().await;
    let (_, list) = server
        .call(
            &mut writer,
            Method::GET,
            "/api/v1/namespaces/fanout/configmaps",
            None,
        )
        .await;
    let list: serde_json::Value = serde_json::from_slice(&list).expect("list JSON");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let sent: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; events]));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let server = server.clone();
        let sent = sent.clone();
        let ready = ready_tx.clone();
        let path = format!(
            "/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=120"
        );
        tasks.push(tokio::spawn(async move {
            let mut sender = server.connect().await;
            sender.ready().await.expect("ready");
            let response = sender
                .send_request(server.request(Method::GET, &path, None))
                .await
                .expect("watch response");
            assert_eq!(response.status(), StatusCode::OK);
            ready.send(()).await.expect("ready channel");
            let mut body = response.into_body();
            let mut buffer = Vec::new();
            let mut delays = Vec::new();
            while delays.len() < events {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let Ok(data) = frame.expect("watch frame").into_data() else {
                    continue;
                };
                let now = Instant::now();
                buffer.extend_from_slice(&data);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                        continue;
                    };
                    if event["type"] != "ADDED" {
                        continue;
                    }
                    let name = event["object"]["metadata"]["name"].as_str().unwrap_or("");
                    let Some(index) = name.strip_prefix("e").and_then(|i| i.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let at = sent.lock().expect("sent times")[index];
                    if let Some(at) = at {
                        delays.push(now.duration_since(at).as_secs_f64() * 1000.0);
                    }
                }
            }
            delays
        }));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        ready_rx.recv().await.expect("watcher ready");
    }
    // Let the watch streams settle before the first write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let path = format!("/api/v1/namespaces/{namespace}/configmaps");
    for i in 0..events {
        sent.lock().expect("sent times")[i] = Some(Instant::now());
        let (status, _) = server
            .call(
                &mut writer,
                Method::POST,
                &path,
                Some(configmap(&format!("e{i}"))),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut delays = Vec::new();
    for task in tasks {
        let got = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("watchers finish")
            .expect("watcher task");
        assert_eq!(got.len(), events, "a watcher missed events");
        delays.extend(got);
    }
    delays
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut etcd_reference = None;
    println!(
        "berth API server benchmark: {} clients, {} creates per run, {} runs, {} watchers x {} events",
        args.clients, args.creates, args.runs, args.watchers, args.events
    );
    for datastore in &args.datastores {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut extra = vec!["--datastore".to_string(), datastore.clone()];
        let etcd = if datastore == "etcd" {
            let (process, endpoint) = start_etcd(dir.path());
            extra.extend(["--etcd-endpoints".to_string(), endpoint.clone()]);
            Some((process, endpoint))
        } else {
            None
        };
        let server = Arc::new(start_server(&args.berth, dir.path(), &extra));
        runtime.block_on(async {
            let mut rates = Vec::new();
            let mut puts = Vec::new();
            let mut lists = Vec::new();
            let mut held = (0, 0);
            let stored = match &etcd {
                Some((_, endpoint)) => {
                    let value = stored_configmap(&server, endpoint).await;
                    println!("  a ConfigMap as stored in etcd: {} bytes (the reference puts' value)", value.len());
                    value
                }
                None => Vec::new(),
            };
            for run in 0..args.runs {
                if let Some((_, endpoint)) = &etcd {
                    let rate = etcd_puts(endpoint, &stored, args.clients, args.creates, run).await;
                    println!("  run {run}: etcd puts           {rate:>9.0}/s");
                    puts.push(rate);
                }
                let rate = creates(&server, &format!("bench-{run}"), args.clients, args.creates).await;
                println!("  run {run}: {datastore:<6} creates via API {rate:>7.0}/s");
                rates.push(rate);
                if run == 0 {
                    for _ in 0..5 {
                        lists.push(list_ms(&server, "bench-0", args.creates).await);
                    }
                    held = server.rss_kib();
                }
            }
            let delays = watch_fanout(&server, args.watchers, args.events).await;
            let creates = median(rates);
            println!("{datastore}: ConfigMap creates/s via HTTPS, median: {creates:.0}");
            if !puts.is_empty() {
                let reference = median(puts);
                etcd_reference = Some(reference);
                println!(
                    "{datastore}: etcd's own puts/s, median: {reference:.0}; berth reaches {:.0} %",
                    100.0 * creates / reference
                );
            }
            println!(
                "{datastore}: LIST of {} ConfigMaps, median of 5: {:.1} ms",
                args.creates,
                median(lists)
            );
            println!(
                "{datastore}: watch event at {} watchers after the write: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                args.watchers,
                percentile(delays.clone(), 50.0),
                percentile(delays.clone(), 99.0),
                percentile(delays, 100.0)
            );
            println!(
                "{datastore}: RSS of berth server holding {} ConfigMaps (after the LISTs): {:.1} MB (peak {:.1} MB)",
                args.creates,
                held.0 as f64 / 1024.0,
                held.1 as f64 / 1024.0
            );
        });
        drop(server);
        drop(etcd);
    }
    if etcd_reference.is_none() && args.datastores.iter().any(|d| d == "etcd") {
        println!("etcd reference not measured");
    }
}
