//! `docker build` (the CLI's classic builder, `DOCKER_BUILDKIT=0`) against berth: every
//! instruction's effect seen through `docker inspect`/`docker run`, build options, the cache,
//! Docker's output and error texts, cleanup after failures, context safety, and the OCI
//! layout of a built image accepted by umoci and skopeo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_tests::{Daemon, eventually};

/// Writes files (path → contents) into a fresh directory under the daemon's scratch dir.
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.scratch().join(name);
    for (path, data) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
    }
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn build_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut c = d.docker_cmd(&["build"]);
    c.args(args).env("DOCKER_BUILDKIT", "0");
    c
}

fn build(d: &Daemon, args: &[&str]) -> Output {
    build_cmd(d, args).output().expect("docker build")
}

fn build_ok(d: &Daemon, args: &[&str]) -> String {
    let out = build(d, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "docker build {args:?} failed:\n{text}\ndaemon log tail:\n{}",
        berth_tests::daemon::tail(&d.log(), 40)
    );
    text
}

fn build_err(d: &Daemon, args: &[&str]) -> String {
    let out = build(d, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "docker build {args:?} succeeded:\n{text}"
    );
    text
}

fn inspect(d: &Daemon, name: &str) -> serde_json::Value {
    let out = d.docker_ok(&["image", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
    v[0].clone()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Nothing a build leaves behind: no containers, snapshots, runtime state or mounts.
fn assert_no_leftovers(d: &Daemon) {
    let ps = d.docker_ok(&["ps", "-aq"]);
    assert_eq!(ps, "", "containers left: {ps}");
    let root = d.root();
    let prefix = root.display().to_string();
    let entries = |dir: &str| -> Vec<_> {
        std::fs::read_dir(root.join(dir))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    // A removed container's snapshot and mounts go in the background: allow them a moment.
    eventually(Duration::from_secs(20), || {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        entries("image/snapshots").is_empty() && !mounts.contains(&prefix)
    });
    let snaps = entries("image/snapshots");
    assert!(snaps.is_empty(), "snapshots left: {snaps:?}");
    // The context's files are removed after the answer ends (off the client's clock): wait
    // for that rather than assume it.
    eventually(Duration::from_secs(60), || entries("build/tmp").is_empty());
    let tmp = entries("build/tmp");
    assert!(tmp.is_empty(), "build temporary files left: {tmp:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.lines().any(|l| l.contains(&prefix)),
        "mounts left under {prefix}"
    );
}

fn gzip_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, name, *data).expect("append");
    }
    let raw = b.into_inner().expect("tar");
    let mut gz = flate2_free_gzip(&raw);
    gz.shrink_to_fit();
    gz
}

/// A gzip stream with stored (uncompressed) deflate blocks, so the test needs no deflate
/// crate: RFC 1952 header, RFC 1951 stored blocks, CRC-32 and size trailer.
fn flate2_free_gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(65535).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    let mut crc: u32 = 0xffff_ffff;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

const FULL: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE}:latest AS base
ARG GREETING=hello
ENV APP=/app \
    MODE=${GREETING:-none} \
    ALT=${UNSET:+set}
