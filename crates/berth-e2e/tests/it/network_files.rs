//! Network fidelity (issue 14): /etc/hosts and resolv.conf as dockerd writes them (an FQDN
//! hostname also answers to its first label; `--dns` on the host network), IPv6 asked for by
//! the `com.docker.network.enable_ipv6` driver option, `--ip6` on the first network,
//! `--ipam-opt` echoed, and IPv6 without a prefix refused instead of quietly left out.

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
    let mut parts = v4.split('.');
    let (a, b) = (
        parts.nth(1).unwrap().to_string(),
        parts.next().unwrap().to_string(),
    );
    let v6 = format!("fd00:{a}:{b}::/64");
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
    let ip6 = format!("fd00:{a}:{b}::50");
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
    // Publishing on an IPv6 host address is refused at create with a 400 (before: created,
    // then a 500 "of the other family" at start); `::` (any) still publishes.
    let err = d.fails(&[
        "create",
        "--name",
        "v6pub",
        "-p",
        "[::1]:18085:80",
        "busybox",
    ]);
    assert!(err.contains("IPv4 host addresses only"), "{err}");
    assert!(d.fails(&["inspect", "v6pub"]).contains("No such"));
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
    d.ok(&[
        "run", "-d", "--name", name, "-p", publish, "busybox", "httpd", "-f", "-p", "80", "-h",
        "/etc",
    ]);
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
    let req = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {gw} {port}");
    let id = d.inspect("pin", "{{.Id}}");
    let out = d.ok(&["exec", "pin", "sh", "-c", &req]);
    assert!(out.contains(&id[..12]), "{out}");
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
    let served = common::poll(10, || {
        use std::io::{Read, Write};
        let mut c =
            std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).ok()?;
        c.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        c.read_to_string(&mut body).ok()?;
        body.contains(&id[..12]).then_some(())
    });
    assert!(
        served.is_some(),
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
