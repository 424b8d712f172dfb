//! Container verbs of the `berth` client: run, ps, logs, exec, start, stop, rm, inspect.

use std::io::{Read, Write};

use anyhow::Context;
use serde_json::{Value, json};

use super::http::{self, Endpoint};
use super::{HostArg, table};

/// `berth run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Container name.
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variables (`KEY=value`).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User (`name|uid[:group|gid]`).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mounts (`/host:/ctr[:ro]`).
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Network mode (`none`, `host`).
    #[arg(long)]
    pub network: Option<String>,
    /// Image.
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `berth ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `berth logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Container.
    pub container: String,
}

/// `berth exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// User.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Container.
    pub container: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// Verbs taking container names.
#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Containers (or images, for inspect).
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `berth stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Seconds to wait before killing.
    #[arg(short, long)]
    pub time: Option<i64>,
    /// Containers.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `berth rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Force the removal of a running container.
    #[arg(short, long)]
    pub force: bool,
    /// Containers.
    #[arg(required = true)]
    pub names: Vec<String>,
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `berth run`: create, attach, start, wait, as the docker CLI does.
pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let mut binds = Vec::new();
    for v in &a.volume {
        binds.push(v.clone());
    }
    let body = json!({
        "Image": a.image,
        "Cmd": if a.command.is_empty() { Value::Null } else { json!(a.command) },
        "Entrypoint": a.entrypoint.as_ref().map(|e| json!([e])).unwrap_or(Value::Null),
        "Env": a.env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": a.interactive,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "HostConfig": {
            "AutoRemove": a.rm,
            "Binds": binds,
            "NetworkMode": a.network.clone().unwrap_or_default(),
        },
    });
    let path = match &a.name {
        Some(n) => format!("/containers/create?name={}", enc(n)),
        None => "/containers/create".to_string(),
    };
    let (status, created) = ep.call("POST", &path, Some(&body))?;
    if let Err(e) = http::check(status, &created) {
        eprintln!("berth: {e}");
        return Ok(125);
    }
    let v: Value = serde_json::from_slice(&created)?;
    let id = v["Id"]
        .as_str()
        .context("create answered without an id")?
        .to_string();
    if a.detach {
        let (status, body) = ep.call("POST", &format!("/containers/{id}/start"), None)?;
        if let Err(e) = http::check(status, &body) {
            eprintln!("berth: {e}");
            return Ok(125);
        }
        println!("{id}");
        return Ok(0);
    }
    let attach_path = format!(
        "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
        if a.interactive { "&stdin=1" } else { "" }
    );
    let mut attached = ep.send("POST", &attach_path, None, None, true)?;
    if attached.status >= 400 {
        let mut b = Vec::new();
        attached.read_to_end(&mut b)?;
        http::check(attached.status, &b)?;
        anyhow::bail!("attach was refused by the daemon");
    }
    let condition = if a.rm { "removed" } else { "next-exit" };
    let wait_ep = ep.clone();
    let wait_path = format!("/containers/{id}/wait?condition={condition}");
    let waiter = std::thread::spawn(move || wait_ep.call("POST", &wait_path, None));
    let (status, body) = ep.call("POST", &format!("/containers/{id}/start"), None)?;
    if let Err(e) = http::check(status, &body) {
        eprintln!("berth: {e}");
        let text = e.to_string();
        return Ok(
            if text.contains("executable file not found") || text.contains("no such file") {
                127
            } else if text.contains("permission denied") {
                126
            } else {
                125
            },
        );
    }
    if a.interactive {
        let mut sock = attached.socket()?;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut sock);
            let _ = sock.shutdown(std::net::Shutdown::Write);
        });
    }
    http::demux(attached, a.tty)?;
    let (status, body) = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("wait thread panicked"))??;
    http::check(status, &body)?;
    let v: Value = serde_json::from_slice(&body)?;
    Ok(v["StatusCode"].as_i64().unwrap_or(0) as i32)
}

