//! Durability of `berth server` on SQLite and on etcd: 8 clients (the Python `kubernetes`
//! package) create ConfigMaps as fast as they can, the server is killed with SIGKILL and
//! started again on the same data; no acknowledged create may be lost, resourceVersions
//! keep increasing, and a watch from a resourceVersion taken before the crash
//! resumes and delivers every acknowledged object.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::eventually;
use berth_tests::kube::KubeServer;

const CLIENTS: usize = 8;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

fn python_kubernetes() -> Result<(), String> {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .map_err(|e| format!("python3 missing: {e}"))?;
    if probe.status.success() {
        Ok(())
    } else {
        Err("the Python kubernetes package is not installed".into())
    }
}

/// One acknowledged create: (client, name, resourceVersion, uid).
type Ack = (usize, String, i64, String);

fn acks(dir: &Path) -> Vec<Ack> {
    let mut out = Vec::new();
    for client in 0..CLIENTS {
        let text =
            std::fs::read_to_string(dir.join(format!("acked-{client}.txt"))).unwrap_or_default();
        // A line is complete only with its newline (the reader may race the writer).
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "malformed ack line {line:?}");
            let rv: i64 = parts[1].parse().expect("resourceVersion is an integer");
            out.push((client, parts[0].to_string(), rv, parts[2].to_string()));
        }
    }
    out
}

/// Failed requests per client so far (the load rewrites the count after each failure).
fn errors_by_client(dir: &Path) -> Vec<usize> {
    (0..CLIENTS)
        .map(|c| {
            std::fs::read_to_string(dir.join(format!("errors-{c}.txt")))
                .ok()
                .and_then(|e| e.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

fn wait_for_acks(dir: &Path, at_least: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = acks(dir).len();
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Load {
    child: Child,
    stop: PathBuf,
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn list_resource_version(s: &KubeServer) -> i64 {
    let out = s.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?limit=1",
    ]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("list JSON");
    list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("list resourceVersion")
}

fn crash_and_restart(datastore: &str) {
    if let Err(why) = python_kubernetes() {
        eprintln!("skipping: {why}");
        return;
    }
    let mut s = match KubeServer::start_on(datastore) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let dir = s.dir.path().join("load");
    std::fs::create_dir_all(&dir).expect("load dir");
    let start_rv = list_resource_version(&s);
    let stop = s.dir.path().join("stop");
    let child = Command::new("python3")
        .arg(script("kube_load.py"))
        .arg(&dir)
        .arg(&stop)
        .arg(CLIENTS.to_string())
        .env("KUBECONFIG", s.kubeconfig())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.path().join("load.log")).expect("load log"))
        .spawn()
        .expect("python3 starts");
    let load = Load { child, stop };

    // Load running; crash the server in the middle of it.
    let before = wait_for_acks(&dir, 300, Duration::from_secs(60));
    assert!(before >= 300, "only {before} creates in 60 s:\n{}", s.log());
    let errors_before = errors_by_client(&dir);
    s.kill_hard();
    // A client writes down an acknowledgement before its next request, so once each one
    // has failed a request since the kill, every create acknowledged before it is on file.
    let all_noticed = eventually(Duration::from_secs(30), || {
        errors_by_client(&dir)
            .iter()
            .zip(&errors_before)
            .all(|(now, before)| now > before)
    });
    assert!(
        all_noticed,
        "the clients did not notice the server was killed"
    );
    let acked_at_kill = acks(&dir);
    s.restart()
        .expect("the server starts again on the same data");
    let target = acks(&dir).len() + 300;
    let after = wait_for_acks(&dir, target, Duration::from_secs(60));
    assert!(
        after >= target,
        "clients did not resume: {after} < {target}"
    );
    drop(load);
    let load_log = std::fs::read_to_string(s.dir.path().join("load.log")).unwrap_or_default();
    assert!(!load_log.contains("unexpected"), "{load_log}");
    let errors: usize = errors_by_client(&dir).iter().sum();

    let all = acks(&dir);
    eprintln!(
        "{datastore}: {} creates acknowledged ({} before the kill), {errors} failed while down",
        all.len(),
        acked_at_kill.len()
    );
    // Every acknowledged create is there, as acknowledged.
    let list = s.json(&["get", "configmaps", "-n", "default"]);
    let stored: HashMap<String, (i64, String)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|cm| {
            let meta = &cm["metadata"];
            (
                meta["name"].as_str().unwrap_or_default().to_string(),
                (
                    meta["resourceVersion"]
                        .as_str()
                        .and_then(|rv| rv.parse().ok())
                        .unwrap_or(0),
                    meta["uid"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect();
    for (_, name, rv, uid) in &all {
        let Some((stored_rv, stored_uid)) = stored.get(name) else {
            panic!("acknowledged create of {name} (rv {rv}) was lost");
        };
        assert_eq!((stored_rv, stored_uid), (rv, uid), "{name} changed");
    }
    // resourceVersions: increasing per client, and every create after the restart above
    // every one before the kill (a rolled-back revision would be reused). Creates of
    // different clients may share one: on etcd, concurrent creates are written together.
    for client in 0..CLIENTS {
        let rvs: Vec<i64> = all.iter().filter(|a| a.0 == client).map(|a| a.2).collect();
        assert!(
            rvs.windows(2).all(|w| w[0] < w[1]),
            "client {client}: resourceVersions not increasing: {rvs:?}"
        );
    }
    let max_before = acked_at_kill.iter().map(|a| a.2).max().unwrap_or(0);
    let later: HashSet<&String> = acked_at_kill.iter().map(|a| &a.1).collect();
    let after_restart: Vec<i64> = all
        .iter()
        .filter(|a| !later.contains(&a.1))
        .map(|a| a.2)
        .collect();
    assert!(
        after_restart.iter().all(|rv| *rv > max_before),
        "a create after the restart got a resourceVersion below {max_before}"
    );
    // A watch from before the crash resumes: every acknowledged object arrives once, in
    // resourceVersion order.
    let out = Command::new("python3")
        .arg(script("kube_watch_from.py"))
        .arg(start_rv.to_string())
        .arg("5")
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .expect("python3 runs");
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(
        !events.starts_with("ERROR"),
        "watch from {start_rv}: {events}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut watched = HashSet::new();
    let mut last = start_rv;
    for line in events.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.first() != Some(&"ADDED") {
            continue;
        }
        let rv: i64 = parts[2].parse().expect("event resourceVersion");
        assert!(rv >= last, "watch went back from {last} to {rv}");
        last = rv;
        watched.insert(parts[1].to_string());
    }
    let missing: Vec<&String> = all
        .iter()
        .map(|a| &a.1)
        .filter(|n| !watched.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "the resumed watch missed {} acknowledged creates, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(eventually(Duration::from_secs(5), || s
        .kubectl(&["get", "--raw", "/readyz"])
        .status
        .success()));
}

#[test]
fn kill_9_loses_no_acknowledged_create_on_sqlite() {
    crash_and_restart("sqlite");
}

#[test]
fn kill_9_loses_no_acknowledged_create_on_etcd() {
    crash_and_restart("etcd");
}
