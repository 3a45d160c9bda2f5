//! Root tests against the real kernel: each runs inside its own network namespace acting as the
//! host (see common/mod.rs), with berth's bridges, veths, netns, nft table and DNS server.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use berth_network::{
    dns, nft, ActiveEndpoint, EndpointConfig, ErrorKind, NetworkConfig, NetworkManager,
    PortMapping, Proto,
};
use common::*;

fn ep(id: &str, name: &str) -> EndpointConfig {
    EndpointConfig {
        container_id: id.into(),
        name: name.into(),
        ..Default::default()
    }
}

fn tcp(host: &str, port: u16, cport: u16) -> PortMapping {
    PortMapping {
        host_ip: ip(host),
        host_port: port,
        container_port: cport,
        proto: Proto::Tcp,
    }
}

fn user_net(name: &str, subnet: &str) -> NetworkConfig {
    NetworkConfig {
        name: name.into(),
        subnet: Some(subnet.into()),
        ..Default::default()
    }
}

/// Rules in berth's `ports` chain (one per published port), read back from `nft -j`.
async fn dnat_rule_count(m: &NetworkManager, table: &str) -> usize {
    let _ = m;
    let objs = nft::list_table(table).await.unwrap().expect("table exists");
    objs.iter()
        .filter(|o| matches!(o, nftables::schema::NfListObject::Rule(r) if r.chain == "ports"))
        .count()
}

#[test]
fn ping_between_containers_then_full_cleanup() {
    isolated("ping_between_containers_then_full_cleanup", || async {
        let env = Env::new();
        let m = env.open().await;
        let net = m
            .create_network(user_net("pingnet", "10.91.0.0/24"))
            .await
            .unwrap();
        let a = m.create_netns("ca").await.unwrap();
        let b = m.create_netns("cb").await.unwrap();
        let ea = m.connect(&a, "pingnet", ep("ca", "alpha")).await.unwrap();
        let eb = m.connect(&b, "pingnet", ep("cb", "beta")).await.unwrap();
        assert_eq!(ea.ip.to_string(), "10.91.0.2");
        assert_eq!(eb.ip.to_string(), "10.91.0.3");
        assert_eq!(ea.ifname, "eth0");
        assert_eq!(ea.mac, "02:42:0a:5b:00:02");
        // the container sees eth0 with its address and a default route via the gateway
        let addr = sh(&format!(
            "nsenter --net={} ip -o addr show eth0",
            a.display()
        ));
        assert!(addr.contains("10.91.0.2/24"), "{addr}");
        let route = sh(&format!("nsenter --net={} ip route", a.display()));
        assert!(route.contains("default via 10.91.0.1 dev eth0"), "{route}");
        for (ns, peer) in [(&a, eb.ip), (&b, ea.ip)] {
            let (ok, out) = try_sh(&format!(
                "nsenter --net={} busybox ping -c1 -W5 {peer}",
                ns.display()
            ));
            assert!(ok, "ping {peer}: {out}");
        }
        // the gateway (host side) is reachable too
        sh(&format!(
            "nsenter --net={} busybox ping -c1 -W5 10.91.0.1",
            a.display()
        ));
        let info = m.inspect("pingnet").await.unwrap();
        assert_eq!(info.endpoints.len(), 2);
        let e = m.remove_network("pingnet").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");

        m.disconnect("ca", "pingnet").await.unwrap();
        m.disconnect("cb", &net.id).await.unwrap();
        assert!(!links().contains(&ea.veth_host));
        m.remove_network("pingnet").await.unwrap();
        m.remove_netns("ca").await.unwrap();
        m.remove_netns("cb").await.unwrap();
        m.teardown().await.unwrap();
        assert_eq!(links(), vec!["lo".to_string()], "only loopback must remain");
        assert!(!nft::table_exists(&env.table).await.unwrap());
        assert!(!a.exists() && !b.exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(env.dir.path().to_str().unwrap()));
    });
}

