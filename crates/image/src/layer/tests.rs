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

#[test]
#[ignore = "needs root"]
fn owners_xattrs_and_device_nodes_are_preserved_and_packed_back() {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.user.berth", &b"yes"[..])])
        .expect("pax");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o4755);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_700_000_000);
    h.set_size(2);
    b.append_data(&mut h, "owned", &b"hi"[..]).expect("file");
    let mut d = tar::Header::new_gnu();
    d.set_entry_type(tar::EntryType::Char);
    d.set_mode(0o666);
    d.set_size(0);
    d.set_device_major(1).expect("major");
    d.set_device_minor(3).expect("minor");
    b.append_data(&mut d, "null", std::io::empty())
        .expect("dev");
    let tar = b.into_inner().expect("tar");

    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    fs::create_dir_all(&dest).expect("mkdir");
    apply_tar(&mut &tar[..], &dest).expect("apply");
    let meta = fs::metadata(dest.join("owned")).expect("owned");
    assert_eq!((meta.uid(), meta.gid()), (1000, 1001));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(meta.mtime(), 1_700_000_000);
    assert_eq!(
        xattr::get(dest.join("owned"), "user.berth").expect("xattr"),
        Some(b"yes".to_vec())
    );
    let null = fs::symlink_metadata(dest.join("null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (
            nix::sys::stat::major(null.rdev()),
            nix::sys::stat::minor(null.rdev())
        ),
        (1, 3)
    );

    // Packing the directory gives the same metadata back.
    let mut out = Vec::new();
    pack(&dest, &mut out, &PackOptions::default()).expect("pack");
    let mut seen_xattr = false;
    for e in tar::Archive::new(&out[..]).entries().expect("tar") {
        let mut e = e.expect("entry");
        if e.path().expect("path").as_os_str() == "owned" {
            assert_eq!(e.header().uid().expect("uid"), 1000);
            assert_eq!(e.header().mode().expect("mode") & 0o7777, 0o4755);
            if let Some(pax) = e.pax_extensions().expect("pax") {
                seen_xattr = pax
                    .flatten()
                    .any(|x| x.key() == Ok("SCHILY.xattr.user.berth") && x.value_bytes() == b"yes");
            }
        }
    }
    assert!(seen_xattr, "xattr packed as PAX record");
}