LABEL org.example.name="demo app" version=1
MAINTAINER someone@example.com
WORKDIR $APP
COPY *.txt ./
COPY --chown=1000:1000 --chmod=640 data/secret data/
ADD files.tar.gz /opt/
RUN echo "$GREETING from run" > run.out && cat run.out
RUN ["sh", "-c", "echo exec form > exec.out"]
USER 1000
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
SHELL ["/bin/sh", "-c"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/run.out"]
"#;

#[test]
#[ignore = "needs root"]
fn build_applies_every_instruction() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let ctx = context(
        &d,
        "full",
        &[
            ("Dockerfile", FULL),
            ("a.txt", "A\n"),
            ("b.txt", "B\n"),
            ("c.md", "not copied\n"),
            ("data/secret", "s3cret\n"),
        ],
    );
    std::fs::write(
        ctx.join("files.tar.gz"),
        gzip_tar(&[("inner/x.conf", b"from tar\n")]),
    )
    .expect("tar");
    let out = build_ok(
        &d,
        &[
            "-t",
            "demo:1",
            "-t",
            "demo:latest",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "extra=yes",
            path(&ctx),
        ],
    );
    assert!(out.contains("Step 1/21 : ARG BASE=busybox"), "{out}");
    assert!(
        out.contains("Step 2/21 : FROM ${BASE}:latest AS base"),
        "{out}"
    );
    assert!(out.contains("hi from run"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(
        out.contains("Step 21/21 : LABEL \"extra\"=\"yes\""),
        "{out}"
    );
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged demo:1"), "{out}");
    assert!(out.contains("Successfully tagged demo:latest"), "{out}");

    let img = inspect(&d, "demo:1");
    let c = &img["Config"];
    let env: Vec<&str> = c["Env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"APP=/app"), "{env:?}");
    assert!(env.contains(&"MODE=hi"), "{env:?}");
    assert!(env.contains(&"ALT="), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("GREETING=")),
        "ARG leaked into Env: {env:?}"
    );
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["User"], "1000");
    assert_eq!(c["Cmd"], serde_json::json!(["cat /app/run.out"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    assert!(c["ExposedPorts"]["53/udp"].is_object(), "{c}");
    assert!(c["Volumes"]["/data"].is_object(), "{c}");
    assert_eq!(c["Labels"]["org.example.name"], "demo app");
    assert_eq!(c["Labels"]["version"], "1");
    assert_eq!(c["Labels"]["extra"], "yes");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(img["Author"], "someone@example.com");

    // One history entry per step after FROM on top of the base's one.
    let history = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "demo:1",
    ]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 1 + 19, "{history}");
    assert!(lines[0].contains("LABEL extra=yes"), "{history}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("|1 GREETING=hi /bin/sh -c echo")),
        "{history}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("COPY file:") || l.contains("COPY multi:")),
        "{history}"
    );

    // The image behaves accordingly.
    let run = d.docker_ok(&["run", "--rm", "demo:1"]);
    assert_eq!(run, "hi from run");
    let ls = d.docker_ok(&[
        "run", "--rm", "--entrypoint", "sh", "demo:1", "-c",
        "ls -ln /app/data/secret; cat /app/a.txt /app/b.txt /opt/inner/x.conf /app/exec.out; ls /app; id -u",
    ]);
    assert!(ls.contains("-rw-r-----"), "{ls}");
    assert!(ls.contains(" 1000 ") && ls.contains("1000 "), "{ls}");
    assert!(ls.contains("A\nB\nfrom tar\nexec form"), "{ls}");
    assert!(!ls.contains("c.md"), "{ls}");
    assert!(ls.trim_end().ends_with("1000"), "{ls}");
    assert_no_leftovers(&d);
}

#[test]
#[ignore = "needs root"]
fn cache_reuses_unchanged_steps_and_reruns_from_a_changed_file() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let df = "FROM busybox\nENV A=1\nCOPY one.txt /one.txt\nRUN cat /one.txt > /copy1\nCOPY two.txt /two.txt\nRUN cat /two.txt > /copy2\nCMD [\"cat\", \"/copy1\", \"/copy2\"]\n";
    let ctx = context(
        &d,
        "cache",
        &[("Dockerfile", df), ("one.txt", "1\n"), ("two.txt", "2\n")],
    );
    let first = build_ok(&d, &["-t", "cached", path(&ctx)]);
    assert!(!first.contains("Using cache"), "{first}");
    let id1 = inspect(&d, "cached")["Id"]
        .as_str()
        .expect("id")
        .to_string();

    // Touching a file (new mtime, same content) keeps every step cached: keys are contents.
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.join("one.txt"))
        .expect("open");
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .expect("mtime");
    let again = build_ok(&d, &["-t", "cached", path(&ctx)]);
    assert_eq!(again.matches(" ---> Using cache").count(), 6, "{again}");
    assert_eq!(inspect(&d, "cached")["Id"], id1.as_str());

    // Changing two.txt re-runs its COPY and everything after, and nothing before.
    std::fs::write(ctx.join("two.txt"), "changed\n").expect("write");
    let changed = build_ok(&d, &["-t", "cached", path(&ctx)]);
    assert_eq!(changed.matches(" ---> Using cache").count(), 3, "{changed}");
    let steps: Vec<&str> = changed.split("Step ").collect();
    assert!(
        steps[4].starts_with("4/7 : RUN") && steps[4].contains("Using cache"),
        "{changed}"
    );
    assert!(
        steps[5].starts_with("5/7 : COPY") && !steps[5].contains("Using cache"),
        "{changed}"
    );
    assert!(steps[6].contains(" ---> Running in "), "{changed}");
    assert_ne!(inspect(&d, "cached")["Id"], id1.as_str());
    assert_eq!(d.docker_ok(&["run", "--rm", "cached"]), "1\nchanged");

    // --no-cache runs every step again.
    let fresh = build_ok(&d, &["--no-cache", "-t", "cached", path(&ctx)]);
    assert!(!fresh.contains("Using cache"), "{fresh}");
    assert_no_leftovers(&d);
}

