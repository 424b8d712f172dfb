//! A minimal synchronous rtnetlink client: just the link, address and route requests berth
//! needs on the `docker run` path (bridge and veth creation, addresses, default route), built
//! on a `NETLINK_ROUTE` socket bound in the calling thread's network namespace.
//!
//! Message layouts follow rtnetlink(7) and `include/uapi/linux/{netlink,rtnetlink,if_link}.h`.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, socket,
};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const NLMSG_DONE: u16 = 3;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 0x1;
const AF_INET: u8 = libc::AF_INET as u8;

/// Failure of one rtnetlink request.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be opened, bound or used.
    #[error("netlink socket")]
    Socket(#[source] nix::Error),
    /// The kernel rejected a request.
    #[error("netlink {op} failed")]
    Kernel {
        /// What was asked.
        op: &'static str,
        /// The errno the kernel returned.
        #[source]
        source: nix::Error,
    },
    /// The kernel answered something this client cannot parse.
    #[error("malformed netlink reply to {op}")]
    Malformed {
        /// What was asked.
        op: &'static str,
    },
}

/// A message under construction: the netlink header, a fixed family header and attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    /// `struct ifinfomsg`.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) -> &mut Self {
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(ty, &data)
    }

    fn begin(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// An rtnetlink socket in the network namespace of the thread that opened it.
pub struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(NetlinkError::Socket)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(NetlinkError::Socket)?;
        Ok(Netlink { fd })
    }

    fn request(&self, op: &'static str, msg: Msg) -> Result<(), NetlinkError> {
        let bytes = msg.finish();
        send(
            self.fd.as_raw_fd(),
            &bytes,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(NetlinkError::Socket)?;
        let mut reply = [0u8; 4096];
        let n = recv(
            self.fd.as_raw_fd(),
            &mut reply,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(NetlinkError::Socket)?;
        if n < 20 {
            return Err(NetlinkError::Malformed { op });
        }
        let ty = u16::from_ne_bytes([reply[4], reply[5]]);
        if ty != NLMSG_ERROR {
            return Err(NetlinkError::Malformed { op });
        }
        let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        if code == 0 {
            Ok(())
        } else {
            Err(NetlinkError::Kernel {
                op,
                source: nix::Error::from_raw(-code),
            })
        }
    }

    /// The names of all links in this namespace.
    pub fn link_names(&self) -> Result<Vec<String>, NetlinkError> {
        const OP: &str = "list links";
        let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
        m.ifinfo(0, 0, 0);
        let mut bytes = m.finish();
        // A dump ends with NLMSG_DONE; no separate acknowledgement.
        let flags = NLM_F_REQUEST | NLM_F_DUMP;
        bytes[6..8].copy_from_slice(&flags.to_ne_bytes());
        send(
            self.fd.as_raw_fd(),
            &bytes,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(NetlinkError::Socket)?;
        let mut names = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = recv(
                self.fd.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            )
            .map_err(NetlinkError::Socket)?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if len < 16 || off + len > n {
                    return Err(NetlinkError::Malformed { op: OP });
                }
                match ty {
                    NLMSG_DONE => return Ok(names),
                    NLMSG_ERROR => {
                        let code = buf
                            .get(off + 16..off + 20)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        return Err(NetlinkError::Kernel {
                            op: OP,
                            source: nix::Error::from_raw(-code),
                        });
                    }
                    RTM_NEWLINK => names.extend(ifname(&buf[off + 32..off + len])),
                    _ => {}
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Creates a bridge named `name`, up.
    pub fn add_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, IFF_UP, IFF_UP).attr_str(IFLA_IFNAME, name);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.request("create bridge", m)
    }

    /// Deletes the link named `name`.
    pub fn del_link(&self, name: &str) -> Result<(), NetlinkError> {
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
        self.request("delete link", m)
    }

    /// Sets the link named `name` down (its routes go at once; deleting can take longer).
    pub fn set_down(&self, name: &str) -> Result<(), NetlinkError> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(0, 0, IFF_UP).attr_str(IFLA_IFNAME, name);
        self.request("set link down", m)
    }

    /// Sets the link with index `index` up.
    pub fn set_up(&self, index: u32) -> Result<(), NetlinkError> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(index as i32, IFF_UP, IFF_UP);
        self.request("set link up", m)
    }

    /// Creates a veth pair: `host` enslaved to bridge `master` and up in this namespace, the
    /// peer named `peer` with address `mac`, down, directly in the namespace `netns`.
    pub fn add_veth(
        &self,
        host: &str,
        master: u32,
        peer: &str,
        mac: [u8; 6],
        netns: RawFd,
    ) -> Result<(), NetlinkError> {
        // One queue each way on both ends, asked for explicitly: without the attributes the
        // kernel creates one queue per CPU and then trims them to one, and trimming a queue
        // waits for an RCU grace period (milliseconds on every container start).
        let one = 1u32.to_ne_bytes();
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, IFF_UP, IFF_UP)
            .attr_str(IFLA_IFNAME, host)
            .attr(IFLA_MASTER, &master.to_ne_bytes())
            .attr(IFLA_NUM_TX_QUEUES, &one)
            .attr(IFLA_NUM_RX_QUEUES, &one);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
        // The peer cannot be brought up here: its own peer is not linked yet (ENOTCONN).
        m.ifinfo(0, 0, 0)
            .attr_str(IFLA_IFNAME, peer)
            .attr(IFLA_ADDRESS, &mac)
            .attr(IFLA_NET_NS_FD, &netns.to_ne_bytes())
            .attr(IFLA_NUM_TX_QUEUES, &one)
            .attr(IFLA_NUM_RX_QUEUES, &one);
        m.end().end().end();
        self.request("create veth", m)
    }

    /// Adds `addr/prefix` to the link with index `index`.
    pub fn add_addr(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[AF_INET, prefix, 0, 0]);
        m.buf.extend_from_slice(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets());
        self.request("add address", m)
    }

    /// Adds a default route through `gateway` on the link with index `index`.
    pub fn add_default_route(&self, index: u32, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // struct rtmsg: family, dst_len, src_len, tos, table main, proto boot, scope
        // universe, type unicast, flags.
        m.buf.extend_from_slice(&[AF_INET, 0, 0, 0, 254, 3, 0, 1]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets())
            .attr(RTA_OIF, &index.to_ne_bytes());
        self.request("add default route", m)
    }
}

/// The IFLA_IFNAME attribute among `attrs`.
fn ifname(mut attrs: &[u8]) -> Option<String> {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return None;
        }
        if ty == IFLA_IFNAME {
            let raw = &attrs[4..len];
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            return Some(String::from_utf8_lossy(&raw[..end]).into_owned());
        }
        attrs = attrs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

/// The index of the link named `name` in the calling thread's network namespace.
pub fn link_index(name: &str) -> Result<u32, NetlinkError> {
    nix::net::if_::if_nametoindex(name).map_err(|source| NetlinkError::Kernel {
        op: "link lookup",
        source,
    })
}
