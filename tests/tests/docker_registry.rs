//! `docker push`, `docker pull` and `docker login` through `berth daemon` against
//! `berth registry`: by tag and by digest with Docker's progress output, same image id and
//! RepoDigests after a round trip, nothing downloaded when the layers are present, htpasswd
//! login stored in the docker config file, the Python SDK, `--insecure-registry`, and
//! interrupted transfers that complete on retry.

use std::process::Output;

use berth_tests::Daemon;
use berth_tests::daemon::tail;
use berth_tests::registry::{CuttingProxy, Registry, has_files_named};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker_ok(&["image", "inspect", "--format", format, name])
}

/// The digest from a push's `TAG: digest: sha256:... size: N` line.
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once(": digest: ").map(|(_, r)| r))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line in push output:\n{out}"))
        .to_string()
}

/// A single-layer image with busybox and `mb` MiB of incompressible data, imported as `name`.
fn import_big(d: &Daemon, name: &str, mb: usize) -> String {
    let mut data = vec![0u8; mb << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut tar = berth_tests::fixtures::TarBuilder::new();
    tar.file(
        "bin/busybox",
        0o755,
        &std::fs::read(berth_tests::BUSYBOX).expect("busybox"),
    )
    .file("data/blob", 0o644, &data);
    let path = d
        .scratch()
        .join(format!("{}.tar", name.replace([':', '/'], "_")));
    std::fs::write(&path, tar.finish()).expect("write rootfs tar");
    d.docker_ok(&["import", path.to_str().expect("path"), name])
}

/// Pulls `name:v1` through the Engine API and returns its JSON progress messages.
fn api_pull(d: &Daemon, name: &str) -> Vec<serde_json::Value> {
    let r = d.api(
        "POST",
        &format!("/v1.47/images/create?fromImage={name}&tag=v1"),
        None,
    );
    assert_eq!(r.status, 200);
    String::from_utf8_lossy(&r.body)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON progress line"))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn push_and_pull_by_tag_and_digest_keep_id_and_digest() {
    let reg = Registry::start();
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    let name = format!("{}/e2e/bb", reg.host());
    let tagged = format!("{name}:v1");
    d.docker_ok(&["tag", "busybox:latest", &tagged]);

    let out = d.docker_ok(&["push", &tagged]);
    assert!(
        out.contains(&format!("The push refers to repository [{name}]")),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out);
    assert!(
        inspect(&d, &tagged, "{{json .RepoDigests}}").contains(&format!("{name}@{digest}")),
        "push records the RepoDigest"
    );
    // Pushing again uploads nothing.
    let again = d.docker_ok(&["push", &tagged]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");
    assert_eq!(pushed_digest(&again), digest);

    // A daemon without the image pulls it by tag: same id, same digest, progress output.
    let fresh = Daemon::start();
    let out = fresh.docker_ok(&["pull", &tagged]);
    for want in [
        "v1: Pulling from e2e/bb",
        "Pulling fs layer",
        "Download complete",
        "Pull complete",
        &format!("Digest: {digest}"),
        &format!("Status: Downloaded newer image for {tagged}"),
    ] {
        assert!(
            out.contains(want),
            "missing {want:?} in pull output:\n{out}"
        );
    }
    assert_eq!(inspect(&fresh, &tagged, "{{.Id}}"), id);
    assert!(
        inspect(&fresh, &tagged, "{{json .RepoDigests}}").contains(&format!("{name}@{digest}"))
    );
    let run = fresh.docker_ok(&["run", "--rm", &tagged, "echo", "pulled-and-ran"]);
    assert_eq!(run, "pulled-and-ran");
    let out = fresh.docker_ok(&["pull", &tagged]);
    assert!(out.contains("Status: Image is up to date for"), "{out}");

    // Docker's per-layer sequence on the API stream (the CLI hides progress lines when not
    // on a terminal): the layer is unpacked ("Extracting") after its download and reported
    // "Pull complete" before the final digest line.
    let fourth = Daemon::start();
    let lines = api_pull(&fourth, &name);
    let at = |status: &str| {
        lines
            .iter()
            .position(|l| l["status"] == status)
            .unwrap_or_else(|| panic!("no {status:?} in {lines:?}"))
    };
    let extracting = &lines[at("Extracting")];
    assert!(
        extracting["progressDetail"]["total"].as_u64() > Some(0),
        "{extracting}"
    );
    assert_eq!(extracting["id"], lines[at("Pull complete")]["id"]);
    let digest_line = lines
        .iter()
        .position(|l| {
            l["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("Digest: "))
        })
        .expect("digest line");
    assert!(
        at("Pulling fs layer") < at("Download complete")
            && at("Download complete") <= at("Extracting")
            && at("Extracting") < at("Pull complete")
            && at("Pull complete") < digest_line,
        "order of {lines:?}"
    );

    // By digest, into a third daemon.
    let third = Daemon::start();
    let by_digest = format!("{name}@{digest}");
    let out = third.docker_ok(&["pull", &by_digest]);
    assert!(
        out.contains(&format!("{digest}: Pulling from e2e/bb")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{out}"
    );
    assert_eq!(inspect(&third, &by_digest, "{{.Id}}"), id);

    // The raw API stream carries Docker's JSON messages.
    let lines = api_pull(&third, &name);
    assert_eq!(lines[0]["status"], "Pulling from e2e/bb");
    assert_eq!(lines[0]["id"], "v1");
    assert!(
        lines
            .iter()
            .any(|l| l["status"] == "Already exists" && l["progressDetail"].is_object())
    );
}

#[test]
#[ignore = "needs root"]
fn pulling_an_image_whose_layers_are_present_downloads_nothing() {
    let reg = Registry::start();
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let tagged = format!("{}/lib/bb:1", reg.host());
    d.docker_ok(&["tag", "busybox:latest", &tagged]);
    let digest = pushed_digest(&d.docker_ok(&["push", &tagged]));
    let layer = inspect(&d, &tagged, "{{index .RootFS.Layers 0}}");
    d.docker_ok(&["rmi", &tagged]);
    // busybox:latest keeps the layer; the pull must fetch manifest and config only.
    let before = reg.requests().len();
    let out = d.docker_ok(&["pull", &tagged]);
    assert!(out.contains("Already exists"), "{out}");
    assert!(!out.contains("Pull complete"), "{out}");
    assert!(!out.contains("Downloading"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let served: Vec<String> = reg.requests()[before..].to_vec();
    assert!(
        !served
            .iter()
            .any(|r| r.starts_with("GET") && r.ends_with(&layer)),
        "the layer blob was downloaded although present: {served:?}"
    );
    assert!(
        served.iter().any(|r| r.contains("/manifests/1")),
        "the manifest was resolved: {served:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn login_stores_credentials_that_push_and_pull_use() {
    let reg = Registry::start_with_users(&[("alice", "s3cret")]);
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let tagged = format!("{}/private/bb:v1", reg.host());
    d.docker_ok(&["tag", "busybox:latest", &tagged]);

    let denied = d.docker(&["push", &tagged]);
    assert!(!denied.status.success(), "push without login must fail");
    assert!(text(&denied).contains("unauthorized"), "{}", text(&denied));

    let wrong = d.docker_stdin(
        &["login", &reg.host(), "-u", "alice", "--password-stdin"],
        b"wrong\n",
    );
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("401 Unauthorized"),
        "{}",
        text(&wrong)
    );

    let ok = d.docker_stdin(
        &["login", &reg.host(), "-u", "alice", "--password-stdin"],
        b"s3cret\n",
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("Login Succeeded"));
    let config_path = d.scratch().join("../docker-config/config.json");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("docker config written"))
            .expect("config JSON");
    // base64("alice:s3cret")
    assert_eq!(config["auths"][reg.host()]["auth"], "YWxpY2U6czNjcmV0");

    let digest = pushed_digest(&d.docker_ok(&["push", &tagged]));
    d.docker_ok(&["rmi", &tagged]);
    let out = d.docker_ok(&["pull", &tagged]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");

    d.docker_ok(&["logout", &reg.host()]);
    d.docker_ok(&["rmi", &tagged]);
    let denied = d.docker(&["pull", &tagged]);
    assert!(!denied.status.success());
    assert!(
        text(&denied).contains("pull access denied"),
        "{}",
        text(&denied)
    );
}

#[test]
#[ignore = "needs root"]
fn python_sdk_logs_in_pushes_and_pulls() {
    let reg = Registry::start_with_users(&[("bob", "pw-9")]);
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    let out = d.python("registry_pull_push.py", &[&reg.host(), "bob", "pw-9", &id]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK"),
        "python failed ({}):\n{}\ndaemon log:\n{}",
        out.status,
        text(&out),
        tail(&d.log(), 30)
    );
}

#[test]
#[ignore = "needs root"]
fn bad_pull_and_push_requests_get_docker_errors() {
    let reg = Registry::start();
    let d = Daemon::start();
    let missing = d.docker(&["pull", &format!("{}/nope/x:1", reg.host())]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("not found: name unknown"),
        "{}",
        text(&missing)
    );
    let r = d.api(
        "POST",
        &format!("/images/create?fromImage={}/nope/x&tag=1", reg.host()),
        None,
    );
    assert_eq!(r.status, 404);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("not found")
    );
    let r = d.api("POST", "/images/create?fromImage=Bad%2F..%2Fx", None);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("invalid reference format")
    );
    let r = d.api(
        "POST",
        &format!("/images/{}/none/push?tag=1", reg.host()),
        None,
    );
    assert_eq!(r.status, 404);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not exist locally")
    );
    let bad_auth = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "X-Registry-Auth: %%%", "--unix-socket"])
        .arg(d.socket())
        .arg("http://berth/images/create?fromImage=busybox")
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&bad_auth.stdout), "400");
    let refused = d.docker(&["pull", "127.0.0.1:1/x:1"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("Connection refused"),
        "{}",
        text(&refused)
    );
}

