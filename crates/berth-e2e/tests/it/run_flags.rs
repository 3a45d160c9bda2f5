//! Run flags end to end with the real docker CLI (and raw API calls through curl) against a
//! berth daemon on a temp root, socket, bridge and nft table: `--init`, legacy `--link`,
//! MAC addresses (endpoint and the old container-wide field), health start interval.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{rand_tag, Daemon, Opts};

/// A daemon (with `daemon_json` as its config file), bridge options in the environment.
fn start(test: &str, daemon_json: Option<&str>) -> Option<Daemon> {
    start_with(test, daemon_json, false)
}

fn start_with(test: &str, daemon_json: Option<&str>, via_flags: bool) -> Option<Daemon> {
    Daemon::start_opts(
        test,
        Opts {
            cmds: &["curl"],
            daemon_json,
            via_flags,
            busybox: true,
            ..Default::default()
        },
    )
}

#[test]
fn init_runs_docker_init_as_pid1_and_forwards_signals() {
    let Some(d) = start("init_runs_docker_init_as_pid1_and_forwards_signals", None) else {
        return;
    };
    let ps = d.ok(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"]);
    let rows: Vec<(String, String)> = ps
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    assert!(
        rows.contains(&("1".into(), "docker-init".into())),
        "PID 1 is not docker-init:\n{ps}"
    );
    assert!(
        rows.iter().any(|(pid, comm)| comm == "ps" && pid != "1"),
        "the command is not init's child:\n{ps}"
    );
    // busybox sleep as PID 1 ignores SIGTERM; under init the signal reaches it and it dies of
    // it, so the container exits 128+15.
    let name = format!("init{}", rand_tag());
    d.ok(&[
        "run", "-d", "--init", "--name", &name, "busybox", "sleep", "600",
    ]);
    assert_eq!(d.inspect(&name, "{{.HostConfig.Init}}"), "true");
    assert_eq!(d.inspect(&name, "{{.Path}}"), "sleep");
    d.ok(&["kill", "-s", "TERM", &name]);
    assert_eq!(d.ok(&["wait", &name]), "143");
    d.ok(&["rm", &name]);
}

#[test]
fn init_daemon_default_and_missing_binary() {
    let Some(d) = start(
        "init_daemon_default_and_missing_binary",
        Some(r#"{"init": true}"#),
    ) else {
        return;
    };
    assert_eq!(
        d.ok(&["run", "--rm", "busybox", "cat", "/proc/1/comm"]),
        "docker-init"
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--init=false",
            "busybox",
            "cat",
            "/proc/1/comm"
        ]),
        "cat"
    );
    drop(d);
    let Some(d) = start(
        "init_daemon_default_and_missing_binary",
        Some(r#"{"init-path": "/nonexistent/berth-init"}"#),
    ) else {
        return;
    };
    let o = d.docker(&["run", "--rm", "--init", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/nonexistent/berth-init") && err.contains("init-path"),
        "{err}"
    );
    // Without --init the setting does not matter.
    d.ok(&["run", "--rm", "busybox", "true"]);
}

#[test]
fn legacy_links_env_hosts_inspect_and_removal() {
    let Some(d) = start("legacy_links_env_hosts_inspect_and_removal", None) else {
        return;
    };
    let tag = rand_tag();
    let (tgt, child, other) = (format!("tgt{tag}"), format!("ch{tag}"), format!("ot{tag}"));
    d.ok(&[
        "run", "-d", "--name", &tgt, "-e", "FOO=1", "--expose", "80", "busybox", "sleep", "600",
    ]);
    let ip = d.inspect(&tgt, "{{.NetworkSettings.IPAddress}}");
    let hostname = d.inspect(&tgt, "{{.Config.Hostname}}");
    assert!(!ip.is_empty());
    let out = d.ok(&[
        "run",
        "--rm",
        "--name",
        &child,
        "--link",
        &format!("{tgt}:db"),
        "-e",
        "DB_ENV_FOO=mine",
        "busybox",
        "sh",
        "-c",
        "env; cat /etc/hosts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        format!("DB_NAME=/{child}/db"),
        format!("DB_PORT=tcp://{ip}:80"),
        format!("DB_PORT_80_TCP=tcp://{ip}:80"),
        format!("DB_PORT_80_TCP_ADDR={ip}"),
        "DB_PORT_80_TCP_PORT=80".to_string(),
        "DB_PORT_80_TCP_PROTO=tcp".to_string(),
        // The container's own env wins over a link variable.
        "DB_ENV_FOO=mine".to_string(),
        format!("{ip}\tdb {hostname} {tgt}"),
    ] {
        assert!(
            lines.contains(&want.as_str()),
            "{want:?} missing in:\n{out}"
        );
    }
    // Inspect shows Docker's form; removing the link leaves both containers.
    d.ok(&[
        "create",
        "--name",
        &other,
        "--link",
        &format!("{tgt}:db"),
        "busybox",
        "true",
    ]);
    assert_eq!(
        d.inspect(&other, "{{json .HostConfig.Links}}"),
        format!("[\"/{tgt}:/{other}/db\"]")
    );
    let link = format!("{other}/db");
    let tgt_id = d.inspect(&tgt, "{{.Id}}");
    let names = || {
        d.ok(&[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("id={tgt_id}"),
            "--format",
            "{{.Names}}",
        ])
    };
    assert_eq!(names(), format!("{tgt},{link}"));
    d.ok(&["rm", "--link", &link]);
    assert_eq!(names(), tgt);
    assert_eq!(d.inspect(&other, "{{json .HostConfig.Links}}"), "null");
    let o = d.docker(&["rm", "--link", &link]);
    assert!(!o.status.success(), "removing a removed link succeeded");
    assert_eq!(d.inspect(&tgt, "{{.State.Running}}"), "true");
    // A link to an unknown container is a bad request at create (not a 404: the CLI would
    // read that as a missing image and try to pull).
    let o = d.docker(&[
        "run",
        "--rm",
        "--link",
        &format!("nope{tag}:x"),
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains(&format!("could not get container for nope{tag}")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (code, _) = d.api(
        "POST",
        "/v1.50/containers/create",
        Some(&format!(
            r#"{{"Image":"busybox","HostConfig":{{"Links":["nope{tag}:x"]}}}}"#
        )),
    );
    assert_eq!(code, 400);
}

#[test]
fn mac_address_from_endpoint_and_container_wide_field() {
    let Some(d) = start("mac_address_from_endpoint_and_container_wide_field", None) else {
        return;
    };
    // The CLI puts --mac-address in the endpoint settings.
    let mac = "02:42:ac:11:00:0a";
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--mac-address",
            mac,
            "busybox",
            "cat",
            "/sys/class/net/eth0/address"
        ]),
        mac
    );
    // docker-py still sends the container-wide field of APIs before 1.44.
    let mac = "02:42:ac:11:00:0b";
    let (code, body) = d.api(
        "POST",
        "/v1.53/containers/create",
        Some(&format!(
            r#"{{"Image":"busybox","Cmd":["sleep","600"],"MacAddress":"{mac}"}}"#
        )),
    );
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["Id"].as_str().unwrap().to_string();
    assert!(v["Warnings"][0].as_str().unwrap().contains("deprecated"));
    d.ok(&["start", &id]);
    assert_eq!(d.inspect(&id, "{{.NetworkSettings.MacAddress}}"), mac);
    assert_eq!(
        d.inspect(&id, "{{.NetworkSettings.Networks.bridge.MacAddress}}"),
        mac
    );
    assert_eq!(
        d.ok(&["exec", &id, "cat", "/sys/class/net/eth0/address"]),
        mac
    );
    d.ok(&["rm", "-f", &id]);
    let (code, body) = d.api(
        "POST",
        "/v1.53/containers/create",
        Some(r#"{"Image":"busybox","MacAddress":"01:00:00:00:00:01"}"#),
    );
    assert_eq!(code, 400, "{body}");
}

#[test]
fn health_start_interval_probes_fast_during_start_period() {
    let Some(d) = start(
        "health_start_interval_probes_fast_during_start_period",
        None,
    ) else {
        return;
    };
    let name = format!("hsi{}", rand_tag());
    // With only the 1h interval the first probe would come after an hour.
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "--health-start-period",
        "1h",
        "--health-start-interval",
        "100ms",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(
        d.inspect(&name, "{{.Config.Healthcheck.StartInterval}}"),
        "100ms"
    );
    let mut last = String::new();
    for _ in 0..120 {
        last = d.inspect(&name, "{{.State.Health.Status}}");
        if last == "healthy" {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        last,
        "healthy",
        "{}",
        d.inspect(&name, "{{json .State.Health}}")
    );
    // A start interval under 1ms is refused as dockerd does.
    let (code, body) = d.api(
        "POST",
        "/v1.53/containers/create",
        Some(r#"{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"StartInterval":1000}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("StartInterval in Healthcheck cannot be less than 1ms"),
        "{body}"
    );
    // Clients of API 1.43 and older could not send it: dropped, as dockerd does.
    let (code, body) = d.api(
        "POST",
        "/v1.43/containers/create",
        Some(r#"{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"StartInterval":1000}}"#),
    );
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["Id"].as_str().unwrap();
    assert_eq!(d.inspect(id, "{{.Config.Healthcheck.StartInterval}}"), "0s");
}

#[test]
fn berth_cli_sends_init_links_mac_and_start_interval() {
    let Some(d) = start("berth_cli_sends_init_links_mac_and_start_interval", None) else {
        return;
    };
    let berth = |args: &[&str]| -> String {
        let o = Command::new(&d.bin)
            .arg("-H")
            .arg(format!("unix://{}", d.sock().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim_end().to_string()
    };
    let tgt = format!("bt{}", rand_tag());
    d.ok(&["run", "-d", "--name", &tgt, "busybox", "sleep", "600"]);
    let out = berth(&[
        "run",
        "--rm",
        "--init",
        "--link",
        &format!("{tgt}:db"),
        "--mac-address",
        "02:42:ac:11:00:0c",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/comm /sys/class/net/eth0/address; echo $DB_NAME",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "docker-init");
    assert_eq!(lines[1], "02:42:ac:11:00:0c");
    assert!(lines[2].ends_with("/db"), "{out}");
    let name = format!("bh{}", rand_tag());
    berth(&[
        "create",
        "--name",
        &name,
        "--health-cmd",
        "true",
        "--health-start-interval",
        "2s",
        "busybox",
    ]);
    assert_eq!(
        d.inspect(&name, "{{.Config.Healthcheck.StartInterval}}"),
        "2s"
    );
}

#[test]
fn default_bridge_subnet_and_table_from_daemon_flags() {
    let Some(d) = start_with(
        "default_bridge_subnet_and_table_from_daemon_flags",
        None,
        true,
    ) else {
        return;
    };
    let name = format!("fl{}", rand_tag());
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sleep",
        "600",
    ]);
    let ip = d.inspect(&name, "{{.NetworkSettings.IPAddress}}");
    let prefix = d.subnet.trim_end_matches(".0/24");
    assert!(
        ip.starts_with(&format!("{prefix}.")),
        "{ip} not in {}",
        d.subnet
    );
    assert_eq!(
        d.inspect(&name, "{{.NetworkSettings.Gateway}}"),
        format!("{prefix}.1")
    );
    let link = Command::new("ip")
        .args(["-o", "link", "show", "master", &d.bridge])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&link.stdout).lines().count(), 1);
    let nft = Command::new("nft")
        .args(["list", "table", "inet", &d.table])
        .output()
        .unwrap();
    assert!(
        nft.status.success(),
        "no nft table {}: {}",
        d.table,
        String::from_utf8_lossy(&nft.stderr)
    );
}

#[test]
fn endpoint_links_resolve_only_for_the_linking_container() {
    let Some(d) = start(
        "endpoint_links_resolve_only_for_the_linking_container",
        None,
    ) else {
        return;
    };
    let tag = rand_tag();
    let (net, c1, c2, up) = (
        format!("rfn{tag}"),
        format!("l1{tag}"),
        format!("l2{tag}"),
        format!("up{tag}"),
    );
    d.ok(&["network", "create", &net]);
    // On a user network the CLI sends --link as the endpoint's Links; the target may come later.
    let link = format!("{up}:bar");
    d.ok(&[
        "run",
        "-d",
        "--network",
        &net,
        "--name",
        &c1,
        "--link",
        &link,
        "busybox",
        "sleep",
        "600",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--network",
        &net,
        "--name",
        &c2,
        "busybox",
        "sleep",
        "600",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--network",
        &net,
        "--name",
        &up,
        "busybox",
        "sleep",
        "600",
    ]);
    let fmt = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
    let up_ip = d.inspect(&up, &fmt);
    assert_eq!(
        d.inspect(
            &c1,
            &format!("{{{{json (index .NetworkSettings.Networks \"{net}\").Links}}}}")
        ),
        format!("[\"{link}\"]")
    );
    let out = d.ok(&["exec", &c1, "nslookup", "bar"]);
    assert!(out.contains(&up_ip), "{out}");
    let o = d.docker(&["exec", &c2, "nslookup", "bar"]);
    assert!(
        !o.status.success(),
        "bar resolved for a container without the link"
    );
    for c in [&c1, &c2, &up] {
        d.ok(&["rm", "-f", c]);
    }
    d.ok(&["network", "rm", &net]);
}

#[test]
fn link_target_restart_updates_the_linking_hosts_file() {
    let Some(d) = start("link_target_restart_updates_the_linking_hosts_file", None) else {
        return;
    };
    let tag = rand_tag();
    let (tgt, par, filler) = (format!("rt{tag}"), format!("rp{tag}"), format!("rf{tag}"));
    d.ok(&["run", "-d", "--name", &tgt, "busybox", "sleep", "600"]);
    let old_ip = d.inspect(&tgt, "{{.NetworkSettings.IPAddress}}");
    let link = format!("{tgt}:db");
    d.ok(&[
        "run", "-d", "--name", &par, "--link", &link, "busybox", "sleep", "600",
    ]);
    d.ok(&["stop", "-t", "0", &tgt]);
    // Take the old address so the target comes back on another one.
    d.ok(&["run", "-d", "--name", &filler, "busybox", "sleep", "600"]);
    d.ok(&["start", &tgt]);
    let new_ip = d.inspect(&tgt, "{{.NetworkSettings.IPAddress}}");
    assert_ne!(old_ip, new_ip, "precondition: the target moved");
    let hosts = d.ok(&["exec", &par, "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(&format!("{new_ip}\tdb "))),
        "{hosts}"
    );
    assert!(
        !hosts
            .lines()
            .any(|l| l.starts_with(&format!("{old_ip}\tdb "))),
        "{hosts}"
    );
}

#[test]
fn berth_cli_log_opt_without_log_driver_applies_to_the_default_driver() {
    // docker sends `--log-opt` alone as LogConfig {Type: "", Config}: the daemon's default
    // driver (json-file) with those options, so the log rotates at max-size.
    let Some(d) = start(
        "berth_cli_log_opt_without_log_driver_applies_to_the_default_driver",
        None,
    ) else {
        return;
    };
    let name = format!("lo{}", rand_tag());
    let o = Command::new(&d.bin)
        .arg("-H")
        .arg(format!("unix://{}", d.sock().display()))
        .args(["run", "--name", &name, "--log-opt", "max-size=1k"])
        .args(["--log-opt", "max-file=2", "busybox", "sh", "-c"])
        .arg(
            "i=0; while [ $i -lt 100 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        d.inspect(&name, "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{"max-file":"2","max-size":"1k"}}"#
    );
    let log = d.inspect(&name, "{{.LogPath}}");
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size <= 1024, "{log} has {size} bytes, over max-size");
    assert!(
        std::path::Path::new(&format!("{log}.1")).exists(),
        "not rotated"
    );
    assert!(
        !std::path::Path::new(&format!("{log}.2")).exists(),
        "max-file=2 exceeded"
    );
    // The last lines are still there to read.
    let logs = d.ok(&["logs", "--tail", "1", &name]);
    assert_eq!(logs, "line-99-xxxxxxxxxxxxxxxxxxxxxxxx");
}
