//! Network fidelity (issue 14): /etc/hosts and resolv.conf as dockerd writes them (an FQDN
//! hostname also answers to its first label; `--dns` on the host network), IPv6 asked for by
//! the `com.docker.network.enable_ipv6` driver option, `--ip6` on the first network,
//! `--ipam-opt` echoed, and IPv6 without a prefix refused instead of quietly left out; IPv6
//! published ports (issue 23): `[::1]` through the port proxy, both families on an IPv6
//! network.

use crate::common;

use common::cli::Daemon;

#[test]
fn hosts_and_resolv_conf_as_dockerd_writes_them() {
    let Some(d) = Daemon::start("hosts_and_resolv_conf_as_dockerd_writes_them") else {
        return;
    };
    // Before: only `web.example.com`.
    let hosts = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "web.example.com",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    let last = hosts.lines().last().unwrap();
    assert!(last.ends_with("\tweb.example.com web"), "{hosts}");
    // Before: the host's file, --dns ignored.
    let resolv = d.ok(&[
        "run",
        "--rm",
        "--net",
        "host",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "corp.test",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    let servers: Vec<&str> = resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(servers, ["nameserver 192.0.2.53"], "{resolv}");
    assert!(resolv.contains("search corp.test"), "{resolv}");
    // Without overrides the host network keeps the host's file as it is.
    let same = d.ok(&[
        "run",
        "--rm",
        "--net",
        "host",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(
        same.trim(),
        std::fs::read_to_string("/etc/resolv.conf").unwrap().trim()
    );
}

#[test]
fn ipv6_by_driver_option_static_ip6_and_ipam_options() {
    let Some(mut d) = Daemon::start("ipv6_by_driver_option_static_ip6_and_ipam_options") else {
        return;
    };
    let v4 = d.subnet_n(1);
    let v6 = v6_subnet(&v4);
    let br = format!("bn6{}", d.tag);
    d.user_bridges.push(br.clone());
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &v4,
        "--subnet",
        &v6,
        "--ipam-opt",
        "foo=bar",
        "-o",
        "com.docker.network.enable_ipv6=true",
        "-o",
        &format!("com.docker.network.bridge.name={br}"),
        "n6",
    ]);
    // Before: refused ("IPv6 subnet given but IPv6 not enabled"), and IPAM.Options null.
    assert_eq!(d.inspect("n6", "{{.EnableIPv6}}"), "true");
    assert_eq!(
        d.inspect("n6", "{{json .IPAM.Options}}"),
        r#"{"foo":"bar"}"#
    );
    // --ip6 on the container's first network (before: ignored, the next free address).
    let ip6 = v6.replace("::/64", "::50");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "n6",
        "--ip6",
        &ip6,
        "busybox",
        "ip",
        "-6",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet6 {ip6}/64")), "{out}");
    // IPv6 asked for without a prefix, or a driver option that is not a boolean: refused
    // (before: created IPv4-only / the option ignored).
    let err = d.fails(&["network", "create", "--ipv6", "n7"]);
    assert!(err.contains("no IPv6 subnet was given"), "{err}");
    let err = d.fails(&[
        "network",
        "create",
        "-o",
        "com.docker.network.enable_ipv6=maybe",
        "n8",
    ]);
    assert!(err.contains("is not a boolean"), "{err}");
    assert!(d.fails(&["network", "inspect", "n7"]).contains("not found"));
    // An IPv6 host address the host does not have is refused at create with a 400 (before:
    // created, then a 500 "of the other family" at start), and nothing is left.
    let err = d.fails(&[
        "create",
        "--name",
        "v6pub",
        "-p",
        "[fd00:dead:beef::1]:18085:80",
        "busybox",
    ]);
    assert!(
        err.contains("cannot publish 80/tcp on fd00:dead:beef::1: no interface of this host"),
        "{err}"
    );
    assert!(d.fails(&["inspect", "v6pub"]).contains("No such"));
}

/// A unique local IPv6 /64 named after an IPv4 /24 of the test (`10.a.b.0/24` →
/// `fd00:a:b::/64`).
fn v6_subnet(v4: &str) -> String {
    let mut parts = v4.split('.');
    let (a, b) = (parts.nth(1).unwrap(), parts.next().unwrap());
    format!("fd00:{a}:{b}::/64")
}

/// The embedded DNS answers `<name>.<network>` (and aliases so qualified), as libnetwork's
/// resolver does; before, only bare names resolved.
#[test]
fn names_qualified_by_their_network_resolve() {
    let Some(mut d) = Daemon::start("names_qualified_by_their_network_resolve") else {
        return;
    };
    let br = format!("bq{}", d.tag);
    d.user_bridges.push(br.clone());
    let subnet = d.subnet_n(2);
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "-o",
        &format!("com.docker.network.bridge.name={br}"),
        "backend",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "backend",
        "--network-alias",
        "store",
        "busybox",
        "sleep",
        "60",
    ]);
    let ip = d.inspect("db", "{{.NetworkSettings.Networks.backend.IPAddress}}");
    for name in ["db", "db.backend", "store.backend"] {
        let out = d.ok(&[
            "run",
            "--rm",
            "--network",
            "backend",
            "busybox",
            "nslookup",
            name,
        ]);
        assert!(out.contains(&format!("Address: {ip}")), "{name}: {out}");
    }
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "backend",
        "busybox",
        "nslookup",
        "db.elsewhere",
    ]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&ip));
}

