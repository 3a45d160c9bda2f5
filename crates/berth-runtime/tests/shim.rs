//! Real containers through the shim (root, busybox): exit codes, logs, limits, security.

mod common;

use berth_runtime::{Error, Resources, StdioEvent};
use common::Fixture;

macro_rules! fixture {
    ($name:expr) => {
        match Fixture::new($name) {
            Some(f) => f,
            None => return,
        }
    };
}

#[tokio::test]
async fn exit_codes() {
    let f = fixture!("exit_codes");
    let s = f.start(f.spec(&["true"])).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    assert!(f.cgroup_dirs().is_empty(), "leaked {:?}", f.cgroup_dirs());
    let s = f.start(f.spec(&["sh", "-c", "exit 3"])).await.unwrap();
    let x = s.wait().await.unwrap();
    assert_eq!(x.exit_code, 3);
    assert!(!x.oom_killed);
    // exit.json persists for a restarted daemon.
    assert_eq!(
        berth_runtime::client::read_exit(&f.dir).unwrap().exit_code,
        3
    );
    let s = f.start(f.spec(&["sleep", "1000"])).await.unwrap();
    assert_eq!(s.state().await.unwrap().status, "running");
    s.kill(9).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 137);
    assert!(f.cgroup_dirs().is_empty());
}

#[tokio::test]
async fn missing_command_is_127() {
    let f = fixture!("missing_command_is_127");
    let e = f.start(f.spec(&["nosuchcmd"])).await.err().unwrap();
    assert_eq!(e.exit_code(), 127);
    assert_eq!(
        e.to_string(),
        "exec: \"nosuchcmd\": executable file not found in $PATH"
    );
    let e = f.start(f.spec(&["/etc/passwd"])).await.err().unwrap();
    assert!(matches!(e, Error::Exec { exit_code: 126, .. }), "{e}");
    assert!(f.cgroup_dirs().is_empty());
}

#[tokio::test]
async fn stdout_stderr_in_log() {
    let f = fixture!("stdout_stderr_in_log");
    let s = f
        .start(f.spec(&["sh", "-c", "echo out; echo err >&2; echo out2"]))
        .await
        .unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    let logs = f.logs();
    let got: Vec<(&str, &str)> = logs
        .iter()
        .map(|e| (e.stream.as_str(), e.log.as_str()))
        .collect();
    assert!(got.contains(&("stderr", "err\n")), "{got:?}");
    assert_eq!(f.stdout(), "out\nout2\n");
}

#[tokio::test]
async fn log_rotation_with_chatty_container() {
    let f = fixture!("log_rotation_with_chatty_container");
    let mut cfg = f.config(f.spec(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
    ]));
    cfg.log.max_size = 20_000;
    cfg.log.max_file = 3;
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth-runtime-shim"));
    let (s, _) = berth_runtime::Shim::spawn(exe, &f.dir, &cfg).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    for n in ["container.log", "container.log.1", "container.log.2"] {
        let len = std::fs::metadata(f.dir.join(n)).unwrap().len();
        assert!(len > 0 && len <= 20_000, "{n}: {len}");
    }
    assert!(!f.dir.join("container.log.3").exists());
    assert!(f.stdout().ends_with("line-2999-xxxxxxxxxxxxxxxxxxxxxxxx\n"));
}

#[tokio::test]
async fn security_defaults() {
    let f = fixture!("security_defaults");
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; cat /proc/kcore | wc -c; hostname; id -u; pwd; echo $FOO",
    ]);
    spec.no_new_privileges = true;
    spec.env = vec!["FOO=bar".into()];
    spec.cwd = "/tmp".into();
    spec.user = berth_runtime::User {
        uid: 1000,
        gid: 1000,
        ..Default::default()
    };
    let s = f.start(spec).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    let out = f.stdout();
    // Non-root user: effective caps are cleared by the kernel on setuid unless ambient.
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[lines.len() - 5..],
        ["0", "box", "1000", "/tmp", "bar"],
        "{out}"
    );

    // Root in the container gets exactly Docker's default capability set.
    let s = f
        .start(f.spec(&["sh", "-c", "grep CapEff /proc/self/status"]))
        .await
        .unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    let out = f.stdout();
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
}

#[tokio::test]
async fn memory_limit_oom_killed() {
    let f = fixture!("memory_limit_oom_killed");
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    spec.resources = Resources {
        memory: 16 << 20,
        memory_swap: 16 << 20,
        ..Resources::default()
    };
    let s = f.start(spec).await.unwrap();
    let x = s.wait().await.unwrap();
    assert_eq!(x.exit_code, 137);
    assert!(x.oom_killed);
    assert!(f.cgroup_dirs().is_empty());
}

