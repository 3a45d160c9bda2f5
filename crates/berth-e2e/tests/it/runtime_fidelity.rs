//! Runtime behaviour moby's own integration suite checks (issue 14), through the real docker
//! CLI and raw API calls: masked/read-only paths recorded and applied, `--tmpfs` over an image
//! VOLUME, Docker's network sysctls, `update` reaching the cgroup (CPU quota, PIDs, swap), a
//! kill with the StopSignal ending the restart policy, and Go-style durations in health logs.

use crate::common;

use common::cli::{rand_tag, Daemon};
use common::poll;
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Create (raw API) a container from `body` named `name`; its id.
fn create(d: &Daemon, name: &str, body: &str) -> String {
    let (code, out) = d.api(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(body),
    );
    assert_eq!(code, 201, "create {body}: {out}");
    json(&out)["Id"].as_str().unwrap().to_string()
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not strings ({e}): {v}"))
}

const DEFAULT_READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[test]
fn masked_and_readonly_paths_are_recorded_and_applied() {
    let Some(d) = Daemon::start("masked_and_readonly_paths_are_recorded_and_applied") else {
        return;
    };
    let t = rand_tag();
    let paths = |name: &str| {
        let hc = json(&d.inspect(name, "{{json .HostConfig}}"));
        (hc["MaskedPaths"].clone(), hc["ReadonlyPaths"].clone())
    };
    // Unset: dockerd records its defaults at create, so inspect shows them (was null).
    let dflt = format!("dflt{t}");
    create(&d, &dflt, r#"{"Image":"busybox","Cmd":["true"]}"#);
    let (masked, ro) = paths(&dflt);
    let masked = strings(&masked);
    assert!(
        masked.starts_with(&["/proc/asound".into(), "/proc/acpi".into()])
            && masked.contains(&"/sys/firmware".to_string()),
        "{masked:?}"
    );
    assert_eq!(strings(&ro), DEFAULT_READONLY);
    // The client's lists replace the defaults, in inspect and in the container.
    let own = format!("own{t}");
    create(
        &d,
        &own,
        r#"{"Image":"busybox","Cmd":["cat","/proc/self/mountinfo"],
            "HostConfig":{"MaskedPaths":["/proc/keys"],"ReadonlyPaths":["/proc/bus"]}}"#,
    );
    let (masked, ro) = paths(&own);
    assert_eq!(
        (strings(&masked), strings(&ro)),
        (
            vec!["/proc/keys".to_string()],
            vec!["/proc/bus".to_string()]
        )
    );
    let mountinfo = d.ok(&["start", "-a", &own]);
    let mounted = |p: &str| mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(p));
    assert!(mounted("/proc/keys") && mounted("/proc/bus"), "{mountinfo}");
    assert!(
        !mounted("/proc/timer_list") && !mounted("/proc/sys"),
        "{mountinfo}"
    );
    assert_eq!(paths(&own), (masked, ro), "changed by the start");
    // Empty lists stay empty; `systempaths=unconfined` (the docker CLI turns it into empty
    // lists, an API client may send the option itself) empties them; privileged has none.
    let none = format!("none{t}");
    create(
        &d,
        &none,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"MaskedPaths":[],"ReadonlyPaths":[]}}"#,
    );
    assert_eq!(paths(&none), (serde_json::json!([]), serde_json::json!([])));
    let unconf = format!("unconf{t}");
    create(
        &d,
        &unconf,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"SecurityOpt":["systempaths=unconfined"]}}"#,
    );
    assert_eq!(
        paths(&unconf),
        (serde_json::json!([]), serde_json::json!([]))
    );
    let cli = format!("cli{t}");
    d.ok(&[
        "create",
        "--name",
        &cli,
        "--security-opt",
        "systempaths=unconfined",
        "busybox",
    ]);
    assert_eq!(paths(&cli), (serde_json::json!([]), serde_json::json!([])));
    let priv_ = format!("priv{t}");
    d.ok(&["create", "--name", &priv_, "--privileged", "busybox"]);
    assert_eq!(paths(&priv_), (Value::Null, Value::Null));
    d.ok(&["rm", &dflt, &own, &none, &unconf, &cli, &priv_]);
    d.finish();
}

