//! `berth update` end to end (issue 24), with the `berth` CLI and the real docker CLI against
//! the `berth` binary: published ports added and removed on a running busybox httpd without
//! touching its process; a port taken by a listener of the test leaves it as it was; env and a
//! new named volume through a managed recreate that keeps the writable layer and the id;
//! `--dry-run` and a missing bind source change nothing; a removed container answers 404.

use crate::common;
use crate::networks::{http_get, until, NetExt};

use std::net::{TcpListener, TcpStream};
use std::process::Output;

use common::cli::{free_port, Daemon};

/// busybox httpd on port 80 serving "hello", stopping on SIGTERM.
const HTTPD: &str =
    "echo up $GREETING; mkdir -p /www && echo hello > /www/index.html && trap 'exit 0' TERM; \
                     httpd -f -p 80 -h /www & wait";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `berth update …` that must succeed: its stdout.
fn update_ok(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["update"];
    a.extend(args);
    let o = d.berth(&a);
    assert!(
        o.status.success(),
        "berth {a:?}: {}\n{}",
        text(&o.stderr),
        d.log()
    );
    text(&o.stdout)
}

/// `berth update …` that must fail: its output.
fn update_fails(d: &Daemon, args: &[&str]) -> Output {
    let mut a = vec!["update"];
    a.extend(args);
    let o = d.berth(&a);
    assert!(!o.status.success(), "berth {a:?} unexpectedly succeeded");
    o
}

/// Two different free ports.
fn two_ports() -> (u16, u16) {
    let p1 = free_port();
    loop {
        let p2 = free_port();
        if p2 != p1 {
            return (p1, p2);
        }
    }
}

fn start_httpd(d: &Daemon, name: &str, port: u16) {
    d.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(
        until(|| http_get(port)).as_deref(),
        Some("hello\n"),
        "httpd never answered on {port}: {}",
        d.log()
    );
}

