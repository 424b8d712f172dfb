//! skopeo against the registry server: copy an OCI layout in, inspect it, copy it back out,
//! and compare digests.

mod support;

use std::process::Command;

async fn skopeo(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("skopeo")
            .args(&args)
            .output()
            .expect("run skopeo");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_round_trips_busybox_with_equal_digests() {
    if !support::have("skopeo") {
        println!("skipping: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let Some(layer) = support::busybox_layer() else {
        println!("skipping: /bin/busybox missing (apt-get install busybox-static)");
        return;
    };
    let s = support::start(None).await;
    let work = tempfile::tempdir().expect("temp dir");
    let src = work.path().join("src");
    let manifest_digest = support::oci_layout(&src, &[layer], "v1");
    let remote = format!("docker://{}/test/busybox:v1", s.addr);

    let (ok, out) = skopeo(vec![
        "copy".into(),
        "--dest-tls-verify=false".into(),
        format!("oci:{}:v1", src.display()),
        remote.clone(),
    ])
    .await;
    assert!(ok, "skopeo copy in: {out}");

    let (ok, raw) = skopeo(vec![
        "inspect".into(),
        "--tls-verify=false".into(),
        "--raw".into(),
        remote.clone(),
    ])
    .await;
    assert!(ok, "skopeo inspect: {raw}");
    assert_eq!(
        support::digest(raw.as_bytes()),
        manifest_digest,
        "manifest stored byte for byte"
    );
    let (ok, info) = skopeo(vec![
        "inspect".into(),
        "--tls-verify=false".into(),
        remote.clone(),
    ])
    .await;
    assert!(ok, "{info}");
    let info: serde_json::Value = serde_json::from_str(&info).expect("inspect json");
    assert_eq!(info["Digest"], manifest_digest.as_str());

    let back = work.path().join("back");
    let by_digest = format!("docker://{}/test/busybox@{manifest_digest}", s.addr);
    let (ok, out) = skopeo(vec![
        "copy".into(),
        "--src-tls-verify=false".into(),
        by_digest,
        format!("oci:{}:v1", back.display()),
    ])
    .await;
    assert!(ok, "skopeo copy out: {out}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["manifests"][0]["digest"], manifest_digest.as_str());
}
