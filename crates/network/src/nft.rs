//! The nftables ruleset: everything berth installs lives in `table inet berth`, rendered whole
//! from the state and replaced in one transaction (flush and refill: the base chains stay, so
//! their hooks are not re-registered, which would wait for an RCU grace period), so a change, a restore after a
//! restart and the final cleanup are each a single atomic step. The script runs through
//! libnftables in process when the library is installed, else through `nft -f -`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use tracing::debug;

use crate::state::State;

pub mod host_forward;
mod libnftables;

/// The table's name.
pub const TABLE: &str = "berth";

/// Failure to apply the ruleset.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be run.
    #[error("running nft")]
    Spawn(#[source] std::io::Error),
    /// `nft` rejected the ruleset.
    #[error("nft rejected the ruleset: {0}")]
    Rejected(String),
}

/// Renders the table for `state`: outbound masquerade, published ports (DNAT in prerouting
/// and output, masquerade for loopback and hairpin), isolation of bridges and `--internal`.
pub fn render(state: &State) -> String {
    let mut ports = String::new();
    let mut post = String::new();
    let mut fwd = String::new();
    let bridges: Vec<&str> = state.networks.values().map(|n| n.bridge.as_str()).collect();
    for n in state.networks.values() {
        let (br, subnet) = (&n.bridge, n.subnet);
        if n.internal {
            let _ = writeln!(fwd, "    iifname \"{br}\" oifname != \"{br}\" drop");
            let _ = writeln!(fwd, "    oifname \"{br}\" iifname != \"{br}\" drop");
        } else {
            let _ = writeln!(post, "    ip saddr {subnet} oifname != \"{br}\" masquerade");
        }
        // Loopback (route_localnet) and hairpin connections to published ports need their
        // source rewritten so replies come back through the host.
        let _ = writeln!(
            post,
            "    oifname \"{br}\" ct status dnat ip saddr {{ 127.0.0.0/8, {subnet} }} masquerade"
        );
        let others: Vec<String> = bridges
            .iter()
            .filter(|b| **b != br)
            .map(|b| format!("\"{b}\""))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                fwd,
                "    iifname \"{br}\" oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    for p in &state.ports {
        let daddr = if p.host_ip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {} ", p.host_ip)
        };
        let _ = writeln!(
            ports,
            "    meta nfproto ipv4 {daddr}{proto} dport {} dnat ip to {}:{}",
            p.host_port,
            p.container_ip,
            p.container_port,
            proto = p.proto.as_str()
        );
    }
    format!(
        "table inet {TABLE} {{}}\nflush table inet {TABLE}\ntable inet {TABLE} {{\n\
  chain ports {{\n{ports}  }}\n\
  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }}\n\
  chain output {{\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }}\n\
  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n\
  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    ct state established,related accept\n{fwd}    ct status dnat accept\n  }}\n\
}}\n"
    )
}

/// Replaces the table with `ruleset` (from [`render`]).
pub fn apply(ruleset: &str) -> Result<(), NftError> {
    run(ruleset)
}

/// Deletes the table if present.
pub fn delete() -> Result<(), NftError> {
    run(&format!(
        "table inet {TABLE} {{}}\ndelete table inet {TABLE}\n"
    ))
}

fn run(script: &str) -> Result<(), NftError> {
    if let Some(lib) = libnftables::LibNftables::get() {
        let out = lib.run(script).map_err(NftError::Rejected);
        debug!(ok = out.is_ok(), "applied nftables ruleset in process");
        return out;
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    debug!(ok = out.status.success(), "applied nftables ruleset");
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Rejected(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}
