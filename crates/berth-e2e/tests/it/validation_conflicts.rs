//! Conflicting and impossible options refused as dockerd refuses them (real docker CLI and raw
//! API calls against a berth daemon on a temp root): network-mode conflicts, aliases and
//! static addresses on the predefined networks, namespaces of missing containers, unknown
//! runtimes, bad env/tmpfs/add-host entries, `network connect`/`disconnect` across shared and
//! private namespaces, and malformed JSON bodies with Go's texts. A refused create leaves no
//! container and no reserved name.

use crate::common;

use common::cli::Daemon;

/// The container IDs the daemon has (all states).
fn all_ids(d: &Daemon) -> Vec<String> {
    d.ok(&["ps", "-aq", "--no-trunc"])
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// `docker <args>` must exit `code` with `want` on stderr; a mismatch is added to `failures`.
fn refused(d: &Daemon, args: &[&str], code: i32, want: &str, failures: &mut Vec<String>) {
    let o = d.docker(args);
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() != Some(code) || !err.contains(want) {
        failures.push(format!(
            "docker {args:?}: exit {:?}, stderr {err:?}; want {code} and {want:?}",
            o.status.code()
        ));
    }
}

/// A raw API call must answer `status` with `want` in its body.
fn api_refused(
    d: &Daemon,
    path: &str,
    body: Option<&str>,
    status: u16,
    want: &str,
    failures: &mut Vec<String>,
) {
    let (code, text) = d.api("POST", path, body);
    if code != status || !text.contains(want) {
        failures.push(format!(
            "POST {path} {body:?}: {code} {text}; want {status} and {want:?}"
        ));
    }
}

/// `docker network create` of `name` with a bridge device the harness removes (`suffix` keeps
/// a test's bridges apart) and `extra` flags.
fn create_network(
    d: &mut Daemon,
    name: &str,
    suffix: &str,
    extra: &[&str],
) -> std::process::Output {
    let br = format!("bu{}{suffix}", d.tag);
    d.user_bridges.push(br.clone());
    let opt = format!("com.docker.network.bridge.name={br}");
    let mut args = vec!["network", "create", "-o", &opt];
    args.extend(extra);
    args.push(name);
    d.docker(&args)
}

/// A detached busybox `sleep` named `name` with `extra` run flags.
fn sleeper(d: &Daemon, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(extra);
    args.extend(["busybox", "sleep", "600"]);
    d.ok(&args);
}

#[test]
fn network_mode_conflicts_are_refused_at_create() {
    let Some(d) = Daemon::start("network_mode_conflicts_are_refused_at_create") else {
        return;
    };
    let web = format!("web{}", d.tag);
    sleeper(&d, &web, &[]);
    let on_web = format!("container:{web}");
    let link = format!("{web}:db");
    let mac = "02:42:ac:11:00:0a";
    let own = format!("self{}", d.tag);
    let own_mode = format!("container:{own}");
    // Before, each was accepted: the option was silently dropped, or the container failed
    // (or ran wrongly) only at start.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--network", &on_web, "--hostname", "h"],
            "conflicting options: hostname and the network mode",
        ),
        (
            vec!["--network", &on_web, "--dns", "1.1.1.1"],
            "conflicting options: dns and the network mode",
        ),
        (
            vec!["--network", &on_web, "--add-host", "a:1.2.3.4"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            vec!["--network", &on_web, "-p", "8080:80"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["--network", &on_web, "-P", "--expose", "80"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["--network", &on_web, "--expose", "80"],
            "conflicting options: port exposing and the container type network mode",
        ),
        (
            vec!["--network", &on_web, "--link", &link],
            "conflicting options: container type network can't be used with links",
        ),
        (
            vec!["--network", "host", "--link", &link],
            "conflicting options: host type networking can't be used with links",
        ),
        (
            vec!["--network", &on_web, "--mac-address", mac],
            "conflicting options: mac-address and the network mode",
        ),
        (
            vec!["--network", "host", "--mac-address", mac],
            "conflicting options: mac-address and the network mode",
        ),
        (
            vec!["--uts", "host", "--hostname", "h"],
            "conflicting options: hostname and the UTS mode",
        ),
        (
            vec!["--network", "bridge", "--ip", "10.254.0.9"],
            "user specified IP address is supported on user defined networks only",
        ),
        (
            vec!["--network", "container:gone"],
            "No such container: gone",
        ),
        (
            vec!["--ipc", "container:gone"],
            "can't join IPC of container gone: No such container: gone",
        ),
        (
            vec!["--pid", "container:gone"],
            "cannot join PID of a non running container: gone: No such container: gone",
        ),
        (
            vec!["--name", &own, "--network", &own_mode],
            "cannot join own network",
        ),
        (
            vec!["--runtime", "nosuchruntime"],
            "Unknown runtime specified nosuchruntime",
        ),
    ];
    let mut failures = Vec::new();
    for (flags, want) in &cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        refused(&d, &args, 125, want, &mut failures);
    }
    // The neighbours dockerd allows still run.
    for flags in [
        vec!["--network", &on_web],
        vec!["--network", "host", "--hostname", "h", "--dns", "1.1.1.1"],
        vec![
            "--network",
            "host",
            "--add-host",
            "a:1.2.3.4",
            "--expose",
            "80",
        ],
        vec!["--runtime", "runc"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(&flags);
        args.extend(["busybox", "true"]);
        let o = d.docker(&args);
        if !o.status.success() {
            failures.push(format!(
                "docker {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing is left of a refused create, and its name is free.
    assert_eq!(all_ids(&d).len(), 1, "a refused create left a container");
    d.ok(&["create", "--name", &own, "busybox", "true"]);
    d.ok(&["rm", &own]);
    d.ok(&["rm", "-f", &web]);
    d.finish();
}

#[test]
fn impossible_create_bodies_are_refused() {
    let Some(d) = Daemon::start("impossible_create_bodies_are_refused") else {
        return;
    };
    // Values the docker CLI refuses itself, sent as other clients can.
    let cases: &[(&str, &str)] = &[
        (r#""Env":["A=1","=x"]"#, "invalid environment variable: =x"),
        (r#""Env":[""]"#, "invalid environment variable: "),
        (
            r#""HostConfig":{"Tmpfs":{"data":""}}"#,
            "invalid mount path: 'data' mount path must be absolute",
        ),
        (
            r#""HostConfig":{"Tmpfs":{"/":""}}"#,
            "invalid specification: destination can't be '/'",
        ),
        (
            r#""HostConfig":{"ExtraHosts":["nohost"]}"#,
            r#"bad format for add-host: \"nohost\""#,
        ),
        (
            r#""HostConfig":{"ExtraHosts":["db:1.2.3"]}"#,
            r#"invalid IP address in add-host: \"1.2.3\""#,
        ),
        (
            r#""HostConfig":{"NetworkMode":"container:"}"#,
            "Invalid network mode: invalid container format container:<name|id>",
        ),
        (
            r#""MacAddress":"02:42:ac:11:00:0a","HostConfig":{"NetworkMode":"host"}"#,
            "conflicting options: mac-address and the network mode",
        ),
        (
            r#""HostConfig":{"Runtime":"kata"}"#,
            "Unknown runtime specified kata",
        ),
        // The docker CLI refuses these itself; docker-py and Compose send them.
        (
            r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["a"]}}}"#,
            "network-scoped alias is supported only for containers in user defined networks",
        ),
        (
            r#""HostConfig":{"NetworkMode":"host"},"NetworkingConfig":{"EndpointsConfig":{"host":{"Aliases":["a"]}}}"#,
            "network-scoped alias is supported only for containers in user defined networks",
        ),
    ];
    let mut failures = Vec::new();
    for (fields, want) in cases {
        let body = format!(r#"{{"Image":"busybox","Cmd":["true"],{fields}}}"#);
        api_refused(
            &d,
            "/containers/create?name=refused",
            Some(&body),
            400,
            want,
            &mut failures,
        );
    }
    // A missing namespace is a 400, not a 404: the docker CLI reads a 404 from create as
    // "no such image" and pulls.
    let body = r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"PidMode":"container:gone"}}"#;
    api_refused(
        &d,
        "/containers/create",
        Some(body),
        400,
        "No such container: gone",
        &mut failures,
    );
    // Published ports on the host network are dropped with dockerd's warning.
    let body = r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}"#;
    let (code, text) = d.api("POST", "/containers/create", Some(body));
    assert_eq!(code, 201, "{text}");
    assert!(
        text.contains("Published ports are discarded when using host network mode"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    d.ok(&["rm", v["Id"].as_str().unwrap()]);
    // Bad references for tag and commit (the docker CLI checks them itself).
    api_refused(
        &d,
        "/images/busybox/tag?repo=BAD&tag=ref",
        None,
        400,
        "invalid reference format: repository name (library/BAD) must be lowercase",
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(all_ids(&d).is_empty(), "a refused create left a container");
    let id = d.ok(&["create", "busybox", "true"]);
    api_refused(
        &d,
        &format!("/commit?container={id}&repo=bad:ref:x"),
        None,
        400,
        "invalid reference format",
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    d.ok(&["rm", &id]);
    d.ok(&["create", "--name", "refused", "busybox", "true"]);
    d.ok(&["rm", "refused"]);
    d.finish();
}

#[test]
fn malformed_json_bodies_get_gos_texts() {
    let Some(d) = Daemon::start_opts(
        "malformed_json_bodies_get_gos_texts",
        common::cli::Opts {
            busybox: false,
            ..Default::default()
        },
    ) else {
        return;
    };
    // moby's TestContainerInvalidJSON, TestVolumesInvalidJSON and TestNetworkInvalidJSON: the
    // body is read before the container or network is looked up.
    let mut failures = Vec::new();
    for ep in [
        "/containers/foobar/exec",
        "/exec/foobar/start",
        "/volumes/create",
        "/networks/create",
        "/networks/bridge/connect",
        "/networks/bridge/disconnect",
    ] {
        api_refused(
            &d,
            ep,
            Some("{invalid json"),
            400,
            "invalid character 'i' looking for beginning of object key string",
            &mut failures,
        );
        api_refused(
            &d,
            ep,
            None,
            400,
            "got EOF while reading request body",
            &mut failures,
        );
    }
    api_refused(
        &d,
        "/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"]"#),
        400,
        "unexpected EOF",
        &mut failures,
    );
    api_refused(
        &d,
        "/volumes/create",
        Some(r#"{"Name":"v1"} {"Name":"v2"}"#),
        400,
        "unexpected content after JSON",
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]),
        "",
        "a refused create made a volume"
    );
    d.finish();
}

#[test]
fn network_connect_refuses_shared_and_private_namespaces() {
    let Some(mut d) = Daemon::start("network_connect_refuses_shared_and_private_namespaces") else {
        return;
    };
    let net = format!("n{}", d.tag);
    let subnet = d.subnet_n(1);
    let o = create_network(&mut d, &net, "v", &["--subnet", &subnet]);
    assert!(o.status.success(), "{o:?}");
    // A name starting with `_` is as good as any for dockerd (Compose's `_default`); its
    // subnet is berth's pick.
    let mut failures = Vec::new();
    let auto = format!("_auto{}", d.tag);
    let o = create_network(&mut d, &auto, "w", &[]);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        failures.push(format!("network create {auto}: {err}"));
    }
    let (b, h, n, s) = (
        format!("b{}", d.tag),
        format!("h{}", d.tag),
        format!("n{}", d.tag),
        format!("s{}", d.tag),
    );
    sleeper(&d, &b, &[]);
    sleeper(&d, &h, &["--network", "host"]);
    sleeper(&d, &n, &["--network", "none"]);
    sleeper(&d, &s, &["--network", &format!("container:{b}")]);
    let ip = subnet.replace(".0/24", ".9");
    let shared = "container sharing network namespace with another container or host cannot be connected to any other network";
    let host = "container cannot be disconnected from host network or connected to host network";
    let none = "container cannot be connected to multiple networks with one of the networks in private (none) mode";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["connect", "host", &b], host),
        (vec!["connect", "none", &b], none),
        (vec!["connect", &net, &n], none),
        (vec!["connect", &net, &h], shared),
        (vec!["connect", &net, &s], shared),
        (vec!["disconnect", "host", &h], host),
        (
            vec!["connect", "--alias", "x", "bridge", &n],
            "network-scoped alias is supported only for containers in user defined networks",
        ),
        (
            vec!["connect", "--ip", "172.30.0.9", "bridge", &n],
            "user specified IP address is supported on user defined networks only",
        ),
        (
            vec!["connect", "--ip", "10.254.0.9", &auto, &b],
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ),
    ];
    for (args, want) in &cases {
        let mut a = vec!["network"];
        a.extend(args);
        refused(&d, &a, 1, want, &mut failures);
    }
    refused(
        &d,
        &["run", "--rm", "--network", &auto, "--ip", "10.254.0.9", "busybox", "true"],
        125,
        "user specified IP address is supported only when connecting to networks with user configured subnets",
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // What dockerd allows still works: a static address on a network with a given subnet.
    d.ok(&["network", "connect", "--ip", &ip, &net, &b]);
    let addrs = d.inspect(
        &b,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
    );
    assert!(addrs.contains(ip.as_str()), "{addrs}");
    d.ok(&["network", "disconnect", &net, &b]);
    d.ok(&["rm", "-f", &s, &n, &h, &b]);
    d.ok(&["network", "rm", &net, &auto]);
    d.finish();
}

/// A tiny HTTP answer on `addr` (an address of the daemon's own bridge), in a thread, until a
/// connection sends `STOP`.
fn serve_until_stop(addr: &str) -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind(format!("{addr}:0")).unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(false).unwrap();
    let h = std::thread::spawn(move || {
        // Serve until the test's probes are done (it connects once more to end us).
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 512];
            let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
            if n == 0 || buf[..n].starts_with(b"STOP") {
                break;
            }
            let _ = std::io::Write::write_all(&mut s, b"HTTP/1.0 200 OK\r\n\r\nreached\n");
        }
    });
    (port, h)
}

