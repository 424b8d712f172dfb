//! The registry server's HTTP API with a plain HTTP client: uploads, ranges, manifests,
//! listing, error codes, authentication and garbage collection.

mod support;

use support::{call, digest, start};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn put_blob(base: &str, repo: &str, data: &[u8]) -> String {
    let d = digest(data);
    let r = call(
        "POST",
        &format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"),
        &[],
        data.to_vec(),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    d
}

fn manifest_for(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(l), "size": l.len()}))
        .collect();
    // Odd spacing on purpose: the registry must keep the bytes as sent.
    format!(
        "{{ \"schemaVersion\": 2,\n \"mediaType\": \"{OCI_MANIFEST}\", \"config\": {{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}}, \"layers\": {} }}",
        digest(config),
        config.len(),
        serde_json::Value::Array(layers)
    )
    .into_bytes()
}

#[tokio::test]
async fn version_check_answers_with_api_header() {
    let s = start(None).await;
    let r = call("GET", &format!("{}/v2/", s.base()), &[], vec![]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn chunked_upload_checks_order_and_digest() {
    let s = start(None).await;
    let base = s.base();
    let data = b"hello chunked world".to_vec();
    let r = call(
        "POST",
        &format!("{base}/v2/a/b/blobs/uploads/"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 202);
    let loc = format!("{base}{}", r.header("location"));
    let r = call(
        "PATCH",
        &loc,
        &[("content-range", "0-4")],
        data[..5].to_vec(),
    )
    .await;
    assert_eq!((r.status, r.header("range")), (202, "0-4".to_string()));
    let r = call(
        "PATCH",
        &loc,
        &[("content-range", "9-12")],
        data[9..13].to_vec(),
    )
    .await;
    assert_eq!(r.status, 416, "out-of-order chunk");
    let r = call(
        "PATCH",
        &loc,
        &[("content-range", "5-18")],
        data[5..].to_vec(),
    )
    .await;
    assert_eq!(r.status, 202);
    let r = call("GET", &loc, &[], vec![]).await;
    assert_eq!((r.status, r.header("range")), (204, "0-18".to_string()));
    let wrong = digest(b"other");
    let r = call("PUT", &format!("{loc}?digest={wrong}"), &[], vec![]).await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "DIGEST_INVALID".to_string())
    );
    let r = call(
        "PUT",
        &format!("{loc}?digest={}", digest(&data)),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404, "a failed finish ends the session");

    let r = call(
        "POST",
        &format!("{base}/v2/a/b/blobs/uploads/"),
        &[],
        vec![],
    )
    .await;
    let loc = format!("{base}{}", r.header("location"));
    call("PATCH", &loc, &[], data[..7].to_vec()).await;
    let r = call(
        "PUT",
        &format!("{loc}?digest={}", digest(&data).replace(':', "%3A")),
        &[],
        data[7..].to_vec(),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), digest(&data));
    let blob = format!("{base}/v2/a/b/blobs/{}", digest(&data));
    let r = call("GET", &blob, &[("range", "bytes=6-12")], vec![]).await;
    assert_eq!((r.status, &r.body[..]), (206, &b"chunked"[..]));
    assert_eq!(r.header("content-range"), "bytes 6-12/19");
    let r = call("HEAD", &blob, &[], vec![]).await;
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, "19".to_string())
    );
    let r = call("GET", &blob, &[("range", "bytes=50-")], vec![]).await;
    assert_eq!(r.status, 416);

    let r = call(
        "POST",
        &format!("{base}/v2/a/b/blobs/uploads/"),
        &[],
        vec![],
    )
    .await;
    let loc = format!("{base}{}", r.header("location"));
    assert_eq!(call("DELETE", &loc, &[], vec![]).await.status, 204);
    assert_eq!(
        call("GET", &loc, &[], vec![]).await.error_code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn manifests_are_served_byte_for_byte_and_listed() {
    let s = start(None).await;
    let base = s.base();
    let (layer, config) = (b"layer-bytes".to_vec(), b"{\"rootfs\":{}}".to_vec());
    let manifest = manifest_for(&config, &[&layer]);
    let url = format!("{base}/v2/lib/app/manifests/v1");
    let r = call(
        "PUT",
        &url,
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "MANIFEST_BLOB_UNKNOWN".to_string())
    );
    put_blob(&base, "lib/app", &layer).await;
    put_blob(&base, "lib/app", &config).await;
    let r = call(
        "PUT",
        &url,
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let md = digest(&manifest);
    assert_eq!(r.header("docker-content-digest"), md);
    for reference in ["v1", md.as_str()] {
        let r = call(
            "GET",
            &format!("{base}/v2/lib/app/manifests/{reference}"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], &manifest[..]);
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), md);
    }
    for t in ["v2", "v3", "v4"] {
        let r = call(
            "PUT",
            &format!("{base}/v2/lib/app/manifests/{t}"),
            &[("content-type", OCI_MANIFEST)],
            manifest.clone(),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    let r = call(
        "GET",
        &format!("{base}/v2/lib/app/tags/list?n=2"),
        &[],
        vec![],
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["tags"], serde_json::json!(["v1", "v2"]));
    assert_eq!(
        r.header("link"),
        "</v2/lib/app/tags/list?n=2&last=v2>; rel=\"next\""
    );
    let r = call(
        "GET",
        &format!("{base}/v2/lib/app/tags/list?n=2&last=v2"),
        &[],
        vec![],
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["tags"], serde_json::json!(["v3", "v4"]));
    assert_eq!(r.header("link"), "");
    put_blob(&base, "other", b"x").await;
    let r = call("GET", &format!("{base}/v2/_catalog?n=1"), &[], vec![]).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["repositories"], serde_json::json!(["lib/app"]));
    assert!(r.header("link").contains("last=lib/app"));

    let r = call(
        "DELETE",
        &format!("{base}/v2/lib/app/manifests/{md}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 202);
    let r = call(
        "GET",
        &format!("{base}/v2/lib/app/manifests/v3"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        (r.status, r.error_code()),
        (404, "MANIFEST_UNKNOWN".to_string())
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_spec_codes() {
    let s = start(None).await;
    let base = s.base();
    let code = |r: support::Reply| (r.status, r.error_code());
    for name in ["a/../etc", "../x", "UPPER", "a//b", "%2e%2e/x"] {
        let r = call("GET", &format!("{base}/v2/{name}/tags/list"), &[], vec![]).await;
        assert_eq!(code(r), (400, "NAME_INVALID".into()), "{name}");
    }
    let r = call("GET", &format!("{base}/v2/nobody/tags/list"), &[], vec![]).await;
    assert_eq!(code(r), (404, "NAME_UNKNOWN".into()));
    let r = call(
        "GET",
        &format!("{base}/v2/nobody/blobs/sha256:zz"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
    let r = call(
        "GET",
        &format!("{base}/v2/nobody/blobs/{}", digest(b"none")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(code(r), (404, "BLOB_UNKNOWN".into()));
    let r = call(
        "POST",
        &format!("{base}/v2/x/blobs/uploads/?digest={}", digest(b"a")),
        &[],
        b"b".to_vec(),
    )
    .await;
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
    let url = format!("{base}/v2/x/manifests/latest");
    let r = call(
        "PUT",
        &url,
        &[("content-type", OCI_MANIFEST)],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(code(r), (400, "MANIFEST_INVALID".into()));
    let big = vec![b' '; (4 << 20) + 1];
    let r = call("PUT", &url, &[("content-type", OCI_MANIFEST)], big).await;
    assert_eq!(r.status, 413);
    let m = manifest_for(b"c", &[]);
    let r = call(
        "PUT",
        &format!("{base}/v2/x/manifests/{}", digest(b"not it")),
        &[("content-type", OCI_MANIFEST)],
        m,
    )
    .await;
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
    let r = call(
        "PUT",
        &format!("{base}/v2/x/manifests/sha256:abc"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
}

#[tokio::test]
async fn cross_repository_mount_and_blob_delete() {
    let s = start(None).await;
    let base = s.base();
    let d = put_blob(&base, "src", b"shared layer").await;
    let r = call(
        "POST",
        &format!("{base}/v2/dst/blobs/uploads/?mount={d}&from=src"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(
        call("HEAD", &format!("{base}/v2/dst/blobs/{d}"), &[], vec![])
            .await
            .status,
        200
    );
    let r = call(
        "POST",
        &format!(
            "{base}/v2/dst/blobs/uploads/?mount={}&from=src",
            digest(b"nope")
        ),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 202, "unmountable blob starts an upload");
    assert_eq!(
        call("DELETE", &format!("{base}/v2/dst/blobs/{d}"), &[], vec![])
            .await
            .status,
        202
    );
    assert_eq!(
        call("HEAD", &format!("{base}/v2/dst/blobs/{d}"), &[], vec![])
            .await
            .status,
        404
    );
    assert_eq!(
        call("HEAD", &format!("{base}/v2/src/blobs/{d}"), &[], vec![])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn htpasswd_requires_basic_credentials() {
    let hash = bcrypt::hash("s3cret", 4).expect("hash");
    let s = start(Some(&format!("alice:{hash}\n"))).await;
    let url = format!("{}/v2/", s.base());
    let r = call("GET", &url, &[], vec![]).await;
    assert_eq!((r.status, r.error_code()), (401, "UNAUTHORIZED".into()));
    assert_eq!(
        r.header("www-authenticate"),
        "Basic realm=\"berth-registry\""
    );
    use base64::Engine as _;
    let enc = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    let r = call(
        "GET",
        &url,
        &[("authorization", &enc("alice:wrong"))],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = call(
        "GET",
        &url,
        &[("authorization", &enc("alice:s3cret"))],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn gc_removes_only_unreferenced_blobs() {
    let s = start(None).await;
    let base = s.base();
    let (layer, config) = (b"kept layer".to_vec(), b"{}".to_vec());
    put_blob(&base, "g", &layer).await;
    put_blob(&base, "g", &config).await;
    let orphan = put_blob(&base, "g", b"orphan").await;
    let manifest = manifest_for(&config, &[&layer]);
    let r = call(
        "PUT",
        &format!("{base}/v2/g/manifests/t"),
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(r.status, 201);
    s.stop.cancel();
    let storage = berth_registry::Storage::open(&s.root.path().join("data")).expect("open");
    let report = storage.collect_garbage().expect("gc");
    assert_eq!(
        report
            .removed
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        vec![orphan]
    );
    assert_eq!(report.kept, 3);
    let m = storage
        .manifest(
            "g",
            &berth_registry::name::Digest::parse(&digest(&manifest)).expect("digest"),
        )
        .expect("kept");
    assert_eq!(m.bytes, manifest);
}
