//! Container networking through the real docker CLI (issue 3): the default bridge, user
//! networks with embedded DNS, /etc files, network modes, published ports, restarts, leaks
//! and bad input. Each daemon manages its own private network namespace (the harness passes
//! `--network-namespace`), which plays the host here: the test reaches published ports and
//! inspects links and rules by entering it with `nsenter`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_tests::Daemon;

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d
}

/// Runs a command inside the daemon's managed namespace.
fn in_host(d: &Daemon, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net={}", d.netns().display()))
        .args(args)
        .output()
        .expect("run nsenter")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Starts a detached busybox httpd serving `body` on port 80 with extra `docker run` args.
fn httpd(d: &Daemon, name: &str, extra: &[&str], body: &str) -> String {
    let script = format!(
        "mkdir -p /www && echo {body} > /www/index.html && exec busybox httpd -f -p 80 -h /www"
    );
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.docker_ok(&args)
}

/// Retries `f` for up to 10 s until it returns `Some`.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `wget -qO-` of `url` from a throw-away container with extra `docker run` args.
fn fetch_from_container(d: &Daemon, extra: &[&str], url: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "busybox", "busybox", "timeout", "5", "busybox", "wget", "-qO-", url,
    ]);
    d.docker(&args)
}

fn fetch_from_host(d: &Daemon, url: &str) -> Output {
    in_host(
        d,
        &[
            "/bin/busybox",
            "timeout",
            "5",
            "/bin/busybox",
            "wget",
            "-qO-",
            url,
        ],
    )
}

fn inspect(d: &Daemon, what: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, what])
}

