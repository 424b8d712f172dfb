//! Store-level tests: load (docker-archive, OCI layout), import, resolve/list/tag, and
//! snapshots on overlayfs (root).

use std::fs;
use std::io::Read;

use crate::fixtures::{
    Entry, busybox_layer, config_for, docker_archive, is_root, oci_archive, tar_of,
};
use crate::{ContainerDefaults, ImageError, ImageStore};

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("image")).expect("open");
    (dir, store)
}

fn small_layers() -> Vec<Vec<u8>> {
    vec![
        tar_of(&[
            Entry::Dir("etc/", 0o755),
            Entry::File("etc/hostname".into(), 0o644, b"base\n".to_vec()),
            Entry::File("etc/motd".into(), 0o644, b"hello\n".to_vec()),
        ]),
        tar_of(&[
            Entry::Dir("etc/", 0o755),
            Entry::File("etc/.wh.motd".into(), 0o644, Vec::new()),
            Entry::File("etc/app.conf".into(), 0o600, b"x=1\n".to_vec()),
        ]),
    ]
}

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
fn import_makes_one_layer_image_with_history() {
    let Some(layer) = busybox_layer() else { return };
    let (_dir, store) = store();
    let gz = crate::fixtures::gzip(&layer);
    let defaults = ContainerDefaults {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let id = store
        .import(
            &mut &gz[..],
            Some("imported:v1"),
            defaults,
            Some("from test"),
        )
        .expect("import");
    let image = store.resolve("imported:v1").expect("resolve");
    assert_eq!(image.id, id);
    assert_eq!(
        image.config.rootfs.diff_ids,
        vec![crate::digest::sha256_digest(&layer)]
    );
    assert_eq!(image.config.history.len(), 1);
    assert_eq!(
        image.config.history[0].comment.as_deref(),
        Some("from test")
    );
    assert!(image.size > 1_000_000);
    assert!(
        store
            .import(&mut &layer[..], Some("UPPER"), Default::default(), None)
            .is_err()
    );
}

#[test]
fn tag_adds_reference_and_moves_existing_one() {
    let (_dir, store) = store();
    let layers = small_layers();
    let a = store
        .load(&mut &docker_archive(&layers, &config_for(&layers, &["a"]), &["app:1"])[..])
        .expect("a");
    let b = store
        .load(&mut &docker_archive(&layers, &config_for(&layers, &["b"]), &["app:2"])[..])
        .expect("b");
    store.tag("app:1", "app:latest").expect("tag");
    assert_eq!(store.resolve("app").expect("app").id, a[0].0);
    store.tag(&b[0].0, "app:1").expect("retag");
    assert_eq!(store.resolve("app:1").expect("app:1").id, b[0].0);
    assert!(matches!(
        store.tag("nope", "x"),
        Err(ImageError::NotFound(_))
    ));
    assert!(matches!(
        store.tag("app:1", "x y"),
        Err(ImageError::InvalidReference(_))
    ));
}

#[test]
#[ignore = "needs root"]
fn snapshot_mounts_overlay_of_layers_and_removes_cleanly() {
    if !is_root() {
        eprintln!("skipping: overlay mounts need root");
        return;
    }
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    store
        .load(&mut &docker_archive(&layers, &config, &["app:1"])[..])
        .expect("load");
    let start = std::time::Instant::now();
    let snap = store.prepare_snapshot("c1", "app:1").expect("prepare");
    let took = start.elapsed();
    assert!(took.as_millis() < 500, "prepare took {took:?}");
    assert_eq!(snap.lower.len(), 2);
    let merged = &snap.merged;
    assert_eq!(
        fs::read(merged.join("etc/hostname")).expect("hostname"),
        b"base\n"
    );
    assert!(
        !merged.join("etc/motd").exists(),
        "whiteout hides lower file"
    );
    assert_eq!(
        fs::read(merged.join("etc/app.conf")).expect("conf"),
        b"x=1\n"
    );
    fs::write(merged.join("etc/new"), b"n").expect("write");
    assert!(snap.upper.join("etc/new").exists());
    // Idempotent mount; paths without mounting.
    assert_eq!(store.mount_snapshot("c1").expect("mount"), snap);
    assert_eq!(store.snapshot("c1").expect("paths"), snap);
    let gd = store.graph_driver("app:1").expect("graph driver");
    assert_eq!(gd.upper, snap.lower[0]);
    store.remove_snapshot("c1").expect("remove");
    assert!(!merged.exists());
    store.remove_snapshot("c1").expect("idempotent");
    assert!(store.prepare_snapshot("../x", "app:1").is_err());
    assert!(matches!(
        store.prepare_snapshot("c2", "missing"),
        Err(ImageError::NotFound(_))
    ));
}

#[test]
#[ignore = "needs root"]
fn snapshot_of_busybox_has_runnable_shell() {
    if !is_root() {
        eprintln!("skipping: overlay mounts need root");
        return;
    }
    let Some(layer) = busybox_layer() else { return };
    let (_dir, store) = store();
    let config = config_for(std::slice::from_ref(&layer), &["sh"]);
    store
        .load(&mut &docker_archive(&[layer], &config, &["busybox:latest"])[..])
        .expect("load");
    let snap = store.prepare_snapshot("bb", "busybox").expect("prepare");
    let out = std::process::Command::new("chroot")
        .arg(&snap.merged)
        .args(["/bin/sh", "-c", "echo hi > /tmp/x && cat /tmp/x"])
        .output()
        .expect("chroot");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert!(snap.upper.join("tmp/x").exists());
    store.remove_snapshot("bb").expect("remove");
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
fn rmi_untags_one_of_several_and_refuses_conflicts_unless_forced() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let id = store
        .load(&mut &docker_archive(&layers, &config, &["busybox:latest", "other:1"])[..])
        .expect("load")[0]
        .0
        .clone();
    let short = &id[7..19];
    let err = store
        .remove(short, false, &|_| None)
        .expect_err("multiple repos");
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )
    );
    assert_eq!(
        store.remove("other:1", false, &|_| None).expect("untag"),
        vec![crate::Removed::Untagged("other:1".into())]
    );
    let container = "c0ffee".repeat(10);
    let used = |_: &str| Some(container.clone());
    let err = store
        .remove("busybox:latest", false, &used)
        .expect_err("in use");
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"busybox:latest\" (must force) - container {} is using its referenced image {short}",
            &container[..12]
        )
    );
    // Forced: untagged, the image stays (dangling) for its container.
    let removed = store.remove("busybox:latest", true, &used).expect("force");
    assert_eq!(
        removed,
        vec![crate::Removed::Untagged("busybox:latest".into())]
    );
    let images = store.list().expect("list");
    assert_eq!(images.len(), 1);
    assert!(images[0].tags.is_empty());
    // Prune keeps what is in use, then removes the dangling image and its layers.
    assert_eq!(store.prune(false, &used).expect("prune").0, vec![]);
    let (removed, bytes) = store.prune(false, &|_| None).expect("prune");
    assert_eq!(removed[0], crate::Removed::Deleted(id));
    assert_eq!(removed.len(), 3, "image and two layers: {removed:?}");
    assert_eq!(bytes, 15);
    assert!(store.list().expect("list").is_empty());
    assert!(store.blobs.list().expect("blobs").is_empty());
    assert!(
        matches!(store.remove("busybox", false, &|_| None), Err(ImageError::NotFound(m)) if m == "busybox:latest")
    );
}

