//! Containers end to end: the real docker CLI against a berth daemon (the `berth` binary,
//! built by `cargo build -p berth-cli`) on a temp root, socket, bridge and nft table.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{rand_tag, Daemon, Tmux, DOCKER};

#[test]
fn run_rm_output_and_exit_codes() {
    let Some(d) = Daemon::start("run_rm_output_and_exit_codes") else {
        return;
    };
    let o = d.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hi\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(d.code(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]), 3);
    assert_eq!(d.code(&["run", "--rm", "busybox", "nosuchcmd"]), 127);
    assert_eq!(d.code(&["run", "--rm", "busybox", "/etc/passwd"]), 126);
    let o = d.docker(&["run", "--rm", "--memory", "1m", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Minimum memory limit allowed is 6MB"));
    let o = d.docker(&["run", "--rm", "-u", "nobody2", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no matching entries in passwd file"));
    // --rm removed everything, also after failed starts.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.veths(), 0);
}

#[test]
fn detached_logs_stop_rm_ps_and_names() {
    let Some(d) = Daemon::start("detached_logs_stop_rm_ps_and_names") else {
        return;
    };
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(id.len(), 64);
    // Name conflict, Docker's words.
    let o = d.docker(&["create", "--name", "web", "busybox"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!(
        "The container name \"/web\" is already in use by container \"{id}\""
    )));
    d.ok(&["create", "--name", "idle", "busybox", "true"]);
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "web");
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}}"
        ]),
        "idle"
    );
    assert_eq!(
        d.ok(&["ps", "--filter", "label=tier=front", "-q"]),
        &id[..12]
    );
    assert_eq!(
        d.ok(&["ps", "-a", "--filter", "name=idl", "--format", "{{.Names}}"]),
        "idle"
    );
    assert_eq!(d.veths(), 1);
    // Logs: both streams, demultiplexed by the CLI.
    for _ in 0..200 {
        if d.docker(&["logs", "web"]).stderr.starts_with(b"err") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = d.docker(&["logs", "web"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    assert_eq!(d.ok(&["exec", "web", "cat", "/etc/hostname"]), &id[..12]);
    assert_eq!(d.code(&["exec", "web", "sh", "-c", "exit 4"]), 4);
    // Stop: TERM is trapped, exit 0; stopping again is a no-op.
    d.ok(&["stop", "web"]);
    assert_eq!(
        d.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    d.ok(&["stop", "web"]);
    assert_eq!(
        d.ok(&["ps", "-a", "--filter", "exited=0", "--format", "{{.Names}}"]),
        "web"
    );
    assert_eq!(d.veths(), 0);
    d.ok(&["rename", "web", "web2"]);
    d.ok(&["rm", "web2", "idle"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.assert_clean(&id);
    // Running containers refuse rm without -f.
    d.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "100"]);
    assert_ne!(d.code(&["rm", "busy"]), 0);
    d.ok(&["rm", "-f", "busy"]);
}

#[test]
fn run_options_apply() {
    let Some(d) = Daemon::start("run_options_apply") else {
        return;
    };
    let out = d.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1234:5",
        "--hostname",
        "hh",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u) $(hostname)",
    ]);
    assert_eq!(out, "1 /tmp 1234 hh");
    assert_eq!(
        d.ok(&["run", "--rm", "--entrypoint", "echo", "busybox", "x"]),
        "x"
    );
    assert_ne!(
        d.code(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]),
        0
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "busybox",
            "sh",
            "-c",
            "grep CapEff /proc/self/status"
        ]),
        "CapEff:\t0000000000000000"
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "ls /sys/class/net"
        ]),
        "lo"
    );
    // Named volumes persist across containers; host binds see the host dir.
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "cvol:/data",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/f",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "cvol:/data",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "x"
    );
    let host = d.dir.path().join("bind");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h"), "from-host").unwrap();
    let spec = format!("{}:/b:ro", host.display());
    assert_eq!(
        d.ok(&["run", "--rm", "-v", &spec, "busybox", "cat", "/b/h"]),
        "from-host"
    );
    assert_ne!(
        d.code(&["run", "--rm", "-v", &spec, "busybox", "touch", "/b/x"]),
        0
    );
    // Limits land in the container's cgroup.
    let id = d.ok(&[
        "run",
        "-d",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "--memory",
        "64m",
        "busybox",
        "sleep",
        "60",
    ]);
    let cg = |c: &str, f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{c}/berth/{id}/{f}"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(cg("pids", "pids.max"), "20");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    d.ok(&["rm", "-f", &id]);
    d.assert_clean(&id);
}

#[test]
fn oom_killed_is_reported() {
    let Some(d) = Daemon::start("oom_killed_is_reported") else {
        return;
    };
    let code = d.code(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "tail /dev/zero",
    ]);
    assert_eq!(code, 137);
    assert_eq!(
        d.inspect("oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
}

#[test]
fn restart_on_failure_counts() {
    let Some(d) = Daemon::start("restart_on_failure_counts") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rr",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 5",
    ]);
    let mut last = String::new();
    for _ in 0..300 {
        last = d.inspect(
            "rr",
            "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}",
        );
        if last == "exited 2 5" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(last, "exited 2 5");
}