#[test]
fn tmpfs_replaces_an_image_volume_and_is_not_listed() {
    let Some(d) = Daemon::start("tmpfs_replaces_an_image_volume_and_is_not_listed") else {
        return;
    };
    let name = format!("tmpvol{}", rand_tag());
    // `-v /foo` is an anonymous volume (Config.Volumes); `--tmpfs /foo` replaces it.
    d.ok(&[
        "create",
        "--name",
        &name,
        "-v",
        "/foo",
        "--tmpfs",
        "/foo",
        "-v",
        "/bar",
        "--tmpfs",
        "/bar:size=999",
        "busybox",
        "sh",
        "-c",
        "mount | grep ' /foo ' | grep tmpfs && mount | grep ' /bar ' | grep tmpfs",
    ]);
    // dockerd lists no `--tmpfs` mount in Mounts (berth listed both).
    assert_eq!(d.inspect(&name, "{{json .Mounts}}"), "[]");
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]),
        "",
        "an anonymous volume was made"
    );
    d.ok(&["start", "-a", &name]);
    assert_eq!(d.inspect(&name, "{{.State.ExitCode}}"), "0");
    d.ok(&["rm", &name]);
    // A `--mount type=tmpfs` is listed, as dockerd does.
    let listed = format!("tmpmnt{}", rand_tag());
    d.ok(&[
        "create",
        "--name",
        &listed,
        "--mount",
        "type=tmpfs,dst=/baz",
        "busybox",
    ]);
    let mounts = json(&d.inspect(&listed, "{{json .Mounts}}"));
    assert_eq!(
        (
            mounts[0]["Type"].as_str(),
            mounts[0]["Destination"].as_str()
        ),
        (Some("tmpfs"), Some("/baz")),
        "{mounts}"
    );
    d.ok(&["rm", &listed]);
    d.finish();
}

#[test]
fn own_network_namespace_gets_dockers_sysctls() {
    let Some(d) = Daemon::start("own_network_namespace_gets_dockers_sysctls") else {
        return;
    };
    let read = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend([
            "busybox",
            "cat",
            "/proc/sys/net/ipv4/ping_group_range",
            "/proc/sys/net/ipv4/ip_unprivileged_port_start",
        ]);
        d.ok(&a)
    };
    // Before: the kernel's defaults ("1\t0", "1024").
    let docker = "0\t2147483647\n0";
    assert_eq!(read(&[]), docker, "bridge");
    assert_eq!(read(&["--network", "none"]), docker, "none");
    assert_eq!(read(&["-u", "1000:1000"]), docker, "as a user");
    // The user's --sysctl wins.
    assert_eq!(
        read(&["--sysctl", "net.ipv4.ip_unprivileged_port_start=1024"]),
        "0\t2147483647\n1024"
    );
    // No namespace of its own: the host's values, untouched.
    let host = |f: &str| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{f}")).unwrap();
    let want = format!(
        "{}\n{}",
        host("ping_group_range").trim_end(),
        host("ip_unprivileged_port_start").trim_end()
    );
    assert_eq!(read(&["--network", "host"]), want, "host");
    d.finish();
}