#[test]
fn internal_networks_do_not_reach_outside_their_bridge() {
    let Some(mut d) = Daemon::start("internal_networks_do_not_reach_outside_their_bridge") else {
        return;
    };
    let net = format!("int{}", d.tag);
    let subnet = d.subnet_n(3);
    let o = create_network(&mut d, &net, "i", &["--internal", "--subnet", &subnet]);
    assert!(o.status.success(), "{o:?}");
    // A listener on the default bridge's gateway: outside the internal network's bridge.
    let b = format!("b{}", d.tag);
    sleeper(&d, &b, &[]);
    let gw = d.subnet.replace(".0/24", ".1");
    let (port, server) = serve_until_stop(&gw);
    // busybox's nc, not its wget (which crashes in this image).
    let probe = format!("echo GET | nc -w 5 {gw} {port} && echo CONNECTED");
    // From the default bridge it is reachable (the probe is sound)...
    let out = d.ok(&["exec", &b, "sh", "-c", &probe]);
    assert!(out.contains("reached"), "{out}");
    // ...from the internal network it is not: no default route, no forwarding out.
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "sh",
        "-c",
        &format!("ip route; {probe}; true"),
    ]);
    let text = String::from_utf8_lossy(&o_text(&o)).into_owned();
    assert!(o.status.success(), "{text}");
    assert!(
        !text.contains("reached") && !text.contains("CONNECTED"),
        "{text}"
    );
    assert!(
        !text.contains("default"),
        "internal network has a default route: {text}"
    );
    let mut s = std::net::TcpStream::connect(format!("{gw}:{port}")).unwrap();
    std::io::Write::write_all(&mut s, b"STOP").unwrap();
    drop(s);
    server.join().unwrap();
    d.ok(&["rm", "-f", &b]);
    d.ok(&["network", "rm", &net]);
    d.finish();
}

/// stdout and stderr of a finished command, together.
fn o_text(o: &std::process::Output) -> Vec<u8> {
    [o.stdout.clone(), o.stderr.clone()].concat()
}