/// A busybox httpd serving /etc, named `name`, publishing `publish` (`[ip:]hostport:80`).
fn httpd(d: &Daemon, name: &str, publish: &str) {
    httpd_with(d, name, &["-p", publish]);
}

/// A busybox httpd serving /etc, named `name`, with more `run` flags.
fn httpd_with(d: &Daemon, name: &str, flags: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend(["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    d.ok(&args);
}

/// `GET /hostname` at `addr` answered by the container `id` (polled while it starts).
fn serves(addr: impl std::net::ToSocketAddrs + Copy, id: &str) -> bool {
    common::poll(10, || {
        common::http_get(addr, "/hostname").filter(|b| b.contains(&id[..12]))
    })
    .is_some()
}

/// The body curl gets from `url`, on the host or in the network namespace `ns`; None when
/// nothing answered within 5 s or the status was an error.
fn curl_in(ns: Option<&str>, url: &str) -> Option<String> {
    let curl = ["curl", "-gsf", "--max-time", "5", url];
    let o = match ns {
        Some(ns) => common::cli::sh("ip", &[&["netns", "exec", ns][..], &curl].concat()),
        None => common::cli::sh(curl[0], &curl[1..]),
    };
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// busybox httpd's REMOTE_ADDR as a plain address: without the brackets it puts around IPv6
/// ones and the `::ffff:` of IPv4 clients of its dual-stack socket.
fn unbracket(s: &str) -> &str {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    s.strip_prefix("::ffff:").unwrap_or(s)
}

/// Nothing listens at `addr` any more (polled: the container's ports go as it stops).
fn closed(addr: impl std::net::ToSocketAddrs + Copy) -> bool {
    common::poll(10, || {
        std::net::TcpStream::connect(addr).is_err().then_some(())
    })
    .is_some()
}

/// `-p [::1]:P:80`: IPv6 loopback, which no translation can leave (IPv6 has no
/// route_localnet), is served by berth's port proxy, like docker-proxy: answered over
/// `[::1]`, the port held against a second container, served again after the daemon is
/// killed and restarted (the proxy is re-created with the port's reservation), closed by
/// `stop`. Before: refused at create ("berth publishes IPv4 only").
#[test]
fn ipv6_loopback_port_is_proxied_across_a_daemon_restart() {
    let Some(mut d) = Daemon::start("ipv6_loopback_port_is_proxied_across_a_daemon_restart") else {
        return;
    };
    let port = common::cli::free_port();
    let at = (std::net::Ipv6Addr::LOCALHOST, port);
    httpd(&d, "lo6", &format!("[::1]:{port}:80"));
    let id = d.inspect("lo6", "{{.Id}}");
    assert!(serves(at, &id), "[::1]:{port} not served: {}", d.log());
    assert_eq!(
        d.inspect("lo6", "{{json .NetworkSettings.Ports}}"),
        format!(r#"{{"80/tcp":[{{"HostIp":"::1","HostPort":"{port}"}}]}}"#)
    );
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "lo6b",
        "-p",
        &format!("[::1]:{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains(&format!("tcp/[::1]:{port} is already in use")),
        "{err}"
    );
    d.kill9();
    d.spawn();
    assert!(
        serves(at, &id),
        "not served after a daemon restart: {}",
        d.log()
    );
    d.ok(&["stop", "-t", "1", "lo6"]);
    assert!(closed(at), "[::1]:{port} still open after stop");
    d.finish();
}

/// On an IPv6 network `-p Q:80` publishes both families, as dockerd does: inspect lists
/// `0.0.0.0` and `::`; a neighbour namespace reaches the port over IPv6 and IPv4, both
/// translated (the container sees the neighbour's own address, where a proxy would show the
/// gateway's), the host over `[::1]` (the `::` port's proxy), the container itself through
/// its IPv6 gateway (hairpin); a port added by `berth update` gets both families too;
/// `stop` closes it. Before: IPv4 only. And `-p [::]:P:80` for a container without IPv6 is served over IPv6 by the proxy
/// (before: it published IPv4).
#[test]
fn ipv6_network_publishes_both_families() {
    let Some(mut d) = Daemon::start("ipv6_network_publishes_both_families") else {
        return;
    };
    if !berth_testutil::require_cmds("ipv6_network_publishes_both_families", &["curl"]) {
        return;
    }
    let v4 = d.subnet_n(3);
    let br = format!("bd6{}", d.tag);
    d.user_bridges.push(br.clone());
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &v4,
        "--subnet",
        &v6_subnet(&v4),
        "-o",
        &format!("com.docker.network.bridge.name={br}"),
        "dual",
    ]);
    let port = common::cli::free_port();
    // /etc plus a CGI answering with the client address the container sees.
    let serve = "mkdir -p /www/cgi-bin && cp /etc/hostname /www/ && \
        printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' \
        > /www/cgi-bin/peer && chmod +x /www/cgi-bin/peer && exec httpd -f -p 80 -h /www";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web6",
        "--network",
        "dual",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        serve,
    ]);
    let id = d.inspect("web6", "{{.Id}}");
    assert_eq!(
        d.inspect("web6", "{{json .NetworkSettings.Ports}}"),
        format!(
            r#"{{"80/tcp":[{{"HostIp":"0.0.0.0","HostPort":"{port}"}},{{"HostIp":"::","HostPort":"{port}"}}]}}"#
        )
    );
    let nb = d.neighbour();
    let curl = |url: &str| curl_in(Some(&nb.ns), url);
    let v6 = format!("http://[{}]:{port}/hostname", nb.host6);
    let v4 = format!("http://{}:{port}/hostname", nb.host4);
    for (url, me) in [(&v6, &nb.ns6), (&v4, &nb.ns4)] {
        let got = common::poll(10, || curl(url).filter(|b| b.contains(&id[..12])));
        assert!(
            got.is_some(),
            "{url} not served to the neighbour: {}",
            d.log()
        );
        let peer = curl(&url.replace("/hostname", "/cgi-bin/peer")).unwrap_or_default();
        assert_eq!(unbracket(&peer), me.as_str(), "{url}: not translated");
    }
    let lo6 = (std::net::Ipv6Addr::LOCALHOST, port);
    assert!(serves(lo6, &id), "[::1]:{port} not served");
    // [::1] comes through the proxy, from the network's IPv6 gateway.
    let gw6 = d.inspect("web6", "{{.NetworkSettings.Networks.dual.IPv6Gateway}}");
    let peer = curl_in(None, &format!("http://[::1]:{port}/cgi-bin/peer")).unwrap_or_default();
    assert_eq!(unbracket(&peer), gw6);
    // Hairpin over IPv6: the container reaches its own port through the host's address.
    let own = own_port_through(&d, "web6", &gw6, port);
    assert!(own.contains(&id[..12]), "{own}");
    // A port added live by `berth update` is published like one given at run: both families
    // (before: IPv4 only), and taking it away closes both.
    let p3 = common::cli::free_port();
    let update = |flag: &str| {
        let o = d.berth(&["update", flag, &format!("{p3}:80"), "web6"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "berth update {flag}: {err}");
    };
    update("--publish-add");
    let ports = d.inspect("web6", "{{json .NetworkSettings.Ports}}");
    assert!(
        ports.contains(&format!(r#"{{"HostIp":"0.0.0.0","HostPort":"{p3}"}}"#))
            && ports.contains(&format!(r#"{{"HostIp":"::","HostPort":"{p3}"}}"#)),
        "{ports}"
    );
    let added6 = format!("http://[{}]:{p3}/hostname", nb.host6);
    let got = common::poll(10, || curl(&added6).filter(|b| b.contains(&id[..12])));
    assert!(
        got.is_some(),
        "{added6} not served after update: {}",
        d.log()
    );
    update("--publish-rm");
    assert_eq!(
        curl(&added6),
        None,
        "IPv6 port still served after --publish-rm"
    );
    assert!(
        closed((std::net::Ipv6Addr::LOCALHOST, p3)),
        "[::1]:{p3} still open"
    );
    assert!(closed(("127.0.0.1", p3)), "127.0.0.1:{p3} still open");
    d.ok(&["stop", "-t", "1", "web6"]);
    assert!(closed(lo6), "[::1]:{port} still open after stop");
    assert_eq!(curl(&v6), None, "IPv6 port still served after stop");
    // `[::]` for a container without IPv6 (the default bridge): proxied to its IPv4 address
    // (it sees the bridge's gateway), and IPv4, not asked for, stays closed.
    let p2 = common::cli::free_port();
    let publish = format!("[::]:{p2}:80");
    d.ok(&[
        "run", "-d", "--name", "v4only", "-p", &publish, "busybox", "sh", "-c", serve,
    ]);
    let peer = format!("http://[{}]:{p2}/cgi-bin/peer", nb.host6);
    let gw = d.inspect("v4only", "{{.NetworkSettings.Gateway}}");
    let seen = common::poll(10, || curl(&peer));
    assert_eq!(seen.as_deref().map(unbracket), Some(gw.as_str()));
    assert_eq!(curl(&format!("http://{}:{p2}/hostname", nb.host4)), None);
    d.finish();
}

/// Hairpin: a container reaches its own published port through a host address (its
/// gateway's), as with dockerd; before, the bridge dropped the frame coming back to its port.
#[test]
fn a_container_reaches_its_own_published_port() {
    let Some(d) = Daemon::start("a_container_reaches_its_own_published_port") else {
        return;
    };
    let port = common::cli::free_port().to_string();
    httpd(&d, "pin", &format!("{port}:80"));
    let gw = d.inspect("pin", "{{.NetworkSettings.Gateway}}");
    let id = d.inspect("pin", "{{.Id}}");
    let out = own_port_through(&d, "pin", &gw, port.parse().unwrap());
    assert!(out.contains(&id[..12]), "{out}");
}

/// What container `name` gets for `GET /hostname` at `host:port` (busybox nc; its wget
/// crashes here).
fn own_port_through(d: &Daemon, name: &str, host: &str, port: u16) -> String {
    let req = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}");
    d.ok(&["exec", name, "sh", "-c", &req])
}

/// CVE-2020-8558: a neighbour on a bridge that routes 127.0.0.1 via the host reaches neither
/// a port published on 127.0.0.1 nor a host service on loopback; the host itself still
/// reaches the published port.
#[test]
fn loopback_stays_loopback_for_neighbours() {
    let Some(d) = Daemon::start("loopback_stays_loopback_for_neighbours") else {
        return;
    };
    let port = common::cli::free_port().to_string();
    httpd(&d, "lo-web", &format!("127.0.0.1:{port}:80"));
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    host.set_nonblocking(true).unwrap();
    let gw = d.inspect("lo-web", "{{.NetworkSettings.Gateway}}");
    let id = d.inspect("lo-web", "{{.Id}}");
    let fetch =
        |p: &str| format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 {p}");
    // The host: served.
    assert!(
        serves(("127.0.0.1", port.parse::<u16>().unwrap()), &id),
        "the host does not reach its loopback-published port"
    );
    // A neighbour sending 127.0.0.1 to the host's MAC: nothing.
    let script = format!(
        "ip route del table local local 127.0.0.1 dev lo; \
         ip route del table local local 127.0.0.0/8 dev lo; \
         ip route add 127.0.0.1/32 via {gw} dev eth0; \
         {} ; {} ; true",
        fetch(&port),
        fetch(&host_port.to_string())
    );
    let out = d.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "NET_ADMIN",
        "--sysctl",
        "net.ipv4.conf.all.route_localnet=1",
        "--sysctl",
        "net.ipv4.conf.eth0.route_localnet=1",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        !out.contains(&id[..12]),
        "the loopback-published port answered: {out}"
    );
    assert!(
        host.accept().is_err(),
        "a host loopback service was reached"
    );
}

/// A host input-hook rule that DNAT bypasses is said where the user looks: the create
/// response's Warnings, which `docker run -p` prints (before: only the daemon's log).
#[test]
fn bypassed_host_input_rules_are_warned_at_run() {
    let Some(d) = Daemon::start("bypassed_host_input_rules_are_warned_at_run") else {
        return;
    };
    let port = common::cli::free_port();
    let table = format!("berthtestin{}", d.tag);
    /// Deletes the host table the test made, also when it fails.
    struct Table(String);
    impl Drop for Table {
        fn drop(&mut self) {
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "inet", &self.0])
                .status();
        }
    }
    let script = format!(
        "add table inet {table}\n\
         add chain inet {table} input {{ type filter hook input priority 0; policy accept; }}\n\
         add rule inet {table} input tcp dport {port} drop\n"
    );
    let mut nft = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = Table(table.clone());
    std::io::Write::write_all(nft.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    drop(nft.stdin.take());
    assert!(nft.wait().unwrap().success());
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "warned",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("WARNING") && err.contains(&table), "{err}");
    // Without a rule on the port: no warning.
    let other = common::cli::free_port();
    let o = d.docker(&[
        "run",
        "-d",
        "-p",
        &format!("{other}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("WARNING"));
}
