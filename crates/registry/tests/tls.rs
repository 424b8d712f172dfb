//! The registry over HTTPS with a certificate from rcgen, checked with skopeo.

mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reaches_the_registry_over_tls() {
    if !support::have("skopeo") {
        println!("skipping: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let Some(layer) = support::busybox_layer() else {
        println!("skipping: /bin/busybox missing (apt-get install busybox-static)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, key.cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.signing_key.serialize_pem()).expect("write key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = berth_registry::Config {
        root: dir.path().join("data"),
        addr: addr.to_string(),
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..Default::default()
    };
    let stop = berth_registry::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        berth_registry::server::serve(config, listener, token)
            .await
            .expect("serve")
    });

    let src = dir.path().join("src");
    let digest = support::oci_layout(&src, &[layer], "v1");
    let remote = format!("docker://{addr}/tls/busybox:v1");
    let src_arg = format!("oci:{}:v1", src.display());
    let out = tokio::task::spawn_blocking(move || {
        let copy = Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", &src_arg, &remote])
            .output()
            .expect("skopeo");
        assert!(
            copy.status.success(),
            "{}",
            String::from_utf8_lossy(&copy.stderr)
        );
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw", &remote])
            .output()
            .expect("skopeo")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(support::digest(&out.stdout), digest);
    stop.cancel();
}
