//! `berth pull`, `berth push` and `berth login`: the daemon does the registry work
//! (`POST /images/create?fromImage=`, `POST /images/{name}/push`, `POST /auth`); the client
//! keeps credentials in the docker config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), sends them as `X-Registry-Auth`, and prints the progress
//! messages as the docker CLI does without a terminal (`id: status`).

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use berth_image::Reference;
use berth_registry::client::{Credentials, DockerConfig};
use serde_json::Value;

use super::{HostArg, http};

/// Docker's variable naming the directory of `config.json`.
const DOCKER_CONFIG_ENV: &str = "DOCKER_CONFIG";

/// `berth pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Image to pull: `NAME[:TAG]` or `NAME@sha256:DIGEST`.
    pub image: String,
}

/// `berth push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Image to push: `NAME[:TAG]` (without a tag, every tag of NAME).
    pub image: String,
}

/// `berth login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub host: HostArg,
    /// Registry (`127.0.0.1:5000`); Docker Hub when omitted.
    pub server: Option<String>,
    /// User name.
    #[arg(short, long)]
    pub username: String,
    /// Password (prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from STDIN.
    #[arg(long)]
    pub password_stdin: bool,
}

fn config_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(DOCKER_CONFIG_ENV) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").context("neither DOCKER_CONFIG nor HOME is set")?;
    Ok(PathBuf::from(home).join(".docker").join("config.json"))
}

fn read_config() -> anyhow::Result<DockerConfig> {
    let path = config_path()?;
    match std::fs::read(&path) {
        Ok(bytes) => {
            DockerConfig::parse(&bytes).with_context(|| format!("parsing {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the config file atomically (temporary file, fsync, rename), mode 0600.
fn write_config(config: &DockerConfig) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = config_path()?;
    let dir = path.parent().context("config path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".config.json.tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&config.to_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends a progress-streaming request and prints each message as it arrives.
fn stream(host: &HostArg, path: &str, registry: &str) -> anyhow::Result<i32> {
    let ep = host.endpoint()?;
    let auth = read_config()?.registry_auth_header(registry);
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("X-Registry-Auth", a))
        .into_iter()
        .collect();
    let mut r = ep.send_with_headers("POST", path, None, None, false, &headers)?;
    if r.status >= 400 {
        let mut body = Vec::new();
        r.read_to_end(&mut body)?;
        http::check(r.status, &body)?;
    }
    let mut code = 0;
    let reader = std::io::BufReader::new(r);
    for line in std::io::BufRead::lines(reader) {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            code = 1;
        } else {
            // Progress-bar messages only make sense on a terminal, as in the docker CLI.
            match (v["id"].as_str(), v["status"].as_str()) {
                (_, Some("Downloading" | "Pushing")) => {}
                (Some(id), Some(s)) => println!("{id}: {s}"),
                (None, Some(s)) => println!("{s}"),
                _ => {}
            }
        }
    }
    Ok(code)
}

/// `berth pull`.
pub fn pull(a: PullArgs) -> anyhow::Result<i32> {
    let r = Reference::parse(&a.image)
        .map_err(|e| anyhow::anyhow!("invalid reference format: {e}"))?
        .with_default_tag();
    let tag = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_default();
    let path = format!(
        "/images/create?fromImage={}&tag={}",
        enc(&r.name()),
        enc(&tag)
    );
    let code = stream(&a.host, &path, &r.domain)?;
    if code == 0 {
        println!("{}", r.familiar());
    }
    Ok(code)
}

/// `berth push`.
pub fn push(a: PushArgs) -> anyhow::Result<i32> {
    let r =
        Reference::parse(&a.image).map_err(|e| anyhow::anyhow!("invalid reference format: {e}"))?;
    let path = format!(
        "/images/{}/push?tag={}",
        r.name(),
        enc(r.tag.as_deref().unwrap_or(""))
    );
    stream(&a.host, &path, &r.domain)
}

/// `berth login`: checks the credentials through the daemon, then stores them.
pub fn login(a: LoginArgs) -> anyhow::Result<i32> {
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => anyhow::bail!("a password is required: use --password-stdin or -p"),
    };
    let server = a.server.clone().unwrap_or_else(|| "docker.io".into());
    let body = serde_json::json!({
        "username": a.username, "password": password, "serveraddress": server,
    });
    let ep = a.host.endpoint()?;
    ep.ok("POST", "/auth", Some(&body))?;
    let mut config = read_config()?;
    let key = if server == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        server
    };
    config.set_credentials(
        &key,
        &Credentials {
            username: a.username,
            password,
        },
    );
    let path = write_config(&config)?;
    eprintln!("credentials stored in {}", path.display());
    println!("Login Succeeded");
    Ok(0)
}