#[test]
fn update_reaches_the_cgroup_as_dockerd() {
    let Some(d) = Daemon::start("update_reaches_the_cgroup_as_dockerd") else {
        return;
    };
    let name = format!("upd{}", rand_tag());
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-m",
        "200m",
        "--pids-limit",
        "32",
        "busybox",
        "top",
    ]);
    let cat = |f: &str| d.ok(&["exec", &name, "cat", &format!("/sys/fs/cgroup/{f}")]);
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (quota_file, pids_file) = if v2 {
        ("cpu.max", "pids.max")
    } else {
        ("cpu/cpu.cfs_quota_us", "pids/pids.max")
    };
    let quota = || {
        cat(quota_file)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    // CPU quota: set, lowered, and lifted with -1 (-1 was not written before).
    d.ok(&["update", "--cpu-quota", "15000", &name]);
    assert_eq!(quota(), "15000");
    d.ok(&["update", "--cpu-quota", "10000", &name]);
    assert_eq!(quota(), "10000");
    d.ok(&["update", "--cpu-quota", "-1", &name]);
    assert_eq!(quota(), if v2 { "max" } else { "-1" });
    assert_eq!(d.inspect(&name, "{{.HostConfig.CpuQuota}}"), "-1");
    // PIDs: an API before 1.40 cannot change it; 0 and any negative lift it (recorded as 0).
    let update = |path: &str, body: &str| {
        let (code, out) = d.api(
            "POST",
            &format!("{path}/containers/{name}/update"),
            Some(body),
        );
        assert_eq!(code, 200, "{body}: {out}");
    };
    update("/v1.39", r#"{"PidsLimit":16}"#);
    assert_eq!(d.inspect(&name, "{{.HostConfig.PidsLimit}}"), "32");
    assert_eq!(cat(pids_file), "32");
    update("", r#"{"PidsLimit":16}"#);
    assert_eq!(cat(pids_file), "16");
    update("", r#"{"PidsLimit":-2}"#);
    assert_eq!(d.inspect(&name, "{{.HostConfig.PidsLimit}}"), "0");
    assert_eq!(cat(pids_file), "max");
    // Swap: Info tells the truth about the host, and --memory-swap reaches the cgroup.
    let swap = if v2 {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let g = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap()
            .to_string();
        std::path::Path::new("/sys/fs/cgroup")
            .join(g.trim_start_matches('/'))
            .join("memory.swap.max")
            .exists()
    } else {
        std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    };
    assert_eq!(d.ok(&["info", "-f", "{{.SwapLimit}}"]), swap.to_string());
    if swap {
        d.ok(&["update", "-m", "300m", "--memory-swap", "500m", &name]);
        let (limit, memsw) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            (
                "memory/memory.limit_in_bytes",
                "memory/memory.memsw.limit_in_bytes",
            )
        };
        assert_eq!(cat(limit), (300u64 << 20).to_string());
        let want: u64 = if v2 { 200 << 20 } else { 500 << 20 };
        assert_eq!(cat(memsw), want.to_string());
    }
    d.ok(&["rm", "-f", &name]);
    d.finish();
}

#[test]
fn kill_with_the_stop_signal_ends_the_restart_policy() {
    let Some(d) = Daemon::start("kill_with_the_stop_signal_ends_the_restart_policy") else {
        return;
    };
    let t = rand_tag();
    let run = |name: &str, stop_signal: &str| {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            "always",
            "--stop-signal",
            stop_signal,
            "busybox",
            "top",
        ]);
    };
    let state = |name: &str| d.inspect(name, "{{.State.Status}} {{.RestartCount}}");
    // Another signal than the StopSignal: the policy brings it back.
    let other = format!("other{t}");
    run(&other, "CONT");
    d.ok(&["kill", "-s", "TERM", &other]);
    poll(30, || (state(&other) == "running 1").then_some(()))
        .unwrap_or_else(|| panic!("not restarted: {}", state(&other)));
    // The StopSignal: a manual stop, as `docker stop` (berth restarted it).
    let same = format!("same{t}");
    run(&same, "TERM");
    d.ok(&["kill", "-s", "TERM", &same]);
    d.ok(&["wait", &same]);
    // `other` came back within 100ms of its exit; give `same` seconds and it stays down.
    let restarted = poll(3, || (state(&same) != "exited 0").then(|| state(&same)));
    assert_eq!(
        restarted, None,
        "restarted after a kill with its StopSignal"
    );
    d.ok(&["rm", "-f", &other, &same]);
    d.finish();
}

