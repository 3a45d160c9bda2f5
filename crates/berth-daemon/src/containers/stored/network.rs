//! The stored `NetworkingConfig`: the endpoint settings asked for per network (create and
//! `network connect`), echoed back by inspect.

use std::collections::HashMap;

use berth_api_types::models as api;

stored_struct! {
    /// Endpoint settings by network name.
    pub struct NetworkingConfig <=> api::NetworkingConfig {
        "EndpointsConfig" endpoints_config: HashMap<String, EndpointSettings>,
    }
}

stored_struct! {
    /// One network's endpoint settings as the client gave them.
    pub struct EndpointSettings <=> api::EndpointSettings {
        "IPAMConfig" ipam_config: EndpointIpamConfig,
        "Links" links: Vec<String>,
        "MacAddress" mac_address: String,
        "Aliases" aliases: Vec<String>,
        "DriverOpts" driver_opts: HashMap<String, String>,
        "GwPriority" gw_priority: i64,
        "NetworkID" network_id: String,
        "EndpointID" endpoint_id: String,
        "Gateway" gateway: String,
        "IPAddress" ip_address: String,
        "IPPrefixLen" ip_prefix_len: i64,
        "IPv6Gateway" ipv6_gateway: String,
        "GlobalIPv6Address" global_ipv6_address: String,
        "GlobalIPv6PrefixLen" global_ipv6_prefix_len: i64,
        "DNSNames" dns_names: Vec<String>,
    }
}

stored_struct! {
    /// Addresses asked for on one network (`--ip`, `--ip6`, `--link-local-ip`).
    pub struct EndpointIpamConfig <=> api::EndpointIpamConfig {
        "IPv4Address" ipv4_address: String,
        "IPv6Address" ipv6_address: String,
        "LinkLocalIPs" link_local_ips: Vec<String>,
    }
}