/// A namespace outside the managed one, linked to it by a veth pair (192.0.2.0/24), with a
/// busybox httpd whose CGI answers the client address it sees: what "the internet" sees.
struct Outside {
    name: String,
    server: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Outside {
    fn new(d: &Daemon) -> Self {
        let name = format!("berth-out-{}", std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("cgi-bin")).expect("cgi dir");
        let cgi = dir.path().join("cgi-bin/ip");
        std::fs::write(
            &cgi,
            "#!/bin/busybox sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n",
        )
        .expect("cgi");
        std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let run = |c: &mut Command| {
            let o = c.output().expect("run ip");
            assert!(o.status.success(), "{c:?}: {}", stderr(&o));
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        let veth = format!("vo{}", std::process::id() % 100_000);
        let o = in_host(
            d,
            &[
                "ip", "link", "add", "vi-out", "type", "veth", "peer", "name", &veth, "netns",
                &name,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        for args in [
            vec!["ip", "addr", "add", "192.0.2.1/24", "dev", "vi-out"],
            vec!["ip", "link", "set", "vi-out", "up"],
        ] {
            let o = in_host(d, &args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        }
        for args in [
            vec!["addr", "add", "192.0.2.2/24", "dev", veth.as_str()],
            vec!["link", "set", veth.as_str(), "up"],
            vec!["link", "set", "lo", "up"],
        ] {
            run(Command::new("ip").args(["-n", &name]).args(&args));
        }
        let server = Command::new("ip")
            .args([
                "netns",
                "exec",
                &name,
                "/bin/busybox",
                "httpd",
                "-f",
                "-p",
                "9000",
                "-h",
            ])
            .arg(dir.path())
            .spawn()
            .expect("outside httpd");
        Outside {
            name,
            server,
            _dir: dir,
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
#[ignore = "needs root"]
fn default_bridge_gives_address_route_nat_and_peers() {
    let d = daemon();
    let subnet = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]);
    let (subnet, gateway) = subnet.split_once(' ').expect("subnet and gateway");
    assert_eq!(
        subnet, "172.17.0.0/16",
        "the managed namespace has no other routes"
    );
    httpd(&d, "web", &[], "hello-bridge");
    let ip = inspect(&d, "web", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("172.17.0."), "address {ip}");
    assert_eq!(
        inspect(&d, "web", "{{.NetworkSettings.Networks.bridge.Gateway}}"),
        gateway
    );
    let routes = d.docker_ok(&["run", "--rm", "busybox", "busybox", "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {gateway} dev eth0")),
        "{routes}"
    );
    let body = eventually("httpd on the bridge", || {
        let o = fetch_from_container(&d, &[], &format!("http://{ip}/"));
        o.status.success().then(|| text(&o))
    });
    assert_eq!(body, "hello-bridge");
    let listed = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{end}}",
        "bridge",
    ]);
    assert!(listed.contains("web"), "{listed}");
    // Outbound NAT: the outside sees the managed namespace's address, not the container's.
    let out = Outside::new(&d);
    let seen = eventually("outside httpd", || {
        let o = fetch_from_container(&d, &[], "http://192.0.2.2:9000/cgi-bin/ip");
        o.status.success().then(|| text(&o))
    });
    // busybox httpd writes IPv4 peers as `[::ffff:a.b.c.d]`.
    assert_eq!(
        seen.trim_start_matches("[::ffff:").trim_end_matches(']'),
        "192.0.2.1",
        "masqueraded source"
    );
    drop(out);
}

#[test]
#[ignore = "needs root"]
fn user_networks_create_inspect_connect_isolate_and_remove() {
    let d = daemon();
    let id = d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.31.0.0/16",
        "--gateway",
        "10.31.0.254",
        "--ip-range",
        "10.31.5.0/24",
        "--label",
        "team=blue",
        "front",
    ]);
    assert_eq!(id.len(), 64);
    d.docker_ok(&["network", "create", "--internal", "back"]);
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in [
        "bridge bridge",
        "host host",
        "none null",
        "front bridge",
        "back bridge",
    ] {
        assert!(ls.contains(want), "{ls}");
    }
    let filtered = d.docker_ok(&["network", "ls", "-q", "--filter", "label=team=blue"]);
    assert_eq!(filtered, &id[..12]);
    let ipam = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}} {{.Labels.team}} {{.Internal}}",
        "front",
    ]);
    assert_eq!(ipam, "10.31.0.0/16 10.31.0.254 10.31.5.0/24 blue false");
    httpd(&d, "web", &["--network", "front"], "hello-front");
    let ip = inspect(&d, "web", "{{.NetworkSettings.Networks.front.IPAddress}}");
    assert!(
        ip.starts_with("10.31.5."),
        "dynamic address from the ip-range: {ip}"
    );
    // A container on another network cannot reach it...
    httpd(&d, "api", &["--network", "back"], "hello-back");
    let o = fetch_from_container(&d, &["--network", "back"], &format!("http://{ip}/"));
    assert!(
        !o.status.success(),
        "isolated networks must not reach each other"
    );
    // ... until it is connected, with an alias and a fixed address.
    d.docker_ok(&[
        "network",
        "connect",
        "--alias",
        "gateway-api",
        "--ip",
        "10.31.0.77",
        "front",
        "api",
    ]);
    let nets = inspect(
        &d,
        "api",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
    );
    assert!(nets.contains("front=10.31.0.77"), "{nets}");
    assert!(nets.contains("back="), "{nets}");
    let body = eventually("httpd via alias", || {
        let o = fetch_from_container(&d, &["--network", "front"], "http://gateway-api/");
        o.status.success().then(|| text(&o))
    });
    assert_eq!(body, "hello-back");
    // --internal: no outbound route.
    let routes = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "busybox",
        "ip",
        "route",
    ]);
    assert!(!routes.contains("default"), "{routes}");
    // rm is refused while in use, and works once empty.
    let o = d.docker(&["network", "rm", "front"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("has active endpoints"),
        "{}",
        stderr(&o)
    );
    d.docker_ok(&["network", "disconnect", "front", "api"]);
    let o = d.docker(&["network", "disconnect", "front", "api"]);
    assert!(stderr(&o).contains("is not connected"), "{}", stderr(&o));
    d.docker_ok(&["rm", "-f", "web"]);
    d.docker_ok(&["network", "rm", "front"]);
    let o = d.docker(&["network", "rm", "bridge"]);
    assert!(
        stderr(&o).contains("bridge is a pre-defined network and cannot be removed"),
        "{}",
        stderr(&o)
    );
    d.docker_ok(&["network", "create", "spare"]);
    let pruned = d.docker_ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("spare"), "{pruned}");
    assert!(!pruned.contains("back"), "back is in use: {pruned}");
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains("spare") && ls.contains("back"), "{ls}");
}

