//! Store-level tests: import, resolve/list/tag, rmi/prune, history, crash recovery and
//! concurrency, and snapshots on overlayfs (root).

use std::fs;

use crate::fixtures::{
    SnapshotGuard, busybox_layer, config_for, docker_archive, is_root, small_layers, store,
};
use crate::{ContainerDefaults, ImageError, ImageStore};

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
    let _cleanup = SnapshotGuard(&store, &["c1", "c2"]);
    let start = std::time::Instant::now();
    let snap = store.prepare_snapshot("c1", "app:1").expect("prepare");
    let took = start.elapsed();
    assert!(took.as_millis() < 500, "prepare took {took:?}");
    assert_eq!(snap.lower.len(), 3, "init layer and two image layers");
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
    assert_eq!(gd.upper, snap.lower[1]);
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
    let _cleanup = SnapshotGuard(&store, &["bb"]);
    let start = std::time::Instant::now();
    let snap = store.prepare_snapshot("bb", "busybox").expect("prepare");
    let took = start.elapsed();
    eprintln!("prepare_snapshot of busybox took {took:?}");
    assert!(took.as_millis() < 200, "prepare took {took:?}");
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
