//! berth-network: network namespaces, bridges and veth pairs, IPAM, port publishing and
//! isolation rules (nftables), and the embedded DNS of user-defined networks. Knows containers
//! only as an id and a netns path.
