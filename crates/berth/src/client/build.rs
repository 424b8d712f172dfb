//! `berth build`: sends a directory (or a tar on stdin) as the build context to `POST /build`
//! and prints the streamed output, as `docker build` with the classic builder does.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::HostArg;
use super::http;

/// `berth build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Name and optionally a tag (`name:tag`); may be repeated.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile); may lie outside the context.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Set build-time variables (`KEY=value`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set metadata for an image (`key=value`).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Remove intermediate containers after a successful build (always done).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub rm: bool,
    /// Always remove intermediate containers (always done).
    #[arg(long)]
    pub force_rm: bool,
    /// Suppress the build output and print the image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// The context directory, or `-` for a tar on STDIN.
    pub path: String,
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Appends a directory tree to a tar, names relative to `root`, symlinks kept as links.
fn append_tree(tar: &mut tar::Builder<Vec<u8>>, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .context("path outside the context")?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            tar.append_dir(rel, &path)?;
            append_tree(tar, root, &path)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path)?;
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            tar.append_link(&mut h, rel, target)?;
        } else if ft.is_file() {
            tar.append_path_with_name(&path, rel)?;
        }
    }
    Ok(())
}

fn pairs(list: &[String], from_env: bool) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
            None if from_env => out.insert(item.clone(), std::env::var(item).ok()),
            None => anyhow::bail!("invalid argument \"{item}\": expected key=value"),
        };
    }
    Ok(out)
}

/// `berth build`.
pub fn build(a: BuildArgs) -> anyhow::Result<i32> {
    let ep = a.host.endpoint()?;
    let mut dockerfile = String::from("Dockerfile");
    let mut context: Box<dyn Read> = if a.path == "-" {
        if let Some(f) = &a.file {
            dockerfile = f.display().to_string();
        }
        Box::new(std::io::stdin())
    } else {
        let root = std::fs::canonicalize(&a.path)
            .with_context(|| format!("unable to prepare context: path {:?} not found", a.path))?;
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        append_tree(&mut tar, &root, &root)?;
        if let Some(f) = &a.file {
            let f = std::fs::canonicalize(f)
                .with_context(|| format!("Cannot locate specified Dockerfile: {}", f.display()))?;
            match f.strip_prefix(&root) {
                Ok(rel) => dockerfile = rel.display().to_string(),
                Err(_) => {
                    // A Dockerfile outside the context travels in it under a random name.
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    dockerfile = format!(".dockerfile.{:x}{nanos:x}", std::process::id());
                    tar.append_path_with_name(&f, &dockerfile)?;
                }
            }
        }
        Box::new(std::io::Cursor::new(tar.into_inner()?))
    };
    let mut q = vec![format!("dockerfile={}", enc(&dockerfile))];
    for t in &a.tags {
        q.push(format!("t={}", enc(t)));
    }
    if let Some(t) = &a.target {
        q.push(format!("target={}", enc(t)));
    }
    let args = pairs(&a.build_args, true)?;
    if !args.is_empty() {
        q.push(format!("buildargs={}", enc(&serde_json::to_string(&args)?)));
    }
    let labels = pairs(&a.labels, false)?;
    if !labels.is_empty() {
        let l: BTreeMap<String, String> = labels
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
        q.push(format!("labels={}", enc(&serde_json::to_string(&l)?)));
    }
    for (flag, on) in [
        ("nocache", a.no_cache),
        ("rm", a.rm),
        ("forcerm", a.force_rm),
        ("q", a.quiet),
    ] {
        q.push(format!("{flag}={}", u8::from(on)));
    }
    let path = format!("/build?{}", q.join("&"));
    let mut r = ep.send(
        "POST",
        &path,
        Some("application/x-tar"),
        Some(&mut context),
        false,
    )?;
    if !(200..300).contains(&r.status) {
        let mut body = Vec::new();
        r.read_to_end(&mut body)?;
        http::check(r.status, &body)?;
    }
    let mut code = 0;
    for line in BufReader::new(r).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if let Some(s) = v["stream"].as_str() {
            print!("{s}");
        } else if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            code = v["errorDetail"]["code"]
                .as_i64()
                .filter(|c| *c > 0)
                .map_or(1, |c| c as i32);
        }
    }
    Ok(code)
}