#[test]
fn published_ports_reach_container_via_loopback() {
    isolated("published_ports_reach_container_via_loopback", || async {
        let env = Env::new();
        let m = env.open().await;
        let ns = m.create_netns("web").await.unwrap();
        let e = m.connect(&ns, "bridge", ep("web", "web")).await.unwrap();
        assert!(e.ip.to_string().starts_with("172.30."), "{}", e.ip);
        let server = serve_tcp(&ns, 80, "hello from web", 2);
        let got = m
            .publish(
                e.ip,
                vec![tcp("127.0.0.1", 0, 80), tcp("0.0.0.0", 18080, 80)],
            )
            .await
            .unwrap();
        let tcp_maps = got.clone();
        let picked = got[0].host_port;
        assert_ne!(picked, 0, "host port 0 must be replaced by the picked port");
        assert_eq!(got[1].host_port, 18080);
        let loopback = |p| SocketAddr::from(([127, 0, 0, 1], p));
        assert_eq!(tcp_get(loopback(picked)).unwrap(), "hello from web");
        assert_eq!(tcp_get(loopback(18080)).unwrap(), "hello from web");
        server.join().unwrap();

        // udp
        let udp = serve_udp(&ns, 5300, 1);
        let got = m
            .publish(
                e.ip,
                vec![PortMapping {
                    host_ip: ip("127.0.0.1"),
                    host_port: 15300,
                    container_port: 5300,
                    proto: Proto::Udp,
                }],
            )
            .await
            .unwrap();
        assert_eq!(got[0].host_port, 15300);
        assert_eq!(udp_ask(loopback(15300), b"ping").unwrap(), b"echo:ping");
        udp.join().unwrap();

        // One mapping taken off alone (a live `update --publish-rm`): the others stay.
        let rules = dnat_rule_count(&m, &env.table).await;
        m.unpublish_mappings(e.ip, &tcp_maps[1..]).await.unwrap();
        assert_eq!(m.published("web").await.len(), 2);
        let left = dnat_rule_count(&m, &env.table).await;
        assert!(left < rules && left > 0, "{rules} -> {left}");
        drop(std::net::TcpListener::bind("0.0.0.0:18080").expect("18080 must be free again"));
        assert!(std::net::TcpListener::bind(("127.0.0.1", picked)).is_err());
        m.unpublish(e.ip).await.unwrap();
        assert_eq!(dnat_rule_count(&m, &env.table).await, 0);
        // after unpublish the host port is free again
        std::net::TcpListener::bind("0.0.0.0:18080").unwrap();
        m.disconnect("web", "bridge").await.unwrap();
        m.remove_netns("web").await.unwrap();
    });
}

/// IPv6 loopback cannot be translated out of `lo` (IPv6 has no route_localnet): `[::1]` ports
/// are relayed by the port proxy, TCP and UDP, to the container's IPv4 address (it has no
/// IPv6 one) without an nft rule; unpublishing frees the ports at once.
#[test]
fn ipv6_loopback_ports_are_relayed_by_the_proxy() {
    isolated("ipv6_loopback_ports_are_relayed_by_the_proxy", || async {
        let env = Env::new();
        let m = env.open().await;
        let ns = m.create_netns("px").await.unwrap();
        let e = m.connect(&ns, "bridge", ep("px", "px")).await.unwrap();
        assert!(e.ipv6.is_none());
        let web = serve_tcp(&ns, 80, "hello over v6", 1);
        let udp = serve_udp(&ns, 5300, 2);
        let v6lo = |port, proto| PortMapping {
            host_ip: ip("::1"),
            host_port: port,
            container_port: if proto == Proto::Tcp { 80 } else { 5300 },
            proto,
        };
        let got = m
            .publish(e.ip, vec![v6lo(0, Proto::Tcp), v6lo(0, Proto::Udp)])
            .await
            .unwrap();
        let at = |i: usize| SocketAddr::new(ip("::1"), got[i].host_port);
        assert_eq!(
            dnat_rule_count(&m, &env.table).await,
            0,
            "proxied, not translated"
        );
        assert_eq!(tcp_get(at(0)).unwrap(), "hello over v6");
        web.join().unwrap();
        // Two clients (two flows), both answered.
        assert_eq!(udp_ask(at(1), b"one").unwrap(), b"echo:one");
        assert_eq!(udp_ask(at(1), b"two").unwrap(), b"echo:two");
        udp.join().unwrap();
        // The port is held: the same one again is a conflict.
        let err = m
            .publish(e.ip, vec![v6lo(got[0].host_port, Proto::Tcp)])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        m.unpublish(e.ip).await.unwrap();
        std::net::TcpListener::bind(at(0)).expect("TCP port held after unpublish");
        UdpSocket::bind(at(1)).expect("UDP port held after unpublish");
        m.disconnect("px", "bridge").await.unwrap();
        m.remove_netns("px").await.unwrap();
    });
}