#[test]
#[ignore = "needs root"]
fn errors_are_reported_as_docker_does_and_leave_nothing_behind() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let unknown = context(
        &d,
        "unknown",
        &[("Dockerfile", "FROM busybox\n\nFOO bar\n")],
    );
    let out = build_err(&d, &[path(&unknown)]);
    assert!(
        out.contains("dockerfile parse error on line 3: unknown instruction: FOO"),
        "{out}"
    );

    let failing = context(
        &d,
        "failing",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before > /f\nRUN echo out; exit 3\n",
        )],
    );
    let out = build_err(&d, &["-t", "never", path(&failing)]);
    assert!(
        out.contains("The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3"),
        "{out}"
    );
    assert!(out.contains("out\n"), "{out}");
    assert!(!d.docker(&["image", "inspect", "never"]).status.success());

    let missing = context(
        &d,
        "missing",
        &[("Dockerfile", "FROM busybox\nCOPY nope /x\n")],
    );
    let out = build_err(&d, &[path(&missing)]);
    assert!(
        out.contains("COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist"),
        "{out}"
    );

    let base = context(&d, "base", &[("Dockerfile", "FROM nosuchimage:1\n")]);
    let out = build_err(&d, &[path(&base)]);
    assert!(out.contains("nosuchimage"), "{out}");

    let stage = context(
        &d,
        "stage",
        &[(
            "Dockerfile",
            "FROM busybox AS one\nCOPY --from=nostage /x /x\n",
        )],
    );
    let out = build_err(&d, &[path(&stage)]);
    assert!(out.contains("invalid from flag value nostage"), "{out}");
    let out = build_err(&d, &["--target", "nothere", path(&stage)]);
    assert!(
        out.contains("failed to reach build target nothere in Dockerfile"),
        "{out}"
    );

    assert_no_leftovers(&d);
}

#[test]
#[ignore = "needs root"]
fn multi_stage_target_from_and_dockerfile_outside_context() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let df = "# escape=`\nFROM busybox AS builder\nRUN mkdir /out && `\n    echo built > /out/artifact\nRUN <<EOF\necho heredoc > /out/here\nEOF\n\nFROM busybox AS second\nCOPY --from=builder /out/artifact /from-name\nCOPY --from=0 /out/here /from-index\nCOPY --from=busybox:latest /bin/busybox /from-image\nCMD [\"cat\", \"/from-name\", \"/from-index\"]\n\nFROM second AS third\nRUN echo third > /third\n";
    let outside = d.scratch().join("outside.Dockerfile");
    std::fs::write(&outside, df).expect("dockerfile");
    let ctx = context(&d, "multi", &[("unused", "x")]);
    let out = build_ok(
        &d,
        &[
            "-f",
            path(&outside),
            "--target",
            "second",
            "-t",
            "multi",
            path(&ctx),
        ],
    );
    assert!(out.contains("Step 1/8 : FROM busybox AS builder"), "{out}");
    assert!(!out.contains("third"), "{out}");
    assert_eq!(d.docker_ok(&["run", "--rm", "multi"]), "built\nheredoc");
    let sizes = d.docker_ok(&[
        "run",
        "--rm",
        "multi",
        "sh",
        "-c",
        "test -x /from-image && echo ok; ls /out 2>&1 || true",
    ]);
    assert!(sizes.starts_with("ok"), "{sizes}");
    let out = build_ok(&d, &["-f", path(&outside), "-t", "multi3", path(&ctx)]);
    assert!(
        out.contains("Step 10/10 : RUN echo third > /third"),
        "{out}"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "multi3", "cat", "/third", "/from-name"]),
        "third\nbuilt"
    );
    assert_no_leftovers(&d);
}

