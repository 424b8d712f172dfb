//! Tests of archives: load (docker-archive, OCI layout), save round trips checked with
//! skopeo, and adding pulled images.

use std::fs;
use std::io::Read;

use crate::fixtures::{
    Entry, busybox_layer, config_for, docker_archive, oci_archive, small_layers, store, tar_of,
};
use crate::{ImageError, ImageStore};

#[test]
fn load_docker_archive_indexes_image_and_tags() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let archive = docker_archive(
        &layers,
        &config,
        &["busybox:latest", "localhost:5000/a/b:v1"],
    );
    let loaded = store.load(&mut &archive[..]).expect("load");
    let id = crate::digest::sha256_digest(&config);
    assert_eq!(
        loaded,
        vec![(
            id.clone(),
            vec![
                "busybox:latest".to_string(),
                "localhost:5000/a/b:v1".to_string()
            ]
        )]
    );
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        &id,
        &id[7..19],
        "localhost:5000/a/b:v1",
    ] {
        assert_eq!(store.resolve(name).expect(name).id, id, "{name}");
    }
    let image = store.resolve("busybox").expect("resolve");
    assert_eq!(
        image.tags,
        vec!["docker.io/library/busybox:latest", "localhost:5000/a/b:v1"]
    );
    assert_eq!(
        image.config.config.and_then(|c| c.cmd),
        Some(vec!["sh".to_string()])
    );
    assert_eq!(image.size, 5 + 6 + 4);
    assert_eq!(store.config_bytes(&id).expect("config"), config);
    assert!(
        matches!(store.resolve("nothere"), Err(ImageError::NotFound(m)) if m == "nothere:latest")
    );
    assert_eq!(
        store.resolve("Bad Name").expect_err("invalid").to_string(),
        "invalid reference format"
    );
    // The index survives a reopen.
    let root = store.root().to_path_buf();
    drop(store);
    let again = ImageStore::open(&root).expect("reopen");
    assert_eq!(again.list().expect("list").len(), 1);
    assert_eq!(again.resolve("busybox:latest").expect("resolve").id, id);
}

#[test]
fn load_oci_layout_with_gzip_layers_uses_ref_name() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let archive = oci_archive(&layers, &config, Some("localhost:5000/oci/img:1.0"));
    let loaded = store.load(&mut &archive[..]).expect("load");
    let id = crate::digest::sha256_digest(&config);
    assert_eq!(
        loaded,
        vec![(id.clone(), vec!["localhost:5000/oci/img:1.0".to_string()])]
    );
    let image = store
        .resolve("localhost:5000/oci/img:1.0")
        .expect("resolve");
    assert_eq!(image.digests.len(), 1);
    assert!(image.digests[0].starts_with("localhost:5000/oci/img@sha256:"));
    assert_eq!(store.resolve(&image.digests[0]).expect("by digest").id, id);
    // Layers are stored uncompressed under their diff ids; the gzip blobs are gone.
    let blobs = store.blobs.list().expect("blobs");
    assert_eq!(blobs.len(), 3, "{blobs:?}");
}

#[test]
fn oci_layout_with_bare_tag_loads_untagged() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let loaded = store
        .load(&mut &oci_archive(&layers, &config, Some("latest"))[..])
        .expect("load");
    assert!(loaded[0].1.is_empty());
    assert!(store.list().expect("list")[0].tags.is_empty());
}

#[test]
fn load_rejects_layer_that_does_not_match_diff_id() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let tampered = vec![
        layers[0].clone(),
        tar_of(&[Entry::File("evil".into(), 0o644, b"x".to_vec())]),
    ];
    let archive = docker_archive(&tampered, &config, &["x:1"]);
    let err = store.load(&mut &archive[..]).expect_err("mismatch");
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(store.list().expect("list").is_empty());
    assert!(matches!(store.resolve("x:1"), Err(ImageError::NotFound(_))));
}

#[test]
fn load_rejects_garbage_and_missing_manifest() {
    let (_dir, store) = store();
    assert!(matches!(
        store.load(&mut &[1u8; 2048][..]),
        Err(ImageError::InvalidArchive(_))
    ));
    let only = tar_of(&[Entry::File("hello".into(), 0o644, b"x".to_vec())]);
    assert!(matches!(
        store.load(&mut &only[..]),
        Err(ImageError::InvalidArchive(_))
    ));
}

