//! Docker fidelity at the edges (issue 14), through the real docker CLI and raw API calls:
//! routes moby's own harness needs (`/plugins`), loopback up without a network, missing
//! working directories created, the JSON shapes Go and old clients send (`buildargs=null`,
//! `Cmd` as a string), resize of a non-tty container, stats as dockerd reports them, and the
//! default `ShmSize` in inspect.

use crate::common;

use common::cli::Daemon;
use serde_json::Value;

/// Now, as the `until` of an events query: the answer is the backlog and the stream ends.
fn until_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// Every event so far matching `filter`, one `format`ted line each (trailing blanks trimmed).
pub(crate) fn events_so_far(d: &Daemon, filter: &str, format: &str) -> Vec<String> {
    let until = until_now();
    let out = d.ok(&[
        "events", "--since", "0", "--until", &until, "--filter", filter, "--format", format,
    ]);
    out.lines().map(|l| l.trim_end().to_string()).collect()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn plugins_list_is_empty_and_inspect_is_404() {
    let Some(d) = Daemon::start_opts(
        "plugins_list_is_empty_and_inspect_is_404",
        common::cli::Opts {
            busybox: false,
            ..Default::default()
        },
    ) else {
        return;
    };
    // Before: 404 "page not found: /plugins" (moby's integration harness stops there).
    let (code, body) = d.api("GET", "/plugins", None);
    assert_eq!((code, json(&body)), (200, serde_json::json!([])), "{body}");
    let (code, body) = d.api("GET", "/v1.41/plugins?filters=%7B%7D", None);
    assert_eq!((code, json(&body)), (200, serde_json::json!([])), "{body}");
    let (code, body) = d.api("GET", "/plugins/nosuch/json", None);
    assert_eq!(code, 404, "{body}");
    assert_eq!(json(&body)["message"], "plugin \"nosuch\" not found");
    // The docker CLI's own listing works (it printed the 404 before).
    let out = d.ok(&["plugin", "ls", "-q"]);
    assert_eq!(out, "");
    d.finish();
}

#[test]
fn loopback_is_up_without_a_network_and_on_a_bridge() {
    let Some(d) = Daemon::start("loopback_is_up_without_a_network_and_on_a_bridge") else {
        return;
    };
    let probe = "ip link show lo; ping -c1 -W5 127.0.0.1";
    // Before: lo DOWN, ping "Network is unreachable".
    for net in ["none", "bridge"] {
        let out = d.ok(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "sh",
            "-c",
            probe,
        ]);
        assert!(out.contains("LOOPBACK,UP"), "{net}: {out}");
        assert!(out.contains("1 packets received"), "{net}: {out}");
    }
    // The `none` sandbox is the container's own and goes with it, stopped or removed.
    let id = d.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"]);
    let netns = d.dir.path().join("run/netns").join(&id);
    assert!(netns.exists(), "no netns at {}", netns.display());
    let ns_mount = netns.display().to_string();
    assert!(
        d.mounts_under_root().contains(&ns_mount),
        "netns not mounted"
    );
    d.ok(&["stop", "-t", "0", &id]);
    assert!(!netns.exists(), "netns left after stop");
    d.ok(&["start", &id]);
    assert!(netns.exists());
    d.ok(&["rm", "-f", &id]);
    assert!(!netns.exists(), "netns left after rm -f");
    assert!(!d.mounts_under_root().contains(&ns_mount));
    // Nor did the --rm runs above leave one.
    let left: Vec<_> = std::fs::read_dir(d.dir.path().join("run/netns"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "netns left: {left:?}");
    d.assert_clean(&id);
    d.finish();
}

#[test]
fn missing_working_directory_is_created_root_owned() {
    let Some(d) = Daemon::start("missing_working_directory_is_created_root_owned") else {
        return;
    };
    // Before: "failed to unix syscall: unknown" (exit 128).
    let out = d.ok(&[
        "run",
        "--rm",
        "-u",
        "1000:1000",
        "-w",
        "/missing/deep",
        "busybox",
        "sh",
        "-c",
        "pwd; stat -c '%u:%g %a' /missing /missing/deep",
    ]);
    assert_eq!(out, "/missing/deep\n0:0 755\n0:0 755");
    // An image WORKDIR that does not exist in its rootfs.
    let src = d.ok(&["create", "busybox", "true"]);
    d.ok(&["commit", "--change", "WORKDIR /nowhere", &src, "fid-wd:1"]);
    assert_eq!(d.ok(&["run", "--rm", "fid-wd:1", "pwd"]), "/nowhere");
    // A file in the way is refused with dockerd's words, not run elsewhere.
    let err = d.fails(&["run", "--rm", "-w", "/etc/passwd", "busybox", "pwd"]);
    assert!(
        err.contains("Cannot mkdir: /etc/passwd is not a directory"),
        "{err}"
    );
    d.ok(&["rm", &src]);
    d.ok(&["rmi", "fid-wd:1"]);
    d.finish();
}

/// A raw API call with a binary body of `ctype` (curl through the daemon's socket).
fn api_bytes(d: &Daemon, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    let f = d.dir.path().join("fidelity-body");
    std::fs::write(&f, body).unwrap();
    let o = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg("--unix-socket")
        .arg(d.sock())
        .args(["-H", &format!("Content-Type: {ctype}")])
        .arg("--data-binary")
        .arg(format!("@{}", f.display()))
        .arg(format!("http://localhost{path}"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (text, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), text.to_string())
}

#[test]
fn build_accepts_null_json_query_params() {
    let Some(d) = Daemon::start("build_accepts_null_json_query_params") else {
        return;
    };
    let mut b = tar::Builder::new(Vec::new());
    let df = b"FROM busybox\nLABEL fid=1\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let ctx = b.into_inner().unwrap();
    // What Go's client sends with no build args, labels or cache sources. Before: 400
    // "invalid buildargs (want a JSON object of strings): invalid type: null".
    let (code, body) = api_bytes(
        &d,
        "POST",
        "/v1.41/build?t=fid-null%3A1&buildargs=null&labels=null&cachefrom=null&ulimits=null",
        "application/x-tar",
        &ctx,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Successfully tagged fid-null:1"), "{body}");
    assert_eq!(
        d.inspect("fid-null:1", "{{index .Config.Labels \"fid\"}}"),
        "1"
    );
    d.ok(&["rmi", "fid-null:1"]);
    d.finish();
}

#[test]
fn cmd_entrypoint_and_shell_as_strings() {
    let Some(d) = Daemon::start("cmd_entrypoint_and_shell_as_strings") else {
        return;
    };
    // Old clients send strslice fields as one string. Before: 400 "invalid type: string".
    let (code, body) = d.api(
        "POST",
        "/v1.24/containers/create?name=fid-str",
        Some(
            r#"{"Image":"busybox","Entrypoint":"/bin/echo","Cmd":"hello world","Shell":"/bin/sh"}"#,
        ),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        d.inspect(
            "fid-str",
            "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Shell}}"
        ),
        r#"["/bin/echo"] ["hello world"] ["/bin/sh"]"#
    );
    assert_eq!(d.ok(&["start", "-a", "fid-str"]), "hello world");
    // The same in a commit's config.
    let (code, body) = d.api(
        "POST",
        "/v1.24/commit?container=fid-str&repo=fid-str-img&tag=1",
        Some(r#"{"Cmd":"bye"}"#),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        d.inspect("fid-str-img:1", "{{json .Config.Cmd}}"),
        r#"["bye"]"#
    );
    d.ok(&["rm", "fid-str"]);
    d.ok(&["rmi", "fid-str-img:1"]);
    d.finish();
}

#[test]
fn resize_of_a_non_tty_container_is_ignored() {
    let Some(d) = Daemon::start("resize_of_a_non_tty_container_is_ignored") else {
        return;
    };
    let plain = d.ok(&["run", "-d", "busybox", "sleep", "60"]);
    let tty = d.ok(&["run", "-d", "-t", "busybox", "sleep", "60"]);
    // Before: 500 for the non-tty container.
    let (code, body) = d.api(
        "POST",
        &format!("/containers/{plain}/resize?h=30&w=100"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    // A tty container is still sized.
    let (code, body) = d.api(
        "POST",
        &format!("/containers/{tty}/resize?h=30&w=101"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let size = d.ok(&["exec", "-t", &tty, "stty", "size"]);
    assert!(!size.is_empty());
    // An exec without a tty, as for containers.
    let (code, body) = d.api(
        "POST",
        &format!("/containers/{plain}/exec"),
        Some(r#"{"Cmd":["sleep","30"]}"#),
    );
    assert_eq!(code, 201, "{body}");
    let exec = json(&body)["Id"].as_str().unwrap().to_string();
    let (code, body) = d.api(
        "POST",
        &format!("/exec/{exec}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = d.api("POST", &format!("/exec/{exec}/resize?h=30&w=100"), None);
    assert_eq!(code, 200, "{body}");
    // A stopped container still says so (409), as dockerd.
    d.ok(&["stop", "-t", "0", &plain]);
    let (code, body) = d.api("POST", &format!("/containers/{plain}/resize?h=3&w=3"), None);
    assert_eq!(code, 409, "{body}");
    d.ok(&["rm", "-f", &plain, &tty]);
    d.finish();
}

/// The host's memory, as /proc/meminfo says.
fn host_mem() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn stats_report_host_memory_and_two_cpu_samples() {
    let Some(d) = Daemon::start("stats_report_host_memory_and_two_cpu_samples") else {
        return;
    };
    let busy = d.ok(&["run", "-d", "busybox", "sh", "-c", "while :; do :; done"]);
    let capped = d.ok(&["run", "-d", "-m", "64m", "busybox", "sleep", "60"]);
    // stream=false: two samples, so the CPU delta is the busy loop's. Before: precpu_stats was
    // a copy of cpu_stats (0.00%) and the limit cgroup v1's 9223372036854771712.
    let (code, body) = d.api(
        "GET",
        &format!("/containers/{busy}/stats?stream=false"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let s = json(&body);
    assert_eq!(s["memory_stats"]["limit"].as_u64(), Some(host_mem()), "{s}");
    let cpu = s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap();
    let pre = s["precpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap();
    assert!(pre > 0 && cpu > pre, "cpu {cpu} precpu {pre}");
    let sys = s["cpu_stats"]["system_cpu_usage"].as_u64().unwrap();
    let presys = s["precpu_stats"]["system_cpu_usage"].as_u64().unwrap();
    assert!(sys > presys, "system {sys} presystem {presys}");
    // one-shot: a single sample, no previous reading (dockerd's `one-shot=true`).
    let (code, body) = d.api(
        "GET",
        &format!("/containers/{busy}/stats?stream=false&one-shot=true"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let s = json(&body);
    assert_eq!(s["precpu_stats"]["cpu_usage"]["total_usage"], 0, "{s}");
    assert!(s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    // A set limit is reported as is.
    let (_, body) = d.api(
        "GET",
        &format!("/containers/{capped}/stats?stream=false"),
        None,
    );
    assert_eq!(json(&body)["memory_stats"]["limit"], 64 << 20, "{body}");
    // The docker CLI's --no-stream shows the busy loop's CPU (it showed 0.00%).
    let pct = d.ok(&["stats", "--no-stream", "--format", "{{.CPUPerc}}", &busy]);
    let pct: f64 = pct.trim_end_matches('%').parse().unwrap();
    assert!(pct > 1.0, "busy loop at {pct}%");
    d.ok(&["rm", "-f", &busy, &capped]);
    d.finish();
}

#[test]
fn default_shm_size_is_in_inspect() {
    let Some(d) = Daemon::start("default_shm_size_is_in_inspect") else {
        return;
    };
    // Before: 0 (unset) in inspect, though /dev/shm was 64 MiB.
    let plain = d.ok(&["create", "busybox", "true"]);
    assert_eq!(d.inspect(&plain, "{{.HostConfig.ShmSize}}"), "67108864");
    let sized = d.ok(&["create", "--shm-size", "128m", "busybox", "true"]);
    assert_eq!(d.inspect(&sized, "{{.HostConfig.ShmSize}}"), "134217728");
    let out = d.ok(&["run", "--rm", "busybox", "df", "-k", "/dev/shm"]);
    assert!(out.contains(" 65536 "), "{out}");
    d.ok(&["rm", &plain, &sized]);
    d.finish();
}

#[test]
fn options_on_any_path_answers_200() {
    let Some(d) = Daemon::start_opts(
        "options_on_any_path_answers_200",
        common::cli::Opts {
            busybox: false,
            ..Default::default()
        },
    ) else {
        return;
    };
    // moby's TestApiOptionsRoute. Before: 404 page not found (/), 405 (/version).
    for path in ["/", "/version", "/v1.41/containers/json", "/no/such/route"] {
        let (code, body) = d.api("OPTIONS", path, None);
        assert_eq!((code, body.as_str()), (200, ""), "OPTIONS {path}");
    }
    // Other methods still route as before.
    assert_eq!(d.api("GET", "/no/such/route", None).0, 404);
    // A known path with a method it does not serve, or a trailing slash, is dockerd's 404
    // "page not found" (gorilla/mux without StrictSlash; its MethodNotAllowedHandler is the
    // not-found one). Before: 405 with an empty body for PUT /info.
    for (method, path) in [
        ("PUT", "/info"),
        ("DELETE", "/v1.41/version"),
        ("GET", "/containers/json/"),
        ("GET", "/v1.41/images/json/"),
    ] {
        let (code, body) = d.api(method, path, None);
        assert_eq!(code, 404, "{method} {path}: {body}");
        assert!(
            json(&body)["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("page not found")),
            "{method} {path}: {body}"
        );
    }
    d.finish();
}

#[test]
fn events_keep_legacy_fields_at_every_api_version() {
    let Some(d) = Daemon::start("events_keep_legacy_fields_at_every_api_version") else {
        return;
    };
    let id = d.ok(&["create", "--name", "fid-ev", "busybox", "true"]);
    // Every event so far: `until` is now, so the answer is the backlog and the stream ends.
    let until = until_now();
    for ver in ["v1.41", "v1.52", "v1.53"] {
        let (code, body) = d.api(
            "GET",
            &format!("/{ver}/events?since=0&until={until}&filters=%7B%22type%22%3A%5B%22container%22%5D%7D"),
            None,
        );
        assert_eq!(code, 200, "{body}");
        let create = body
            .lines()
            .map(json)
            .find(|e| e["Action"] == "create" && e["Actor"]["ID"] == id.as_str())
            .unwrap_or_else(|| panic!("{ver}: no create event in {body}"));
        // Before, at 1.52 and later: no status/id/from (compose 1.29 reads them).
        assert_eq!(create["status"], "create", "{ver}: {create}");
        assert_eq!(create["id"], id.as_str(), "{ver}: {create}");
        assert_eq!(create["from"], "busybox", "{ver}: {create}");
    }
    d.ok(&["rm", &id]);
    d.finish();
}

/// `docker build -f - DIR` (the CLI rewrites the context tar to hold the piped Dockerfile) and
/// `docker build - < Dockerfile` (no context at all) both build, as with dockerd.
#[test]
fn build_with_the_dockerfile_on_stdin() {
    let Some(d) = Daemon::start("build_with_the_dockerfile_on_stdin") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("greeting"), "from-the-context\n").unwrap();
    let df = b"FROM busybox\nCOPY greeting /greeting\nCMD [\"cat\", \"/greeting\"]\n";
    let o = d.docker_stdin(
        &[
            "build",
            "-q",
            "-t",
            "fid-stdin-ctx",
            "-f",
            "-",
            ctx.path().to_str().unwrap(),
        ],
        df,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(d.ok(&["run", "--rm", "fid-stdin-ctx"]), "from-the-context");
    let o = d.docker_stdin(
        &["build", "-q", "-t", "fid-stdin-only", "-"],
        b"FROM busybox\nRUN echo built-from-stdin > /m\nCMD [\"cat\", \"/m\"]\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(d.ok(&["run", "--rm", "fid-stdin-only"]), "built-from-stdin");
    d.finish();
}

/// dockerd's inspect shows every HostConfig and Config field of a container created with a
/// minimal body (Go structs), so templates print zero values, never `<no value>`.
#[test]
fn inspect_keeps_zero_values_for_a_minimal_create() {
    let Some(d) = Daemon::start("inspect_keeps_zero_values_for_a_minimal_create") else {
        return;
    };
    let (code, body) = d.api(
        "POST",
        "/containers/create?name=fid-zero",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let host = [
        ("CpuQuota", "0"),
        ("CpuPeriod", "0"),
        ("CpuRealtimePeriod", "0"),
        ("CpuRealtimeRuntime", "0"),
        ("MemoryReservation", "0"),
        ("BlkioWeight", "0"),
        ("CpuCount", "0"),
        ("CpuPercent", "0"),
        ("IOMaximumIOps", "0"),
        ("IOMaximumBandwidth", "0"),
        ("OomScoreAdj", "0"),
        ("CpusetCpus", ""),
        ("CpusetMems", ""),
        ("CgroupParent", ""),
        ("ContainerIDFile", ""),
        ("VolumeDriver", ""),
        ("PublishAllPorts", "false"),
        ("Devices", "[]"),
        ("BlkioDeviceReadBps", "[]"),
        ("Dns", "[]"),
        ("DnsSearch", "[]"),
        ("ConsoleSize", "[0 0]"),
    ];
    for (field, want) in host {
        assert_eq!(
            d.inspect("fid-zero", &format!("{{{{.HostConfig.{field}}}}}")),
            want,
            "HostConfig.{field}"
        );
    }
    let config = [
        ("User", ""),
        ("WorkingDir", ""),
        ("Domainname", ""),
        ("AttachStdin", "false"),
        ("StdinOnce", "false"),
        ("Tty", "false"),
        ("OpenStdin", "false"),
    ];
    for (field, want) in config {
        assert_eq!(
            d.inspect("fid-zero", &format!("{{{{.Config.{field}}}}}")),
            want,
            "Config.{field}"
        );
    }
    d.ok(&["rm", "fid-zero"]);
    d.finish();
}

/// `berth run` reports a command that cannot start as the docker CLI does: 127 when it is not
/// found, 126 when it cannot be invoked (before: 125 for both), detached or attached.
#[test]
fn berth_run_exits_127_and_126_like_docker() {
    let Some(d) = Daemon::start("berth_run_exits_127_and_126_like_docker") else {
        return;
    };
    let berth = |args: &[&str]| {
        std::process::Command::new(&d.bin)
            .args(["-H", &format!("unix://{}", d.sock().display())])
            .args(args)
            .output()
            .unwrap()
    };
    for (args, want) in [
        (&["run", "--rm", "busybox", "nosuchcmd"][..], 127),
        (&["run", "--rm", "busybox", "/etc"][..], 126),
        (&["run", "-d", "busybox", "nosuchcmd"][..], 127),
        (&["run", "--rm", "busybox", "sh", "-c", "exit 3"][..], 3),
    ] {
        let o = berth(args);
        assert_eq!(
            o.status.code(),
            Some(want),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // The docker CLI agrees on the same daemon.
        assert_eq!(d.code(args), want, "docker {args:?}");
    }
    d.finish();
}

/// `ps --filter name=` takes a regular expression, matched with and without the leading `/`
/// (before: a plain substring, so anchored filters as scripts write them matched nothing).
#[test]
fn ps_name_filter_is_a_regular_expression() {
    let Some(d) = Daemon::start("ps_name_filter_is_a_regular_expression") else {
        return;
    };
    d.ok(&["create", "--name", "fid-rx", "busybox", "true"]);
    d.ok(&["create", "--name", "fid-rx-2", "busybox", "true"]);
    for (filter, want) in [
        ("name=^fid-rx$", "fid-rx"),
        ("name=^/fid-rx$", "fid-rx"),
        ("name=rx-[0-9]", "fid-rx-2"),
        ("name=fid-rx", "fid-rx\nfid-rx-2"),
    ] {
        let out = d.ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
        let mut names: Vec<&str> = out.lines().collect();
        names.sort();
        assert_eq!(names.join("\n"), want, "{filter}");
    }
    d.ok(&["rm", "fid-rx", "fid-rx-2"]);
    d.finish();
}

/// dockerd reports `top`, `resize`, `archive-path` (cp out), `extract-to-dir` (cp in) and
/// `export` as container events; berth reported none of them.
#[test]
fn events_for_top_resize_copy_and_export() {
    let Some(d) = Daemon::start("events_for_top_resize_copy_and_export") else {
        return;
    };
    let id = d.ok(&["run", "-d", "--name", "fid-ev2", "busybox", "sleep", "60"]);
    d.ok(&["top", "fid-ev2"]);
    let (code, body) = d.api("POST", "/containers/fid-ev2/resize?h=30&w=100", None);
    assert_eq!(code, 200, "{body}");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in.txt");
    std::fs::write(&src, "x").unwrap();
    d.ok(&["cp", src.to_str().unwrap(), "fid-ev2:/tmp/in.txt"]);
    d.ok(&[
        "cp",
        "fid-ev2:/tmp/in.txt",
        tmp.path().join("out.txt").to_str().unwrap(),
    ]);
    d.ok(&[
        "export",
        "-o",
        tmp.path().join("fs.tar").to_str().unwrap(),
        "fid-ev2",
    ]);
    let actions = events_so_far(
        &d,
        &format!("container={id}"),
        "{{.Action}} {{index .Actor.Attributes \"height\"}}",
    );
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    for want in [
        "top",
        "resize 30",
        "extract-to-dir",
        "archive-path",
        "export",
    ] {
        assert!(actions.contains(&want), "no {want:?} in {actions:?}");
    }
    d.ok(&["rm", "-f", "fid-ev2"]);
    d.finish();
}

/// dockerd reports a volume `mount` when a container using it starts and `unmount` when it
/// stops, naming the container (compose and monitoring tools watch these).
#[test]
fn volume_mount_and_unmount_events() {
    let Some(d) = Daemon::start("volume_mount_and_unmount_events") else {
        return;
    };
    d.ok(&["volume", "create", "fid-vol-ev"]);
    let id = d.ok(&[
        "run",
        "--rm",
        "-v",
        "fid-vol-ev:/data:ro",
        "busybox",
        "true",
    ]);
    assert_eq!(id, "");
    let actions = events_so_far(
        &d,
        "volume=fid-vol-ev",
        "{{.Action}} {{index .Actor.Attributes \"destination\"}} {{index .Actor.Attributes \"read/write\"}}",
    );
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    assert!(actions.contains(&"mount /data false"), "{actions:?}");
    assert!(actions.contains(&"unmount"), "{actions:?}");
    let mount = actions
        .iter()
        .position(|a| a.starts_with("mount "))
        .unwrap();
    let unmount = actions.iter().position(|a| *a == "unmount").unwrap();
    assert!(mount < unmount, "{actions:?}");
    d.ok(&["volume", "rm", "fid-vol-ev"]);
    d.finish();
}
