//! Kernel-side steps of [`crate::Networks`] requests, run on the namespace thread: bridge
//! creation, veth plumbing into a sandbox, sysctls, the host's routes and port probing.

use std::fs::File;
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::NetworkError;
use crate::ipam::Subnet;
use crate::netlink;
use crate::netns::{self, Host};
use crate::state::{Endpoint, Network, Proto};

/// Creates the bridge of `n` with its gateway address; enables forwarding and, for loopback
/// DNAT, `route_localnet` on it.
pub(crate) fn make_bridge(h: &Host, n: &Network) -> Result<(), NetworkError> {
    h.netlink.add_bridge(&n.bridge)?;
    let done = (|| {
        let idx = netlink::link_index(&n.bridge)?;
        h.netlink.add_addr(idx, n.gateway, n.subnet.prefix)?;
        sysctl(&format!("ipv4/conf/{}/route_localnet", n.bridge), "1")?;
        sysctl("ipv4/ip_forward", "1")
    })();
    if done.is_err() {
        let _ = h.netlink.del_link(&n.bridge);
    }
    done
}

pub(crate) fn plumb(
    h: &Host,
    bridge: &str,
    ns_path: &Path,
    ep: &Endpoint,
    mac: [u8; 6],
    route: bool,
) -> Result<(), NetworkError> {
    let master = netlink::link_index(bridge)?;
    let ns = File::open(ns_path).map_err(NetworkError::Dir)?;
    h.netlink
        .add_veth(&ep.host_veth, master, &ep.ifname, mac, ns.as_raw_fd())?;
    let inside = netns::within(h, ns_path, |nl| {
        let idx = netlink::link_index(&ep.ifname)?;
        nl.set_up(idx)?;
        nl.add_addr(idx, ep.ip, ep.prefix)?;
        if route {
            nl.add_default_route(idx, ep.gateway)?;
        }
        Ok(())
    });
    if let Err(e) = inside {
        let _ = h.netlink.del_link(&ep.host_veth);
        return Err(e.into());
    }
    Ok(())
}

/// Writes a sysctl under /proc/sys/net, which reflects the calling thread's namespace.
fn sysctl(key: &str, value: &str) -> Result<(), NetworkError> {
    let path = format!("/proc/sys/net/{key}");
    std::fs::write(&path, value).map_err(|source| NetworkError::Sysctl { key: path, source })
}

/// Destinations of the calling thread's namespace's IPv4 routes, except the default.
pub(crate) fn host_routes() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            (mask != 0).then(|| {
                Subnet::new(
                    Ipv4Addr::from(u32::from_be(dst)),
                    u32::from_be(mask).count_ones() as u8,
                )
            })
        })
        .collect()
}

pub(crate) fn bindable(ip: Ipv4Addr, port: u16, proto: Proto) -> bool {
    match proto {
        Proto::Tcp => std::net::TcpListener::bind((ip, port)).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind((ip, port)).is_ok(),
    }
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, NetworkError> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(NetworkError::Dir)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
