//! Test fixtures built in code: deterministic tars (sorted entries, zero mtime), a busybox
//! rootfs layer from the `busybox-static` binary, and docker-archive / OCI layout tars
//! assembled around given layers.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::ImageStore;
use crate::digest::sha256_digest;

/// Path of the static busybox the fixtures use.
pub const BUSYBOX: &str = "/bin/busybox";

/// One entry of a fixture tar.
pub enum Entry {
    /// Directory with mode.
    Dir(&'static str, u32),
    /// Regular file with mode and content.
    File(String, u32, Vec<u8>),
    /// Symlink to a target.
    Symlink(String, String),
    /// Hardlink to an earlier entry.
    Hardlink(String, String),
}

/// Writes `name` (and `link`) into the header's raw fields, bypassing the tar crate's path
/// checks so tests can build malicious archives.
fn raw_header(h: &mut tar::Header, name: &str, link: Option<&str>) {
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
}

/// A deterministic tar of `entries` (in the given order, mtime 0, root-owned).
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(name, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty())
                    .expect("tar dir");
            }
            Entry::File(name, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                raw_header(&mut h, name, None);
                b.append(&h, &data[..]).expect("tar file");
            }
            Entry::Symlink(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                raw_header(&mut h, name, Some(target));
                b.append(&h, std::io::empty()).expect("tar symlink");
            }
            Entry::Hardlink(name, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                raw_header(&mut h, name, Some(target));
                b.append(&h, std::io::empty()).expect("tar hardlink");
            }
        }
    }
    b.into_inner().expect("tar finish")
}

/// A busybox rootfs layer: `/bin/busybox`, one symlink per applet, `/etc/passwd`,
/// `/etc/group`. `None` (with the reason printed) when busybox is not installed.
pub fn busybox_layer() -> Option<Vec<u8>> {
    let binary = match std::fs::read(BUSYBOX) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipping: {BUSYBOX} unavailable ({e}); install busybox-static");
            return None;
        }
    };
    let list = Command::new(BUSYBOX).arg("--list").output().ok()?;
    let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && l != "busybox" && !l.contains('/'))
        .collect();
    applets.sort();
    applets.dedup();
    let mut entries = vec![
        Entry::Dir("bin/", 0o755),
        Entry::File("bin/busybox".into(), 0o755, binary),
    ];
    entries.extend(
        applets
            .into_iter()
            .map(|a| Entry::Symlink(format!("bin/{a}"), "busybox".into())),
    );
    entries.extend([
        Entry::Dir("etc/", 0o755),
        Entry::File(
            "etc/group".into(),
            0o644,
            b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
        ),
        Entry::File(
            "etc/passwd".into(),
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
        ),
        Entry::Dir("tmp/", 0o1777),
    ]);
    Some(tar_of(&entries))
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// A Docker image config for uncompressed `layers`, with a `Cmd`.
pub fn config_for(layers: &[Vec<u8>], cmd: &[&str]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .expect("config json")
}

/// A legacy docker-archive (`<hex>.json`, `<n>/layer.tar`, `manifest.json`, `repositories`).
pub fn docker_archive(layers: &[Vec<u8>], config: &[u8], tags: &[&str]) -> Vec<u8> {
    let config_digest = sha256_digest(config);
    let config_name = format!("{}.json", &config_digest[7..]);
    let mut entries = vec![Entry::File(config_name.clone(), 0o644, config.to_vec())];
    let mut layer_paths = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let path = format!("layer{i}/layer.tar");
        entries.push(Entry::File(path.clone(), 0o644, layer.clone()));
        layer_paths.push(path);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": tags, "Layers": layer_paths}]);
    entries.push(Entry::File(
        "manifest.json".into(),
        0o644,
        serde_json::to_vec(&manifest).expect("json"),
    ));
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for tag in tags {
        if let Some((name, t)) = tag.rsplit_once(':') {
            repos
                .entry(name.into())
                .or_default()
                .insert(t.into(), "0".repeat(64));
        }
    }
    entries.push(Entry::File(
        "repositories".into(),
        0o644,
        serde_json::to_vec(&repos).expect("json"),
    ));
    tar_of(&entries)
}

/// An OCI layout tar with gzip-compressed layers; `ref_name` goes into the
/// `org.opencontainers.image.ref.name` annotation.
pub fn oci_archive(layers: &[Vec<u8>], config: &[u8], ref_name: Option<&str>) -> Vec<u8> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layer_descs = Vec::new();
    for layer in layers {
        let gz = gzip(layer);
        let d = sha256_digest(&gz);
        layer_descs.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d, "size": gz.len()}));
        blobs.push((d, gz));
    }
    let config_digest = sha256_digest(config);
    blobs.push((config_digest.clone(), config.to_vec()));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": layer_descs,
    }))
    .expect("json");
    let manifest_digest = sha256_digest(&manifest);
    blobs.push((manifest_digest.clone(), manifest.clone()));
    let mut desc = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest.len()});
    if let Some(name) = ref_name {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    }
    let index = json!({"schemaVersion": 2, "manifests": [desc]});
    blobs.sort();
    let mut entries = vec![
        Entry::Dir("blobs/", 0o755),
        Entry::Dir("blobs/sha256/", 0o755),
    ];
    for (d, data) in blobs {
        entries.push(Entry::File(
            format!("blobs/sha256/{}", &d[7..]),
            0o644,
            data,
        ));
    }
    entries.push(Entry::File(
        "index.json".into(),
        0o644,
        serde_json::to_vec(&index).expect("json"),
    ));
    entries.push(Entry::File(
        "oci-layout".into(),
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    tar_of(&entries)
}

/// True when running as root (tests marked `needs root` check again and explain).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A fresh store in a temporary directory (kept alive by the returned guard).
pub fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("image")).expect("open");
    (dir, store)
}

/// Two small layers: a base with `/etc/hostname` and `/etc/motd`, and one that whites out
/// `motd` and adds `/etc/app.conf`.
pub fn small_layers() -> Vec<Vec<u8>> {
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

/// Removes snapshots when dropped, so a failing test leaves no mount behind.
pub struct SnapshotGuard<'a>(pub &'a ImageStore, pub &'static [&'static str]);

impl Drop for SnapshotGuard<'_> {
    fn drop(&mut self) {
        for id in self.1 {
            let _ = self.0.remove_snapshot(id);
        }
    }
}