#[test]
fn save_then_rmi_then_load_gives_same_image_and_is_stable() {
    let Some(layer) = busybox_layer() else { return };
    let (dir, store) = store();
    let layers = vec![layer, small_layers().remove(0)];
    let config = config_for(&layers, &["sh"]);
    let loaded = store
        .load(&mut &docker_archive(&layers, &config, &["busybox:latest"])[..])
        .expect("load");
    let id = loaded[0].0.clone();
    let mut saved = Vec::new();
    store
        .save(&["busybox".to_string()], &mut saved)
        .expect("save");
    let mut again = Vec::new();
    store
        .save(&["busybox:latest".to_string()], &mut again)
        .expect("save");
    assert_eq!(saved, again, "save is deterministic");
    let file = dir.path().join("saved.tar");
    fs::write(&file, &saved).expect("write");
    skopeo_accepts(&format!("docker-archive:{}", file.display()));
    skopeo_accepts(&format!("oci-archive:{}", file.display()));
    let removed = store.remove("busybox", false, &|_| None).expect("rmi");
    assert_eq!(
        removed[0],
        crate::Removed::Untagged("busybox:latest".into())
    );
    assert!(removed.contains(&crate::Removed::Deleted(id.clone())));
    assert!(store.list().expect("list").is_empty());
    let reloaded = store.load(&mut &saved[..]).expect("reload");
    assert_eq!(
        reloaded,
        vec![(id.clone(), vec!["busybox:latest".to_string()])]
    );
    assert_eq!(store.resolve("busybox").expect("resolve").id, id);
}

/// Runs `skopeo inspect` on an archive when skopeo is installed.
fn skopeo_accepts(target: &str) {
    match std::process::Command::new("skopeo")
        .args(["inspect", target])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "skopeo inspect {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("skipping skopeo check: {e}"),
    }
}

#[test]
fn archives_rewritten_by_skopeo_load_back_to_the_same_image() {
    let Some(layer) = busybox_layer() else { return };
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: skopeo not installed");
        return;
    }
    let (dir, store) = store();
    let layers = vec![layer, small_layers().remove(0)];
    let config = config_for(&layers, &["sh"]);
    let id = store
        .load(&mut &docker_archive(&layers, &config, &["busybox:latest"])[..])
        .expect("load")[0]
        .0
        .clone();
    let saved = dir.path().join("saved.tar");
    let mut out = fs::File::create(&saved).expect("create");
    store
        .save(&["busybox:latest".into()], &mut out)
        .expect("save");
    drop(out);
    store.remove(&id, true, &|_| None).expect("rmi");
    for (target, name) in [
        (
            format!("docker-archive:{}/da.tar:copied/da:1", dir.path().display()),
            "copied/da:1",
        ),
        (
            format!(
                "oci-archive:{}/oa.tar:localhost:5000/copied/oa:2",
                dir.path().display()
            ),
            "localhost:5000/copied/oa:2",
        ),
    ] {
        let status = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                &format!("docker-archive:{}", saved.display()),
                &target,
            ])
            .status()
            .expect("skopeo");
        assert!(status.success(), "skopeo copy to {target}");
        let file = target.split(':').nth(1).expect("path").to_string();
        let loaded = store
            .load(&mut fs::File::open(&file).expect("open"))
            .expect(&target);
        let image = store.resolve(name).expect(name);
        assert_eq!(image.id, loaded[0].0);
        // skopeo keeps a docker-archive's config bytes; converting to OCI rewrites the
        // config, so only the layers are the same there.
        if target.starts_with("docker-archive") {
            assert_eq!(image.id, id, "{target}");
        }
        assert_eq!(image.config.rootfs.diff_ids.len(), 2);
        assert_eq!(image.size, store.list().expect("list")[0].size);
    }
}