#[test]
#[ignore = "needs root"]
fn embedded_dns_and_generated_etc_files() {
    let d = daemon();
    d.docker_ok(&["network", "create", "app"]);
    let id = httpd(
        &d,
        "db",
        &["--network", "app", "--network-alias", "database"],
        "hello-db",
    );
    let ip = inspect(&d, "db", "{{.NetworkSettings.Networks.app.IPAddress}}");
    for name in ["db", "database", &id[..12], "DB"] {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "busybox",
            "busybox",
            "nslookup",
            name,
        ]);
        let out = text(&o);
        assert!(
            out.contains(&ip),
            "{name} resolves to {ip}: {out} {}",
            stderr(&o)
        );
    }
    let body = eventually("httpd by name", || {
        let o = fetch_from_container(&d, &["--network", "app"], "http://database/");
        o.status.success().then(|| text(&o))
    });
    assert_eq!(body, "hello-db");
    // An unknown name is not answered with an address.
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "busybox",
        "nslookup",
        "no-such-name",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    // /etc files on a user network point at the embedded server.
    let files = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "--hostname",
        "box",
        "--add-host",
        "extra.test:10.9.8.7",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hostname /etc/hosts /etc/resolv.conf; hostname",
    ]);
    let gw = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "app",
    ]);
    assert!(files.starts_with("box\n"), "{files}");
    assert!(files.contains("10.9.8.7\textra.test"), "{files}");
    assert!(
        files.contains("\tbox\n"),
        "own address names the hostname: {files}"
    );
    assert!(files.contains(&format!("nameserver {gw}")), "{files}");
    assert!(files.ends_with("box"), "{files}");
    // On the default bridge: --dns and --dns-search as given.
    let resolv = d.docker_ok(&[
        "run",
        "--rm",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "corp.test",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.contains("nameserver 192.0.2.53"), "{resolv}");
    assert!(resolv.contains("search corp.test"), "{resolv}");
    let paths = inspect(&d, "db", "{{.HostsPath}} {{.ResolvConfPath}}");
    assert!(paths.contains(&id), "{paths}");
}

