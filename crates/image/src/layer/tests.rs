//! Tests of layer extraction: whiteouts, path safety against malicious tars, metadata.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::apply::{ApplyOptions, OPAQUE_XATTR, Whiteouts, apply_tar, apply_tar_with};
use super::pack::{PackOptions, pack};
use crate::fixtures::{Entry, tar_of};

fn apply(entries: &[Entry], dest: &Path) -> Result<super::apply::ApplyStats, crate::ImageError> {
    fs::create_dir_all(dest).expect("mkdir");
    apply_tar(&mut &tar_of(entries)[..], dest)
}

#[test]
fn parent_dir_entries_that_escape_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    let err = apply(
        &[Entry::File("../escaped".into(), 0o644, b"x".to_vec())],
        &dest,
    )
    .expect_err("must refuse");
    assert!(err.to_string().contains("outside"), "{err}");
    assert!(!dir.path().join("escaped").exists());
}

#[test]
fn absolute_names_land_inside_the_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    apply(
        &[Entry::File("/abs/file".into(), 0o640, b"hi".to_vec())],
        &dest,
    )
    .expect("apply");
    let meta = fs::metadata(dest.join("abs/file")).expect("inside");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
}

#[test]
fn writes_through_symlinks_pointing_outside_stay_inside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    let dest = dir.path().join("layer");
    apply(
        &[
            Entry::Symlink("evil".into(), outside.display().to_string()),
            Entry::File("evil/pwned".into(), 0o644, b"x".to_vec()),
            Entry::Symlink("rel".into(), "../../../../..".into()),
            Entry::File("rel/tmp/pwned2".into(), 0o644, b"x".to_vec()),
            Entry::Hardlink("hl".into(), "../../etc/passwd".into()),
        ][..4],
        &dest,
    )
    .expect("apply");
    assert!(!outside.join("pwned").exists());
    assert!(
        dest.join(outside.strip_prefix("/").expect("abs"))
            .join("pwned")
            .exists()
    );
    assert!(dest.join("tmp/pwned2").exists());
    let err = apply(
        &[Entry::Hardlink("hl".into(), "../../etc/passwd".into())],
        &dir.path().join("other"),
    )
    .expect_err("hardlink out");
    assert!(err.to_string().contains("outside"), "{err}");
}

#[test]
fn hardlinks_and_symlinks_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    let stats = apply(
        &[
            Entry::Dir("d/", 0o755),
            Entry::File("d/a".into(), 0o755, b"abc".to_vec()),
            Entry::Hardlink("d/b".into(), "d/a".into()),
            Entry::Symlink("d/c".into(), "a".into()),
        ],
        &dest,
    )
    .expect("apply");
    assert_eq!(stats.size, 3);
    let a = fs::metadata(dest.join("d/a")).expect("a");
    let b = fs::metadata(dest.join("d/b")).expect("b");
    assert_eq!(a.ino(), b.ino());
    assert_eq!(
        fs::read_link(dest.join("d/c")).expect("link"),
        Path::new("a")
    );
    assert_eq!(a.mtime(), 0);
}

#[test]
#[ignore = "needs root"]
fn whiteouts_become_overlay_whiteouts_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    apply(
        &[
            Entry::Dir("etc/", 0o755),
            Entry::File("etc/.wh.passwd".into(), 0o644, Vec::new()),
            Entry::Dir("opt/", 0o755),
            Entry::File("opt/.wh..wh..opq".into(), 0o644, Vec::new()),
            Entry::File("opt/new".into(), 0o644, b"n".to_vec()),
            Entry::File(".wh..wh.plnk".into(), 0o644, Vec::new()),
        ],
        &dest,
    )
    .expect("apply");
    let wh = fs::symlink_metadata(dest.join("etc/passwd")).expect("whiteout");
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        xattr::get(dest.join("opt"), OPAQUE_XATTR).expect("xattr"),
        Some(b"y".to_vec())
    );
    assert!(!dest.join(".wh..wh.plnk").exists());
    // Packing with whiteout conversion gives the `.wh.` entries back.
    let mut out = Vec::new();
    let opts = PackOptions {
        whiteouts: true,
        ..PackOptions::default()
    };
    pack(&dest, &mut out, &opts).expect("pack");
    let mut names = Vec::new();
    for e in tar::Archive::new(&out[..]).entries().expect("tar") {
        let e = e.expect("entry");
        names.push(e.path().expect("path").display().to_string());
    }
    assert!(names.contains(&"etc/.wh.passwd".to_string()), "{names:?}");
    assert!(names.contains(&"opt/.wh..wh..opq".to_string()), "{names:?}");
    assert!(names.contains(&"opt/new".to_string()), "{names:?}");
}

#[test]
fn delete_mode_removes_whited_out_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("flat");
    apply(
        &[
            Entry::Dir("a/", 0o755),
            Entry::File("a/keep".into(), 0o644, b"k".to_vec()),
            Entry::File("a/gone".into(), 0o644, b"g".to_vec()),
            Entry::Dir("o/", 0o755),
            Entry::File("o/old".into(), 0o644, b"o".to_vec()),
        ],
        &dest,
    )
    .expect("base");
    let upper = tar_of(&[
        Entry::File("a/.wh.gone".into(), 0o644, Vec::new()),
        Entry::File("o/.wh..wh..opq".into(), 0o644, Vec::new()),
        Entry::File("o/fresh".into(), 0o644, b"f".to_vec()),
    ]);
    apply_tar_with(
        &mut &upper[..],
        &dest,
        &ApplyOptions::new(Whiteouts::Delete),
    )
    .expect("apply");
    assert!(dest.join("a/keep").exists());
    assert!(!dest.join("a/gone").exists());
    assert!(!dest.join("o/old").exists());
    assert!(dest.join("o/fresh").exists());
}

#[test]
fn garbage_is_not_a_tar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = apply_tar(&mut &[7u8; 1024][..], dir.path()).expect_err("garbage");
    assert!(matches!(err, crate::ImageError::InvalidArchive(_)), "{err}");
}

#[test]
#[ignore = "needs root"]
fn whiteouts_of_dot_names_never_touch_parents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    let sibling = dir.path().join("sibling");
    fs::create_dir_all(&sibling).expect("mkdir");
    apply(
        &[
            Entry::File(".wh...".into(), 0o644, Vec::new()),
            Entry::File(".wh..".into(), 0o644, Vec::new()),
            Entry::Dir("d/", 0o755),
            Entry::File("d/.wh...".into(), 0o644, Vec::new()),
        ],
        &dest,
    )
    .expect("apply");
    assert!(sibling.exists());
    assert!(dest.join("d").is_dir());
}
