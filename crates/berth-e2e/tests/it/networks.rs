//! Networks end to end with the REAL docker CLI against the `berth` binary (built by
//! `cargo build -p berth-cli`): published ports, user networks with container-name DNS,
//! network create/ls/inspect/connect/disconnect/rm/prune, outbound NAT to a namespace the
//! test owns, and daemon kill -9 recovery. Each test uses its own bridge, nft table and
//! subnets and checks that nothing of them is left afterwards.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{free_port, link_exists, sh, Daemon};

/// GET / from 127.0.0.1:port; the body, or None while nothing answers.
pub(crate) fn http_get(port: u16) -> Option<String> {
    common::http_get(("127.0.0.1", port), "/")
}

/// Poll until `f` yields (bounded by attempts, not by wall-clock assertions).
pub(crate) fn until<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..200 {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// What only the network tests (and update's) need of the shared harness.
pub(crate) trait NetExt {
    fn network(&mut self, name: &str, subnet: &str) -> String;
    fn rules(&self) -> String;
}

impl NetExt for Daemon {
    /// Create a user network with a bridge name the test knows.
    fn network(&mut self, name: &str, subnet: &str) -> String {
        let br = format!("bu{}{}", self.tag, self.user_bridges.len());
        self.user_bridges.push(br.clone());
        let opt = format!("com.docker.network.bridge.name={br}");
        self.ok(&["network", "create", "--subnet", subnet, "-o", &opt, name]);
        br
    }

    fn rules(&self) -> String {
        String::from_utf8_lossy(&sh("nft", &["list", "table", "inet", &self.table]).stdout)
            .into_owned()
    }
}

#[test]
fn published_ports_serve_and_conflicts_leave_nothing() {
    let Some(d) = Daemon::start("published_ports_serve_and_conflicts_leave_nothing") else {
        return;
    };
    let port = free_port();
    let pub80 = format!("{port}:80");
    d.ok(&[
        "run", "-d", "--name", "web", "-p", &pub80, "-p", "127.0.0.1::81", "-p",
        "127.0.0.1::5353/udp", "--expose", "90", "-P", "busybox", "sh", "-c",
        "mkdir -p /www && echo hello-berth > /www/index.html && httpd -p 90 -h /www && httpd -f -p 80 -h /www",
    ]);
    let body = until(|| http_get(port).filter(|b| !b.is_empty()));
    assert_eq!(body.as_deref(), Some("hello-berth\n"), "{}", d.log());
    // docker port: every mapping, random host ports for -P and 127.0.0.1::81.
    let ports = d.ok(&["port", "web"]);
    assert!(
        ports.contains(&format!("80/tcp -> 0.0.0.0:{port}")),
        "{ports}"
    );
    assert!(ports.contains("81/tcp -> 127.0.0.1:"), "{ports}");
    assert!(ports.contains("5353/udp -> 127.0.0.1:"), "{ports}");
    let p90 = d.ok(&["port", "web", "90/tcp"]);
    let p90: u16 = p90
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(p90, 0);
    assert_eq!(until(|| http_get(p90)).as_deref(), Some("hello-berth\n"));
    let udp: u16 = d
        .ok(&["port", "web", "5353/udp"])
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let rules = d.rules();
    assert!(rules.contains(&format!("udp dport {udp}")), "{rules}");
    // The same host port again: Docker's error, and the failed start leaves no veth or rule.
    let veths = Daemon::veths_on(&d.bridge);
    let err = d.fails(&[
        "run", "-d", "--name", "web2", "-p", &pub80, "busybox", "sleep", "60",
    ]);
    assert!(
        err.contains("driver failed programming external connectivity"),
        "{err}"
    );
    assert!(err.contains("already in use"), "{err}");
    assert_eq!(Daemon::veths_on(&d.bridge), veths);
    let ip2 = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web2"]);
    assert!(
        ip2.is_empty() || !d.rules().contains(&ip2),
        "rules of web2 remain"
    );
    // Removing the container drops its rules and veth.
    d.ok(&["rm", "-f", "web", "web2"]);
    assert_eq!(Daemon::veths_on(&d.bridge), 0);
    assert!(
        !d.rules().contains(&format!("dport {port}")),
        "{}",
        d.rules()
    );
    d.finish();
}

#[test]
fn user_networks_dns_and_cli_crud() {
    let Some(mut d) = Daemon::start("user_networks_dns_and_cli_crud") else {
        return;
    };
    let (s1, s2) = (d.subnet_n(1), d.subnet_n(2));
    let br1 = d.network("front", &s1);
    d.ok(&[
        "network",
        "create",
        "--label",
        "tier=back",
        "-o",
        &format!("com.docker.network.bridge.name=bu{}x", d.tag),
        "--subnet",
        &s2,
        "back",
    ]);
    d.user_bridges.push(format!("bu{}x", d.tag));
    // Errors: duplicate name, overlapping subnet, bad CIDR, missing network.
    assert!(d
        .fails(&["network", "create", "front"])
        .contains("network with name front already exists"));
    let overlap = s1.replace("/24", "/25");
    assert!(d
        .fails(&["network", "create", "--subnet", &overlap, "x1"])
        .contains("overlaps"));
    assert!(d
        .fails(&["network", "create", "--subnet", "10.1.2.3/99", "x2"])
        .contains("invalid"));
    assert!(d
        .fails(&["network", "inspect", "nosuch"])
        .contains("network nosuch not found"));
    // ls with filters.
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    for n in ["bridge", "host", "none", "front", "back"] {
        assert!(ls.lines().any(|l| l == n), "{ls}");
    }
    assert_eq!(
        d.ok(&[
            "network",
            "ls",
            "-q",
            "--filter",
            "label=tier=back",
            "--format",
            "{{.Name}}"
        ]),
        "back"
    );
    assert_eq!(
        d.ok(&[
            "network",
            "ls",
            "--filter",
            "type=custom",
            "--format",
            "{{.Name}}"
        ])
        .lines()
        .count(),
        2
    );
    // Two containers reach each other by name and alias through the embedded DNS.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "front",
        "--network-alias",
        "api",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo from-srv > /www/index.html && httpd -f -p 80 -h /www",
    ]);
    let out = d.ok(&["run", "--rm", "--network", "front", "busybox", "sh", "-c",
        "cat /etc/resolv.conf; ping -c1 -W5 srv >/dev/null && echo PING-OK; nslookup api; wget -qO- http://srv/; wget -qO- http://api/"]);
    let gw = s1.replace(".0/24", ".1");
    assert!(out.contains(&format!("nameserver {gw}")), "{out}");
    assert!(out.contains("PING-OK"), "{out}");
    assert_eq!(out.matches("from-srv").count(), 2, "{out}");
    let ip = d.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        "srv",
    ]);
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    // Inspect shows the endpoint; rm while in use is refused with Docker's text.
    let c = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range $k, $v := .Containers}}{{$v.Name}} {{$v.IPv4Address}}{{end}}",
        "front",
    ]);
    assert_eq!(c, format!("srv {ip}/24"));
    let err = d.fails(&["network", "rm", "front"]);
    assert!(
        err.contains("error while removing network: network front id"),
        "{err}"
    );
    assert!(err.contains("has active endpoints"), "{err}");
    assert!(d
        .fails(&["network", "rm", "bridge"])
        .contains("pre-defined network"));
    // Hot-plug connect/disconnect of a running container.
    let v = Daemon::veths_on(&br1);
    d.ok(&["run", "-d", "--name", "roam", "busybox", "sleep", "300"]);
    d.ok(&["network", "connect", "--alias", "wanderer", "front", "roam"]);
    assert_eq!(Daemon::veths_on(&br1), v + 1);
    let addrs = d.ok(&["exec", "roam", "ip", "-o", "-4", "addr"]);
    assert_eq!(addrs.lines().count(), 3, "{addrs}");
    let got = d.ok(&["exec", "srv", "nslookup", "wanderer"]);
    assert!(got.contains("Name:"), "{got}");
    assert!(d
        .fails(&["network", "connect", "nosuch", "roam"])
        .contains("network nosuch not found"));
    d.ok(&["network", "disconnect", "front", "roam"]);
    assert_eq!(Daemon::veths_on(&br1), v);
    assert_eq!(
        d.ok(&["exec", "roam", "ip", "-o", "-4", "addr"])
            .lines()
            .count(),
        2
    );
    // Stored config for a stopped container: joins at start.
    d.ok(&["create", "--name", "late", "busybox", "sleep", "300"]);
    d.ok(&["network", "connect", "back", "late"]);
    d.ok(&["start", "late"]);
    let nets = d.ok(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "late",
    ]);
    assert!(nets.contains("back") && nets.contains("bridge"), "{nets}");
    // Prune keeps networks in use.
    d.ok(&["rm", "-f", "late"]);
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert!(
        pruned.contains("back") && !pruned.contains("front"),
        "{pruned}"
    );
    d.ok(&["rm", "-f", "srv", "roam"]);
    d.ok(&["network", "rm", "front"]);
    assert!(!link_exists(&br1), "bridge of removed network left");
    d.finish();
}