#[test]
#[ignore = "needs root"]
fn network_modes_host_none_and_container() {
    let d = daemon();
    let links = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    // host: the namespace the daemon manages, with the default bridge in it.
    let links = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(links.contains("berth0"), "{links}");
    httpd(&d, "web", &[], "hello-shared");
    let body = eventually("httpd via the shared namespace", || {
        let o = fetch_from_container(&d, &["--net", "container:web"], "http://localhost:80/");
        o.status.success().then(|| text(&o))
    });
    assert_eq!(body, "hello-shared");
    // `--pull never`: the CLI pulls after any 404 from create (as with Docker); the image
    // is local and nothing may reach a public registry.
    let o = d.docker(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "container:nope",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such container: nope"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "connect", "bridge", "web"]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

/// A static UDP echo program: `udp serve PORT` answers every datagram with `echo:` and its
/// content; `udp send HOST PORT MSG` sends MSG (again each second, five times at most) and
/// prints the first answer, exiting 1 when none comes.
const UDP_ECHO: &str = r#"#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[512];
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    if (argc == 3 && !strcmp(argv[1], "serve")) {
        a.sin_port = htons(atoi(argv[2]));
        if (bind(s, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
        for (;;) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&peer, &len);
            if (n < 0) continue;
            memcpy(buf, "echo:", 5);
            sendto(s, buf, n + 5, 0, (struct sockaddr *)&peer, len);
        }
    }
    if (argc != 5 || strcmp(argv[1], "send")) { fputs("usage\n", stderr); return 2; }
    a.sin_port = htons(atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) { fputs("bad address\n", stderr); return 2; }
    for (int i = 0; i < 5; i++) {
        sendto(s, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&a, sizeof a);
        struct pollfd p = { s, POLLIN, 0 };
        if (poll(&p, 1, 1000) == 1) {
            ssize_t n = recv(s, buf, sizeof buf - 1, 0);
            if (n >= 0) { buf[n] = 0; puts(buf); return 0; }
        }
    }
    fputs("no answer\n", stderr);
    return 1;
}
"#;

#[test]
#[ignore = "needs root"]
fn udp_through_a_published_port_reaches_the_container() {
    let d = daemon();
    let dir = tempfile::tempdir().expect("tempdir");
    let udp = berth_tests::fixtures::static_c_program(dir.path(), "udp", UDP_ECHO)
        .expect("a static C toolchain (cc, libc6-dev)");
    let udp = udp.to_str().expect("utf-8 path");
    let mount = format!("{udp}:/udp:ro");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        "5353:53/udp",
        "-v",
        &mount,
        "busybox",
        "/udp",
        "serve",
        "53",
    ]);
    assert_eq!(d.docker_ok(&["port", "echo"]), "53/udp -> 0.0.0.0:5353");
    // From the host, to its loopback address.
    let reply = eventually("a UDP answer through 127.0.0.1:5353", || {
        let o = in_host(&d, &[udp, "send", "127.0.0.1", "5353", "from-host"]);
        o.status.success().then(|| text(&o))
    });
    assert_eq!(reply, "echo:from-host");
    // From another container, through the host's address on the bridge.
    let gw = inspect(&d, "echo", "{{.NetworkSettings.Gateway}}");
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &mount,
        "busybox",
        "/udp",
        "send",
        &gw,
        "5353",
        "from-container",
    ]);
    assert_eq!(text(&o), "echo:from-container", "{}", stderr(&o));
    // Only the UDP port is published.
    let rules = text(&in_host(&d, &["nft", "list", "table", "inet", "berth"]));
    assert!(rules.contains("udp dport 5353"), "{rules}");
    assert!(!rules.contains("tcp dport 5353"), "{rules}");
    // Once the container is gone, the port answers no more.
    d.docker_ok(&["rm", "-f", "echo"]);
    let o = in_host(&d, &[udp, "send", "127.0.0.1", "5353", "gone"]);
    assert!(!o.status.success(), "an answer after removal: {}", text(&o));
    let rules = text(&in_host(&d, &["nft", "list", "table", "inet", "berth"]));
    assert!(!rules.contains("dport 5353"), "{rules}");
}