#[test]
fn port_conflict_is_rejected_and_leaves_no_rules() {
    isolated("port_conflict_is_rejected_and_leaves_no_rules", || async {
        let env = Env::new();
        let m = env.open().await;
        let a = m.create_netns("pa").await.unwrap();
        let b = m.create_netns("pb").await.unwrap();
        let ea = m.connect(&a, "bridge", ep("pa", "pa")).await.unwrap();
        let eb = m.connect(&b, "bridge", ep("pb", "pb")).await.unwrap();
        m.publish(ea.ip, vec![tcp("0.0.0.0", 18081, 80)])
            .await
            .unwrap();
        assert_eq!(dnat_rule_count(&m, &env.table).await, 1);
        let before = nft::list_table(&env.table).await.unwrap();

        // second mapping clashes with pa's: nothing of the batch may stay, not even 18082
        let err = m
            .publish(
                eb.ip,
                vec![tcp("0.0.0.0", 18082, 80), tcp("127.0.0.1", 18081, 80)],
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(err.to_string().contains("18081"), "{err}");
        assert_eq!(nft::list_table(&env.table).await.unwrap(), before);
        std::net::TcpListener::bind("0.0.0.0:18082").expect("18082 must not stay reserved");

        // a port held by another process of the host
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held = other.local_addr().unwrap().port();
        let err = m
            .publish(eb.ip, vec![tcp("127.0.0.1", held, 80)])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert_eq!(dnat_rule_count(&m, &env.table).await, 1);
        assert!(m.published("pb").await.is_empty());
        for id in ["pa", "pb"] {
            m.disconnect(id, "bridge").await.unwrap();
            m.remove_netns(id).await.unwrap();
        }
        assert_eq!(
            dnat_rule_count(&m, &env.table).await,
            0,
            "disconnect drops the container's ports"
        );
    });
}

#[test]
fn ipam_never_hands_out_an_address_twice_across_reopen() {
    isolated(
        "ipam_never_hands_out_an_address_twice_across_reopen",
        || async {
            let env = Env::new();
            // a host route on 172.30/16 pushes the default bridge to the next candidate
            sh("ip link add vx0 type veth peer name vx1 && ip addr add 172.30.0.1/16 dev vx0 && ip link set vx0 up");
            let m = env.open().await;
            let br = m.inspect("bridge").await.unwrap().network;
            assert_eq!(br.ipam.unwrap().subnet.to_string(), "172.31.0.0/16");
            let names: Vec<String> = m.list().await.into_iter().map(|n| n.name).collect();
            assert_eq!(names, ["bridge", "host", "none"]);
            m.create_network(user_net("keep", "10.92.0.0/29"))
                .await
                .unwrap();
            let n1 = m.create_netns("i1").await.unwrap();
            let e1 = m.connect(&n1, "keep", ep("i1", "i1")).await.unwrap();
            drop(m);

            let m = env.open().await;
            let n2 = m.create_netns("i2").await.unwrap();
            let e2 = m.connect(&n2, "keep", ep("i2", "i2")).await.unwrap();
            assert_ne!(e1.ip, e2.ip);
            assert_eq!(e2.ip.to_string(), "10.92.0.3");
            // a static address that is taken is a conflict
            let n3 = m.create_netns("i3").await.unwrap();
            let mut c = ep("i3", "i3");
            c.ip = Some(e1.ip);
            assert_eq!(
                m.connect(&n3, "keep", c).await.unwrap_err().kind(),
                ErrorKind::Conflict
            );
            // released addresses are not reused at once (rolling allocation)
            m.disconnect("i1", "keep").await.unwrap();
            let e3 = m.connect(&n3, "keep", ep("i3", "i3")).await.unwrap();
            assert_eq!(e3.ip.to_string(), "10.92.0.4");
            for id in ["i2", "i3"] {
                m.disconnect(id, "keep").await.unwrap();
            }
            for id in ["i1", "i2", "i3"] {
                m.remove_netns(id).await.unwrap();
            }
            assert_eq!(m.prune().await.unwrap(), ["keep"]);
        },
    );
}

#[test]
fn a_fresh_root_adopts_the_default_bridge_an_earlier_daemon_left() {
    isolated(
        "a_fresh_root_adopts_the_default_bridge_an_earlier_daemon_left",
        || async {
            let env = Env::new();
            let m = env.open().await;
            let first = m.inspect("bridge").await.unwrap().network.ipam.unwrap();
            drop(m);
            // A new state dir (a fresh --root) with the bridge still up: its own route must not
            // count as taken, or every candidate looks used once a few daemons have run.
            std::fs::remove_dir_all(env.state_dir()).unwrap();
            let m = env.open().await;
            let again = m.inspect("bridge").await.unwrap().network.ipam.unwrap();
            assert_eq!(again.subnet, first.subnet);
            // With every candidate routed through another interface the error says what to do.
            std::fs::remove_dir_all(env.state_dir()).unwrap();
            drop(m);
            sh("ip link add vy0 type veth peer name vy1 && ip link set vy0 up");
            let mut o = env.opts();
            o.default_bridge = Some(format!("{}x", env.bridge));
            o.default_bridge_candidates = vec![first.subnet];
            let prefix = first.subnet.prefix_len();
            sh(&format!("ip addr add {}/{prefix} dev vy0", first.gateway));
            let err = NetworkManager::open(&env.state_dir(), o)
                .await
                .err()
                .expect("no candidate is free");
            assert!(err.to_string().contains("--bip"), "{err}");
        },
    );
}

#[test]
fn invalid_and_overlapping_networks_are_rejected() {
    isolated("invalid_and_overlapping_networks_are_rejected", || async {
        let env = Env::new();
        sh("ip link add vy0 type veth peer name vy1 && ip addr add 10.66.1.1/24 dev vy0 && ip link set vy0 up");
        let m = env.open().await;
        m.create_network(user_net("one", "10.77.0.0/16"))
            .await
            .unwrap();
        let cases = [
            (user_net("two", "10.77.5.0/24"), ErrorKind::Conflict),
            (user_net("three", "10.66.0.0/16"), ErrorKind::Conflict),
            (user_net("one", "10.78.0.0/16"), ErrorKind::Conflict),
            (user_net("four", "10.79.0.1/16"), ErrorKind::Invalid),
            (user_net("five", "300.1.0.0/16"), ErrorKind::Invalid),
            (user_net("bad/name", "10.80.0.0/16"), ErrorKind::Invalid),
        ];
        for (cfg, kind) in cases {
            let name = cfg.name.clone();
            let e = m.create_network(cfg).await.unwrap_err();
            assert_eq!(e.kind(), kind, "{name}: {e}");
        }
        let mut gw = user_net("six", "10.81.0.0/24");
        gw.gateway = Some("10.82.0.1".into());
        assert_eq!(
            m.create_network(gw).await.unwrap_err().kind(),
            ErrorKind::Invalid
        );
        assert_eq!(
            m.remove_network("host").await.unwrap_err().kind(),
            ErrorKind::Invalid
        );
        assert_eq!(
            m.remove_network("nope").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        // no subnet given: picked from the pool
        let auto = m
            .create_network(NetworkConfig {
                name: "auto".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(auto.ipam.unwrap().subnet.to_string(), "172.18.0.0/16");
        assert_eq!(m.list().await.len(), 5);
    });
}

/// Send one DNS query from inside `ns` and parse the answer.
fn query_in(
    ns: &std::path::Path,
    server: std::net::IpAddr,
    name: &'static str,
    qtype: u16,
) -> (u8, Vec<std::net::IpAddr>) {
    in_ns(ns, move || {
        let s = UdpSocket::bind(if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.send_to(&dns::build_query(42, name, qtype), (server, 53))
            .unwrap();
        let mut buf = [0u8; 1500];
        let n = s
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no answer for {name} type {qtype} from {server}: {e}"));
        dns::parse_response(&buf[..n]).unwrap()
    })
}

/// The same question over TCP (length-prefixed, RFC 1035 4.2.2), as `dig +tcp` asks it.
fn query_tcp_in(
    ns: &std::path::Path,
    server: std::net::IpAddr,
    name: &'static str,
    qtype: u16,
) -> (u8, Vec<std::net::IpAddr>) {
    in_ns(ns, move || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect_timeout(
            &SocketAddr::new(server, 53),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("no tcp dns at {server}: {e}"));
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let q = dns::build_query(43, name, qtype);
        let mut msg = (q.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(&q);
        c.write_all(&msg).unwrap();
        let mut len = [0u8; 2];
        c.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut buf).unwrap();
        dns::parse_response(&buf).unwrap()
    })
}

/// A fake upstream resolver on loopback: `example.test` → 203.0.113.7, anything else NXDOMAIN.
fn fake_upstream(queries: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut rec = dns::Records::new();
        rec.insert("example.test".into(), vec![ip("203.0.113.7")]);
        for _ in 0..queries {
            let mut buf = [0u8; 1500];
            let (n, peer) = s.recv_from(&mut buf).unwrap();
            let q = &buf[..n];
            eprintln!(
                "upstream got {:?}",
                dns::parse_query(q).map(|q| (q.name, q.qtype))
            );
            let resp = dns::answer(q, &rec).unwrap_or_else(|| {
                let mut r = dns::servfail(q).unwrap();
                r[3] = (r[3] & 0xf0) | 3; // NXDOMAIN
                r
            });
            s.send_to(&resp, peer).unwrap();
        }
    });
    (addr, h)
}

#[test]
fn embedded_dns_resolves_names_and_forwards_the_rest() {
    isolated(
        "embedded_dns_resolves_names_and_forwards_the_rest",
        || async {
            let env = Env::new();
            let (up, upstream) = fake_upstream(2);
            let mut opts = env.opts();
            opts.dns_upstreams = Some(vec![up]);
            let m = NetworkManager::open(&env.state_dir(), opts).await.unwrap();
            m.create_network(user_net("dnsnet", "10.93.0.0/24"))
                .await
                .unwrap();
            let web = m.create_netns("0123456789abcdef").await.unwrap();
            let cli = m.create_netns("cli").await.unwrap();
            let mut c = ep("0123456789abcdef", "web");
            c.aliases = vec!["www".into()];
            let ew = m.connect(&web, "dnsnet", c).await.unwrap();
            m.connect(&cli, "dnsnet", ep("cli", "client"))
                .await
                .unwrap();
            let gw = ip("10.93.0.1");

            // a real resolver client (busybox nslookup) inside the container netns
            let out = sh(&format!(
                "nsenter --net={} busybox nslookup www 10.93.0.1",
                cli.display()
            ));
            assert!(out.contains("10.93.0.2"), "{out}");
            assert_eq!(query_in(&cli, gw, "WEB", dns::TYPE_A), (0, vec![ew.ip]));
            // Over TCP too (before: nothing listened), qualified by the network as well.
            assert_eq!(query_tcp_in(&cli, gw, "web", dns::TYPE_A), (0, vec![ew.ip]));
            assert_eq!(
                query_tcp_in(&cli, gw, "www.dnsnet", dns::TYPE_A),
                (0, vec![ew.ip])
            );
            // And the real `dig +tcp` (bind9-dnsutils, in scripts/deps.sh) gets the answer.
            if berth_testutil::require_cmds(
                "embedded_dns_resolves_names_and_forwards_the_rest",
                &["dig"],
            ) {
                let out = sh(&format!(
                    "nsenter --net={} dig +tcp +short +tries=1 +time=5 @10.93.0.1 www.dnsnet A",
                    cli.display()
                ));
                assert_eq!(out.trim(), ew.ip.to_string(), "dig +tcp: {out}");
            }
            assert_eq!(
                query_in(&cli, gw, "0123456789ab", dns::TYPE_A),
                (0, vec![ew.ip])
            );
            assert_eq!(query_in(&cli, gw, "web", dns::TYPE_AAAA), (0, vec![]));
            // other names go to the host's resolvers
            assert_eq!(
                query_in(&cli, gw, "example.test", dns::TYPE_A),
                (0, vec![ip("203.0.113.7")])
            );

            let rc = m.resolv_conf("dnsnet", &Default::default()).await.unwrap();
            assert!(rc.contains("nameserver 10.93.0.1\n"), "{rc}");
            let rc = m.resolv_conf("bridge", &Default::default()).await.unwrap();
            assert!(!rc.contains("10.93.0.1"), "{rc}");

            // after disconnect the name is gone (forwarded, and upstream says NXDOMAIN)
            m.disconnect("0123456789abcdef", "dnsnet").await.unwrap();
            assert_eq!(query_in(&cli, gw, "web", dns::TYPE_A), (3, vec![]));
            upstream.join().unwrap();
            m.disconnect("cli", "dnsnet").await.unwrap();
            for id in ["0123456789abcdef", "cli"] {
                m.remove_netns(id).await.unwrap();
            }
        },
    );
}

#[test]
fn host_firewall_is_not_bypassed_and_berth_user_survives_rebuild() {
    isolated(
        "host_firewall_is_not_bypassed_and_berth_user_survives_rebuild",
        || async {
            let env = Env::new();
            let m = env.open().await;
            let t = &env.table;
            // a remote client: its own netns, linked to "the host" by a veth, 192.0.2.0/24
            let client = m.create_netns("client").await.unwrap();
            sh(&format!(
            "ip link add vch type veth peer name vcc && ip link set vcc netns {c} && \
             ip addr add 192.0.2.1/24 dev vch && ip link set vch up && \
             nsenter --net={c} sh -c 'ip addr add 192.0.2.2/24 dev vcc && ip link set vcc up && ip route add default via 192.0.2.1'",
            c = client.display()
        ));
            let ns = m.create_netns("fw").await.unwrap();
            let e = m.connect(&ns, "bridge", ep("fw", "fw")).await.unwrap();
            let server = serve_tcp(&ns, 80, "hi", 3);
            m.publish(e.ip, vec![tcp("0.0.0.0", 18090, 80)])
                .await
                .unwrap();
            let host = SocketAddr::from(([192, 0, 2, 1], 18090));
            let from_client = |cl: std::path::PathBuf| in_ns(&cl, move || tcp_get(host));

            assert_eq!(
                from_client(client.clone()).unwrap(),
                "hi",
                "published port works from outside"
            );

            // 1. a host filter rule in the host's own table (forward hook) stays in force
            sh(&format!(
            "nft add table inet hostfw{t} && nft 'add chain inet hostfw{t} hostforward {{ type filter hook forward priority 0; policy accept; }}' && \
             nft add rule inet hostfw{t} hostforward ip daddr {} tcp dport 80 reject with tcp reset",
            e.ip
        ));
            let r = from_client(client.clone());
            assert!(r.is_err(), "host forward rule was bypassed: {r:?}");
            sh(&format!("nft delete table inet hostfw{t}"));

            // 2. a host *input* rule on the host port does not see forwarded (DNATed) traffic —
            //    documented, and reported instead of silently bypassed
            sh(&format!(
            "nft add table inet hostin{t} && nft 'add chain inet hostin{t} hostinput {{ type filter hook input priority 0; policy accept; }}' && \
             nft add rule inet hostin{t} hostinput tcp dport 18090 drop"
        ));
            let w = m.firewall_warnings(&[tcp("0.0.0.0", 18090, 80)]).await;
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].contains("tcp/18090") && w[0].contains("berth-user"),
                "{w:?}"
            );
            assert!(m
                .firewall_warnings(&[tcp("0.0.0.0", 18091, 80)])
                .await
                .is_empty());
            sh(&format!("nft delete table inet hostin{t}"));

            // 3. berth-user filters forwarded traffic by the host port the client used
            sh(&format!(
                "nft add rule inet {t} berth-user meta l4proto tcp ct original proto-dst 18090 reject with tcp reset"
            ));
            assert!(
                from_client(client.clone()).is_err(),
                "berth-user rule was bypassed"
            );
            // rebuild keeps berth-user and the live container's port
            m.rebuild_rules(&[ActiveEndpoint {
                container_id: "fw".into(),
            }])
            .await
            .unwrap();
            let listing = sh(&format!("nft list chain inet {t} berth-user"));
            assert!(
                listing.contains("ct original proto-dst 18090 reject"),
                "{listing}"
            );
            assert!(from_client(client.clone()).is_err());
            sh(&format!("nft flush chain inet {t} berth-user"));
            assert_eq!(from_client(client.clone()).unwrap(), "hi");

            // 3b. Docker's documented DOCKER-USER rule (only one source may reach containers)
            //     in berth-user closes the published port but not a service of the host
            //     itself (before: berth-user saw all incoming traffic, the host's too).
            let host_svc = std::net::TcpListener::bind("192.0.2.1:18095").unwrap();
            let host_thread = std::thread::spawn(move || {
                use std::io::Write;
                let (mut c, _) = host_svc.accept().unwrap();
                c.write_all(b"host").unwrap();
            });
            sh(&format!(
                "nft add rule inet {t} berth-user iifname \"vch\" ip saddr != 192.0.2.99 drop"
            ));
            assert!(
                from_client(client.clone()).is_err(),
                "DOCKER-USER style drop bypassed"
            );
            let svc = SocketAddr::from(([192, 0, 2, 1], 18095));
            assert_eq!(in_ns(&client, move || tcp_get(svc)).unwrap(), "host");
            host_thread.join().unwrap();
            sh(&format!("nft flush chain inet {t} berth-user"));

            // 3c. a host forward-drop policy closes published ports; the documented allow rule
            //     in the host's own table opens them (an accept in berth-user could not)
            sh(&format!(
                "nft add table inet hostdrop{t} && nft 'add chain inet hostdrop{t} hostforward {{ type filter hook forward priority 0; policy drop; }}'"
            ));
            assert!(
                from_client(client.clone()).is_err(),
                "forward drop policy bypassed"
            );
            sh(&format!(
                "nft add rule inet hostdrop{t} hostforward ct state established,related accept && \
                 nft add rule inet hostdrop{t} hostforward oifname \"{}\" ct status dnat accept",
                env.bridge
            ));
            assert_eq!(from_client(client.clone()).unwrap(), "hi");
            sh(&format!("nft delete table inet hostdrop{t}"));
            server.join().unwrap();

            // 4. a dead container's rules and endpoint disappear on rebuild
            m.rebuild_rules(&[]).await.unwrap();
            assert!(m.published("fw").await.is_empty());
            assert!(m.endpoints("fw").await.is_empty());
            assert!(!links().contains(&e.veth_host));
            let ports = sh(&format!("nft list chain inet {t} ports"));
            assert!(!ports.contains("dnat"), "{ports}");
            for id in ["fw", "client"] {
                m.remove_netns(id).await.unwrap();
            }
        },
    );
}

