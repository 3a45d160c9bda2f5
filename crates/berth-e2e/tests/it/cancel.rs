//! Cancellation end to end against a berth daemon on a temp root: a client that goes away in
//! the middle of a build or a commit must not leave the engine holding anything — the RUN
//! step's container (shim, workload, netns, veth, cgroups, mounts) is removed, a container
//! paused for a commit is unpaused.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cli::{rand_tag, Daemon, DOCKER};
use common::leftovers::{alive, cgroup_dirs};
use common::poll;

/// Kills and reaps a client process on every exit path.
struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pids (not zombies) whose command line contains every one of `needles`.
fn pids_with(needles: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.is_empty() && needles.iter().all(|n| cmd.contains(n)) {
            out.push(pid);
        }
    }
    out
}

/// Before, the build went on after its client was killed: the RUN step's shim and `sleep`,
/// its netns, veth and cgroups stayed until the sleep ended (and survived a daemon stop).
#[test]
fn cancelled_build_removes_its_run_container() {
    let Some(d) = Daemon::start("cancelled_build_removes_its_run_container") else {
        return;
    };
    build_step_is_removed_when(d, |_d, client| drop(client));
}

/// Before, a daemon stopped (SIGTERM) during a RUN step dropped the build task without its
/// cleanup: shim, workload, netns, veth and cgroups outlived the daemon.
#[test]
fn daemon_stop_removes_a_running_build_step() {
    let Some(d) = Daemon::start("daemon_stop_removes_a_running_build_step") else {
        return;
    };
    // Checked while the daemon is down: the next start's reconciliation must not be what
    // cleans up.
    build_step_is_removed_when(d, |d, client| {
        d.term();
        drop(client);
    });
}

/// Run a build whose RUN step sleeps, `cancel` it once the step runs, and check that nothing
/// of the step is left and that the engine still builds.
fn build_step_is_removed_when(mut d: Daemon, cancel: impl FnOnce(&mut Daemon, Client)) {
    let tag = rand_tag();
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nRUN echo step-running-{tag} && sleep 1000\n"),
    )
    .unwrap();
    let mut client = Client(
        Command::new(DOCKER)
            .args(["build", "--no-cache", "-t", &format!("cancel-{tag}")])
            .arg(&ctx)
            .env("DOCKER_HOST", format!("unix://{}", d.sock().display()))
            .env("DOCKER_CONFIG", d.dir.path().join("dockercfg"))
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait (bounded) until the step prints its marker: the RUN container is running.
    let out = client.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = format!("step-running-{tag}");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // The step's own output, not the "Step 2/2 : RUN echo …" line that names it.
            if line.trim() == marker {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the RUN step never started");

    // What runs for the step: its netns (named after the step), shim, cgroups, veth.
    let root = d.dir.path().join("root").display().to_string();
    let netns_dir = d.dir.path().join("run").join("netns");
    let step_ids = || -> Vec<String> {
        std::fs::read_dir(&netns_dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("build-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = poll(30, || step_ids().pop()).expect("no netns for the RUN step");
    let shims = poll(30, || {
        let p = pids_with(&["shim", &root, &id]);
        (!p.is_empty()).then_some(p)
    })
    .expect("no shim for the RUN step");
    let cgroups = cgroup_dirs(&id);
    assert!(!cgroups.is_empty(), "no cgroup for the RUN step {id}");
    let mut workload: Vec<i32> = cgroups
        .iter()
        .filter_map(|c| std::fs::read_to_string(c.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    workload.sort_unstable();
    workload.dedup();
    assert!(!workload.is_empty(), "no workload in {cgroups:?}");
    assert!(d.veths() > 0, "the RUN step has no veth");

    cancel(&mut d, client);

    let leftovers = || {
        let mut left = Vec::new();
        left.extend(
            shims
                .iter()
                .chain(&workload)
                .filter(|p| alive(**p))
                .map(|p| format!("process {p}")),
        );
        left.extend(step_ids().into_iter().map(|n| format!("netns {n}")));
        left.extend(
            cgroup_dirs(&id)
                .iter()
                .map(|c| format!("cgroup {}", c.display())),
        );
        if d.veths() > 0 {
            left.push(format!("{} veths on {}", d.veths(), d.bridge));
        }
        left.extend(
            d.mounts_under_root()
                .into_iter()
                .filter(|m| m.contains(&id))
                .map(|m| format!("mount {m}")),
        );
        left
    };
    let clean = poll(60, || leftovers().is_empty().then_some(()));
    assert!(
        clean.is_some(),
        "left after the build was cancelled: {:?}\n{}",
        leftovers(),
        d.log()
    );
    if !d.running() {
        d.spawn();
    }
    // The engine still builds.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN true\n").unwrap();
    d.ok(&[
        "build",
        "-q",
        "-t",
        &format!("cancel-ok-{tag}"),
        ctx.to_str().unwrap(),
    ]);
    d.finish();
}

/// Before, a commit whose client went away left the container paused forever: the unpause
/// came after an await the dropped request never got past.
#[test]
fn cancelled_commit_unpauses_the_container() {
    let Some(d) = Daemon::start("cancelled_commit_unpauses_the_container") else {
        return;
    };
    // Enough changed data that the commit takes a while after the pause.
    let id = d.ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/big bs=1M count=400 2>/dev/null; touch /ready; sleep 1000",
    ]);
    poll(120, || {
        d.docker(&["exec", &id, "test", "-e", "/ready"])
            .status
            .success()
            .then_some(())
    })
    .expect("the container never wrote its data");
    let client = Client(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-X", "POST"])
            .arg("--unix-socket")
            .arg(d.sock())
            .arg(format!(
                "http://localhost/commit?container={id}&pause=true&repo=cancel-commit"
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let paused = || d.inspect(&id, "{{.State.Paused}}") == "true";
    poll(60, || paused().then_some(())).expect("the commit never paused the container");
    drop(client);
    let unpaused = poll(120, || (!paused()).then_some(()));
    assert!(
        unpaused.is_some(),
        "the container stayed paused after its commit was cancelled\n{}",
        d.log()
    );
    // Still usable.
    assert_eq!(d.ok(&["exec", &id, "echo", "alive"]), "alive");
    d.ok(&["rm", "-f", &id]);
    d.finish();
}
