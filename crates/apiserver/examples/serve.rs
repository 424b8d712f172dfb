//! Runs the API server alone on an in-memory store, for trying kubectl against the request
//! side without building the whole `berth` binary:
//! `cargo run -p berth-apiserver --example serve -- <data-dir> [127.0.0.1:6443]`.

use std::sync::Arc;

use berth_apiserver::memory::MemoryStore;
use berth_apiserver::{CancellationToken, ServerConfig, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().ok_or("usage: serve <data-dir> [listen]")?;
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6443".to_string());
    let config = ServerConfig {
        data_dir: data_dir.into(),
        listen,
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    serve(config, Arc::new(MemoryStore::new()), cancel, None).await?;
    Ok(())
}