#[tokio::test]
async fn pids_limit_enforced() {
    let f = fixture!("pids_limit_enforced");
    // A subshell forks until the limit stops it (ash gives up on a failed fork); `read` is a
    // builtin, so the main shell then blocks on its open stdin without needing a fork.
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "(for i in 1 2 3 4 5 6 7 8 9 10; do sleep 100 & done); echo ready; read x",
    ]);
    spec.open_stdin = true;
    spec.resources.pids_limit = 5;
    let s = f.start(spec).await.unwrap();
    let cg = format!("/sys/fs/cgroup/pids/berth/{}", f.id);
    let mut ready = false;
    for _ in 0..1000 {
        if f.stdout().contains("ready") {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(ready, "container never got past its fork loop");
    assert_eq!(
        std::fs::read_to_string(format!("{cg}/pids.max"))
            .unwrap()
            .trim(),
        "5"
    );
    let procs = std::fs::read_to_string(format!("{cg}/cgroup.procs")).unwrap();
    let n = procs.lines().count();
    assert!((2..=5).contains(&n), "{procs}");
    s.kill(9).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 137);
    let out: String = f.logs().into_iter().map(|e| e.log).collect();
    assert!(
        out.contains("can't fork") || out.contains("Resource temporarily unavailable"),
        "{out}"
    );
    assert!(f.cgroup_dirs().is_empty());
}

#[tokio::test]
async fn stdin_piping_and_attach() {
    let f = fixture!("stdin_piping_and_attach");
    let mut spec = f.spec(&["sh", "-c", "read line; echo got:$line; cat >&2"]);
    spec.open_stdin = true;
    let s = f.start(spec).await.unwrap();
    let mut a = s.attach(true, true, true).await.unwrap();
    a.write_stdin(b"hello\nmore\n").await.unwrap();
    a.close_stdin().await.unwrap();
    let (out, err, code) = a.collect().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "got:hello\n");
    assert_eq!(String::from_utf8_lossy(&err), "more\n");
    assert_eq!(code, Some(0));
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
}

#[tokio::test]
async fn tty_mode() {
    let f = fixture!("tty_mode");
    let mut spec = f.spec(&["sh", "-c", "tty; stty size"]);
    spec.tty = true;
    let s = f.start(spec).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    let out = f.stdout();
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out:?}"
    );
}

#[tokio::test]
async fn exec_into_running_container() {
    let f = fixture!("exec_into_running_container");
    let s = f.start(f.spec(&["sleep", "1000"])).await.unwrap();
    let ec = berth_runtime::ExecConfig {
        args: vec![
            "sh".into(),
            "-c".into(),
            "echo in-$HOSTNAME $X; exit 7".into(),
        ],
        env: vec!["X=y".into()],
        cwd: String::new(),
        user: None,
        tty: false,
        stdin: false,
        privileged: false,
    };
    let (_pid, st) = s.exec(&ec).await.unwrap();
    let (out, _err, code) = st.collect().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "in-box y\n");
    assert_eq!(code, Some(7));
    let e = s
        .exec(&berth_runtime::ExecConfig {
            args: vec!["nope".into()],
            ..ec.clone()
        })
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 127);
    s.kill(15).await.unwrap();
    // sleep as pid 1 ignores SIGTERM (no handler): kill -9.
    s.kill(9).await.ok();
    assert_eq!(s.wait().await.unwrap().exit_code, 137);
    let _ = StdioEvent::Closed;
}

#[tokio::test]
async fn shim_killed_container_reported_dead() {
    let f = fixture!("shim_killed_container_reported_dead");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth-runtime-shim"));
    let (s, started) =
        berth_runtime::Shim::spawn(exe, &f.dir, &f.config(f.spec(&["sleep", "1000"])))
            .await
            .unwrap();
    // SAFETY: kill(2) on the shim pid we were just given.
    assert_eq!(unsafe { libc::kill(started.shim_pid, libc::SIGKILL) }, 0);
    let x = s.wait().await.unwrap();
    assert_eq!(x.exit_code, 137);
    assert!(x.shim_died);
    assert!(f.cgroup_dirs().is_empty(), "leaked {:?}", f.cgroup_dirs());
    assert!(
        !std::path::Path::new(&format!("/proc/{}", started.container_pid)).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", started.container_pid))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    );
}

#[tokio::test]
async fn attach_before_start_misses_nothing() {
    let f = fixture!("attach_before_start_misses_nothing");
    let mut cfg = f.config(f.spec(&["sh", "-c", "echo first; echo second >&2; exit 5"]));
    cfg.start_on_request = true;
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth-runtime-shim"));
    let (s, started) = berth_runtime::Shim::spawn(exe, &f.dir, &cfg).await.unwrap();
    assert!(started.container_pid > 0);
    assert_eq!(s.state().await.unwrap().status, "created");
    let a = s.attach(false, true, true).await.unwrap();
    s.start().await.unwrap();
    let (out, err, code) = a.collect().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "first\n");
    assert_eq!(String::from_utf8_lossy(&err), "second\n");
    assert_eq!(code, Some(5));
    assert_eq!(s.wait().await.unwrap().exit_code, 5);
}

/// Whether `pid` is running (not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| !st.contains(") Z "))
        .unwrap_or(false)
}

