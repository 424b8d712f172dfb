//! `docker version`, `docker info`, `/_ping`, API version prefixes and Docker's error shapes,
//! against a fresh `berth daemon`.

use berth_tests::Daemon;

#[test]
fn ping_reports_api_version_and_os_type() {
    let d = Daemon::start();
    for method in ["GET", "HEAD"] {
        let r = d.api(method, "/_ping", None);
        assert_eq!(r.status, 200);
        let v = r.header("api-version").expect("API-Version header");
        let minor: u32 = v
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .expect("1.NN");
        assert!(minor >= 45, "API version {v} too old");
        assert_eq!(r.header("ostype"), Some("linux"));
    }
    assert_eq!(d.api("GET", "/_ping", None).body, b"OK");
}

#[test]
fn every_version_prefix_is_accepted() {
    let d = Daemon::start();
    for prefix in ["", "/v1.24", "/v1.41", "/v1.45", "/v1.47"] {
        let r = d.api("GET", &format!("{prefix}/version"), None);
        assert_eq!(r.status, 200, "prefix {prefix}");
        assert_eq!(r.json()["ApiVersion"], "1.47");
    }
    let r = d.api("GET", "/v1.99/version", None);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .expect("message")
            .contains("too new")
    );
}

#[test]
fn docker_version_describes_berth() {
    let d = Daemon::start();
    let out = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}} {{.Server.MinAPIVersion}}",
    ]);
    assert_eq!(out, "1.47 linux 1.24");
    let plain = d.docker_ok(&["version"]);
    assert!(plain.contains("Server: berth"), "{plain}");
}

#[test]
fn docker_info_describes_storage_cgroups_runtimes_and_counts() {
    let d = Daemon::start();
    let out = d.docker_ok(&["info", "--format", "{{json .}}"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("info JSON");
    assert_eq!(v["Driver"], "overlay2");
    let cg = v["CgroupVersion"].as_str().expect("cgroup version");
    let expected = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    assert_eq!(cg, expected);
    assert_eq!(v["CgroupDriver"], "cgroupfs");
    assert!(v["Runtimes"].get("builtin").is_some(), "{}", v["Runtimes"]);
    assert_eq!(v["DefaultRuntime"], "builtin");
    assert_eq!(v["Containers"], 0);
    assert_eq!(v["Images"], 0);
    assert!(v["NCPU"].as_u64().expect("NCPU") >= 1);
    assert!(v["MemTotal"].as_u64().expect("MemTotal") > 0);
    assert_eq!(
        v["DockerRootDir"],
        std::fs::canonicalize(d.root())
            .expect("root")
            .display()
            .to_string()
    );
    let plain = d.docker_ok(&["info"]);
    assert!(plain.contains("Storage Driver: overlay2"), "{plain}");
    assert!(plain.contains("Cgroup Driver: cgroupfs"), "{plain}");
}

#[test]
fn errors_have_docker_shape_and_status() {
    let d = Daemon::start();
    let r = d.api("GET", "/v1.47/containers/nope/json", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such container: nope");
    let r = d.api("GET", "/v1.47/images/nope:1/json", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: nope:1");
    let r = d.api("POST", "/v1.47/containers/create", Some(b"{not json"));
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].is_string());
    let r = d.api(
        "POST",
        "/v1.47/containers/create",
        Some(br#"{"Image":"missing-image","Cmd":["true"]}"#),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: missing-image:latest");
    // Docker resolves the image before it checks the name, so the image must exist.
    d.load_busybox("bb-errors:1");
    let r = d.api(
        "POST",
        "/v1.47/containers/create?name=bad%20name",
        Some(br#"{"Image":"bb-errors:1"}"#),
    );
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Invalid container name (bad name)")),
        "{:?}",
        r.json()
    );
    assert_eq!(r.status, 400);
    let r = d.api("GET", "/v1.47/no/such/route", None);
    assert_eq!(r.status, 404);
    // Still alive after all of that.
    assert_eq!(d.api("GET", "/_ping", None).status, 200);
    let out = d.docker(&["inspect", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such object: nope"));
}

#[test]
fn garbage_requests_do_not_crash_the_daemon() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET /containers/%zz/json HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[1,2]",
        b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n{",
    ] {
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(d.socket()) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(300)));
            let _ = s.write_all(junk);
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
        }
    }
    assert_eq!(d.api("GET", "/_ping", None).status, 200);
}

#[test]
fn events_stream_without_breaking_the_cli() {
    let d = Daemon::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let until = (now + 1).to_string();
    let out = d.docker(&["events", "--until", &until]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cgroup2 mountinfo line of this host, if there is one.
fn unified_mount() -> Option<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .map(str::to_string)
}

#[test]
#[ignore = "needs root"]
fn daemon_turns_on_cgroup_favordynmods() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let major: u32 = release
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("kernel major");
    if unified_mount().is_none() || major < 6 {
        eprintln!("cannot check favordynmods: no cgroup2 mount or a kernel before 6.0 ({release})");
        return;
    }
    let _d = Daemon::start();
    let line = unified_mount().expect("cgroup2 mount");
    let super_opts = line.split(" - ").nth(1).expect("super options");
    assert!(
        super_opts.split([' ', ',']).any(|o| o == "favordynmods"),
        "{line}"
    );
}