#[test]
fn add_image_extracts_only_missing_layers_and_records_digest() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    assert_eq!(store.missing_layers(&config).expect("missing"), vec![0, 1]);
    let gz: Vec<Vec<u8>> = layers.iter().map(|l| crate::fixtures::gzip(l)).collect();
    let mut opened = Vec::new();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let id = store
        .add_image(
            &config,
            &mut |i| {
                opened.push(i);
                Ok(Box::new(std::io::Cursor::new(gz[i].clone())))
            },
            Some("localhost:5000/pulled"),
            Some(&format!("localhost:5000/pulled@{digest}")),
        )
        .expect("add");
    assert_eq!(opened, vec![0, 1]);
    assert_eq!(id, crate::digest::sha256_digest(&config));
    assert!(store.missing_layers(&config).expect("missing").is_empty());
    let image = store
        .resolve("localhost:5000/pulled:latest")
        .expect("resolve");
    assert_eq!(
        image.digests,
        vec![format!("localhost:5000/pulled@{digest}")]
    );
    let mut tar = Vec::new();
    store
        .open_layer(&image.config.rootfs.diff_ids[0])
        .expect("layer")
        .read_to_end(&mut tar)
        .expect("read");
    assert_eq!(tar, layers[0]);
    // A second image sharing the base layer only opens its own layer.
    let other = vec![
        layers[0].clone(),
        tar_of(&[Entry::File("z".into(), 0o644, b"z".to_vec())]),
    ];
    let config2 = config_for(&other, &["z"]);
    let mut opened2 = Vec::new();
    store
        .add_image(
            &config2,
            &mut |i| {
                opened2.push(i);
                Ok(Box::new(std::io::Cursor::new(other[i].clone())))
            },
            None,
            None,
        )
        .expect("add second");
    assert_eq!(opened2, vec![1]);
    // A layer that does not match its diff id is refused.
    let bad = config_for(&[b"not this".to_vec()], &["x"]);
    let err = store
        .add_image(
            &bad,
            &mut |_| Ok(Box::new(std::io::Cursor::new(layers[0].clone()))),
            None,
            None,
        )
        .expect_err("mismatch");
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn add_image_adopts_an_offered_plain_layer_file_instead_of_copying_it() {
    use std::os::unix::fs::MetadataExt;
    let (dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let parsed: crate::ImageConfig = serde_json::from_slice(&config).expect("config");
    let diff_ids = parsed.rootfs.diff_ids.clone();
    // Layer 0 arrives as a plain tar whose file is offered, layer 1 gzipped (offered too,
    // under its own digest, which is not its diff id: it must be copied as before).
    let files: Vec<std::path::PathBuf> = (0..2)
        .map(|i| store.root().join(format!(".tmp-test{i}")))
        .collect();
    std::fs::write(&files[0], &layers[0]).expect("write");
    let gz1 = crate::fixtures::gzip(&layers[1]);
    std::fs::write(&files[1], &gz1).expect("write");
    let offers = vec![
        store.offer_blob(&diff_ids[0], &files[0]),
        store.offer_blob(&crate::digest::sha256_digest(&gz1), &files[1]),
    ];
    store
        .add_image(
            &config,
            &mut |i| Ok(Box::new(fs::File::open(&files[i]).expect("open"))),
            Some("local/offered"),
            None,
        )
        .expect("add");
    drop(offers);
    let blob = |d: &str| {
        let mut f = store.open_layer(d).expect("layer");
        let ino = f.metadata().expect("meta").ino();
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read");
        (ino, data)
    };
    let (ino0, data0) = blob(&diff_ids[0]);
    assert_eq!(data0, layers[0]);
    assert_eq!(ino0, std::fs::metadata(&files[0]).expect("meta").ino());
    let (ino1, data1) = blob(&diff_ids[1]);
    assert_eq!(data1, layers[1]);
    assert_ne!(ino1, std::fs::metadata(&files[1]).expect("meta").ino());
    // An offer covers its own thread's ingests only: an ingest elsewhere whose stream is
    // not the diff id is still hashed and refused, and never adopts the offered file.
    let other = tar_of(&[Entry::File("q".into(), 0o644, b"q".to_vec())]);
    let bad_config = config_for(&[b"not this".to_vec()], &["x"]);
    let bad_diff = serde_json::from_slice::<crate::ImageConfig>(&bad_config)
        .expect("config")
        .rootfs
        .diff_ids[0]
        .clone();
    let bad_file = store.root().join(".tmp-bad");
    std::fs::write(&bad_file, &other).expect("write");
    let _offer = store.offer_blob(&bad_diff, &bad_file);
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            store.add_image(
                &bad_config,
                &mut |_| Ok(Box::new(fs::File::open(&bad_file).expect("open"))),
                None,
                None,
            )
        })
        .join()
        .expect("thread")
    })
    .expect_err("mismatch");
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(store.open_layer(&bad_diff).is_err());
    drop(dir);
}

#[test]
fn legacy_archive_with_symlinked_layer_tar_loads_both_images() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config_a = config_for(&layers[..1], &["a"]);
    let config_b = config_for(&layers[..1], &["b"]);
    let hex_a = &crate::digest::sha256_digest(&config_a)[7..];
    let hex_b = &crate::digest::sha256_digest(&config_b)[7..];
    let manifest = serde_json::json!([
        {"Config": format!("{hex_a}.json"), "RepoTags": ["a:1"], "Layers": ["l1/layer.tar"]},
        {"Config": format!("{hex_b}.json"), "RepoTags": ["b:1"], "Layers": ["l2/layer.tar"]},
    ]);
    let archive = tar_of(&[
        Entry::File(format!("{hex_a}.json"), 0o644, config_a.clone()),
        Entry::File(format!("{hex_b}.json"), 0o644, config_b.clone()),
        Entry::Dir("l1/", 0o755),
        Entry::File("l1/layer.tar".into(), 0o644, layers[0].clone()),
        Entry::Dir("l2/", 0o755),
        Entry::Symlink("l2/layer.tar".into(), "../l1/layer.tar".into()),
        Entry::File(
            "manifest.json".into(),
            0o644,
            serde_json::to_vec(&manifest).expect("json"),
        ),
    ]);
    let loaded = store.load(&mut &archive[..]).expect("load");
    assert_eq!(loaded.len(), 2);
    assert_eq!(
        store
            .resolve("a:1")
            .expect("a")
            .config
            .rootfs
            .diff_ids
            .len(),
        1
    );
    assert_eq!(store.resolve("b:1").expect("b").size, 11);
    // A symlink that leaves the archive is not followed.
    let escaping = tar_of(&[
        Entry::File(format!("{hex_a}.json"), 0o644, config_a),
        Entry::Symlink("l1/layer.tar".into(), "../../../etc/passwd".into()),
        Entry::File(
            "manifest.json".into(),
            0o644,
            serde_json::to_vec(&serde_json::json!([
                {"Config": format!("{hex_a}.json"), "Layers": ["l1/layer.tar"]}
            ]))
            .expect("json"),
        ),
    ]);
    let err = store.load(&mut &escaping[..]).expect_err("escape");
    assert!(matches!(err, ImageError::InvalidArchive(_)), "{err}");
}
