//! The client against a registry that demands Bearer tokens: it must fetch a token from the
//! challenge's realm with the service and the repository scope, sending its Basic
//! credentials there, and retry with the token.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use berth_image::Reference;
use berth_registry::client::{Credentials, DockerConfig};
use berth_registry::{ClientConfig, RegistryClient};

const MANIFEST: &str =
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

/// Answers like a token-authenticated registry; records the token requests' query strings.
fn answer(req: &Request<Incoming>, base: &str, seen: &Mutex<Vec<String>>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if path == "/token" {
        let mut s = seen.lock().expect("lock");
        s.push(format!("{} {}", req.uri().query().unwrap_or(""), auth));
        return Response::new(Full::new(Bytes::from(r#"{"token":"t0k3n"}"#)));
    }
    if auth != "Bearer t0k3n" {
        let challenge = format!(
            r#"Bearer realm="{base}/token",service="fake.registry",scope="repository:team/app:pull""#
        );
        return Response::builder()
            .status(401)
            .header("www-authenticate", challenge)
            .body(Full::new(Bytes::new()))
            .expect("response");
    }
    Response::builder()
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(Full::new(Bytes::from(MANIFEST)))
        .expect("response")
}

#[tokio::test]
async fn client_follows_bearer_challenges_with_scope() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (base, seen) = (base.clone(), seen2.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let r = answer(&req, &base, &seen);
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let mut config = DockerConfig::default();
    config.set_credentials(
        &addr.to_string(),
        &Credentials {
            username: "u".into(),
            password: "p".into(),
        },
    );
    let client = RegistryClient::new(ClientConfig::default(), config).expect("client");
    let reference = Reference::parse(&format!("{addr}/team/app:v1")).expect("reference");
    let ep = client.endpoint(&reference);
    let (bytes, _, manifest) = client
        .manifest(&ep, "v1")
        .await
        .expect("manifest through token");
    assert_eq!(bytes, MANIFEST.as_bytes());
    assert!(manifest.is_index());
    client
        .manifest(&ep, "v1")
        .await
        .expect("second fetch reuses the token");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "token cached per scope: {seen:?}");
    assert!(seen[0].contains("service=fake.registry"), "{seen:?}");
    assert!(
        seen[0].contains("scope=repository:team/app:pull"),
        "{seen:?}"
    );
    assert!(
        seen[0].ends_with("Basic dTpw"),
        "credentials sent to the token endpoint: {seen:?}"
    );
}
