//! `berth registry` as a process, driven with curl: idle memory, SIGKILL during 20 concurrent
//! pushes (no partial blob visible, every acknowledged manifest intact after restart), and
//! `berth registry gc`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// A `berth registry` child, killed on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(root: &Path, port: u16) -> Self {
        let child = Command::new(berth_tests::berth_bin())
            .args(["registry", "--root"])
            .arg(root)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start berth registry");
        let r = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while curl(&["-o", "/dev/null", "-w", "%{http_code}", &r.url("/v2/")]) != "200" {
            assert!(Instant::now() < deadline, "berth registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn kill(&mut self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .arg("-s")
        .args(args)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn have_curl() -> bool {
    Command::new("curl").arg("--version").output().is_ok()
}

/// Uploads `data` monolithically; true on 201.
fn upload(reg_url: &str, repo: &str, file: &Path, d: &str) -> bool {
    let url = format!("{reg_url}/v2/{repo}/blobs/uploads/?digest={d}");
    let body = format!("@{}", file.display());
    curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &body,
        &url,
    ]) == "201"
}

#[test]
fn idle_registry_stays_under_10_mb() {
    if !have_curl() {
        println!("skipping: curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = Registry::start(dir.path(), free_port());
    // Some work first (a 4 MiB blob upload), then the registry goes quiet.
    let blob: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = dir.path().join("blob");
    std::fs::write(&file, &blob).expect("write blob");
    assert!(upload(&reg.url(""), "idle/test", &file, &digest(&blob)));
    let rss_kb = || -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", reg.child.id()))
            .expect("proc status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    };
    // Wait for the condition (the server trims itself once quiet), not for a fixed time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rss = rss_kb();
    while rss >= 10 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        rss = rss_kb();
    }
    println!("idle berth registry RSS: {rss} kB");
    assert!(
        rss < 10 * 1024,
        "idle RSS {rss} kB stays at or above 10 MiB"
    );
}

#[test]
fn sigkill_during_concurrent_pushes_keeps_acknowledged_manifests() {
    if !have_curl() {
        println!("skipping: curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let port = free_port();
    let mut reg = Registry::start(&root, port);
    let base = reg.url("");
    let acked_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pushes: Vec<_> = (0..20u8)
        .map(|i| {
            let base = base.clone();
            let counter = acked_count.clone();
            let work = dir.path().join(format!("w{i}"));
            std::thread::spawn(move || -> Option<(String, Vec<u8>)> {
                std::fs::create_dir_all(&work).ok()?;
                let layer: Vec<u8> = (0..(4usize << 20)).map(|j| (j as u8).wrapping_mul(i.wrapping_add(3))).collect();
                let config = format!("{{\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{}\"]}},\"n\":{i}}}", digest(&layer)).into_bytes();
                let (lp, cp) = (work.join("layer"), work.join("config"));
                std::fs::write(&lp, &layer).ok()?;
                std::fs::write(&cp, &config).ok()?;
                let repo = format!("kill/r{i}");
                if !upload(&base, &repo, &lp, &digest(&layer)) || !upload(&base, &repo, &cp, &digest(&config)) {
                    return None;
                }
                let manifest = format!(
                    "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{}\",\"size\":{}}}]}}",
                    digest(&config), config.len(), digest(&layer), layer.len()
                );
                let mp = work.join("manifest");
                std::fs::write(&mp, &manifest).ok()?;
                let url = format!("{base}/v2/{repo}/manifests/v1");
                let code = curl(&["-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", &format!("@{}", mp.display()), &url]);
                if code == "201" {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                (code == "201").then(|| (repo, manifest.into_bytes()))
            })
        })
        .collect();
    // Kill once a few pushes are acknowledged, while the rest are mid-transfer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_count.load(std::sync::atomic::Ordering::SeqCst) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    reg.kill(libc::SIGKILL);
    let acked: Vec<(String, Vec<u8>)> = pushes
        .into_iter()
        .filter_map(|h| h.join().ok().flatten())
        .collect();
    println!("{} of 20 pushes acknowledged before SIGKILL", acked.len());
    assert!(!acked.is_empty(), "no push completed before the kill");

    let blobs = root.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).expect("blobs dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().into_string().expect("utf8 name");
        if name.starts_with(".tmp") {
            continue;
        }
        let data = std::fs::read(entry.path()).expect("read blob");
        assert_eq!(
            digest(&data),
            format!("sha256:{name}"),
            "partial or corrupt blob visible"
        );
    }
    let reg = Registry::start(&root, port);
    for (repo, manifest) in &acked {
        let out = dir.path().join("got");
        let code = curl(&[
            "-o",
            &out.display().to_string(),
            "-w",
            "%{http_code}",
            &reg.url(&format!("/v2/{repo}/manifests/v1")),
        ]);
        assert_eq!(code, "200", "{repo}");
        assert_eq!(&std::fs::read(&out).expect("read"), manifest, "{repo}");
    }
}

#[test]
fn gc_subcommand_removes_unreferenced_blobs() {
    if !have_curl() {
        println!("skipping: curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let mut reg = Registry::start(&root, free_port());
    let file = dir.path().join("orphan");
    std::fs::write(&file, b"nobody references me").expect("write");
    let d = digest(b"nobody references me");
    assert!(upload(&reg.url(""), "gc/test", &file, &d));
    reg.kill(libc::SIGTERM);
    let out = Command::new(berth_tests::berth_bin())
        .args(["registry", "gc", "--root"])
        .arg(&root)
        .output()
        .expect("run gc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 1 blobs"));
    assert!(!root.join("blobs/sha256").join(&d[7..]).exists());
}