#[test]
#[ignore = "needs root"]
fn published_ports_answer_and_conflicts_are_refused() {
    let d = daemon();
    httpd(
        &d,
        "web",
        &[
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:8081:80",
            "-p",
            "5353:53/udp",
            "-p",
            "9100-9101:80-81",
        ],
        "hello-published",
    );
    let ports = d.docker_ok(&["port", "web"]);
    for want in [
        "80/tcp -> 0.0.0.0:8080",
        "80/tcp -> 127.0.0.1:8081",
        "53/udp -> 0.0.0.0:5353",
        "80/tcp -> 0.0.0.0:9100",
        "81/tcp -> 0.0.0.0:9101",
    ] {
        assert!(ports.contains(want), "{want} in {ports}");
    }
    let body = eventually("published port from the host", || {
        let o = fetch_from_host(&d, "http://127.0.0.1:8080/");
        o.status.success().then(|| text(&o))
    });
    assert_eq!(body, "hello-published");
    assert_eq!(
        text(&fetch_from_host(&d, "http://127.0.0.1:8081/")),
        "hello-published"
    );
    assert_eq!(
        text(&fetch_from_host(&d, "http://127.0.0.1:9100/")),
        "hello-published"
    );
    // From another container through the host's address (the bridge gateway).
    let gw = inspect(&d, "web", "{{.NetworkSettings.Gateway}}");
    let o = fetch_from_container(&d, &[], &format!("http://{gw}:8080/"));
    assert_eq!(text(&o), "hello-published", "{}", stderr(&o));
    // The UDP rule exists in the ruleset.
    let rules = text(&in_host(&d, &["nft", "list", "table", "inet", "berth"]));
    assert!(rules.contains("udp dport 5353"), "{rules}");
    // docker ps shows the ports.
    let ps = d.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    // A taken host port is refused with Docker's message and leaves the new container
    // without network state.
    let o = d.docker(&[
        "run", "-d", "--name", "clash", "-p", "8080:80", "busybox", "sleep", "60",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{}",
        stderr(&o)
    );
    let clash = d.docker_ok(&["inspect", "-f", "{{.Id}}", "clash"]);
    let sandboxes = std::fs::read_dir(d.root().join("network/netns"))
        .expect("netns dir")
        .count();
    assert_eq!(sandboxes, 1, "only web has a sandbox, not {clash}");
    // -P publishes EXPOSEd ports on random host ports.
    d.docker_ok(&["rm", "-f", "clash"]);
    httpd(&d, "random", &["-P", "--expose", "80"], "hello-random");
    let port = d.docker_ok(&["port", "random", "80"]);
    let host_port = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .expect("a host port")
        .to_string();
    let body = eventually("-P port", || {
        let o = fetch_from_host(&d, &format!("http://127.0.0.1:{host_port}/"));
        o.status.success().then(|| text(&o))
    });
    assert_eq!(body, "hello-random");
}

#[test]
#[ignore = "needs root"]
fn networks_and_ports_survive_a_daemon_restart_and_nothing_leaks() {
    let mut d = daemon();
    d.docker_ok(&["network", "create", "--subnet", "10.44.0.0/24", "keep"]);
    httpd(
        &d,
        "web",
        &["--network", "keep", "-p", "8088:80"],
        "hello-again",
    );
    let ip = inspect(&d, "web", "{{.NetworkSettings.Networks.keep.IPAddress}}");
    eventually("published port", || {
        fetch_from_host(&d, "http://127.0.0.1:8088/")
            .status
            .success()
            .then_some(())
    });
    d.restart();
    assert_eq!(
        inspect(&d, "web", "{{.NetworkSettings.Networks.keep.IPAddress}}"),
        ip
    );
    assert_eq!(
        text(&fetch_from_host(&d, "http://127.0.0.1:8088/")),
        "hello-again"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "keep",
        "busybox",
        "busybox",
        "nslookup",
        "web",
    ]);
    assert!(text(&o).contains(&ip), "dns after restart: {}", text(&o));
    let other = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "keep",
        "busybox",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(
        !other.contains(&format!("{ip}/")),
        "no duplicate address: {other}"
    );
    assert!(d.docker_ok(&["network", "ls"]).contains("keep"));
    // A crash (SIGKILL) loses nothing either.
    d.kill();
    d.start_again();
    assert_eq!(
        text(&fetch_from_host(&d, "http://127.0.0.1:8088/")),
        "hello-again"
    );
    assert_eq!(
        inspect(&d, "web", "{{.NetworkSettings.Networks.keep.IPAddress}}"),
        ip
    );
    // Remove everything: nothing of berth's is left but the default bridge.
    d.docker_ok(&["rm", "-f", "web"]);
    d.docker_ok(&["network", "rm", "keep"]);
    let links = eventually("links removed", || {
        let l = text(&in_host(&d, &["ip", "-o", "link"]));
        (l.lines().count() == 2).then_some(l)
    });
    assert!(links.contains("berth0"), "{links}");
    let ns = std::fs::read_dir(d.root().join("network/netns"))
        .expect("netns dir")
        .count();
    assert_eq!(ns, 0, "sandbox namespaces left");
    let rules = text(&in_host(&d, &["nft", "list", "ruleset"]));
    assert!(!rules.contains("dnat ip to"), "{rules}");
    assert!(!rules.contains("10.44.0.0"), "{rules}");
    // Nothing of ours appeared in the test host's own namespace.
    let host_links = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .expect("ip")
            .stdout,
    )
    .into_owned();
    assert!(!host_links.contains("berth-"), "{host_links}");
}

