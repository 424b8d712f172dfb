//! Images without a registry, through the real docker CLI: load (docker-archive and OCI
//! layout), import, images with filters, inspect, tag, history, rmi, prune, save round trip.

use berth_tests::{Daemon, fixtures};

fn write(d: &Daemon, name: &str, data: &[u8]) -> String {
    let p = d.scratch().join(name);
    std::fs::write(&p, data).expect("write fixture");
    p.display().to_string()
}

#[test]
#[ignore = "needs root"]
fn load_docker_archive_and_oci_layout() {
    let d = Daemon::start();
    let rootfs = fixtures::busybox_rootfs();
    let da = fixtures::docker_archive(&rootfs, "busybox:latest", &[]);
    let out = d.docker_ok(&["load", "-i", &write(&d, "da.tar", &da.bytes)]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    let oci = fixtures::oci_layout(&rootfs, "ocibox:1");
    let out = d.docker_ok(&["load", "-i", &write(&d, "oci.tar", &oci.bytes)]);
    assert!(out.contains("Loaded image"), "{out}");
    let id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    assert_eq!(id, da.image_id);
    let listed = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(listed.lines().any(|l| l == "busybox:latest"), "{listed}");
    assert!(listed.lines().any(|l| l == "ocibox:1"), "{listed}");
}

#[test]
#[ignore = "needs root"]
fn image_inspect_shows_rootfs_config_and_graphdriver() {
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    let out = d.docker_ok(&["image", "inspect", "busybox"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
    let img = &v[0];
    assert_eq!(img["Id"], id);
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().expect("layers").len(), 1);
    assert_eq!(img["Config"]["Cmd"][0], "sh");
    assert_eq!(img["Architecture"], "amd64");
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["GraphDriver"]["Name"], "overlay2");
    assert_eq!(img["RepoTags"][0], "busybox:latest");
    assert!(img["Size"].as_u64().expect("size") > 1_000_000);
}

#[test]
#[ignore = "needs root"]
fn import_rootfs_with_changes_and_message() {
    let d = Daemon::start();
    let rootfs = write(&d, "rootfs.tar", &fixtures::busybox_rootfs());
    let out = d.docker_ok(&[
        "import",
        "--change",
        "ENV IMPORTED=yes",
        "--change",
        r#"CMD ["echo","hi"]"#,
        "--message",
        "from a test",
        &rootfs,
        "imported:v1",
    ]);
    assert!(out.starts_with("sha256:"), "{out}");
    let env = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        "imported:v1",
    ]);
    assert!(env.contains("IMPORTED=yes"), "{env}");
    let cmd = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        "imported:v1",
    ]);
    assert_eq!(cmd, r#"["echo","hi"]"#);
    let hist = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Comment}}",
        "imported:v1",
    ]);
    assert!(hist.contains("from a test"), "{hist}");
}

#[test]
#[ignore = "needs root"]
fn images_filters_and_quiet() {
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    d.docker_ok(&["tag", "busybox", "other/app:2"]);
    let refs = d.docker_ok(&[
        "images",
        "--filter",
        "reference=busy*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(refs, "busybox:latest");
    let refs = d.docker_ok(&[
        "images",
        "--filter",
        "reference=other/*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(refs, "other/app:2");
    let q = d.docker_ok(&["images", "-q"]);
    let short = &id.trim_start_matches("sha256:")[..12];
    assert!(q.lines().all(|l| l == short), "{q}");
    let dangling = d.docker_ok(&["images", "--filter", "dangling=true", "-q"]);
    assert_eq!(dangling, "");
    let table = d.docker_ok(&["images"]);
    let header = table.lines().next().expect("header");
    assert!(
        header.starts_with("REPOSITORY") && header.contains("IMAGE ID"),
        "{header}"
    );
}

#[test]
#[ignore = "needs root"]
fn tag_history_rmi_and_prune() {
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    d.docker_ok(&["tag", "busybox", "busybox:extra"]);
    let hist = d.docker_ok(&["history", "busybox"]);
    assert!(
        hist.lines().next().expect("header").contains("CREATED BY"),
        "{hist}"
    );
    let out = d.docker_ok(&["rmi", "busybox:extra"]);
    assert!(out.contains("Untagged: busybox:extra"), "{out}");
    let out = d.docker(&["rmi", "nope:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: nope:1"));
    let out = d.docker_ok(&["rmi", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    let out = d.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn save_rmi_load_keeps_the_image_id() {
    let d = Daemon::start();
    let id = d.load_busybox("busybox:latest");
    let saved = d.scratch().join("saved.tar");
    d.docker_ok(&[
        "save",
        "-o",
        saved.to_str().expect("path"),
        "busybox:latest",
    ]);
    d.docker_ok(&["rmi", "busybox:latest"]);
    assert_eq!(d.docker_ok(&["images", "-q"]), "");
    let out = d.docker_ok(&["load", "-i", saved.to_str().expect("path")]);
    assert!(out.contains("busybox:latest"), "{out}");
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox:latest"]),
        id
    );
}

#[test]
#[ignore = "needs root"]
fn rmi_is_refused_while_a_container_uses_the_image() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let cid = d.docker_ok(&["create", "busybox", "true"]);
    let out = d.docker(&["rmi", "busybox"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict") && err.contains("is using its referenced image"),
        "{err}"
    );
    d.docker_ok(&["rm", &cid]);
    d.docker_ok(&["rmi", "busybox"]);
}
