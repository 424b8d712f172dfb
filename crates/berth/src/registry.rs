//! `berth registry`: the OCI distribution server, and its maintenance verbs (`gc`).

use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of `berth registry`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RegistryArgs {
    /// Maintenance verb; without one, serve.
    #[command(subcommand)]
    pub command: Option<RegistryCommand>,
    /// Root of the registry's storage.
    #[arg(
        long,
        env = "BERTH_REGISTRY_ROOT",
        default_value = "/var/lib/berth/registry"
    )]
    pub root: PathBuf,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: String,
    /// htpasswd file (bcrypt entries); requests then need Basic credentials.
    #[arg(long)]
    pub htpasswd: Option<PathBuf>,
    /// PEM certificate chain to serve HTTPS with.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Maintenance verbs of `berth registry`.
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Remove blobs no manifest references (run while the server is stopped).
    Gc {
        /// Root of the registry's storage.
        #[arg(
            long,
            env = "BERTH_REGISTRY_ROOT",
            default_value = "/var/lib/berth/registry"
        )]
        root: PathBuf,
    },
}

/// Runs the registry until SIGINT/SIGTERM, or a maintenance verb.
pub fn run(args: RegistryArgs) -> anyhow::Result<()> {
    if let Some(RegistryCommand::Gc { root }) = args.command {
        let storage = berth_registry::Storage::open(&root)
            .with_context(|| format!("opening registry at {}", root.display()))?;
        let report = storage.collect_garbage().context("collecting garbage")?;
        println!(
            "removed {} blobs ({} bytes), kept {}",
            report.removed.len(),
            report.freed_bytes,
            report.kept
        );
        return Ok(());
    }
    let config = berth_registry::Config {
        root: args.root,
        addr: args.addr,
        htpasswd: args.htpasswd,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        ..Default::default()
    };
    // One thread keeps the idle registry small (issue 5: under 10 MB resident).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .context("building tokio runtime")?;
    rt.block_on(async {
        let shutdown = berth_registry::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stop.cancel();
        });
        // When idle, the code of the last requests and freed heap leave the resident set.
        let trim: berth_registry::server::IdleHook =
            std::sync::Arc::new(berth_runtime::trim_resident);
        berth_registry::server::run_with_idle_hook(config, shutdown, Some(trim))
            .await
            .context("registry server")
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
