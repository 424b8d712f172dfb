//! The registry client against `berth registry` (in process) and Debian's reference
//! `docker-registry`: push, then pull by tag and by digest into fresh image stores.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use berth_image::{ImageStore, Reference};
use berth_registry::client::DockerConfig;
use berth_registry::{ClientConfig, RegistryClient};

/// A store holding one busybox image tagged `local/bb:latest`, with its id.
fn seeded_store(dir: &std::path::Path) -> Option<(Arc<ImageStore>, String)> {
    let layer = support::busybox_layer()?;
    let extra = support::tar_of(&[("etc/motd", b"hello\n")]);
    let layers = vec![layer, extra];
    let config = support::config_for(&layers);
    let store = ImageStore::open(dir).expect("open store");
    let mut open = |i: usize| -> Result<Box<dyn std::io::Read>, berth_image::ImageError> {
        Ok(Box::new(std::io::Cursor::new(layers[i].clone())))
    };
    let id = store
        .add_image(&config, &mut open, Some("local/bb:latest"), None)
        .expect("add image");
    Some((Arc::new(store), id))
}

async fn round_trip(registry: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    let Some((store, id)) = seeded_store(&work.path().join("a")) else {
        println!("skipping: /bin/busybox missing");
        return;
    };
    let client =
        RegistryClient::new(ClientConfig::default(), DockerConfig::default()).expect("client");
    let target = Reference::parse(&format!("{registry}/test/bb:v1")).expect("reference");
    let pushed = client
        .push(store.clone(), "local/bb:latest", &target, None, &|_| {})
        .await
        .expect("push");
    assert_eq!(pushed.blobs_uploaded, 3);
    let again = client
        .push(store, "local/bb:latest", &target, None, &|_| {})
        .await
        .expect("second push");
    assert_eq!(
        (again.blobs_uploaded, &again.manifest_digest),
        (0, &pushed.manifest_digest)
    );

    let fresh = Arc::new(ImageStore::open(&work.path().join("b")).expect("store"));
    let pulled = client
        .pull(fresh.clone(), &target, &|_| {})
        .await
        .expect("pull by tag");
    assert_eq!(pulled.image_id, id);
    assert_eq!(pulled.manifest_digest, pushed.manifest_digest);
    assert_eq!(pulled.layers_downloaded, 2);
    let second = client
        .pull(fresh.clone(), &target, &|_| {})
        .await
        .expect("second pull");
    assert_eq!(
        (second.layers_downloaded, second.bytes_downloaded),
        (0, 0),
        "second pull downloads nothing"
    );

    let by_digest = Reference::parse(&format!("{registry}/test/bb@{}", pushed.manifest_digest))
        .expect("reference");
    let other = Arc::new(ImageStore::open(&work.path().join("c")).expect("store"));
    let pulled = client
        .pull(other.clone(), &by_digest, &|_| {})
        .await
        .expect("pull by digest");
    assert_eq!(pulled.image_id, id);
    let image = other.resolve(&pulled.image_id).expect("image present");
    assert!(
        image
            .digests
            .iter()
            .any(|d| d.ends_with(&pushed.manifest_digest)),
        "{:?}",
        image.digests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pushes_and_pulls_against_berth_registry() {
    let s = support::start(None).await;
    round_trip(&s.addr.to_string()).await;
}

struct RegistryProcess(Child);

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pushes_and_pulls_against_debian_docker_registry() {
    if Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipping: docker-registry is not installed (apt-get install docker-registry)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let _guard = RegistryProcess(child);
    let base = format!("http://127.0.0.1:{port}/v2/");
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = support::call("GET", &base, &[], vec![]).await.status == 200;
            if up {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "docker-registry did not start");
    round_trip(&format!("127.0.0.1:{port}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_uses_docker_config_credentials_for_basic_auth() {
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let s = support::start(Some(&format!("bob:{hash}\n"))).await;
    let work = tempfile::tempdir().expect("temp dir");
    let Some((store, _)) = seeded_store(&work.path().join("a")) else {
        println!("skipping: /bin/busybox missing");
        return;
    };
    let target = Reference::parse(&format!("{}/auth/bb:v1", s.addr)).expect("reference");
    let anonymous =
        RegistryClient::new(ClientConfig::default(), DockerConfig::default()).expect("client");
    let err = anonymous
        .push(store.clone(), "local/bb:latest", &target, None, &|_| {})
        .await;
    assert!(
        matches!(err, Err(berth_registry::ClientError::Unauthorized(_))),
        "{err:?}"
    );
    let creds = berth_registry::client::Credentials {
        username: "bob".into(),
        password: "pw".into(),
    };
    let ep = anonymous.endpoint(&target);
    anonymous.login(&ep, &creds).await.expect("login succeeds");
    let bad = berth_registry::client::Credentials {
        username: "bob".into(),
        password: "no".into(),
    };
    assert!(anonymous.login(&ep, &bad).await.is_err());
    let mut config = DockerConfig::default();
    config.set_credentials(&s.addr.to_string(), &creds);
    let client = RegistryClient::new(ClientConfig::default(), config).expect("client");
    let pushed = client
        .push(store, "local/bb:latest", &target, None, &|_| {})
        .await
        .expect("push with credentials");
    let fresh = Arc::new(ImageStore::open(&work.path().join("b")).expect("store"));
    let pulled = client
        .pull(fresh, &target, &|_| {})
        .await
        .expect("pull with credentials");
    assert_eq!(pulled.manifest_digest, pushed.manifest_digest);
}