#[test]
#[ignore = "needs root"]
fn bad_network_input_is_refused_without_partial_state() {
    let d = daemon();
    d.docker_ok(&["network", "create", "--subnet", "10.50.0.0/16", "one"]);
    let o = d.docker(&["network", "create", "--subnet", "10.50.1.0/24", "two"]);
    assert!(
        stderr(&o).contains("Pool overlaps with other one"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "create", "--subnet", "10.50.1.0/33", "three"]);
    assert!(
        stderr(&o).contains("invalid CIDR address"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "create", "one"]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.60.0.0/24",
        "--gateway",
        "10.61.0.1",
        "four",
    ]);
    assert!(!o.status.success(), "gateway outside the subnet");
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    for bad in ["two", "three", "four"] {
        assert!(!ls.lines().any(|l| l == bad), "{bad} half-created: {ls}");
    }
    let o = d.docker(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "nope",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&o).contains("network nope not found"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "one",
        "--ip",
        "10.99.0.5",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&o).contains("no configured subnet or ip-range contain the IP address 10.99.0.5"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "inspect", "nope"]);
    assert!(!o.status.success());
    let o = d.docker(&["network", "connect", "nope", "x"]);
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]),
        "",
        "failed runs leave no container"
    );
    let r = d.api(
        "POST",
        "/networks/create",
        Some(b"{\"Name\": \"x\", \"Driver\": \"overlay\"}"),
    );
    assert_eq!(r.status, 404);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json error");
    assert!(
        v["message"].as_str().is_some_and(|m| m.contains("overlay")),
        "{v}"
    );
}

/// A stand-in upstream DNS server (tests/python/dns_upstream.py) in the daemon's managed
/// namespace, answering every A query with `answer`; killed on drop.
struct Upstream(std::process::Child);

impl Upstream {
    fn start(d: &Daemon, listen: &str, answer: &str) -> Self {
        let ready = d.scratch().join(format!("dns-{listen}.ready"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/dns_upstream.py");
        let child = Command::new("nsenter")
            .arg(format!("--net={}", d.netns().display()))
            .args(["python3", script, listen, answer])
            .arg(&ready)
            .spawn()
            .expect("start the upstream dns server");
        let up = Upstream(child);
        eventually("the upstream dns server", || ready.exists().then_some(()));
        up
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root"]
fn embedded_dns_forwards_other_names_to_the_containers_dns_servers() {
    let d = daemon();
    let lo = in_host(&d, &["ip", "link", "set", "lo", "up"]);
    assert!(lo.status.success(), "{}", stderr(&lo));
    let _one = Upstream::start(&d, "127.0.0.1", "203.0.113.7");
    let _two = Upstream::start(&d, "127.0.0.2", "203.0.113.8");
    d.docker_ok(&["network", "create", "fwd"]);
    httpd(&d, "local", &["--network", "fwd"], "x");
    let lookup = |dns: &str, name: &str| {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "fwd",
            "--dns",
            dns,
            "busybox",
            "busybox",
            "nslookup",
            name,
        ]);
        format!("{}\n{}", text(&out), stderr(&out))
    };
    // Names the network does not know go to the asking container's own servers.
    let a = lookup("127.0.0.1", "www.example.test");
    assert!(a.contains("203.0.113.7"), "{a}");
    let b = lookup("127.0.0.2", "www.example.test");
    assert!(b.contains("203.0.113.8"), "{b}");
    // Container names are still answered by the network itself.
    let local_ip = inspect(
        &d,
        "local",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    let c = lookup("127.0.0.1", "local");
    assert!(c.contains(&local_ip), "{c}");
    // The container's resolv.conf names the embedded server, not the upstreams.
    let resolv = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "fwd",
        "--dns",
        "127.0.0.1",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(!resolv.contains("127.0.0.1"), "{resolv}");
    d.docker_ok(&["rm", "-f", "local"]);
    d.docker_ok(&["network", "rm", "fwd"]);
}