/// The machine's first non-loopback IPv4 address, if it has one.
fn non_loopback_ipv4() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
}

#[test]
#[ignore = "needs root"]
fn insecure_registry_flag_selects_plain_http_for_other_hosts() {
    let Some(ip) = non_loopback_ipv4() else {
        eprintln!("SKIPPED: this machine has no non-loopback IPv4 address to serve a registry on");
        return;
    };
    // A registry on a non-loopback address of this machine (traffic stays local).
    let port = berth_tests::registry::free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(berth_tests::berth_bin())
        .args(["registry", "--root"])
        .arg(dir.path())
        .args(["--addr", &format!("{ip}:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start registry");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect((ip.as_str(), port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "registry did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let host = format!("{ip}:{port}");
    let tagged = format!("{host}/x/bb:1");

    let secure = Daemon::start();
    secure.load_busybox("busybox:latest");
    secure.docker_ok(&["tag", "busybox:latest", &tagged]);
    let out = secure.docker(&["push", &tagged]);
    assert!(!out.status.success(), "HTTPS to a plain registry must fail");
    assert!(text(&out).contains("https://"), "{}", text(&out));

    let insecure = Daemon::start_with(&["--insecure-registry", &host]);
    insecure.load_busybox("busybox:latest");
    insecure.docker_ok(&["tag", "busybox:latest", &tagged]);
    let digest = pushed_digest(&insecure.docker_ok(&["push", &tagged]));
    insecure.docker_ok(&["rmi", &tagged]);
    assert!(insecure.docker_ok(&["pull", &tagged]).contains(&digest));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
#[ignore = "needs root"]
fn interrupted_push_and_pull_complete_on_retry() {
    let mut reg = Registry::start();
    let d = Daemon::start();
    let name = format!("{}/big/img:1", reg.host());
    let id = import_big(&d, &name, 96);

    // Push, and SIGKILL the registry once the layer upload is under way.
    let push = d
        .docker_cmd(&["push", &name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn docker push");
    let uploads = reg.root().join("uploads");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let written: u64 = std::fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        if written > 4 << 20 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "upload never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    reg.kill();
    let out = push.wait_with_output().expect("docker push");
    assert!(
        !out.status.success(),
        "push against a killed registry must fail"
    );
    reg.start_again();
    // Nothing half-written is visible: the catalog has no such repository yet.
    let tags = std::process::Command::new("curl")
        .args(["-s", &format!("http://{}/v2/big/img/tags/list", reg.host())])
        .output()
        .expect("curl");
    assert!(
        !String::from_utf8_lossy(&tags.stdout).contains("\"1\""),
        "no manifest was acknowledged, so none may be visible"
    );
    let digest = pushed_digest(&d.docker_ok(&["push", &name]));

    // Pull through a proxy that drops the connection 8 MiB into the first long transfer.
    let proxy = CuttingProxy::start(reg.port(), 8 << 20);
    let via = format!("127.0.0.1:{}/big/img:1", proxy.port());
    let fresh = Daemon::start();
    let out = fresh.docker(&["pull", &via]);
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the transfer was cut"
    );
    assert!(
        !out.status.success(),
        "a cut pull must fail: {}",
        text(&out)
    );
    assert!(
        !fresh.docker_ok(&["images", "-q"]).contains(&id[7..19]),
        "no half image after a failed pull"
    );
    assert!(
        !has_files_named(&fresh.root(), ".tmp-"),
        "no temporary download left behind"
    );
    let out = fresh.docker_ok(&["pull", &via]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(inspect(&fresh, &via, "{{.Id}}"), id);
    assert_eq!(file_size(&fresh, &via, "/data/blob"), 96 << 20);
}

/// Size in bytes of `path` in a container of `image`.
fn file_size(d: &Daemon, image: &str, path: &str) -> u64 {
    let out = d.docker_ok(&[
        "run",
        "--rm",
        image,
        "/bin/busybox",
        "stat",
        "-c",
        "%s",
        path,
    ]);
    out.trim().parse().expect("a size")
}

/// A pull waiting on a slow registry holds no lock over the image store: other image
/// operations (an import, an rmi with its garbage collection) go on meanwhile, and the layer
/// the pull already unpacked survives that collection.
#[test]
#[ignore = "needs root"]
fn a_stalled_pull_blocks_no_other_image_operation() {
    let reg = Registry::start();
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = format!("{}/slow/img:1", reg.host());
    // Two layers: busybox, then 32 MiB of random data.
    d.docker_ok(&[
        "run",
        "--name",
        "mk",
        "busybox:latest",
        "/bin/busybox",
        "dd",
        "if=/dev/urandom",
        "of=/big",
        "bs=1048576",
        "count=32",
    ]);
    d.docker_ok(&["commit", "mk", &name]);
    d.docker_ok(&["push", &name]);
    let id = inspect(&d, &name, "{{.Id}}");
    let base = inspect(&d, &name, "{{index .RootFS.Layers 0}}");

    let proxy = CuttingProxy::start_stalling(reg.port(), 8 << 20);
    let via = format!("127.0.0.1:{}/slow/img:1", proxy.port());
    let fresh = Daemon::start();
    let mut pull = fresh
        .docker_cmd(&["pull", &via])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn docker pull");
    let base_layer = fresh
        .root()
        .join("image/layers")
        .join(base.trim_start_matches("sha256:"))
        .join("layer.json");
    assert!(
        berth_tests::eventually(std::time::Duration::from_secs(120), || {
            proxy.cut.load(std::sync::atomic::Ordering::SeqCst) && base_layer.exists()
        }),
        "the top layer's download never stalled after the base layer was unpacked"
    );
    let started = std::time::Instant::now();
    import_big(&fresh, "other:1", 1);
    fresh.docker_ok(&["rmi", "other:1"]);
    if pull.try_wait().expect("pull status").is_some() {
        let out = pull.wait_with_output().expect("docker pull");
        panic!(
            "the pull ended while its download was held back (import and rmi took {:?}): {}\n{}",
            started.elapsed(),
            text(&out),
            tail(&fresh.log(), 30)
        );
    }
    assert!(
        base_layer.exists(),
        "garbage collection took a layer the pull in progress had unpacked"
    );
    proxy.release();
    let out = pull.wait_with_output().expect("docker pull");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inspect(&fresh, &via, "{{.Id}}"), id);
    assert_eq!(file_size(&fresh, &via, "/big"), 32 << 20);
}

/// `podman` with its own storage under `dir` (vfs: no mounts to clean up).
fn podman(dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new("podman")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs", "--events-backend", "none"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run podman")
}

#[test]
#[ignore = "needs root"]
fn podman_and_berth_exchange_images_with_equal_digests() {
    let dir = tempfile::tempdir().expect("tempdir");
    // scripts/deps installs podman: a machine without it fails here instead of passing.
    let version = std::process::Command::new("podman")
        .arg("--version")
        .output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "podman cannot run here ({version:?}); scripts/deps installs it"
    );
    let reg = Registry::start();
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    let name = format!("{}/interop/bb", reg.host());
    d.docker_ok(&["tag", "busybox:latest", &format!("{name}:berth")]);
    let digest = pushed_digest(&d.docker_ok(&["push", &format!("{name}:berth")]));

    // berth → podman: same manifest digest and image id.
    let out = podman(
        dir.path(),
        &["pull", "--tls-verify=false", &format!("{name}:berth")],
    );
    assert!(out.status.success(), "podman pull: {}", text(&out));
    let out = podman(
        dir.path(),
        &[
            "images",
            "--digests",
            "--no-trunc",
            "--format",
            "{{.Digest}} {{.ID}}",
        ],
    );
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains(&digest),
        "podman sees {listed}, berth pushed {digest}"
    );
    assert!(
        listed.contains(&id[7..]),
        "podman image id {listed} vs {id}"
    );

    // podman → berth: an image podman imported itself, pushed with the gzip layers podman
    // compresses from its local storage.
    let rootfs = dir.path().join("rootfs.tar");
    let mut tar = berth_tests::fixtures::TarBuilder::new();
    tar.file(
        "bin/busybox",
        0o755,
        &std::fs::read(berth_tests::BUSYBOX).expect("busybox"),
    )
    .symlink("bin/echo", "busybox")
    .file("etc/made-by", 0o644, b"podman\n");
    std::fs::write(&rootfs, tar.finish()).expect("write rootfs");
    let local = "localhost/podman-made:1";
    let out = podman(
        dir.path(),
        &["import", rootfs.to_str().expect("path"), local],
    );
    assert!(out.status.success(), "podman import: {}", text(&out));
    let podman_id = String::from_utf8_lossy(
        &podman(dir.path(), &["inspect", "--format", "{{.Id}}", local]).stdout,
    )
    .trim()
    .to_string();
    let digest_file = dir.path().join("digest");
    let out = podman(
        dir.path(),
        &[
            "push",
            "--tls-verify=false",
            "--compression-format",
            "gzip",
            "--digestfile",
            digest_file.to_str().expect("path"),
            local,
            &format!("{name}:podman"),
        ],
    );
    assert!(out.status.success(), "podman push: {}", text(&out));
    let podman_digest = std::fs::read_to_string(&digest_file).expect("digest file");
    let manifest = std::process::Command::new("curl")
        .args([
            "-s",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .arg(format!(
            "http://{}/v2/interop/bb/manifests/podman",
            reg.host()
        ))
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&manifest.stdout).contains("gzip"),
        "podman pushed compressed layers: {}",
        String::from_utf8_lossy(&manifest.stdout)
    );
    let fresh = Daemon::start();
    let out = fresh.docker_ok(&["pull", &format!("{name}:podman")]);
    assert!(
        out.contains(&format!("Digest: {}", podman_digest.trim())),
        "{out}"
    );
    assert_eq!(
        inspect(&fresh, &format!("{name}:podman"), "{{.Id}}"),
        format!("sha256:{podman_id}")
    );
    assert_eq!(
        fresh.docker_ok(&[
            "run",
            "--rm",
            &format!("{name}:podman"),
            "echo",
            "from-podman"
        ]),
        "from-podman"
    );
}

#[test]
#[ignore = "needs root"]
fn berth_cli_logs_in_pushes_and_pulls() {
    let reg = Registry::start_with_users(&[("carol", "pw-c")]);
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    let config_dir = d.scratch().join("berth-config");
    let berth = |args: &[&str], stdin: &[u8]| -> Output {
        use std::io::Write as _;
        let mut child = std::process::Command::new(berth_tests::berth_bin())
            .args(args)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", &config_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn berth");
        let _ = child.stdin.take().expect("stdin").write_all(stdin);
        child.wait_with_output().expect("berth output")
    };
    let tagged = format!("{}/cli/bb:1", reg.host());
    d.docker_ok(&["tag", "busybox:latest", &tagged]);
    let out = berth(&["push", &tagged], b"");
    assert!(!out.status.success(), "push before login: {}", text(&out));

    let out = berth(
        &["login", &reg.host(), "-u", "carol", "--password-stdin"],
        b"bad\n",
    );
    assert!(!out.status.success(), "{}", text(&out));
    let out = berth(
        &["login", &reg.host(), "-u", "carol", "--password-stdin"],
        b"pw-c\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(config_dir.join("config.json")).expect("config written"),
    )
    .expect("JSON");
    assert_eq!(config["auths"][reg.host()]["auth"], "Y2Fyb2w6cHctYw==");

    let out = berth(&["push", &tagged], b"");
    assert!(out.status.success(), "{}", text(&out));
    let digest = pushed_digest(&text(&out));
    d.docker_ok(&["rmi", &tagged]);
    let out = berth(&["pull", &tagged], b"");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("Digest: {digest}")),
        "{}",
        text(&out)
    );
    assert_eq!(inspect(&d, &tagged, "{{.Id}}"), id);
}

