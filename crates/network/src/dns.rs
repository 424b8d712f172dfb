//! The embedded DNS server of user-defined networks. Design: one server per network, bound
//! to UDP port 53 on the network's gateway (the bridge address, which containers reach as
//! their `nameserver`, see [`crate::files::resolv_conf`]) instead of Docker's 127.0.0.11
//! inside every sandbox; no per-container socket or DNAT is needed. Names the network knows
//! (container names, aliases, short ids) get an A record; everything else is relayed verbatim
//! to the upstream servers of the asking container (its `--dns`, else the host's); with none
//! the answer is NXDOMAIN.
//!
//! Wire format per RFC 1035 §4.1; only the question is parsed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace};

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Failure of the DNS server's socket.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The socket could not be registered or used.
    #[error("dns socket")]
    Socket(#[source] std::io::Error),
}

/// Looks a lowercase name without trailing dot up among the network's containers.
pub type Lookup = Arc<dyn Fn(&str) -> Option<Ipv4Addr> + Send + Sync>;

/// The upstream servers for queries from a client address.
pub type Upstreams = Arc<dyn Fn(IpAddr) -> Vec<SocketAddr> + Send + Sync>;

/// A parsed question.
#[derive(Debug, PartialEq, Eq)]
struct Question {
    name: String,
    qtype: u16,
    qclass: u16,
    /// Offset just after the question, where answers start.
    end: usize,
}

fn parse_question(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = msg.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
    }
    let rest = msg.get(pos..pos + 4)?;
    Some(Question {
        name: labels.join("."),
        qtype: u16::from_be_bytes([rest[0], rest[1]]),
        qclass: u16::from_be_bytes([rest[2], rest[3]]),
        end: pos + 4,
    })
}

/// A reply to `query` carrying the question, `rcode` and an optional A record.
fn reply(query: &[u8], q_end: usize, rcode: u8, answer: Option<Ipv4Addr>) -> Vec<u8> {
    let mut out = Vec::with_capacity(q_end + 16);
    out.extend_from_slice(&query[0..2]);
    // QR, opcode copied, AA, RD copied; RA; rcode.
    out.push(0x80 | (query[2] & 0x79) | 0x04);
    out.push(0x80 | rcode);
    out.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    out.extend_from_slice(&query[12..q_end]);
    if let Some(ip) = answer {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// The two nonblocking sockets a server needs, bound in the managed namespace.
pub struct DnsSockets {
    /// UDP port 53 on the network's gateway.
    pub listen: std::net::UdpSocket,
    /// An ephemeral port to talk to upstream servers from.
    pub forward: std::net::UdpSocket,
}

impl DnsSockets {
    /// Binds both on `listen` and an ephemeral port, in the calling thread's namespace.
    pub fn bind(listen: SocketAddr) -> std::io::Result<Self> {
        let l = std::net::UdpSocket::bind(listen)?;
        let f = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        l.set_nonblocking(true)?;
        f.set_nonblocking(true)?;
        Ok(DnsSockets {
            listen: l,
            forward: f,
        })
    }
}

/// One network's DNS server.
pub struct DnsServer {
    lookup: Lookup,
    upstreams: Upstreams,
}

impl DnsServer {
    /// A server answering from `lookup` and relaying other names to `upstreams`.
    pub fn new(lookup: Lookup, upstreams: Vec<SocketAddr>) -> Self {
        Self::with_upstreams(lookup, Arc::new(move |_| upstreams.clone()))
    }

    /// A server answering from `lookup` and relaying other names to the servers
    /// `upstreams` gives for the asking client.
    pub fn with_upstreams(lookup: Lookup, upstreams: Upstreams) -> Self {
        DnsServer { lookup, upstreams }
    }

    /// Answers one query from `client`; `None` when it is not worth an answer (not a
    /// query).
    pub async fn answer(
        &self,
        query: &[u8],
        client: IpAddr,
        forwarder: &Forwarder,
    ) -> Option<Vec<u8>> {
        if query.len() < 12 || query[2] & 0x80 != 0 {
            return None;
        }
        let Some(q) = parse_question(query) else {
            return Some(reply(query, 12.min(query.len()), 1, None));
        };
        let local = (self.lookup)(&q.name);
        trace!(name = %q.name, qtype = q.qtype, ?local, "dns query");
        if let Some(ip) = local {
            let a = (q.qclass == CLASS_IN && q.qtype == TYPE_A).then_some(ip);
            // AAAA and other types of a known name: NOERROR without data, so resolvers
            // do not treat the name as missing.
            return Some(reply(query, q.end, 0, a));
        }
        let upstreams = (self.upstreams)(client);
        if upstreams.is_empty() {
            return Some(reply(query, q.end, RCODE_NXDOMAIN, None));
        }
        for up in &upstreams {
            match forwarder.forward(query, *up).await {
                Ok(resp) => return Some(resp),
                Err(e) => debug!(upstream = %up, error = %e, "dns upstream failed"),
            }
        }
        Some(reply(query, q.end, RCODE_SERVFAIL, None))
    }

    /// Serves queries on `sockets` (bound in the managed namespace by
    /// [`crate::Networks::bind_dns`]) until `cancel` fires.
    pub async fn serve(
        self: Arc<Self>,
        sockets: DnsSockets,
        cancel: CancellationToken,
    ) -> Result<(), DnsError> {
        let socket = Arc::new(UdpSocket::from_std(sockets.listen).map_err(DnsError::Socket)?);
        let forwarder = Forwarder::start(sockets.forward, cancel.clone())?;
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                r = socket.recv_from(&mut buf) => r.map_err(DnsError::Socket)?,
            };
            let query = buf[..n].to_vec();
            let (me, sock, fwd) = (self.clone(), socket.clone(), forwarder.clone());
            tokio::spawn(async move {
                if let Some(resp) = me.answer(&query, peer.ip(), &fwd).await {
                    let _ = sock.send_to(&resp, peer).await;
                }
            });
        }
    }
}

