//! `berth server`: wires the store and the Kubernetes API server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_apiserver::CancellationToken;
use berth_store::Store;

/// Arguments of `berth server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Directory of the server's state (store, certificates, kubeconfig, token).
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth/server")]
    pub data_dir: PathBuf,
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub https_listen: String,
    /// Store backend: sqlite, etcd, or memory (nothing kept; for experiments).
    #[arg(long, default_value = "sqlite")]
    pub datastore: String,
    /// etcd endpoints, comma separated (with --datastore etcd).
    #[arg(long, value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
}

async fn open_store(args: &ServerArgs) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match args.datastore.as_str() {
        "sqlite" => {
            let path = args.data_dir.join("state.db");
            let store = berth_store::sqlite::SqliteStore::open(&path)
                .await
                .with_context(|| format!("opening the SQLite store {}", path.display()))?;
            Arc::new(store)
        }
        "etcd" => {
            if args.etcd_endpoints.is_empty() {
                anyhow::bail!("--datastore etcd needs --etcd-endpoints");
            }
            let store = berth_store::etcd::EtcdStore::connect(&args.etcd_endpoints)
                .await
                .with_context(|| format!("connecting to etcd at {:?}", args.etcd_endpoints))?;
            Arc::new(store)
        }
        "memory" => Arc::new(berth_apiserver::memory::MemoryStore::new()),
        other => anyhow::bail!("unknown datastore {other:?} (sqlite, etcd or memory)"),
    })
}

async fn shutdown_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    cancel.cancel();
}

/// Runs the server until SIGINT/SIGTERM.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating {}", args.data_dir.display()))?;
        let store = open_store(&args).await?;
        let cancel = CancellationToken::new();
        tokio::spawn(shutdown_signal(cancel.clone()));
        tokio::spawn(berth_store::compaction::run_compactor(
            store.clone(),
            berth_store::compaction::CompactionPolicy::default(),
            cancel.clone(),
        ));
        let config = berth_apiserver::ServerConfig {
            data_dir: args.data_dir.clone(),
            listen: args.https_listen.clone(),
        };
        berth_apiserver::serve(config, store, cancel, None)
            .await
            .context("serving the Kubernetes API")
    })
}
