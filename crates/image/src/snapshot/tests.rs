//! Root tests of snapshots: diff, commit and export on overlay and on the copy fallback.

use std::fs;

use crate::fixtures::{Entry, SnapshotGuard, config_for, docker_archive, is_root, tar_of};
use crate::{Change, ImageStore};

fn fixture() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("image")).expect("open");
    let layers = vec![
        tar_of(&[
            Entry::Dir("etc/", 0o755),
            Entry::File("etc/hostname".into(), 0o644, b"base\n".to_vec()),
            Entry::File("etc/motd".into(), 0o644, b"hello\n".to_vec()),
            Entry::Dir("var/", 0o755),
            Entry::Dir("var/lib/", 0o755),
            Entry::File("var/lib/db".into(), 0o644, b"db".to_vec()),
        ]),
        tar_of(&[Entry::File("etc/app.conf".into(), 0o600, b"x=1\n".to_vec())]),
    ];
    let config = config_for(&layers, &["sh"]);
    store
        .load(&mut &docker_archive(&layers, &config, &["app:1"])[..])
        .expect("load");
    (dir, store)
}

fn change(path: &str, kind: u8) -> Change {
    Change {
        path: path.into(),
        kind,
    }
}

fn exercise(store: &ImageStore, copy: bool) {
    store.set_copy_snapshots(copy);
    let _cleanup = SnapshotGuard(store, &["c1", "c2", "c3"]);
    let snap = store.prepare_snapshot("c1", "app:1").expect("prepare");
    let m = &snap.merged;
    fs::write(m.join("etc/hostname"), b"changed\n").expect("modify");
    fs::remove_file(m.join("etc/app.conf")).expect("delete");
    fs::remove_dir_all(m.join("var/lib")).expect("delete dir");
    fs::create_dir(m.join("data")).expect("mkdir");
    fs::write(m.join("data/new"), b"new").expect("add");
    let diff = store.diff("c1").expect("diff");
    for want in [
        change("/data", 1),
        change("/data/new", 1),
        change("/etc/app.conf", 2),
        change("/etc/hostname", 0),
        change("/var/lib", 2),
    ] {
        assert!(
            diff.contains(&want),
            "copy={copy}: {want:?} missing from {diff:?}"
        );
    }
    assert!(!diff.iter().any(|c| c.path == "/etc/motd"), "{diff:?}");
    for hidden in [
        "/etc/hosts",
        "/etc/resolv.conf",
        "/.dockerenv",
        "/dev",
        "/proc",
    ] {
        assert!(
            !diff.iter().any(|c| c.path == hidden),
            "{hidden} in {diff:?}"
        );
    }
    assert!(m.join("etc/resolv.conf").is_file());
    assert!(m.join("dev/console").is_file());
    assert!(m.join("proc").is_dir());
    assert!(!diff.iter().any(|c| c.path == "/var/lib/db"), "{diff:?}");

    let mut exported = Vec::new();
    store.export("c1", &mut exported).expect("export");
    let names: Vec<String> = tar::Archive::new(&exported[..])
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert!(names.iter().any(|n| n == "data/new"), "{names:?}");
    assert!(names.iter().any(|n| n == "etc/motd"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("app.conf") || n.contains(".wh.")),
        "{names:?}"
    );
    // export → import gives an image with the same files.
    let imported = store
        .import(&mut &exported[..], Some("flat:1"), Default::default(), None)
        .expect("import");
    let flat = store
        .prepare_snapshot("c3", &imported)
        .expect("prepare flat");
    assert_eq!(
        fs::read(flat.merged.join("etc/hostname")).expect("hostname"),
        b"changed\n"
    );
    assert!(flat.merged.join("data/new").exists());
    assert!(!flat.merged.join("etc/app.conf").exists());
    store.remove_snapshot("c3").expect("remove c3");

    let id = store
        .commit(
            "c1",
            "app:1",
            Default::default(),
            Some("me"),
            Some("msg"),
            Some("app:2"),
        )
        .expect("commit");
    let image = store.resolve("app:2").expect("committed");
    assert_eq!(image.id, id);
    assert_eq!(image.config.rootfs.diff_ids.len(), 3);
    assert_eq!(image.config.author.as_deref(), Some("me"));
    let last = image.config.history.last().expect("history");
    assert_eq!(last.comment.as_deref(), Some("msg"));
    assert_eq!(image.parent, Some(store.resolve("app:1").expect("base").id));

    let snap2 = store
        .prepare_snapshot("c2", "app:2")
        .expect("prepare committed");
    let m2 = &snap2.merged;
    assert_eq!(
        fs::read(m2.join("etc/hostname")).expect("hostname"),
        b"changed\n"
    );
    assert_eq!(fs::read(m2.join("data/new")).expect("new"), b"new");
    assert!(!m2.join("etc/app.conf").exists());
    assert!(!m2.join("var/lib").exists());
    assert!(m2.join("etc/motd").exists());
    store.remove_snapshot("c1").expect("remove c1");
    store.remove_snapshot("c2").expect("remove c2");
}

