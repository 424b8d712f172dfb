//! The docker-style client verbs of `berth` (run, ps, logs, ...), speaking the Docker Engine
//! API to a daemon's socket and printing Docker's table layouts.

mod build;
mod containers;
mod distribution;
mod http;
mod images;
mod table;

use http::Endpoint;

/// Default daemon socket of the client verbs.
pub const DEFAULT_HOST: &str = "unix:///run/berth/docker.sock";

/// Where to find the daemon.
#[derive(Debug, Clone, clap::Args)]
pub struct HostArg {
    /// Daemon socket to connect to.
    #[arg(short = 'H', long = "host", env = "DOCKER_HOST", default_value = DEFAULT_HOST)]
    pub host: String,
}

impl HostArg {
    fn endpoint(&self) -> anyhow::Result<Endpoint> {
        Endpoint::parse(&self.host)
    }
}

/// Client verbs.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Create and run a new container from an image.
    Run(containers::RunArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Fetch the logs of a container.
    Logs(containers::LogsArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Start one or more stopped containers.
    Start(containers::NamesArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// Return low-level information on containers or images.
    Inspect(containers::NamesArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Load an image from a tar archive or STDIN.
    Load(images::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(images::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(images::ImportArgs),
    /// Remove one or more images.
    Rmi(images::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(images::TagArgs),
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Show the client and daemon version information.
    Version(HostArg),
    /// Download an image from a registry.
    Pull(distribution::PullArgs),
    /// Upload an image to a registry.
    Push(distribution::PushArgs),
    /// Log in to a registry.
    Login(distribution::LoginArgs),
}

/// Runs one client verb; returns the process exit code.
pub fn run(command: ClientCommand) -> anyhow::Result<i32> {
    let result = match command {
        ClientCommand::Run(a) => containers::run(a),
        ClientCommand::Ps(a) => containers::ps(a),
        ClientCommand::Logs(a) => containers::logs(a),
        ClientCommand::Exec(a) => containers::exec(a),
        ClientCommand::Start(a) => containers::start(a),
        ClientCommand::Stop(a) => containers::stop(a),
        ClientCommand::Rm(a) => containers::rm(a),
        ClientCommand::Inspect(a) => containers::inspect(a),
        ClientCommand::Images(a) => images::images(a),
        ClientCommand::Load(a) => images::load(a),
        ClientCommand::Save(a) => images::save(a),
        ClientCommand::Import(a) => images::import(a),
        ClientCommand::Rmi(a) => images::rmi(a),
        ClientCommand::Tag(a) => images::tag(a),
        ClientCommand::Build(a) => build::build(a),
        ClientCommand::Version(a) => version(a),
        ClientCommand::Pull(a) => distribution::pull(a),
        ClientCommand::Push(a) => distribution::push(a),
        ClientCommand::Login(a) => distribution::login(a),
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("{e:#}");
            Ok(1)
        }
    }
}

fn version(a: HostArg) -> anyhow::Result<i32> {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(
        " API version:       {}",
        http::API_PREFIX.trim_start_matches("/v")
    );
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    println!();
    let body = a.endpoint()?.ok("GET", "/version", None)?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    println!("Server: {}", v["Platform"]["Name"].as_str().unwrap_or(""));
    println!(" Engine:");
    println!(
        "  Version:          {}",
        v["Version"].as_str().unwrap_or("")
    );
    println!(
        "  API version:      {} (minimum version {})",
        v["ApiVersion"].as_str().unwrap_or(""),
        v["MinAPIVersion"].as_str().unwrap_or("")
    );
    println!(
        "  OS/Arch:          {}/{}",
        v["Os"].as_str().unwrap_or(""),
        v["Arch"].as_str().unwrap_or("")
    );
    println!(
        "  Kernel Version:   {}",
        v["KernelVersion"].as_str().unwrap_or("")
    );
    Ok(0)
}