/// `berth ps`.
pub fn ps(a: PsArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let body = ep.ok(
        "GET",
        &format!("/containers/json?all={}", u8::from(a.all)),
        None,
    )?;
    let list: Vec<Value> = serde_json::from_slice(&body)?;
    if a.quiet {
        for c in &list {
            let id = c["Id"].as_str().unwrap_or("");
            println!(
                "{}",
                if a.no_trunc {
                    id
                } else {
                    &id[..12.min(id.len())]
                }
            );
        }
        return Ok(0);
    }
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in &list {
        let id = c["Id"].as_str().unwrap_or("");
        let cmd = c["Command"].as_str().unwrap_or("");
        rows.push(vec![
            if a.no_trunc {
                id.to_string()
            } else {
                id.chars().take(12).collect()
            },
            c["Image"].as_str().unwrap_or("").to_string(),
            format!(
                "\"{}\"",
                if a.no_trunc {
                    cmd.to_string()
                } else {
                    table::ellipsis(cmd, 20)
                }
            ),
            format!(
                "{} ago",
                table::human_duration(table::since(c["Created"].as_i64().unwrap_or(0)))
            ),
            c["Status"].as_str().unwrap_or("").to_string(),
            String::new(),
            c["Names"][0]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
        ]);
    }
    table::print(&rows);
    Ok(0)
}

fn is_tty(ep: &Endpoint, name: &str) -> anyhow::Result<bool> {
    let body = ep.ok("GET", &format!("/containers/{}/json", enc(name)), None)?;
    let v: Value = serde_json::from_slice(&body)?;
    Ok(v["Config"]["Tty"].as_bool().unwrap_or(false))
}

/// `berth logs`.
pub fn logs(a: LogsArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let tty = is_tty(&ep, &a.container)?;
    let path = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&tail={}&timestamps={}",
        enc(&a.container),
        u8::from(a.follow),
        enc(&a.tail),
        u8::from(a.timestamps)
    );
    let mut r = ep.send("GET", &path, None, None, false)?;
    if r.status >= 400 {
        let mut b = Vec::new();
        r.read_to_end(&mut b)?;
        http::check(r.status, &b)?;
    }
    http::demux(r, tty)?;
    Ok(0)
}

/// `berth exec`.
pub fn exec(a: ExecArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Env": a.env,
        "Cmd": a.command,
        "User": a.user.clone().unwrap_or_default(),
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
    });
    let created = ep.ok(
        "POST",
        &format!("/containers/{}/exec", enc(&a.container)),
        Some(&body),
    )?;
    let v: Value = serde_json::from_slice(&created)?;
    let id = v["Id"]
        .as_str()
        .context("exec create answered without an id")?
        .to_string();
    let start = serde_json::to_vec(&json!({"Detach": a.detach, "Tty": a.tty}))?;
    let mut slice = start.as_slice();
    let mut r = ep.send(
        "POST",
        &format!("/exec/{id}/start"),
        Some("application/json"),
        Some(&mut slice),
        !a.detach,
    )?;
    if r.status >= 400 {
        let mut b = Vec::new();
        r.read_to_end(&mut b)?;
        http::check(r.status, &b)?;
    }
    if a.detach {
        return Ok(0);
    }
    if a.interactive {
        let mut sock = r.socket()?;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut sock);
            let _ = sock.shutdown(std::net::Shutdown::Write);
        });
    }
    http::demux(r, a.tty)?;
    let body = ep.ok("GET", &format!("/exec/{id}/json"), None)?;
    let v: Value = serde_json::from_slice(&body)?;
    Ok(v["ExitCode"].as_i64().unwrap_or(0) as i32)
}

fn each(names: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<i32> {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `berth start`.
pub fn start(a: NamesArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    each(&a.names, |n| {
        ep.ok("POST", &format!("/containers/{}/start", enc(n)), None)
            .map(drop)
    })
}

/// `berth stop`.
pub fn stop(a: StopArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let t = a.time.map(|t| format!("?t={t}")).unwrap_or_default();
    each(&a.names, |n| {
        ep.ok("POST", &format!("/containers/{}/stop{t}", enc(n)), None)
            .map(drop)
    })
}

/// `berth rm`.
pub fn rm(a: RmArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    each(&a.names, |n| {
        ep.ok(
            "DELETE",
            &format!("/containers/{}?force={}", enc(n), u8::from(a.force)),
            None,
        )
        .map(drop)
    })
}

/// `berth inspect`: containers first, then images, printed as a JSON array.
pub fn inspect(a: NamesArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let (s, b) = ep.call("GET", &format!("/containers/{}/json", enc(n)), None)?;
        if s == 200 {
            out.push(serde_json::from_slice::<Value>(&b)?);
            continue;
        }
        let (s, b) = ep.call("GET", &format!("/images/{}/json", enc(n)), None)?;
        if s == 200 {
            out.push(serde_json::from_slice::<Value>(&b)?);
            continue;
        }
        eprintln!("Error: No such object: {n}");
        code = 1;
    }
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "{}",
        serde_json::to_string_pretty(&Value::Array(out))?
    )?;
    Ok(code)
}