#[test]
fn health_timeout_is_printed_as_a_go_duration() {
    let Some(d) = Daemon::start("health_timeout_is_printed_as_a_go_duration") else {
        return;
    };
    let name = format!("hto{}", rand_tag());
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "sleep 60",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "50ms",
        "--health-retries",
        "1",
        "busybox",
        "top",
    ]);
    // Before: "Health check exceeded timeout (0.05s)".
    let log = poll(30, || {
        let log = d.inspect(&name, "{{json .State.Health.Log}}");
        log.contains("exceeded timeout").then_some(log)
    })
    .expect("no health check timed out");
    assert!(
        log.contains("\"Health check exceeded timeout (50ms)\""),
        "{log}"
    );
    d.ok(&["rm", "-f", &name]);
    d.finish();
}

/// Between the restarts of an on-failure policy the container is `restarting`, never a
/// transient `exited` a waiting client takes for the end (moby's TestUpdateRestartPolicy
/// stopped at RestartCount 4 of 5 on one). Polled through the raw API as fast as it answers.
#[test]
fn restarts_never_show_a_transient_exited() {
    let Some(d) = Daemon::start("restarts_never_show_a_transient_exited") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rs-flap",
        "--restart",
        "on-failure:4",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    let mut early = vec![];
    let done = poll(120, || {
        let (_, body) = d.api("GET", "/containers/rs-flap/json", None);
        let c = json(&body);
        let (status, count) = (c["State"]["Status"].clone(), c["RestartCount"].as_i64()?);
        if status == "exited" {
            if count < 4 {
                early.push(count);
            } else {
                return Some(count);
            }
        }
        None
    });
    assert_eq!(done, Some(4), "the policy ran out");
    assert!(early.is_empty(), "seen exited at restart counts {early:?}");
    d.finish();
}

/// `--mount type=volume,volume-subpath=x` mounts only that path of the volume (it was ignored:
/// the whole volume was mounted; docker-py 7.2's test_create_with_subpath_volume_mount); a
/// path leaving the volume is refused at create, a missing one or a symlink at start.
#[test]
fn volume_subpath_mounts_only_that_path() {
    let Some(d) = Daemon::start("volume_subpath_mounts_only_that_path") else {
        return;
    };
    let vol = format!("subp-{}", rand_tag());
    d.ok(&["volume", "create", &vol]);
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/v"),
        "busybox",
        "sh",
        "-c",
        "mkdir -p /v/sub && echo inside > /v/sub/f && echo top > /v/top && ln -s / /v/escape",
    ]);
    let m = |sub: &str| format!("type=volume,source={vol},target=/m,volume-subpath={sub}");
    let out = d.ok(&["run", "--rm", "--mount", &m("sub"), "busybox", "ls", "/m"]);
    assert_eq!(out.trim(), "f", "only the subpath is mounted");
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        &m("sub/f"),
        "busybox",
        "cat",
        "/m",
    ]);
    assert_eq!(out.trim(), "inside");
    let err = d.fails(&["create", "--mount", &m("../x"), "busybox", "true"]);
    assert!(
        err.contains("subpath must be a relative path within the volume"),
        "{err}"
    );
    let err = d.fails(&["run", "--rm", "--mount", &m("missing"), "busybox", "true"]);
    assert!(err.contains("cannot access path"), "{err}");
    let err = d.fails(&[
        "run",
        "--rm",
        "--mount",
        &m("escape"),
        "busybox",
        "ls",
        "/m",
    ]);
    assert!(err.contains("contain no symlinks"), "{err}");
    d.ok(&["volume", "rm", &vol]);
    d.finish();
}

/// The primary group stays among the supplementary groups (moby's getUser puts it first), so
/// `--user u:g --group-add x` keeps `g` after setgroups; before, only `x` was left.
#[test]
fn primary_gid_is_kept_among_the_supplementary_groups() {
    let Some(d) = Daemon::start("primary_gid_is_kept_among_the_supplementary_groups") else {
        return;
    };
    let out = d.ok(&[
        "run",
        "--rm",
        "--user",
        "1000:1000",
        "--group-add",
        "5",
        "busybox",
        "id",
        "-G",
    ]);
    let mut groups: Vec<&str> = out.split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1000", "5"], "{out}");
    let out = d.ok(&["run", "--rm", "--user", "1000:1000", "busybox", "id", "-G"]);
    assert_eq!(out, "1000");
}