/// Relays queries to upstream servers through one socket bound in the managed namespace
/// (a tokio worker's own namespace may differ), matching replies by a rewritten id.
pub struct Forwarder {
    socket: UdpSocket,
    pending: Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>,
    next: AtomicU16,
}

impl Forwarder {
    /// Takes a nonblocking socket (see [`crate::Networks::bind_dns`]) and starts the task
    /// that routes replies until `cancel` fires.
    pub fn start(
        socket: std::net::UdpSocket,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>, DnsError> {
        let socket = UdpSocket::from_std(socket).map_err(DnsError::Socket)?;
        let me = Arc::new(Forwarder {
            socket,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU16::new(1),
        });
        let f = me.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = f.socket.recv_from(&mut buf) => match r {
                        Ok((n, _)) => n,
                        Err(_) => continue,
                    },
                };
                if n < 12 {
                    continue;
                }
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                let waiter = f
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(tx) = waiter {
                    let _ = tx.send(buf[..n].to_vec());
                }
            }
        });
        Ok(me)
    }

    async fn forward(&self, query: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let mut q = query.to_vec();
        q[0..2].copy_from_slice(&id.to_be_bytes());
        let sent = self.socket.send_to(&q, upstream).await;
        let got = match sent {
            Ok(_) => tokio::time::timeout(UPSTREAM_TIMEOUT, rx)
                .await
                .ok()
                .and_then(Result::ok),
            Err(e) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                return Err(e);
            }
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let mut resp = got.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::TimedOut))?;
        resp[0..2].copy_from_slice(&query[0..2]);
        Ok(resp)
    }
}

/// Builds a query for `name` of type A with id `id` (for tests and health checks).
pub fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TYPE_A.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// The rcode and the first A record of a reply, if any.
pub fn parse_reply(msg: &[u8]) -> Option<(u8, Option<Ipv4Addr>)> {
    let q = parse_question(msg)?;
    let rcode = msg[3] & 0x0f;
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    let mut pos = q.end;
    for _ in 0..ancount {
        // Skip the owner name (a pointer or labels).
        loop {
            let b = *msg.get(pos)?;
            if b & 0xc0 == 0xc0 {
                pos += 2;
                break;
            }
            pos += 1 + usize::from(b);
            if b == 0 {
                break;
            }
        }
        let hdr = msg.get(pos..pos + 10)?;
        let (ty, len) = (
            u16::from_be_bytes([hdr[0], hdr[1]]),
            u16::from_be_bytes([hdr[8], hdr[9]]),
        );
        pos += 10;
        if ty == TYPE_A && len == 4 {
            let d = msg.get(pos..pos + 4)?;
            return Some((rcode, Some(Ipv4Addr::new(d[0], d[1], d[2], d[3]))));
        }
        pos += usize::from(len);
    }
    Some((rcode, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2))
    }

    fn server(upstreams: Vec<SocketAddr>) -> DnsServer {
        DnsServer::new(
            Arc::new(|n: &str| (n == "web").then_some(Ipv4Addr::new(172, 18, 0, 2))),
            upstreams,
        )
    }

    fn forwarder(cancel: &CancellationToken) -> Arc<Forwarder> {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        Forwarder::start(sock, cancel.clone()).unwrap()
    }

    #[tokio::test]
    async fn answers_known_names_and_nxdomain_for_others() {
        let s = server(vec![]);
        let f = forwarder(&CancellationToken::new());
        let r = s.answer(&query(7, "WEB."), client(), &f).await.unwrap();
        assert_eq!(&r[0..2], &7u16.to_be_bytes());
        assert_eq!(
            parse_reply(&r),
            Some((0, Some(Ipv4Addr::new(172, 18, 0, 2))))
        );
        let r = s
            .answer(&query(8, "nope.example"), client(), &f)
            .await
            .unwrap();
        assert_eq!(parse_reply(&r), Some((RCODE_NXDOMAIN, None)));
    }

    #[tokio::test]
    async fn forwards_unknown_names_to_upstream() {
        let up = DnsServer::new(
            Arc::new(|n: &str| (n == "example.test").then_some(Ipv4Addr::new(10, 9, 9, 9))),
            vec![],
        );
        let socks = DnsSockets::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socks.listen.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(Arc::new(up).serve(socks, cancel.clone()));
        let s = server(vec![addr]);
        let f = forwarder(&cancel);
        let r = s
            .answer(&query(9, "example.test"), client(), &f)
            .await
            .unwrap();
        assert_eq!(parse_reply(&r), Some((0, Some(Ipv4Addr::new(10, 9, 9, 9)))));
        let r = s
            .answer(&query(10, "missing.test"), client(), &f)
            .await
            .unwrap();
        assert_eq!(parse_reply(&r), Some((RCODE_NXDOMAIN, None)));
        cancel.cancel();
        task.await.unwrap().unwrap();
    }
}
