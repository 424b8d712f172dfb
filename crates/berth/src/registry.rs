//! `berth registry`: the OCI distribution server, and its maintenance verbs.

use std::path::PathBuf;

/// Arguments of `berth registry`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Root of the registry's storage.
    #[arg(long, env = "BERTH_REGISTRY_ROOT", default_value = "/var/lib/berth/registry")]
    pub root: PathBuf,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: String,
}

/// Runs the registry until SIGINT/SIGTERM.
pub fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("berth registry is not implemented yet")
}