/// Wait (up to 5 s) for a process that is not our child to go away.
async fn gone(pid: i32) -> bool {
    for _ in 0..500 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    !alive(pid)
}

#[tokio::test]
async fn no_leaked_processes_after_exit() {
    let f = fixture!("no_leaked_processes_after_exit");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth-runtime-shim"));
    // Background children of pid 1 die with it (pid namespace); the shim exits too.
    let (s, started) = berth_runtime::Shim::spawn(
        exe,
        &f.dir,
        &f.config(f.spec(&["sh", "-c", "sleep 1000 & sleep 1000 & exit 0"])),
    )
    .await
    .unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    // The shim exits right after answering waiters; reap-less check: it must go away.
    assert!(gone(started.shim_pid).await, "shim still running");
    assert!(!alive(started.container_pid));
    assert!(f.cgroup_dirs().is_empty());
    assert!(
        !f.state_root.join(&f.id).exists(),
        "libcontainer state left behind"
    );
}

#[tokio::test]
async fn auto_removed_container_reports_exit_before_cleanup_and_still_cleans_up() {
    let f = fixture!("auto_removed_container_reports_exit_before_cleanup_and_still_cleans_up");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth-runtime-shim"));
    let mut spec = f.spec(&["sh", "-c", "echo hi; exit 3"]);
    spec.auto_remove = true;
    let (s, started) = berth_runtime::Shim::spawn(exe, &f.dir, &f.config(spec))
        .await
        .unwrap();
    let exit = s.wait().await.unwrap();
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.shim_died);
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.dir.join("exit.json")).unwrap()).unwrap();
    assert_eq!(recorded["exit_code"], 3);
    assert_eq!(f.stdout(), "hi\n");
    // The report came first; the shim still removes the runtime state, then exits.
    assert!(gone(started.shim_pid).await, "shim still running");
    assert!(f.cgroup_dirs().is_empty());
    assert!(
        !f.state_root.join(&f.id).exists(),
        "libcontainer state left behind"
    );
}

#[tokio::test]
async fn pause_resume_update_and_exec_tty() {
    let f = fixture!("pause_resume_update_and_exec_tty");
    let s = f.start(f.spec(&["sleep", "1000"])).await.unwrap();
    let cg = |ctrl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/berth/{}/{file}", f.id))
            .unwrap()
            .trim()
            .to_string()
    };
    s.pause().await.unwrap();
    assert_eq!(s.state().await.unwrap().status, "paused");
    assert_eq!(cg("freezer", "freezer.state"), "FROZEN");
    s.resume().await.unwrap();
    assert_eq!(s.state().await.unwrap().status, "running");
    s.update(Resources {
        memory: 32 << 20,
        memory_swap: -1,
        pids_limit: 42,
        ..Resources::default()
    })
    .await
    .unwrap();
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(cg("pids", "pids.max"), "42");
    let ec = berth_runtime::ExecConfig {
        args: vec!["sh".into(), "-c".into(), "tty; stty size".into()],
        env: vec![],
        cwd: "/tmp".into(),
        user: None,
        tty: true,
        stdin: false,
        privileged: false,
    };
    let (_pid, st) = s.exec(&ec).await.unwrap();
    let (out, _, code) = st.collect().await.unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert_eq!(code, Some(0));
    s.kill(9).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 137);
    assert!(f.cgroup_dirs().is_empty());
}

#[tokio::test]
async fn container_starts_with_no_ignored_signals() {
    let f = fixture!("container_starts_with_no_ignored_signals");
    let s = f
        .start(f.spec(&["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]))
        .await
        .unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    // The shim ignores SIGPIPE (Rust's default); that must not leak into the container.
    assert_eq!(
        f.stdout(),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}

/// Deletes a named network namespace on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[tokio::test]
async fn init_netns_path_and_readonly_rootfs() {
    let f = fixture!("init_netns_path_and_readonly_rootfs");
    if !berth_testutil::require_cmds(
        "init_netns_path_and_readonly_rootfs",
        &["ip", "tini-static"],
    ) {
        return;
    }
    let name = format!("brt-ns-{}", std::process::id());
    assert!(std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap()
        .success());
    let ns = Netns(name.clone());
    let want = std::fs::metadata(format!("/run/netns/{}", ns.0)).unwrap();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "cat /proc/1/comm; stat -L -c %i /proc/self/ns/net; touch /x 2>/dev/null || echo ro; touch /tmp/ok && echo tmp-rw",
    ]);
    spec.init = berth_testutil::which("tini-static");
    spec.network = berth_runtime::NetworkMode::Path(format!("/run/netns/{}", ns.0).into());
    spec.readonly_rootfs = true;
    spec.mounts.push(berth_runtime::MountSpec {
        destination: "/tmp".into(),
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        options: vec!["nosuid".into(), "nodev".into()],
    });
    let s = f.start(spec).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 0);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        f.stdout(),
        format!("docker-init\n{}\nro\ntmp-rw\n", want.ino())
    );
}