#[test]
#[ignore = "needs root"]
fn dockerignore_stdin_tar_quiet_and_onbuild() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let ctx = context(
        &d,
        "ignore",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx/\nRUN find /ctx -type f | sort\n",
            ),
            (".dockerignore", "# comment\n**/*.log\n!keep.log\nsecret/\n"),
            ("a.log", "x"),
            ("keep.log", "x"),
            ("sub/deep/b.log", "x"),
            ("sub/c.txt", "x"),
            ("secret/key", "x"),
        ],
    );
    let out = build_ok(&d, &["-t", "ign", path(&ctx)]);
    let files = d.docker_ok(&["run", "--rm", "ign", "find", "/ctx", "-type", "f"]);
    let mut files: Vec<&str> = files.lines().collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/keep.log",
            "/ctx/sub/c.txt"
        ],
        "{out}"
    );

    // A context tar on stdin, quiet: only the id is printed.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        (
            "Dockerfile",
            "FROM busybox\nONBUILD RUN echo triggered > /onbuild\nCOPY hello /hello\n",
        ),
        ("hello", "from stdin\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_bytes())
            .expect("append");
    }
    let tarball = b.into_inner().expect("tar");
    let mut cmd = build_cmd(&d, &["-q", "-t", "parent", "-"]);
    let out = run_with_stdin(&mut cmd, &tarball);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(inspect(&d, "parent")["Id"], id.as_str());
    assert_eq!(
        d.docker_ok(&["run", "--rm", "parent", "cat", "/hello"]),
        "from stdin"
    );

    let child = context(
        &d,
        "child",
        &[("Dockerfile", "FROM parent\nCMD [\"cat\", \"/onbuild\"]\n")],
    );
    let out = build_ok(&d, &["-t", "child", path(&child)]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(d.docker_ok(&["run", "--rm", "child"]), "triggered");
    assert_no_leftovers(&d);
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("output");
    let _ = w.join();
    out
}

