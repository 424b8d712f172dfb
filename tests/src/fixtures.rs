//! Fixture images built in code from /bin/busybox: a rootfs tar (busybox plus applet links,
//! /etc/passwd and /etc/group), a docker-archive tar and an OCI-layout tar. Entries are
//! sorted with zero mtimes so digests are stable.

use sha2::{Digest, Sha256};

/// Applets linked into the fixture's /bin.
const APPLETS: &[&str] = &[
    "sh",
    "echo",
    "cat",
    "ls",
    "sleep",
    "true",
    "false",
    "id",
    "env",
    "pwd",
    "hostname",
    "ps",
    "wc",
    "head",
    "tail",
    "mkdir",
    "touch",
    "rm",
    "grep",
    "sed",
    "dd",
    "uname",
    "kill",
    "stat",
    "whoami",
    "test",
    "readlink",
    "cut",
    "tr",
    "printf",
    "seq",
    "yes",
    "nproc",
    "mount",
    "unshare",
    "top",
    "cp",
    "mv",
    "ln",
    "chmod",
    "date",
    "find",
    "tee",
    "umount",
    "ulimit",
    "awk",
    "xargs",
    "timeout",
    "nc",
    "ip",
    "ifconfig",
    "free",
    "df",
    "du",
    "vi",
    "more",
    "basename",
    "dirname",
    "expr",
    "md5sum",
    "sha256sum",
    "sync",
    "usleep",
    "watch",
    "groups",
    "chown",
    "mknod",
    "hexdump",
    "od",
    "sort",
    "uniq",
    "which",
    "less",
    "[",
];

/// A built image archive and its expected id.
pub struct Archive {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of the config blob.
    pub image_id: String,
}

/// `sha256:<hex>` of data.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_path(path).expect("valid fixture path");
    h
}

/// Appends files (path, mode, content) and symlinks to a tar builder, directories first.
pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            inner: tar::Builder::new(Vec::new()),
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let mut h = header(path, tar::EntryType::Directory, mode, 0);
        h.set_cksum();
        self.inner.append(&h, std::io::empty()).expect("append dir");
        self
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        let mut h = header(path, tar::EntryType::Regular, mode, data.len() as u64);
        h.set_cksum();
        self.inner.append(&h, data).expect("append file");
        self
    }

    /// Adds a symlink.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(path, tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name(target).expect("link name");
        h.set_cksum();
        self.inner
            .append(&h, std::io::empty())
            .expect("append symlink");
        self
    }

    /// The finished tar.
    pub fn finish(self) -> Vec<u8> {
        self.inner.into_inner().expect("finish tar")
    }
}

/// The busybox rootfs tar.
pub fn busybox_rootfs() -> Vec<u8> {
    let busybox = std::fs::read(crate::BUSYBOX).expect("busybox-static is installed");
    let mut t = TarBuilder::new();
    for d in [
        "bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "var",
    ] {
        t.dir(d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    t.dir("home/app", 0o755);
    t.dir("usr/bin", 0o755);
    t.file("bin/busybox", 0o755, &busybox);
    let mut applets: Vec<&str> = APPLETS.to_vec();
    applets.sort_unstable();
    applets.dedup();
    for a in applets {
        t.symlink(&format!("bin/{a}"), "busybox");
    }
    t.file(
        "etc/group",
        0o644,
        b"root:x:0:\ndaemon:x:1:\nwheel:x:10:app\nnogroup:x:65534:\napp:x:1000:\n",
    );
    t.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    );
    t.file("etc/hostname", 0o644, b"fixture\n");
    t.file("etc/hosts", 0o644, b"127.0.0.1\tlocalhost\n");
    t.file("etc/resolv.conf", 0o644, b"");
    t.finish()
}

/// The image config JSON for a layer.
pub fn image_config(diff_id: &str, cmd: &[&str], env: &[&str]) -> Vec<u8> {
    let mut e: Vec<String> =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()];
    e.extend(env.iter().map(|s| s.to_string()));
    let cmd: Vec<&str> = if cmd.is_empty() {
        vec!["sh"]
    } else {
        cmd.to_vec()
    };
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Env": e, "Cmd": cmd, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "berth-tests busybox fixture"}],
    }))
    .expect("config JSON")
}

/// A docker-archive (`docker save` format) of a one-layer image tagged `name`.
pub fn docker_archive(rootfs: &[u8], name: &str, env: &[&str]) -> Archive {
    let diff_id = digest(rootfs);
    let config = image_config(&diff_id, &[], env);
    let config_digest = digest(&config);
    let config_hex = config_digest.trim_start_matches("sha256:");
    let layer_hex = diff_id.trim_start_matches("sha256:");
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [name],
        "Layers": [format!("{layer_hex}/layer.tar")],
    }]))
    .expect("manifest JSON");
    let mut t = TarBuilder::new();
    t.dir(layer_hex, 0o755);
    t.file(&format!("{layer_hex}/layer.tar"), 0o644, rootfs);
    t.file(&format!("{config_hex}.json"), 0o644, &config);
    t.file("manifest.json", 0o644, &manifest);
    Archive {
        bytes: t.finish(),
        image_id: config_digest,
    }
}

/// An OCI image layout tar of a one-layer image; `name` is `repo:tag`.
pub fn oci_layout(rootfs: &[u8], name: &str) -> Archive {
    let diff_id = digest(rootfs);
    let config = image_config(&diff_id, &[], &["FROM_OCI=1"]);
    let config_digest = digest(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff_id, "size": rootfs.len()}],
    }))
    .expect("manifest JSON");
    let manifest_digest = digest(&manifest);
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let full = if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": full, "org.opencontainers.image.ref.name": tag},
        }],
    }))
    .expect("index JSON");
    let mut blobs: Vec<(String, Vec<u8>)> = vec![
        (config_digest.clone(), config),
        (manifest_digest, manifest),
        (diff_id, rootfs.to_vec()),
    ];
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut t = TarBuilder::new();
    t.dir("blobs", 0o755);
    t.dir("blobs/sha256", 0o755);
    for (d, data) in &blobs {
        t.file(
            &format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
            0o644,
            data,
        );
    }
    t.file("index.json", 0o644, &index);
    t.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#);
    Archive {
        bytes: t.finish(),
        image_id: config_digest,
    }
}

/// Compiles a one-file C program statically with the host's compiler into `dir/name`, so it
/// runs in a busybox container as well as on the host. `None` (with the reason printed) when
/// there is no working C toolchain.
pub fn static_c_program(
    dir: &std::path::Path,
    name: &str,
    source: &str,
) -> Option<std::path::PathBuf> {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write C source");
    let bin = dir.join(name);
    match std::process::Command::new("cc")
        .arg("-static")
        .arg("-O2")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
    {
        Ok(out) if out.status.success() => Some(bin),
        Ok(out) => {
            eprintln!(
                "cannot build {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("cannot build {name} (no cc): {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_reproducible() {
        let a = busybox_rootfs();
        let b = busybox_rootfs();
        assert_eq!(digest(&a), digest(&b));
        let x = docker_archive(&a, "busybox:latest", &[]);
        let y = docker_archive(&b, "busybox:latest", &[]);
        assert_eq!(x.image_id, y.image_id);
        assert_ne!(oci_layout(&a, "busybox:oci").image_id, x.image_id);
    }
}