#[test]
fn outbound_nat_masquerades_to_a_foreign_namespace() {
    let Some(mut d) = Daemon::start("outbound_nat_masquerades_to_a_foreign_namespace") else {
        return;
    };
    if !berth_testutil::require_cmds("outbound_nat", &["python3"]) {
        return;
    }
    // An "outside" host: a netns reached from the host over a veth on its own /30.
    let nb = d.neighbour();
    let (ns, hip, nip) = (nb.ns, nb.host4, nb.ns4);
    // The server replies with the peer address it sees. The namespace has no route back to
    // the container subnet, so only masqueraded traffic can be answered.
    let srv = "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',9000))\ns.listen(1)\nc,a=s.accept()\nc.sendall(a[0].encode()+b'\\n')\nc.close()\n";
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns, "python3", "-c", srv])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let script =
        format!("for i in $(seq 1 50); do nc {nip} 9000 && exit 0; sleep 0.2; done; exit 1");
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", &script]);
    let seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _ = server.try_wait();
    drop(Reap(server));
    assert_eq!(
        seen,
        hip,
        "server saw {seen:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.finish();
}

#[test]
fn daemon_kill9_keeps_ports_and_drops_dead_containers_rules() {
    let Some(mut d) = Daemon::start("daemon_kill9_keeps_ports_and_drops_dead_containers_rules")
    else {
        return;
    };
    let (p1, p2) = (free_port(), free_port());
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo kept > /www/index.html && httpd -f -p 80 -h /www",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "dies",
        "-p",
        &format!("127.0.0.1:{p2}:80"),
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(until(|| http_get(p1)).as_deref(), Some("kept\n"));
    assert!(d.rules().contains(&format!("dport {p2}")));
    let pid: i32 = d
        .ok(&["inspect", "-f", "{{.State.Pid}}", "dies"])
        .parse()
        .unwrap();
    assert_eq!(Daemon::veths_on(&d.bridge), 2);
    d.kill9();
    // The container dies while the daemon is down.
    // SAFETY: kill(2) on the container's init pid, which this test's daemon started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    d.spawn();
    assert_eq!(
        until(|| http_get(p1)).as_deref(),
        Some("kept\n"),
        "{}",
        d.log()
    );
    let state = d.ok(&["inspect", "-f", "{{.State.Running}}", "dies"]);
    assert_eq!(state, "false");
    let rules = d.rules();
    assert!(rules.contains(&format!("dport {p1}")), "{rules}");
    assert!(!rules.contains(&format!("dport {p2}")), "{rules}");
    assert_eq!(Daemon::veths_on(&d.bridge), 1);
    d.finish();
}
