//! Volumes through the real docker CLI (issue 3): create/ls/inspect/rm/prune, named volumes
//! created on first use and filled from the image, anonymous volumes for `VOLUME` paths,
//! `--mount` types and options, `--volumes-from`, persistence across removal and restart.

use berth_tests::Daemon;

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// An image with `VOLUME /data` holding a file, built with `docker commit --change`.
fn image_with_volume(d: &Daemon) {
    d.docker_ok(&[
        "run",
        "--name",
        "seed",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data /etc/app && echo from-image > /data/seed && echo conf > /etc/app/conf",
    ]);
    d.docker_ok(&[
        "commit",
        "--change",
        "VOLUME /data",
        "seed",
        "withvol:latest",
    ]);
    d.docker_ok(&["rm", "seed"]);
}

#[test]
#[ignore = "needs root"]
fn volume_verbs_create_ls_inspect_rm_prune() {
    let d = daemon();
    assert_eq!(
        d.docker_ok(&["volume", "create", "--label", "tier=db", "data"]),
        "data"
    );
    d.docker_ok(&["volume", "create", "other"]);
    let anon = d.docker_ok(&["volume", "create"]);
    assert_eq!(anon.len(), 64, "generated name {anon}");
    let mountpoint = d.docker_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    assert_eq!(
        mountpoint,
        d.root().join("volumes/data/_data").display().to_string()
    );
    assert_eq!(
        d.docker_ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Driver}} {{.Labels.tier}} {{.Scope}}",
            "data"
        ]),
        "local db local"
    );
    let ls = d.docker_ok(&["volume", "ls", "-q", "--filter", "label=tier=db"]);
    assert_eq!(ls, "data");
    let ls = d.docker_ok(&["volume", "ls", "-q", "--filter", "name=oth"]);
    assert_eq!(ls, "other");
    d.docker_ok(&[
        "run", "-d", "--name", "user", "-v", "data:/d", "busybox", "sleep", "600",
    ]);
    let dangling = d.docker_ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert!(
        !dangling.contains("data") && dangling.contains("other"),
        "{dangling}"
    );
    // rm is refused while used (409), by a running or a stopped container.
    let o = d.docker(&["volume", "rm", "data"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    let r = d.api("DELETE", "/volumes/data", None);
    assert_eq!(r.status, 409);
    d.docker_ok(&["stop", "-t", "0", "user"]);
    assert!(!d.docker(&["volume", "rm", "data"]).status.success());
    // prune: anonymous only by default, named ones with --all; used ones stay.
    let pruned = d.docker_ok(&["volume", "prune", "-f"]);
    assert!(
        pruned.contains(&anon) && !pruned.contains("other"),
        "{pruned}"
    );
    let pruned = d.docker_ok(&["volume", "prune", "-af"]);
    assert!(
        pruned.contains("other") && !pruned.contains("data"),
        "{pruned}"
    );
    d.docker_ok(&["rm", "user"]);
    d.docker_ok(&["volume", "rm", "data"]);
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]), "");
    assert!(!d.root().join("volumes/data").exists());
    let o = d.docker(&["volume", "inspect", "data"]);
    assert!(stderr(&o).contains("no such volume"), "{}", stderr(&o));
    let o = d.docker(&["volume", "create", "bad/name"]);
    assert!(
        stderr(&o).contains("includes invalid characters"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["volume", "create", "-d", "nfs", "x1"]);
    assert!(!o.status.success());
}

#[test]
#[ignore = "needs root"]
fn named_volumes_are_created_on_use_filled_and_outlive_containers() {
    let d = daemon();
    image_with_volume(&d);
    // First use creates the volume and copies the image's content at that path.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "appconf:/etc/app",
        "withvol",
        "cat",
        "/etc/app/conf",
    ]);
    assert_eq!(out, "conf");
    assert!(d.docker_ok(&["volume", "ls", "-q"]).contains("appconf"));
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "appconf:/etc/app",
        "busybox",
        "sh",
        "-c",
        "echo changed > /etc/app/conf",
    ]);
    // Data survives the container's removal, and is not copied over again.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "appconf:/etc/app",
        "withvol",
        "cat",
        "/etc/app/conf",
    ]);
    assert_eq!(out, "changed");
    // Read-only mounts refuse writes.
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "appconf:/etc/app:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /etc/app/conf",
    ]);
    assert!(!o.status.success());
    let o = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=appconf,target=/c,readonly",
        "busybox",
        "sh",
        "-c",
        "cat /c/conf && echo x > /c/conf",
    ]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "changed");
    // Survives a daemon restart.
    let mut d = d;
    d.restart();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "appconf:/etc/app",
        "busybox",
        "cat",
        "/etc/app/conf",
    ]);
    assert_eq!(out, "changed");
    let inspect = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "mounted",
        "-v",
        "appconf:/etc/app",
        "busybox",
        "sleep",
        "60",
    ]);
    let mounts = d.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
        &inspect,
    ]);
    assert_eq!(mounts, "volume appconf /etc/app true");
}

#[test]
#[ignore = "needs root"]
fn anonymous_volumes_mounts_and_volumes_from() {
    let d = daemon();
    image_with_volume(&d);
    d.docker_ok(&["create", "--name", "anon", "withvol", "cat", "/data/seed"]);
    let name = d.docker_ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon"]);
    assert_eq!(name.len(), 64, "anonymous volume for VOLUME /data: {name}");
    let out = d.docker_ok(&["start", "-a", "anon"]);
    assert_eq!(out, "from-image", "filled from the image");
    // --volumes-from shares it.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "anon",
        "busybox",
        "cat",
        "/data/seed",
    ]);
    assert_eq!(out, "from-image");
    // rm without -v keeps it; rm -v removes it.
    d.docker_ok(&["create", "--name", "anon2", "withvol", "true"]);
    let name2 = d.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Name}}{{end}}",
        "anon2",
    ]);
    d.docker_ok(&["rm", "anon2"]);
    assert!(d.docker_ok(&["volume", "ls", "-q"]).contains(&name2));
    d.docker_ok(&["rm", "-v", "anon"]);
    let ls = d.docker_ok(&["volume", "ls", "-q"]);
    assert!(!ls.contains(&name), "{ls}");
    // --rm removes the anonymous volume too.
    d.docker_ok(&["run", "--rm", "withvol", "true"]);
    let after = d.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(
        after.lines().count(),
        1,
        "only anon2's volume is left: {after}"
    );
    // --mount type=tmpfs with a size; type=bind; --opt tmpfs volumes.
    let df = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/scratch,tmpfs-size=2m",
        "busybox",
        "busybox",
        "df",
        "-k",
        "/scratch",
    ]);
    assert!(df.contains("tmpfs") && df.contains(" 2048 "), "{df}");
    let host = d.scratch().join("bound");
    std::fs::create_dir_all(&host).expect("bind dir");
    std::fs::write(host.join("f"), "on-host").expect("file");
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    let out = d.docker_ok(&["run", "--rm", "--mount", &bind, "busybox", "cat", "/b/f"]);
    assert_eq!(out, "on-host");
    d.docker_ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "fast",
    ]);
    let df = d.docker_ok(&[
        "run", "--rm", "-v", "fast:/f", "busybox", "busybox", "df", "-k", "/f",
    ]);
    assert!(df.contains(" 1024 "), "{df}");
    d.docker_ok(&["volume", "rm", "fast"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains("volumes/fast"), "tmpfs backing unmounted");
    let o = d.docker(&["run", "--rm", "-v", "bad$name:/x", "busybox", "true"]);
    assert!(stderr(&o).contains("invalid characters"), "{}", stderr(&o));
}
