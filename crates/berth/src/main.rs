//! The `berth` binary: argument parsing and wiring only. Each subcommand's arguments and
//! wiring live in their own module; logic lives in the library crates.

mod client;
mod daemon;
mod registry;
mod server;

use clap::{Parser, Subcommand};

/// berth: a container engine, image registry, orchestrator and service mesh in one binary.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
struct Cli {
    /// Log filter (`error`, `info`, `debug`, or a `RUST_LOG`-style directive).
    #[arg(long, global = true, env = "BERTH_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, env = "BERTH_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the container engine (Docker Engine API on a unix socket).
    Daemon(daemon::DaemonArgs),
    /// Run the Kubernetes-compatible API server with its store.
    Server(server::ServerArgs),
    /// Run the OCI registry server, or maintain its storage.
    Registry(registry::RegistryArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn init_tracing(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    // The shim is re-executed by the daemon for every container; it must stay
    // single-threaded (it forks into the container), so it is dispatched before clap and
    // before any runtime exists.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("shim") {
        let code = berth_runtime::shim_main(&args[2..]);
        #[allow(clippy::exit)]
        std::process::exit(code);
    }

    let cli = Cli::parse();
    match cli.command {
        Command::Daemon(args) => {
            init_tracing(&cli.log_level, cli.log_format);
            daemon::run(args)
        }
        Command::Server(args) => {
            init_tracing(&cli.log_level, cli.log_format);
            server::run(args)
        }
        Command::Registry(args) => {
            init_tracing(&cli.log_level, cli.log_format);
            registry::run(args)
        }
        Command::Client(command) => {
            let code = client::run(command)?;
            #[allow(clippy::exit)]
            std::process::exit(code);
        }
    }
}