#[test]
fn internal_network_has_no_way_out_and_ipv6_works() {
    isolated("internal_network_has_no_way_out_and_ipv6_works", || async {
        let env = Env::new();
        let m = env.open().await;
        let mut cfg = user_net("v6net", "10.94.0.0/24");
        cfg.ipv6_subnet = Some("fd00:94::/64".into());
        m.create_network(cfg).await.unwrap();
        let mut icfg = user_net("inner", "10.95.0.0/24");
        icfg.internal = true;
        m.create_network(icfg).await.unwrap();
        let a = m.create_netns("v6a").await.unwrap();
        let b = m.create_netns("v6b").await.unwrap();
        let ea = m.connect(&a, "v6net", ep("v6a", "a")).await.unwrap();
        let eb = m.connect(&b, "v6net", ep("v6b", "b")).await.unwrap();
        assert_eq!(ea.ipv6.unwrap().to_string(), "fd00:94::2");
        let v6b = eb.ipv6.unwrap();
        let (ok, out) = try_sh(&format!(
            "nsenter --net={} busybox ping -6 -c1 -W5 {v6b}",
            a.display()
        ));
        assert!(ok, "ping6: {out}");
        assert_eq!(
            query_in(&a, ip("fd00:94::1"), "b", dns::TYPE_AAAA),
            (0, vec![v6b])
        );
        // second network on the same container: eth1, and internal means no default route
        let ei = m.connect(&a, "inner", ep("v6a", "a")).await.unwrap();
        assert_eq!(ei.ifname, "eth1");
        let i = m.create_netns("in1").await.unwrap();
        m.connect(&i, "inner", ep("in1", "i")).await.unwrap();
        let routes = sh(&format!("nsenter --net={} ip route", i.display()));
        assert!(!routes.contains("default"), "{routes}");
        let rules = m.planned_rules().await;
        assert!(
            !rules.contains("saddr 10.95.0.0/24 oifname !="),
            "internal network must not be NATed"
        );
        assert!(rules.contains("ip6 saddr fd00:94::/64"), "{rules}");
        // the internal network cannot reach other berth networks
        let (ok, _) = try_sh(&format!(
            "nsenter --net={} busybox ping -c1 -W1 {}",
            i.display(),
            eb.ip
        ));
        assert!(!ok, "internal network reached another network");
        for (id, net) in [
            ("v6a", "v6net"),
            ("v6b", "v6net"),
            ("v6a", "inner"),
            ("in1", "inner"),
        ] {
            m.disconnect(id, net).await.unwrap();
        }
        for id in ["v6a", "v6b", "in1"] {
            m.remove_netns(id).await.unwrap();
        }
    });
}