#[test]
fn daemon_kill9_then_recovery_and_shim_kill9() {
    let Some(mut d) = Daemon::start("daemon_kill9_then_recovery_and_shim_kill9") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "-i",
        "busybox",
        "sh",
        "-c",
        "echo before; read x; echo got $x; exit 9",
    ]);
    d.ok(&[
        "run", "-d", "--name", "victim", "-i", "busybox", "sleep", "1000",
    ]);
    let ip = d.inspect("keep", "{{.NetworkSettings.IPAddress}}");
    d.kill9();
    d.spawn();
    assert_eq!(
        d.inspect("keep", "{{.State.Status}} {{.NetworkSettings.IPAddress}}"),
        format!("running {ip}")
    );
    // Kill the victim's shim: the container is reported exited, not hung.
    let shim_pid = std::fs::read_to_string(
        d.dir
            .path()
            .join("root/containers")
            .join(d.inspect("victim", "{{.Id}}"))
            .join("shim.pid"),
    )
    .unwrap_or_default();
    let shim_pid: i32 = shim_pid.trim().parse().expect("shim.pid");
    // SAFETY: kill(2) on the shim pid berth recorded for this test's container.
    unsafe { libc::kill(shim_pid, libc::SIGKILL) };
    assert_eq!(d.ok(&["wait", "victim"]), "137");
    // The recovered container still takes stdin via attach and reports its exit code.
    let o = Command::new(DOCKER)
        .args(["attach", "keep"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock().display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = o.unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", d.log());
    assert_eq!(d.ok(&["logs", "keep"]), "before\ngot yes");
}

#[test]
fn interactive_tty_under_tmux() {
    let opts = common::cli::Opts {
        cmds: &["tmux"],
        ..Default::default()
    };
    let Some(d) = Daemon::start_opts("interactive_tty_under_tmux", opts) else {
        return;
    };
    let rc = d.dir.path().join("rc");
    let cmd = format!(
        "DOCKER_HOST=unix://{} {DOCKER} run -it --rm busybox sh; echo $? > {}; sleep 60",
        d.sock().display(),
        rc.display()
    );
    let t = Tmux::start(&cmd);
    let pane = || t.pane();
    for _ in 0..200 {
        if pane().contains("# ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    t.type_line("echo hi$((1+1)); exit 7");
    for _ in 0..400 {
        if rc.exists() && !std::fs::read_to_string(&rc).unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(pane().contains("hi2"), "{}", pane());
    assert_eq!(std::fs::read_to_string(&rc).unwrap().trim(), "7");
}

/// Poll `State.Health.Status` until it is `want` (bounded, not a timing assertion).
fn await_health(d: &Daemon, name: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..80 {
        last = d.inspect(name, "{{if .State.Health}}{{.State.Health.Status}}{{end}}");
        if last == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "{name}: health stayed {last:?}, wanted {want}: {}",
        d.inspect(name, "{{json .State.Health}}")
    );
}

#[test]
fn health_checks_turn_healthy_and_unhealthy() {
    let Some(d) = Daemon::start("health_checks_turn_healthy_and_unhealthy") else {
        return;
    };
    let tag = rand_tag();
    let (good, bad) = (format!("hgood{tag}"), format!("hbad{tag}"));
    d.ok(&[
        "run",
        "-d",
        "--name",
        &good,
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "30",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        &bad,
        "--health-cmd",
        "false",
        "--health-retries",
        "1",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "30",
    ]);
    await_health(&d, &good, "healthy");
    await_health(&d, &bad, "unhealthy");
    let streak = d.inspect(&bad, "{{.State.Health.FailingStreak}}");
    assert!(streak.parse::<i64>().unwrap() >= 1, "streak {streak}");
    assert_eq!(
        d.inspect(&good, "{{(index .State.Health.Log 0).ExitCode}}"),
        "0"
    );
    d.ok(&["rm", "-f", &good, &bad]);
}

#[test]
fn debian_container_users_exec_diff_and_limits() {
    let t = "debian_container_users_exec_diff_and_limits";
    let Some(d) = Daemon::start(t) else {
        return;
    };
    let Some(img) = berth_testutil::image(t, "debian-bookworm-minbase") else {
        return;
    };
    let name = d.load(&img);
    // The image's own CMD (bash) with stdin closed exits 0; its users resolve from its passwd.
    assert_eq!(d.code(&["run", "--rm", &name]), 0);
    let out = d.ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        &name,
        "sh",
        "-c",
        "id -un; cat /etc/debian_version; cat /proc/self/status | grep -E '^(NoNewPrivs|CapEff)'",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "nobody", "{out}");
    assert!(lines[1].starts_with("12."), "bookworm: {out}");
    assert!(
        out.contains("CapEff:\t0000000000000000"),
        "a non-root user has no effective caps: {out}"
    );
    // A long-running Debian container: exec as another user and workdir, then a clean diff.
    let c = d.ok(&["run", "-d", &name, "sleep", "300"]);
    assert_eq!(
        d.ok(&[
            "exec",
            "-u",
            "daemon",
            "-w",
            "/tmp",
            &c,
            "sh",
            "-c",
            "id -un; pwd"
        ]),
        "daemon\n/tmp"
    );
    d.ok(&["exec", &c, "touch", "/root/made"]);
    let diff = d.ok(&["diff", &c]);
    assert_eq!(
        diff, "C /root\nA /root/made",
        "only the container's own changes"
    );
    assert_eq!(d.code(&["exec", &c, "nosuchcmd"]), 127);
    d.ok(&["rm", "-f", &c]);
    d.assert_clean(&c);
}