#[test]
fn history_lists_rows_newest_first_with_sizes_and_ids() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let id = store
        .load(&mut &docker_archive(&layers, &config, &["app:1"])[..])
        .expect("load")[0]
        .0
        .clone();
    let rows = store.history("app:1").expect("history");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, id);
    assert_eq!(rows[0].tags, vec!["app:1".to_string()]);
    assert_eq!(rows[0].created_by, "layer 1");
    assert_eq!(rows[0].size, 4);
    assert_eq!(rows[1].id, crate::history::MISSING);
    assert_eq!(rows[1].size, 11);
    assert_eq!(rows[1].created, 1_704_067_200);
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
fn open_cleans_what_a_crash_left_and_keeps_complete_state() {
    let (_dir, store) = store();
    let layers = small_layers();
    let config = config_for(&layers, &["sh"]);
    let id = store
        .load(&mut &docker_archive(&layers, &config, &["app:1"])[..])
        .expect("load")[0]
        .0
        .clone();
    let root = store.root().to_path_buf();
    drop(store);
    let fake = "f".repeat(64);
    let leftovers = [
        root.join(".tmp-0000000000000001"),
        root.join("blobs/sha256/.tmp-0000000000000002"),
        root.join("layers/.tmp-0000000000000003/diff/x"),
        root.join(format!("layers/{fake}/diff/y")),
        root.join("snapshots/half-made/upper/z"),
    ];
    for p in &leftovers {
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, b"junk").expect("write");
    }
    // An image whose config blob never made it, a reference to it, and an orphan blob.
    let meta = r#"{"parent":null,"created":"2024-01-01T00:00:00Z","digests":[]}"#;
    fs::write(root.join(format!("images/{fake}.json")), meta).expect("meta");
    let refs = format!(
        r#"{{"refs":{{"docker.io/library/app:1":"{id}","docker.io/library/ghost:1":"sha256:{fake}"}}}}"#
    );
    fs::write(root.join("repositories.json"), refs).expect("refs");
    let orphan = crate::digest::sha256_digest(b"orphan");
    fs::write(root.join("blobs/sha256").join(&orphan[7..]), b"orphan").expect("orphan");

    let store = ImageStore::open(&root).expect("reopen");
    for p in &leftovers {
        assert!(!p.exists(), "{} survived open", p.display());
    }
    assert!(!root.join(format!("layers/{fake}")).exists());
    assert!(!root.join("snapshots/half-made").exists());
    assert!(!root.join(format!("images/{fake}.json")).exists());
    assert!(!store.blobs.contains(&orphan));
    assert!(matches!(
        store.resolve("ghost:1"),
        Err(ImageError::NotFound(_))
    ));
    assert_eq!(store.resolve("app:1").expect("kept").id, id);
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn resolve_runs_concurrently_with_loads() {
    let (_dir, store) = store();
    let layers = small_layers();
    store
        .load(&mut &docker_archive(&layers, &config_for(&layers, &["a"]), &["stable:1"])[..])
        .expect("load");
    let store = std::sync::Arc::new(store);
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..10 {
                let cmd = format!("c{i}");
                let config = config_for(&layers, &[cmd.as_str()]);
                let tag = format!("many:{i}");
                store
                    .load(&mut &docker_archive(&layers, &config, &[tag.as_str()])[..])
                    .expect("load");
            }
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    store.resolve("stable:1").expect("resolve");
                    store.list().expect("list");
                }
            })
        })
        .collect();
    writer.join().expect("writer");
    for r in readers {
        r.join().expect("reader");
    }
    assert_eq!(store.list().expect("list").len(), 11);
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
