//! `berth server`: wires the store and the Kubernetes API server.

use std::path::PathBuf;

/// Arguments of `berth server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Directory of the server's state (store, certificates, kubeconfig, token).
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth/server")]
    pub data_dir: PathBuf,
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub https_listen: String,
    /// Store backend: sqlite or etcd.
    #[arg(long, default_value = "sqlite")]
    pub datastore: String,
    /// etcd endpoints, comma separated (with --datastore etcd).
    #[arg(long, value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
}

/// Runs the server until SIGINT/SIGTERM.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("berth server is not implemented yet")
}