/// An apply hook that holds the first apply step named `held` until released: it reports that
/// the step began on the returned receiver and waits for the returned sender.
fn hold_first(
    held: &'static str,
) -> (
    berth_network::ApplyHook,
    tokio::sync::mpsc::UnboundedReceiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (entered_tx, entered_rx) = tokio::sync::mpsc::unbounded_channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let gate = std::sync::Arc::new(std::sync::Mutex::new(Some((entered_tx, release_rx))));
    let hook = berth_network::ApplyHook(std::sync::Arc::new(move |step| {
        let held = if step == held {
            gate.lock().unwrap().take()
        } else {
            None
        };
        Box::pin(async move {
            if let Some((entered, release)) = held {
                entered.send(()).unwrap();
                let _ = release.await;
            }
        })
    }));
    (hook, entered_rx, release_tx)
}

#[test]
fn a_connect_in_progress_does_not_hold_the_manager() {
    isolated(
        "a_connect_in_progress_does_not_hold_the_manager",
        || async {
            use futures::FutureExt;
            let env = Env::new();
            // held once ba's veth exists on the bridge, before it is configured
            let (hook, mut entered, release) = hold_first("veth");
            let mut opts = env.opts();
            opts.apply_hook = Some(hook);
            let m =
                std::sync::Arc::new(NetworkManager::open(&env.state_dir(), opts).await.unwrap());
            m.create_network(user_net("busynet", "10.93.0.0/24"))
                .await
                .unwrap();
            let a = m.create_netns("ba").await.unwrap();
            let b = m.create_netns("bb").await.unwrap();
            let before = links();
            let slow = tokio::spawn({
                let (m, a) = (m.clone(), a.clone());
                async move { m.connect(&a, "busynet", ep("ba", "alpha")).await }
            });
            entered
                .recv()
                .await
                .expect("the first connect reaches its apply step");

            // While ba's veth is being set up the manager answers at once (no lock held)...
            let nets = m
                .list()
                .now_or_never()
                .expect("list waited for a connect in progress");
            assert!(nets.iter().any(|n| n.name == "busynet"));
            let info = m
                .inspect("busynet")
                .now_or_never()
                .expect("inspect waited for a connect in progress")
                .unwrap();
            assert!(info.endpoints.is_empty(), "a pending endpoint is not shown");
            // The pending veth is on the bridge and the manager owns up to it (so a stray-veth
            // sweep running now leaves it alone).
            let new: Vec<String> = links()
                .into_iter()
                .filter(|l| !before.contains(l))
                .collect();
            assert_eq!(new.len(), 1, "{new:?}");
            assert!(m.veths().await.contains(&new[0]), "{new:?}");
            // ...refuses to connect or disconnect the same container twice meanwhile...
            let e = m
                .connect(&a, "busynet", ep("ba", "alpha"))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            let e = m.disconnect("ba", "busynet").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            let e = m.remove_network("busynet").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            // ...and allocates the next address to another container, which completes first.
            let eb = m.connect(&b, "busynet", ep("bb", "beta")).await.unwrap();
            assert_eq!(eb.ip.to_string(), "10.93.0.3");

            release.send(()).unwrap();
            let ea = slow.await.unwrap().unwrap();
            assert_eq!(ea.ip.to_string(), "10.93.0.2");
            assert_eq!(m.inspect("busynet").await.unwrap().endpoints.len(), 2);

            // A failed apply gives its address back: no veth, no endpoint, and the next connect
            // gets the address the failed one had (.4: the cursor rolls on from .3).
            let gone = env.dir.path().join("run/netns/missing");
            m.disconnect("ba", "busynet").await.unwrap();
            let before = links();
            m.connect(&gone, "busynet", ep("bc", "gamma"))
                .await
                .unwrap_err();
            assert_eq!(links(), before, "a failed connect leaves no veth");
            let ea = m.connect(&a, "busynet", ep("ba", "alpha")).await.unwrap();
            assert_eq!(ea.ip.to_string(), "10.93.0.4");
            let eps = m.inspect("busynet").await.unwrap().endpoints;
            assert_eq!(eps.len(), 2, "{eps:?}");

            for id in ["ba", "bb"] {
                m.disconnect(id, "busynet").await.unwrap();
                m.remove_netns(id).await.unwrap();
            }
            m.remove_network("busynet").await.unwrap();
            m.teardown().await.unwrap();
            assert_eq!(links(), vec!["lo".to_string()], "only loopback must remain");
        },
    );
}

