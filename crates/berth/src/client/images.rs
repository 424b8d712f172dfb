//! Image verbs of the `berth` client: images, load, save, import, rmi, tag.

use std::io::Read;

use anyhow::Context;
use serde_json::Value;

use super::http;
use super::{HostArg, table};

/// `berth images`.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Only show image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `berth load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Read from a tar archive file instead of STDIN.
    #[arg(short, long)]
    pub input: Option<std::path::PathBuf>,
}

/// `berth save`.
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Write to a file instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Images.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `berth import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Dockerfile instructions applied to the image (`CMD ["sh"]`).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Rootfs tar file (`-` for STDIN).
    pub file: String,
    /// Repository[:tag] of the new image.
    pub reference: Option<String>,
}

/// `berth rmi`.
#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Force removal.
    #[arg(short, long)]
    pub force: bool,
    /// Images.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `berth tag`.
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Source image.
    pub source: String,
    /// New reference.
    pub target: String,
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

fn short(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

/// `berth images`.
pub fn images(a: ImagesArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let list: Vec<Value> = serde_json::from_slice(&ep.ok("GET", "/images/json", None)?)?;
    if a.quiet {
        let mut seen = Vec::new();
        for i in &list {
            let id = short(i["Id"].as_str().unwrap_or(""), a.no_trunc);
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(0);
    }
    let mut rows = vec![
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
            .map(String::from)
            .to_vec(),
    ];
    for i in &list {
        let id = short(i["Id"].as_str().unwrap_or(""), a.no_trunc);
        let created = format!(
            "{} ago",
            table::human_duration(table::since(i["Created"].as_i64().unwrap_or(0)))
        );
        let size = table::human_size(i["Size"].as_f64().unwrap_or(0.0));
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if tags.is_empty() {
            rows.push(vec!["<none>".into(), "<none>".into(), id, created, size]);
            continue;
        }
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t.as_str(), "<none>"));
            rows.push(vec![
                repo.into(),
                tag.into(),
                id.clone(),
                created.clone(),
                size.clone(),
            ]);
        }
    }
    table::print(&rows);
    Ok(0)
}

/// Prints a JSON message stream (`{"stream":..}`, `{"status":..}`, `{"error":..}`).
fn print_messages(body: &[u8]) -> anyhow::Result<i32> {
    let mut code = 0;
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
        if let Some(s) = v["stream"].as_str() {
            print!("{s}");
        } else if let Some(s) = v["status"].as_str() {
            println!("{s}");
        } else if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            code = 1;
        }
    }
    Ok(code)
}

/// `berth load`.
pub fn load(a: LoadArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let mut input: Box<dyn Read> = match &a.input {
        Some(p) => {
            Box::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?)
        }
        None => Box::new(std::io::stdin()),
    };
    let mut r = ep.send(
        "POST",
        "/images/load",
        Some("application/x-tar"),
        Some(&mut input),
        false,
    )?;
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    http::check(r.status, &body)?;
    print_messages(&body)
}

/// `berth save`.
pub fn save(a: SaveArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let names: Vec<String> = a
        .images
        .iter()
        .map(|n| format!("names={}", enc(n)))
        .collect();
    let mut r = ep.send(
        "GET",
        &format!("/images/get?{}", names.join("&")),
        None,
        None,
        false,
    )?;
    if r.status >= 400 {
        let mut b = Vec::new();
        r.read_to_end(&mut b)?;
        http::check(r.status, &b)?;
    }
    match &a.output {
        Some(p) => {
            let mut f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            std::io::copy(&mut r, &mut f)?;
        }
        None => {
            std::io::copy(&mut r, &mut std::io::stdout())?;
        }
    }
    Ok(0)
}

/// `berth import`.
pub fn import(a: ImportArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let mut query = vec!["fromSrc=-".to_string()];
    if let Some(r) = &a.reference {
        query.push(format!("repo={}", enc(r)));
    }
    if let Some(m) = &a.message {
        query.push(format!("message={}", enc(m)));
    }
    for c in &a.change {
        query.push(format!("changes={}", enc(c)));
    }
    let mut input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file))?)
    };
    let mut r = ep.send(
        "POST",
        &format!("/images/create?{}", query.join("&")),
        Some("application/x-tar"),
        Some(&mut input),
        false,
    )?;
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    http::check(r.status, &body)?;
    print_messages(&body)
}

/// `berth rmi`.
pub fn rmi(a: RmiArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let mut code = 0;
    for n in &a.images {
        match ep.ok(
            "DELETE",
            &format!("/images/{}?force={}", enc(n), u8::from(a.force)),
            None,
        ) {
            Ok(body) => {
                let list: Vec<Value> = serde_json::from_slice(&body)?;
                for item in list {
                    if let Some(u) = item["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `berth tag`.
pub fn tag(a: TagArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let (repo, tag) = match a.target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (a.target.clone(), "latest".to_string()),
    };
    ep.ok(
        "POST",
        &format!(
            "/images/{}/tag?repo={}&tag={}",
            enc(&a.source),
            enc(&repo),
            enc(&tag)
        ),
        None,
    )?;
    Ok(0)
}
