//! Contents of a container's /etc/hosts, /etc/hostname and /etc/resolv.conf, laid out as
//! Docker writes them (honouring `--hostname`, `--add-host`, `--dns`, `--dns-search` and
//! `--dns-option`).

use std::fmt::Write as _;
use std::net::IpAddr;

/// Docker's fallback when the host only has loopback resolvers and no `--dns` is given.
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// What /etc/hosts lists besides the fixed localhost lines.
#[derive(Debug, Clone, Default)]
pub struct HostsSpec {
    /// The container's hostname (and `hostname.domainname` when a domain is set).
    pub hostname: String,
    /// `--domainname`, may be empty.
    pub domainname: String,
    /// The container's own addresses (one line each, naming the hostname).
    pub addresses: Vec<IpAddr>,
    /// `--add-host name:ip` entries, in order.
    pub extra_hosts: Vec<(String, IpAddr)>,
}

/// /etc/hosts.
pub fn hosts(spec: &HostsSpec) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in &spec.extra_hosts {
        let _ = writeln!(out, "{ip}\t{name}");
    }
    let names = if spec.domainname.is_empty() {
        spec.hostname.clone()
    } else {
        format!("{h}.{d} {h}", h = spec.hostname, d = spec.domainname)
    };
    for ip in &spec.addresses {
        let _ = writeln!(out, "{ip}\t{names}");
    }
    out
}

/// /etc/hostname.
pub fn hostname(name: &str) -> String {
    format!("{name}\n")
}

/// What /etc/resolv.conf is built from.
#[derive(Debug, Clone, Default)]
pub struct ResolvSpec {
    /// The embedded DNS server's address when the container is on a user-defined network.
    pub embedded: Option<IpAddr>,
    /// `--dns` servers.
    pub dns: Vec<IpAddr>,
    /// `--dns-search` domains.
    pub search: Vec<String>,
    /// `--dns-option` options.
    pub options: Vec<String>,
}

/// /etc/resolv.conf for a container, given the host's resolv.conf text. With an embedded
/// server it is the only nameserver (the `--dns` or host servers become its upstreams, see
/// [`upstreams`]); otherwise the `--dns` servers, else the host's non-loopback ones.
pub fn resolv_conf(spec: &ResolvSpec, host: &str) -> String {
    let hosts = parse_resolv(host);
    let mut out = String::new();
    let search = if spec.search.is_empty() {
        hosts.search
    } else {
        spec.search.clone()
    };
    if !search.is_empty() {
        let _ = writeln!(out, "search {}", search.join(" "));
    }
    let servers: Vec<String> = match spec.embedded {
        Some(ip) => vec![ip.to_string()],
        None => upstreams(spec, host)
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    for s in servers {
        let _ = writeln!(out, "nameserver {s}");
    }
    let options = if spec.options.is_empty() {
        hosts.options
    } else {
        spec.options.clone()
    };
    if !options.is_empty() {
        let _ = writeln!(out, "options {}", options.join(" "));
    }
    out
}

/// The servers a container's queries go to: `--dns`, else the host's non-loopback
/// nameservers, else Google's public servers as Docker does.
pub fn upstreams(spec: &ResolvSpec, host: &str) -> Vec<IpAddr> {
    if !spec.dns.is_empty() {
        return spec.dns.clone();
    }
    let found: Vec<IpAddr> = parse_resolv(host)
        .nameservers
        .into_iter()
        .filter(|ip| !ip.is_loopback())
        .collect();
    if found.is_empty() {
        FALLBACK_DNS.iter().filter_map(|s| s.parse().ok()).collect()
    } else {
        found
    }
}

#[derive(Default)]
struct Resolv {
    nameservers: Vec<IpAddr>,
    search: Vec<String>,
    options: Vec<String>,
}

fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => r
                .nameservers
                .extend(words.next().and_then(|w| w.parse::<IpAddr>().ok())),
            Some("search") | Some("domain") => r.search = words.map(str::to_owned).collect(),
            Some("options") => r.options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_extra_hosts_and_own_address() {
        let text = hosts(&HostsSpec {
            hostname: "web".into(),
            domainname: String::new(),
            addresses: vec!["172.17.0.2".parse().unwrap()],
            extra_hosts: vec![("db".into(), "10.0.0.5".parse().unwrap())],
        });
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.0.0.5\tdb\n"));
        assert!(text.ends_with("172.17.0.2\tweb\n"));
        assert_eq!(hostname("web"), "web\n");
    }

    #[test]
    fn resolv_conf_honours_dns_and_search_and_drops_loopback() {
        let host = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n";
        let plain = resolv_conf(&ResolvSpec::default(), host);
        assert_eq!(
            plain,
            "search corp.example\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n"
        );
        let spec = ResolvSpec {
            dns: vec!["1.1.1.1".parse().unwrap()],
            search: vec!["a.test".into(), "b.test".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&spec, host),
            "search a.test b.test\nnameserver 1.1.1.1\noptions edns0\n"
        );
        let embedded = ResolvSpec {
            embedded: Some("172.18.0.1".parse().unwrap()),
            ..spec
        };
        assert!(resolv_conf(&embedded, host).contains("nameserver 172.18.0.1\n"));
        assert_eq!(
            upstreams(&embedded, host),
            vec!["1.1.1.1".parse::<IpAddr>().unwrap()]
        );
    }
}