#[test]
#[ignore = "needs root"]
fn python_sdk_images_build() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let ctx = context(
        &d,
        "py",
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG WHO=nobody\nRUN echo \"built by $WHO\" > /by\nCMD [\"cat\", \"/by\"]\n",
            ),
            ("Dockerfile.fail", "FROM busybox\nRUN exit 7\n"),
        ],
    );
    let out = d.python("sdk_build.py", &[path(&ctx)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("result line");
    let v: serde_json::Value = serde_json::from_str(last).expect("json");
    assert_eq!(
        v["tags"],
        serde_json::json!(["pybuilt:1", "pybuilt:second"])
    );
    assert_eq!(v["labels"]["via"], "sdk");
    assert_eq!(v["run"], "built by python\n");
    let id = v["id"].as_str().expect("id");
    assert_eq!(v["built"][0], format!("Successfully built {}", &id[7..19]));
    assert_eq!(
        v["failure"],
        "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    );
    // The CLI sees the same image.
    assert_eq!(inspect(&d, "pybuilt:1")["Id"], id);
    assert_no_leftovers(&d);
}

/// A tar whose entry names are written raw (so `../x` and `/x` survive), with symlinks.
fn raw_tar(entries: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, link, data) in entries {
        let mut h = tar::Header::new_old();
        h.set_mode(0o644);
        h.set_mtime(0);
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        match link {
            Some(l) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                let lb = l.as_bytes();
                h.as_old_mut().linkname[..lb.len()].copy_from_slice(lb);
            }
            None => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
            }
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
#[ignore = "needs root"]
fn context_cannot_reach_outside() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let marker = d.scratch().join("outside-marker");
    std::fs::write(&marker, "host secret\n").expect("marker");
    let df: &[u8] = b"FROM busybox\nCOPY . /ctx/\n";
    for evil in [
        "../../../../../../tmp/berth-escape",
        "/tmp/berth-escape-abs",
    ] {
        let t = raw_tar(&[("Dockerfile", None, df), (evil, None, b"pwned")]);
        let r = d.api("POST", "/build?t=evil", Some(&t));
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(r.status, 400, "{text}");
        assert!(text.contains("outside the build context"), "{text}");
    }
    assert!(!Path::new("/tmp/berth-escape").exists());
    assert!(!Path::new("/tmp/berth-escape-abs").exists());

    // A symlink pointing outside, then an entry written through it: refused, nothing written.
    let dir = d.scratch();
    let through = dir.join("through");
    std::fs::create_dir_all(&through).expect("mkdir");
    let t = raw_tar(&[
        ("Dockerfile", None, df),
        ("link", Some(path(&through)), b""),
        ("link/pwned", None, b"x"),
    ]);
    let r = d.api("POST", "/build?t=evil", Some(&t));
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(!through.join("pwned").exists());

    // COPY through symlinks pointing outside reads inside the context only.
    let marker_s = marker.display().to_string();
    let t = raw_tar(&[
        ("Dockerfile", None, b"FROM busybox\nCOPY abs /abs\n"),
        ("abs", Some(&marker_s), b""),
    ]);
    let r = d.api("POST", "/build?t=evil", Some(&t));
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        text.contains("COPY failed: file not found in build context"),
        "{text}"
    );
    let t = raw_tar(&[
        (
            "Dockerfile",
            None,
            b"FROM busybox\nCOPY up/outside-marker /m\n",
        ),
        ("up", Some("../../../../../.."), b""),
    ]);
    let text = String::from_utf8_lossy(&d.api("POST", "/build?t=evil", Some(&t)).body).to_string();
    assert!(
        text.contains("COPY failed: file not found in build context"),
        "{text}"
    );
    // Symlinks inside a copied directory are copied as links, not followed.
    let t = raw_tar(&[
        ("Dockerfile", None, b"FROM busybox\nCOPY dir /dir\n"),
        ("dir/l", Some(&marker_s), b""),
    ]);
    let r = d.api("POST", "/build?t=links", Some(&t));
    assert_eq!(r.status, 200);
    let out = d.docker_ok(&["run", "--rm", "links", "readlink", "/dir/l"]);
    assert_eq!(out, marker_s);
    assert!(
        !d.docker(&["run", "--rm", "links", "cat", "/dir/l"])
            .status
            .success()
    );
    assert!(!d.docker(&["image", "inspect", "evil"]).status.success());
    assert_no_leftovers(&d);
}

#[test]
#[ignore = "needs root"]
fn saved_oci_layout_is_accepted_by_umoci_and_skopeo() {
    for tool in ["umoci", "skopeo"] {
        if Command::new(tool).arg("--version").output().is_err() {
            panic!("{tool} is not installed (scripts/deps installs it)");
        }
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let ctx = context(
        &d,
        "oci",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY app.txt /app/\nRUN echo ran > /app/ran\nENV X=1\n",
            ),
            ("app.txt", "app\n"),
        ],
    );
    build_ok(&d, &["-t", "ocibuilt:1", path(&ctx)]);
    let tarball = d.scratch().join("saved.tar");
    d.docker_ok(&["save", "-o", path(&tarball), "ocibuilt:1"]);
    let layout = d.scratch().join("layout");
    std::fs::create_dir_all(&layout).expect("mkdir");
    let data = std::fs::read(&tarball).expect("read");
    tar::Archive::new(&data[..])
        .unpack(&layout)
        .expect("unpack");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    let tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or("1")
        .to_string();
    let bundle = d.scratch().join("bundle");
    let out = Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:{tag}", path(&layout)),
            path(&bundle),
        ])
        .output()
        .expect("umoci");
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/app.txt")).expect("app"),
        "app\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/ran")).expect("ran"),
        "ran\n"
    );
    let copied = d.scratch().join("copied");
    let out = Command::new("skopeo")
        .args([
            "copy",
            &format!("oci:{}:{tag}", path(&layout)),
            &format!("dir:{}", path(&copied)),
        ])
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(copied.join("manifest.json").exists());
}

