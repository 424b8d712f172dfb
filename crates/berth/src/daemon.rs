//! `berth daemon`: wires the image store, runtime and engine and serves the Docker Engine API.

use std::path::PathBuf;

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
}

/// Runs the daemon until SIGINT/SIGTERM.
pub fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("berth daemon is not implemented yet")
}