#[test]
#[ignore = "needs root"]
fn overlay_diff_export_commit_round_trip() {
    if !is_root() {
        eprintln!("skipping: overlay mounts need root");
        return;
    }
    let (_dir, store) = fixture();
    exercise(&store, false);
}

#[test]
#[ignore = "needs root"]
fn copy_fallback_diff_export_commit_round_trip() {
    if !is_root() {
        eprintln!("skipping: whiteouts (mknod) need root");
        return;
    }
    let (_dir, store) = fixture();
    exercise(&store, true);
}

#[test]
#[ignore = "needs root"]
fn cp_helpers_stay_inside_the_container_root() {
    if !is_root() {
        eprintln!("skipping: overlay mounts need root");
        return;
    }
    let (_dir, store) = fixture();
    let _cleanup = SnapshotGuard(&store, &["cp"]);
    let snap = store.prepare_snapshot("cp", "app:1").expect("prepare");
    let m = &snap.merged;
    std::os::unix::fs::symlink("/etc", m.join("etclink")).expect("symlink");
    std::os::unix::fs::symlink("../../../../..", m.join("up")).expect("symlink");

    let stat = store.stat_path("cp", "/etc/hostname").expect("stat");
    assert_eq!((stat.name.as_str(), stat.size), ("hostname", 5));
    assert_eq!(stat.mode, 0o644);
    let link = store.stat_path("cp", "/etclink").expect("stat link");
    assert_eq!(link.link_target, "/etc");
    assert_ne!(link.mode & (1 << 27), 0);
    assert!(!link.header_value().is_empty());
    let missing = store.stat_path("cp", "/nope").expect_err("missing");
    assert_eq!(
        missing.to_string(),
        "Could not find the file /nope in container cp"
    );
    assert_eq!(missing.status(), 404);

    let mut out = Vec::new();
    store
        .copy_from_container("cp", "/etclink/", &mut out)
        .expect("copy out");
    let names: Vec<String> = tar::Archive::new(&out[..])
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"etclink/hostname".to_string()), "{names:?}");
    let mut whole = Vec::new();
    store
        .copy_from_container("cp", "/", &mut whole)
        .expect("copy root");
    let names: Vec<String> = tar::Archive::new(&whole[..])
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "etc/hostname"),
        "{names:?}"
    );

    // Into a directory reached through a symlink that climbs out: lands inside the root.
    let probe = format!("berth-cp-probe-{}", std::process::id());
    let tar = tar_of(&[
        Entry::File("x.txt".into(), 0o600, b"in".to_vec()),
        Entry::Symlink("sneaky".into(), "/".into()),
        Entry::File(format!("sneaky/tmp/{probe}"), 0o644, b"no".to_vec()),
    ]);
    store
        .copy_to_container("cp", "/up/etc", &mut &tar[..], false)
        .expect("copy in");
    assert_eq!(fs::read(m.join("etc/x.txt")).expect("copied"), b"in");
    assert!(m.join("tmp").join(&probe).exists());
    assert!(!std::path::Path::new("/tmp").join(&probe).exists());
    let bad = tar_of(&[Entry::File("../../evil".into(), 0o644, b"x".to_vec())]);
    assert!(
        store
            .copy_to_container("cp", "/etc", &mut &bad[..], false)
            .is_err()
    );
    let err = store
        .copy_to_container("cp", "/etc/hostname", &mut &tar[..], false)
        .expect_err("not a dir");
    assert!(matches!(err, crate::ImageError::NotADirectory(_)), "{err}");
    assert!(matches!(
        store.diff("nosuch"),
        Err(crate::ImageError::NoSnapshot(_))
    ));
    store.remove_snapshot("cp").expect("remove");
}

#[test]
#[ignore = "needs root"]
fn images_with_many_layers_mount_within_a_page() {
    if !is_root() {
        eprintln!("skipping: overlay mounts need root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // A long root makes even the short links overflow a page, forcing /proc/self/fd paths.
    let root = dir
        .path()
        .join("a-rather-long-directory-name-for-the-image-store-root");
    let store = ImageStore::open(&root).expect("open");
    let layers: Vec<Vec<u8>> = (0..130)
        .map(|i| {
            tar_of(&[Entry::File(
                format!("f{i:03}"),
                0o644,
                format!("{i}").into_bytes(),
            )])
        })
        .collect();
    let config = config_for(&layers, &["sh"]);
    store
        .load(&mut &docker_archive(&layers, &config, &["deep:1"])[..])
        .expect("load");
    let _cleanup = SnapshotGuard(&store, &["deep"]);
    let start = std::time::Instant::now();
    let snap = store.prepare_snapshot("deep", "deep:1").expect("prepare");
    eprintln!(
        "prepare_snapshot with 130 layers took {:?}",
        start.elapsed()
    );
    assert_eq!(snap.lower.len(), 131);
    for i in [0, 64, 129] {
        let content = fs::read(snap.merged.join(format!("f{i:03}"))).expect("layer file");
        assert_eq!(content, format!("{i}").into_bytes());
    }
    store.unmount_snapshot("deep").expect("unmount");
    let again = store.mount_snapshot("deep").expect("remount");
    assert!(again.merged.join("f000").exists());
    store.remove_snapshot("deep").expect("remove");
}
