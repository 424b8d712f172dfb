//! `berth daemon`: wires the image store, runtime and engine and serves the Docker Engine API.

use std::path::PathBuf;

use anyhow::Context;
use berth_engine::CancellationToken;
use berth_engine::{Engine, EngineConfig};
use berth_image::ImageStore;
use berth_runtime::{Runtime, RuntimeConfig};

/// Arguments of `berth daemon`.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Root of all persistent state.
    #[arg(long, env = "BERTH_ROOT", default_value = "/var/lib/berth")]
    pub root: PathBuf,
    /// Unix socket serving the Docker Engine API.
    #[arg(long, env = "BERTH_SOCKET", default_value = "/run/berth/docker.sock")]
    pub socket: PathBuf,
    /// Default OCI runtime: builtin, runc or crun.
    #[arg(long, env = "BERTH_RUNTIME", default_value = "builtin")]
    pub runtime: String,
    /// Manage bridges, veths and port rules inside this network namespace file (created on
    /// first use) instead of the daemon's own namespace, so instances run side by side.
    #[arg(long, env = "BERTH_NETWORK_NAMESPACE")]
    pub network_namespace: Option<PathBuf>,
    /// Registry (`host[:port]`) to reach over plain HTTP; repeatable. Loopback is always plain.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Turn on cgroup2's `favordynmods` mount option (host-wide, kept after the daemon stops)
    /// so that moving a container's first process into its cgroup does not wait for an RCU
    /// grace period; `false` leaves the mount as it is.
    #[arg(long, env = "BERTH_CGROUP_FAVORDYNMODS", default_value_t = true, action = clap::ArgAction::Set)]
    pub cgroup_favordynmods: bool,
}

/// Runs the daemon until SIGINT/SIGTERM.
pub fn run(args: DaemonArgs) -> anyhow::Result<()> {
    // Two workers keep latency low under concurrent requests while the idle footprint
    // stays small; blocking work (tar, fsync) goes to the blocking pool.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .thread_keep_alive(std::time::Duration::from_secs(5))
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: DaemonArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.root)
        .with_context(|| format!("creating root {}", args.root.display()))?;
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("resolving root {}", args.root.display()))?;
    let default_runtime = berth_engine::runtimes::resolve(&args.runtime)
        .map_err(|e| anyhow::anyhow!("--runtime {}: {e}", args.runtime))?
        .unwrap_or(berth_runtime::RuntimeKind::Builtin);
    if args.cgroup_favordynmods {
        match berth_runtime::cgroups::favor_dynamic_changes() {
            Ok(berth_runtime::cgroups::Favor::TurnedOn(at)) => {
                tracing::info!(mount = %at.display(), "cgroup2 remounted with favordynmods")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot turn on favordynmods; cgroup moves stay slow")
            }
        }
    }
    let images = ImageStore::open(&root.join("image")).context("opening the image store")?;
    let runtime = Runtime::new(RuntimeConfig {
        state_dir: root.join("runtime"),
        shim_binary: std::env::current_exe().context("locating the berth executable")?,
        default_runtime,
    })
    .context("opening the runtime")?;
    let engine = Engine::new(
        EngineConfig {
            root: root.clone(),
            default_runtime: args.runtime.clone(),
            network_namespace: args.network_namespace.clone(),
            insecure_registries: args.insecure_registries.clone(),
        },
        images,
        runtime,
    )
    .context("opening the engine")?;
    engine.restore().await.context("restoring containers")?;
    engine.restore_networks().await;
    let listener = berth_engine::server::bind(&args.socket).context("binding the API socket")?;
    tracing::info!(root = %root.display(), socket = %args.socket.display(), runtime = %args.runtime, "berth daemon serving");
    let cancel = CancellationToken::new();
    let server = tokio::spawn(berth_engine::server::serve(
        engine.clone(),
        listener,
        cancel.clone(),
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down; containers keep running");
    cancel.cancel();
    let _ = server.await;
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
