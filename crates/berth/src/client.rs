//! The docker-style client verbs of `berth` (run, ps, logs, ...), speaking the Docker Engine
//! API to a daemon's socket.

/// Client verbs.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Show the daemon's version.
    Version,
}

/// Runs one client verb; returns the process exit code.
pub fn run(command: ClientCommand) -> anyhow::Result<i32> {
    let _ = command;
    anyhow::bail!("not implemented yet")
}