#[test]
fn a_disconnect_in_progress_keeps_its_address_until_the_veth_is_gone() {
    isolated(
        "a_disconnect_in_progress_keeps_its_address_until_the_veth_is_gone",
        || async {
            let env = Env::new();
            // held after the endpoint left the state, before its veth is deleted
            let (hook, mut entered, release) = hold_first("disconnect");
            let mut opts = env.opts();
            opts.apply_hook = Some(hook);
            let m =
                std::sync::Arc::new(NetworkManager::open(&env.state_dir(), opts).await.unwrap());
            m.create_network(user_net("relnet", "10.94.0.0/24"))
                .await
                .unwrap();
            let a = m.create_netns("ra").await.unwrap();
            let b = m.create_netns("rb").await.unwrap();
            let ea = m.connect(&a, "relnet", ep("ra", "alpha")).await.unwrap();
            assert_eq!(ea.ip.to_string(), "10.94.0.2");
            let slow = tokio::spawn({
                let m = m.clone();
                async move { m.disconnect("ra", "relnet").await }
            });
            entered
                .recv()
                .await
                .expect("the disconnect reaches its veth deletion");

            assert!(m.inspect("relnet").await.unwrap().endpoints.is_empty());
            assert!(links().contains(&ea.veth_host), "veth not deleted yet");
            assert!(m.veths().await.contains(&ea.veth_host), "still owned");
            // Its address stays taken while its veth exists...
            let want = EndpointConfig {
                ip: Some(ea.ip),
                ..ep("rb", "beta")
            };
            let e = m.connect(&b, "relnet", want.clone()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            // ...and the releasing container cannot come back until it is done.
            let e = m
                .connect(&a, "relnet", ep("ra", "alpha"))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");

            release.send(()).unwrap();
            slow.await.unwrap().unwrap();
            assert!(!links().contains(&ea.veth_host));
            assert!(!m.veths().await.contains(&ea.veth_host));
            let eb = m.connect(&b, "relnet", want).await.unwrap();
            assert_eq!(eb.ip, ea.ip, "the address is free once the veth is gone");

            m.disconnect("rb", "relnet").await.unwrap();
            for id in ["ra", "rb"] {
                m.remove_netns(id).await.unwrap();
            }
            m.remove_network("relnet").await.unwrap();
            m.teardown().await.unwrap();
            assert_eq!(links(), vec!["lo".to_string()], "only loopback must remain");
        },
    );
}

#[test]
fn a_port_published_on_a_gateway_address_is_reserved_again_on_reopen() {
    isolated(
        "a_port_published_on_a_gateway_address_is_reserved_again_on_reopen",
        || async {
            let env = Env::new();
            let m = env.open().await;
            m.create_network(user_net("gwpub", "10.95.0.0/24"))
                .await
                .unwrap();
            let ns = m.create_netns("gp").await.unwrap();
            let e = m.connect(&ns, "gwpub", ep("gp", "gp")).await.unwrap();
            let got = m
                .publish(e.ip, vec![tcp("10.95.0.1", 0, 80)])
                .await
                .unwrap();
            let port = got[0].host_port;
            assert!(std::net::TcpListener::bind(("10.95.0.1", port)).is_err());
            // Bridges gone (as after a reboot), state kept: reopening makes them again and
            // must hold the port again, which binds only once the bridge has its address.
            m.teardown().await.unwrap();
            drop(m);
            let m = env.open().await;
            assert!(
                std::net::TcpListener::bind(("10.95.0.1", port)).is_err(),
                "port {port} on the gateway was not reserved again"
            );
            m.unpublish(e.ip).await.unwrap();
            m.disconnect("gp", "gwpub").await.unwrap();
            m.remove_netns("gp").await.unwrap();
            m.remove_network("gwpub").await.unwrap();
            m.teardown().await.unwrap();
            assert_eq!(links(), vec!["lo".to_string()], "only loopback must remain");
        },
    );
}