#[test]
#[ignore = "needs root"]
fn berth_build_verb_makes_the_same_image_as_docker_build() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let ctx = context(
        &d,
        "verb",
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG V=default\nCOPY f /f\nRUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n",
            ),
            ("f", "file\n"),
        ],
    );
    build_ok(
        &d,
        &["--build-arg", "V=given", "-t", "viadocker", path(&ctx)],
    );
    let berth = |args: &[&str]| {
        Command::new(berth_tests::berth_bin())
            .arg("build")
            .arg("-H")
            .arg(d.host())
            .args(args)
            .output()
            .expect("berth build")
    };
    let out = berth(&["--build-arg", "V=given", "-t", "viaberth", path(&ctx)]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches(" ---> Using cache").count(), 4, "{text}");
    assert!(
        text.contains("Successfully tagged viaberth:latest"),
        "{text}"
    );
    assert_eq!(
        inspect(&d, "viaberth")["Id"],
        inspect(&d, "viadocker")["Id"]
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "viaberth"]), "given");

    // -f outside the context, -q, and a failing RUN's exit code.
    let outside = d.scratch().join("Other.Dockerfile");
    std::fs::write(&outside, "FROM busybox\nRUN exit 4\n").expect("write");
    let out = berth(&["-q", "-f", path(&outside), path(&ctx)]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("The command '/bin/sh -c exit 4' returned a non-zero code: 4")
    );
    std::fs::write(&outside, "FROM viaberth\nENV Q=1\n").expect("write");
    let out = berth(&["-q", "-f", path(&outside), path(&ctx)]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success() && id.starts_with("sha256:"), "{id}");
    assert_no_leftovers(&d);
}

/// A one-thread HTTP server on 127.0.0.1 answering `/files/remote.txt` and 404 otherwise;
/// returns its port. It serves until the test process ends.
fn serve_http() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().expect("clone"));
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                    break;
                }
            }
            let mut s = stream;
            let body = "remote content\n";
            let _ = if first.starts_with("GET /files/remote.txt ") {
                write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                write!(s, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            };
        }
    });
    port
}

#[test]
#[ignore = "needs root"]
fn add_of_a_url_downloads_the_file() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let port = serve_http();
    let df = format!(
        "FROM busybox\nADD http://127.0.0.1:{port}/files/remote.txt /srv/\nCMD [\"cat\", \"/srv/remote.txt\"]\n"
    );
    let ctx = context(&d, "url", &[("Dockerfile", &df)]);
    build_ok(&d, &["-t", "fromurl", path(&ctx)]);
    assert_eq!(d.docker_ok(&["run", "--rm", "fromurl"]), "remote content");
    let mode = d.docker_ok(&[
        "run",
        "--rm",
        "fromurl",
        "stat",
        "-c",
        "%a",
        "/srv/remote.txt",
    ]);
    assert_eq!(mode, "600");
    let again = build_ok(&d, &["-t", "fromurl", path(&ctx)]);
    assert!(again.contains("Using cache"), "{again}");
    let bad = format!("FROM busybox\nADD http://127.0.0.1:{port}/missing /srv/\n");
    let ctx = context(&d, "badurl", &[("Dockerfile", &bad)]);
    let out = build_err(&d, &[path(&ctx)]);
    assert!(out.contains("with status 404 Not Found"), "{out}");
    assert_no_leftovers(&d);
}

#[test]
#[ignore = "needs root"]
fn intermediate_images_are_hidden_and_removed_with_the_image() {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let ctx = context(
        &d,
        "layers",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one > /one\nENV A=1\nRUN echo two > /two\n",
        )],
    );
    build_ok(&d, &["-t", "layered", ctx.to_str().expect("path")]);
    // Only the tagged images are listed; the steps' images show with -a and carry Parent.
    let listed = d.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert_eq!(
        d.docker_ok(&["images", "-q", "--filter", "dangling=true"]),
        ""
    );
    let all = d.docker_ok(&["images", "-a", "-q"]);
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(
        d.docker_ok(&["inspect", "-f", "{{.Parent}}", "layered"])
            .starts_with("sha256:")
    );
    // rmi takes the untagged steps with it, down to busybox (3 images, 2 RUN layers).
    let out = d.docker_ok(&["rmi", "layered"]);
    assert_eq!(out.matches("Deleted:").count(), 5, "{out}");
    assert_eq!(d.docker_ok(&["images", "-a", "-q"]).lines().count(), 1);
}
