//! berth-network: Bridges, veths, IPAM, nftables NAT and port publishing, embedded DNS.