/// GETs manifest `reference` of `repo` from `host` accepting `media_type`: the bytes.
fn manifest_bytes(host: &str, repo: &str, reference: &str, media_type: &str) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "-H", &format!("Accept: {media_type}")])
        .arg(format!("http://{host}/v2/{repo}/manifests/{reference}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET manifest {repo}:{reference}");
    out.stdout
}

/// PUTs `doc` as manifest `tag` of `repo` with its media type.
fn put_manifest(host: &str, repo: &str, tag: &str, doc: &serde_json::Value) {
    let media_type = doc["mediaType"].as_str().expect("mediaType");
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args(["-H", &format!("Content-Type: {media_type}")])
        .args(["--data-binary", &doc.to_string()])
        .arg(format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "201",
        "PUT {repo}:{tag}"
    );
}

/// A multi-platform document listing `entries` (manifest media type, bytes, architecture).
fn platform_list(media_type: &str, entries: &[(&str, &[u8], &str)]) -> serde_json::Value {
    use sha2::Digest as _;
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(mt, bytes, arch)| {
            serde_json::json!({
                "mediaType": mt,
                "digest": format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))),
                "size": bytes.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })
        })
        .collect();
    serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests})
}

#[test]
#[ignore = "needs root"]
fn pull_from_an_index_or_manifest_list_takes_the_linux_amd64_entry() {
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    let reg = Registry::start();
    let host = reg.host();
    let d = Daemon::start();
    // busybox is the amd64 entry; another image stands in for arm64 and is listed first.
    let amd_id = d.load_busybox("busybox:latest");
    d.docker_ok(&["tag", "busybox:latest", &format!("{host}/multi/img:amd64")]);
    d.docker_ok(&["push", &format!("{host}/multi/img:amd64")]);
    let arm_id = import_big(&d, &format!("{host}/multi/img:arm64"), 1);
    assert_ne!(arm_id, amd_id);
    d.docker_ok(&["push", &format!("{host}/multi/img:arm64")]);

    let amd = manifest_bytes(&host, "multi/img", "amd64", OCI_MANIFEST);
    let arm = manifest_bytes(&host, "multi/img", "arm64", OCI_MANIFEST);
    let index = platform_list(
        OCI_INDEX,
        &[(OCI_MANIFEST, &arm, "arm64"), (OCI_MANIFEST, &amd, "amd64")],
    );
    put_manifest(&host, "multi/img", "index", &index);
    let fresh = Daemon::start();
    let out = fresh.docker_ok(&["pull", &format!("{host}/multi/img:index")]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(
        inspect(&fresh, &format!("{host}/multi/img:index"), "{{.Id}}"),
        amd_id,
        "the OCI index must resolve to its linux/amd64 entry"
    );

    // The same with a Docker manifest list of Docker schema 2 manifests (skopeo converts).
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipping the Docker manifest list half: skopeo is not installed");
        return;
    }
    for arch in ["amd64", "arm64"] {
        let out = std::process::Command::new("skopeo")
            .args(["copy", "-q", "--format", "v2s2"])
            .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg(format!("docker://{host}/multi/img:{arch}"))
            .arg(format!("docker://{host}/multi/img:{arch}-v2s2"))
            .output()
            .expect("skopeo");
        assert!(out.status.success(), "skopeo copy: {}", text(&out));
    }
    let amd = manifest_bytes(&host, "multi/img", "amd64-v2s2", DOCKER_MANIFEST);
    let arm = manifest_bytes(&host, "multi/img", "arm64-v2s2", DOCKER_MANIFEST);
    for m in [&amd, &arm] {
        let v: serde_json::Value = serde_json::from_slice(m).expect("manifest JSON");
        assert_eq!(v["mediaType"], DOCKER_MANIFEST, "skopeo wrote schema 2");
    }
    let list = platform_list(
        DOCKER_LIST,
        &[
            (DOCKER_MANIFEST, &arm, "arm64"),
            (DOCKER_MANIFEST, &amd, "amd64"),
        ],
    );
    put_manifest(&host, "multi/img", "list", &list);
    let third = Daemon::start();
    let out = third.docker_ok(&["pull", &format!("{host}/multi/img:list")]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(
        inspect(&third, &format!("{host}/multi/img:list"), "{{.Id}}"),
        amd_id,
        "the Docker manifest list must resolve to its linux/amd64 entry"
    );
}
