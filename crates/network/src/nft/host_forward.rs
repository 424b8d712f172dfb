//! Accept rules for berth's bridges in a foreign `ip filter FORWARD` chain. A host running
//! dockerd (iptables-nft) has that chain with `policy drop`, and with `br_netfilter` even
//! traffic between two ports of one bridge passes it; a drop in any base chain is final, so
//! berth's own table cannot let the traffic through. The rules carry the comment `berth` and
//! are found again by it, so removing them is exact. Isolation and `--internal` still hold:
//! those drops live in berth's table.

use std::process::Command;

use tracing::debug;

use super::{NftError, run};

const COMMENT: &str = "berth";

/// Whether the host has an `ip filter FORWARD` chain.
fn chain_listing() -> Option<String> {
    let out = Command::new("nft")
        .args(["-a", "list", "chain", "ip", "filter", "FORWARD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Puts the accept rules at the top of `ip filter FORWARD` if that chain exists, replacing
/// earlier copies.
pub fn install() -> Result<(), NftError> {
    let Some(listing) = chain_listing() else {
        return Ok(());
    };
    let mut script = deletions(&listing);
    for rule in [
        "oifname \"berth*\" ct status dnat accept",
        "oifname \"berth*\" ct state related,established accept",
        "iifname \"berth*\" accept",
    ] {
        script.push_str(&format!(
            "insert rule ip filter FORWARD {rule} comment \"{COMMENT}\"\n"
        ));
    }
    debug!("accepting berth bridges in ip filter FORWARD");
    run(&script)
}

/// Removes the accept rules, if any.
pub fn remove() -> Result<(), NftError> {
    match chain_listing() {
        Some(listing) => {
            let script = deletions(&listing);
            if script.is_empty() {
                Ok(())
            } else {
                run(&script)
            }
        }
        None => Ok(()),
    }
}

/// `delete rule` commands for every rule of ours in a `nft -a list chain` output.
fn deletions(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| l.contains(&format!("comment \"{COMMENT}\"")))
        .filter_map(|l| l.rsplit_once("# handle ").map(|(_, h)| h.trim().to_owned()))
        .map(|h| format!("delete rule ip filter FORWARD handle {h}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_pick_only_our_rules() {
        let listing = "table ip filter {\n chain FORWARD { # handle 1\n\
            iifname \"berth*\" accept comment \"berth\" # handle 7\n\
            counter jump DOCKER-USER # handle 3\n}\n}\n";
        assert_eq!(
            deletions(listing),
            "delete rule ip filter FORWARD handle 7\n"
        );
    }
}