#[test]
fn update_publishes_ports_live() {
    let Some(mut d) = Daemon::start("update_publishes_ports_live") else {
        return;
    };
    let name = format!("upd{}", d.tag);
    let (p1, p2) = two_ports();
    start_httpd(&d, &name, p1);
    let pid = d.inspect(&name, "{{.State.Pid}}");

    // A second port, live: same process, both ports serve, inspect shows it.
    update_ok(&d, &["--publish-add", &format!("{p2}:80"), &name]);
    assert_eq!(d.inspect(&name, "{{.State.Pid}}"), pid);
    assert_eq!(until(|| http_get(p2)).as_deref(), Some("hello\n"));
    assert_eq!(http_get(p1).as_deref(), Some("hello\n"));
    let ports = d.ok(&["port", &name]);
    assert!(
        ports.contains(&format!(":{p1}")) && ports.contains(&format!(":{p2}")),
        "{ports}"
    );
    let bindings = d.inspect(&name, "{{json .HostConfig.PortBindings}}");
    assert!(bindings.contains(&format!("\"{p2}\"")), "{bindings}");

    // The first goes away: refused there, still served on the second, same process.
    update_ok(&d, &["--publish-rm", &format!("{p1}:80"), &name]);
    assert_eq!(d.inspect(&name, "{{.State.Pid}}"), pid);
    assert!(
        TcpStream::connect(("127.0.0.1", p1)).is_err(),
        "{p1} still answers"
    );
    assert_eq!(http_get(p2).as_deref(), Some("hello\n"));
    let ports = d.ok(&["port", &name]);
    assert!(!ports.contains(&format!(":{p1}")), "{ports}");

    // A host port another process holds: a clear error, the container as it was.
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let p3 = taken.local_addr().unwrap().port();
    let before = d.inspect(
        &name,
        "{{json .HostConfig.PortBindings}} {{json .NetworkSettings.Ports}}",
    );
    let o = update_fails(&d, &["--publish-add", &format!("{p3}:81"), &name]);
    let err = text(&o.stderr);
    assert!(err.contains(&p3.to_string()), "{err}");
    assert_eq!(
        d.inspect(
            &name,
            "{{json .HostConfig.PortBindings}} {{json .NetworkSettings.Ports}}"
        ),
        before
    );
    assert_eq!(
        d.inspect(&name, "{{.State.Pid}} {{.State.Status}}"),
        format!("{pid} running")
    );
    assert_eq!(http_get(p2).as_deref(), Some("hello\n"));
    let body =
        format!("{{\"PublishAdd\":[{{\"ContainerPort\":\"81/tcp\",\"HostPort\":\"{p3}\"}}]}}");
    let (code, msg) = d.api("POST", &format!("/containers/{name}/update"), Some(&body));
    assert_eq!(code, 409, "{msg}");
    drop(taken);

    // Networks and labels, live too.
    let net = format!("updn{}", d.tag);
    let subnet = d.subnet_n(1);
    d.network(&net, &subnet);
    update_ok(
        &d,
        &["--network-add", &net, "--label-add", "tier=web", &name],
    );
    assert_eq!(d.inspect(&name, "{{.State.Pid}}"), pid);
    let nets = d.inspect(
        &name,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert!(nets.contains(&net), "{nets}");
    assert_eq!(d.inspect(&name, "{{index .Config.Labels \"tier\"}}"), "web");
    update_ok(&d, &["--network-rm", &net, "--label-rm", "tier", &name]);
    let nets = d.inspect(
        &name,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert!(!nets.contains(&net), "{nets}");
    assert_eq!(d.inspect(&name, "{{.State.Pid}}"), pid);
    assert_eq!(http_get(p2).as_deref(), Some("hello\n"));
    // A later step failing (a port another process holds) undoes the network it connected.
    let held = TcpListener::bind("0.0.0.0:0").unwrap();
    let p4 = held.local_addr().unwrap().port();
    update_fails(
        &d,
        &[
            "--network-add",
            &net,
            "--publish-add",
            &format!("{p4}:82"),
            &name,
        ],
    );
    let nets = d.inspect(
        &name,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert!(!nets.contains(&net), "{nets}");
    assert_eq!(d.inspect(&name, "{{.State.Pid}}"), pid);
    drop(held);
    d.ok(&["network", "rm", &net]);

    // Removing a port it does not publish: 400 with the reason, nothing changed.
    let o = update_fails(&d, &["--publish-rm", "9/udp", &name]);
    assert!(
        text(&o.stderr).contains("does not publish"),
        "{}",
        text(&o.stderr)
    );
    let until_t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until_t.to_string(),
        "--filter",
        &format!("container={name}"),
        "--filter",
        "event=update",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(events.lines().count(), 4, "{events}");
    d.ok(&["rm", "-f", &name]);
    d.finish();
}

#[test]
fn update_recreates_for_env_and_volume() {
    let Some(d) = Daemon::start("update_recreates_for_env_and_volume") else {
        return;
    };
    let name = format!("upr{}", d.tag);
    let vol = format!("uprv{}", d.tag);
    let (p1, _) = two_ports();
    start_httpd(&d, &name, p1);
    let id = d.inspect(&name, "{{.Id}}");
    let pid = d.inspect(&name, "{{.State.Pid}}");
    d.ok(&["exec", &name, "sh", "-c", "echo precious > /kept"]);
    let env_before = d.inspect(&name, "{{json .Config.Env}}");

    // A dry run says what would happen and changes nothing.
    let out = update_ok(
        &d,
        &[
            "--dry-run",
            "--env-add",
            "GREETING=hi",
            "--volume-add",
            &format!("{vol}:/data"),
            &name,
        ],
    );
    assert!(out.contains("recreate (restart: yes)"), "{out}");
    assert!(
        out.contains("Config.Env") && out.contains("GREETING=hi"),
        "{out}"
    );
    assert_eq!(d.inspect(&name, "{{json .Config.Env}}"), env_before);
    assert_eq!(d.inspect(&name, "{{.State.Pid}}"), pid);
    assert!(!d.ok(&["volume", "ls", "-q"]).contains(&vol));

    // A bind source that does not exist: refused before anything stops.
    let missing = format!("/nonexistent-berth-{}", d.tag);
    let o = update_fails(
        &d,
        &[
            "--mount-add",
            &format!("type=bind,source={missing},target=/m"),
            &name,
        ],
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("bind source path does not exist") && err.contains(&missing),
        "{err}"
    );
    let body = format!("{{\"BindsAdd\":[\"{missing}:/m\"]}}");
    let (code, msg) = d.api("POST", &format!("/containers/{name}/update"), Some(&body));
    assert_eq!(code, 400, "{msg}");
    assert_eq!(d.inspect(&name, "{{.State.Pid}}"), pid);

    // The managed recreate: new process, same id, the writable layer kept.
    update_ok(
        &d,
        &[
            "--env-add",
            "GREETING=hi",
            "--volume-add",
            &format!("{vol}:/data"),
            "--volume-add",
            &format!("{vol}e:/etc"),
            &name,
        ],
    );
    assert_eq!(
        d.inspect(&name, "{{.Id}} {{.State.Status}}"),
        format!("{id} running")
    );
    assert_ne!(d.inspect(&name, "{{.State.Pid}}"), pid);
    assert_eq!(d.ok(&["exec", &name, "cat", "/kept"]), "precious");
    assert_eq!(d.ok(&["exec", &name, "sh", "-c", "echo $GREETING"]), "hi");
    d.ok(&["exec", &name, "sh", "-c", "echo v > /data/f"]);
    let mounts = d.inspect(&name, "{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}");
    assert!(mounts.contains(&format!("{vol}:/data")), "{mounts}");
    // A volume the update created is filled from the image, as at create.
    let passwd = d.ok(&["exec", &name, "cat", "/etc/passwd"]);
    assert!(passwd.starts_with("root:"), "{passwd}");
    assert_eq!(d.inspect(&name, "{{.RestartCount}}"), "0");
    // One log across both processes.
    assert_eq!(d.ok(&["logs", &name]), "up\nup hi");
    assert_eq!(until(|| http_get(p1)).as_deref(), Some("hello\n"));
    // The docker CLI sees the same container.
    assert_eq!(
        d.ok(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("name={name}")
        ]),
        id
    );

    // A new config that cannot start (an empty tmpfs hides the shell): the old one is put
    // back and runs again, nothing of the attempt is left.
    let o = update_fails(
        &d,
        &[
            "--mount-add",
            "type=tmpfs,target=/bin",
            "--volume-add",
            &format!("{vol}r:/r"),
            "--env-add",
            "ROLL=1",
            &name,
        ],
    );
    let err = text(&o.stderr);
    assert!(err.contains("runs again with its previous config"), "{err}");
    assert_eq!(
        d.inspect(&name, "{{.Id}} {{.State.Status}}"),
        format!("{id} running")
    );
    let env = d.inspect(&name, "{{json .Config.Env}}");
    assert!(
        env.contains("GREETING=hi") && !env.contains("ROLL"),
        "{env}"
    );
    let after = d.inspect(&name, "{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}");
    assert_eq!(after, mounts);
    let vols = d.ok(&["volume", "ls", "-q"]);
    assert!(!vols.contains(&format!("{vol}r")), "{vols}");
    assert_eq!(
        d.ok(&["exec", &name, "cat", "/kept", "/data/f"]),
        "precious\nv"
    );
    assert_eq!(until(|| http_get(p1)).as_deref(), Some("hello\n"));

    // Removing a container ends its updates: 404.
    d.ok(&["rm", "-f", &name]);
    let (code, body) = d.api(
        "POST",
        &format!("/containers/{name}/update"),
        Some("{\"EnvAdd\":[\"A=1\"]}"),
    );
    assert_eq!(code, 404, "{body}");
    let o = update_fails(&d, &["--env-add", "A=1", &name]);
    assert!(
        text(&o.stderr).contains("No such container"),
        "{}",
        text(&o.stderr)
    );
    d.ok(&["volume", "rm", &vol, &format!("{vol}e")]);
    d.finish();
}

#[test]
fn update_refuses_a_second_update_while_one_runs() {
    let Some(d) = Daemon::start("update_refuses_a_second_update_while_one_runs") else {
        return;
    };
    let name = format!("upc{}", d.tag);
    // `sleep` as PID 1 ignores SIGTERM: the recreate's stop waits the 3 s stop timeout.
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--stop-timeout",
        "3",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = d.inspect(&name, "{{.Id}}");
    std::thread::scope(|s| {
        let slow = s.spawn(|| update_ok(&d, &["--env-add", "A=1", &name]));
        // The first update is stopping the container (its status stays running meanwhile).
        std::thread::sleep(std::time::Duration::from_millis(800));
        let o = update_fails(&d, &["--label-add", "x=y", &name]);
        let err = text(&o.stderr);
        assert!(err.contains("being updated by another request"), "{err}");
        let err = d.fails(&["rm", "-f", &name]);
        assert!(err.contains("is being updated"), "{err}");
        slow.join().unwrap();
    });
    assert_eq!(
        d.inspect(&name, "{{.Id}} {{.State.Status}}"),
        format!("{id} running")
    );
    assert!(d.inspect(&name, "{{json .Config.Env}}").contains("A=1"));
    assert_eq!(d.inspect(&name, "{{json .Config.Labels}}"), "{}");
    d.ok(&["rm", "-f", &name]);
    d.finish();
}

#[test]
fn a_recreate_cut_by_a_daemon_crash_comes_back_as_it_was() {
    let Some(mut d) = Daemon::start("a_recreate_cut_by_a_daemon_crash_comes_back_as_it_was") else {
        return;
    };
    let name = format!("upk{}", d.tag);
    // It ends 2 s after SIGTERM: the daemon dies while the recreate waits for that.
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "V=old",
        "busybox",
        "sh",
        "-c",
        "trap 'sleep 2; exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    let id = d.inspect(&name, "{{.Id}}");
    let pid = d.inspect(&name, "{{.State.Pid}}");
    let mut update = std::process::Command::new(&d.bin)
        .arg("-H")
        .arg(format!("unix://{}", d.sock().display()))
        .args(["update", "--env-add", "V=new", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    d.kill9();
    let _ = update.kill();
    let _ = update.wait();
    // The process ends while no daemon runs.
    std::thread::sleep(std::time::Duration::from_secs(3));
    d.spawn();
    let back = until(|| {
        let s = d.inspect(&name, "{{.Id}} {{.State.Status}}");
        s.ends_with(" running").then_some(s)
    });
    assert_eq!(back, Some(format!("{id} running")), "{}", d.log());
    assert_ne!(d.inspect(&name, "{{.State.Pid}}"), pid);
    let env = d.inspect(&name, "{{json .Config.Env}}");
    assert!(env.contains("V=old") && !env.contains("V=new"), "{env}");
    assert_eq!(d.ok(&["exec", &name, "sh", "-c", "echo $V"]), "old");
    d.ok(&["rm", "-f", &name]);
    d.finish();
}
