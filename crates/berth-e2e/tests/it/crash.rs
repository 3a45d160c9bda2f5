//! Crash trials: SIGKILL the daemon at a random moment of a load, build (with a RUN), `run -d`,
//! commit or `rm -f`, restart it on the same root, and check that every container starts
//! again, that every listed image runs, that `rm -f` of everything leaves nothing (processes
//! and cgroup dirs of its containers and build steps, mounts under the root, netns files,
//! veths, port rules, runtime state) and that `berth system check` is clean.
//!
//! Bounded: `BERTH_CRASH_TRIALS` trials (default 20), delays below 700 ms. The seed is printed;
//! `BERTH_CRASH_SEED=<n>` replays a run. Nothing asserts on timing: delays only pick moments.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{Daemon, DOCKER};
use common::leftovers::{
    alive, build_step_ids, cgroup_dirs, host_veth_peers, names, BuildStepsGuard, StrayProcess,
};

/// xorshift64*: enough randomness to pick operations and moments, replayable from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    if let Some(s) = std::env::var("BERTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s;
    }
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    u64::from_le_bytes(b) | 1
}

const OPS: [&str; 5] = ["load", "build", "run", "commit", "rm"];

struct Trial<'a> {
    d: &'a mut Daemon,
    n: usize,
    problems: Vec<String>,
}

impl Trial<'_> {
    fn fail(&mut self, what: String) {
        eprintln!("trial {}: {what}", self.n);
        self.problems.push(what);
    }

    fn docker_ok(&mut self, args: &[&str]) -> Option<String> {
        let o = self.d.docker(args);
        if o.status.success() {
            Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
        } else {
            self.fail(format!(
                "docker {args:?}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            None
        }
    }

    /// The operation as a docker child process (killed with the daemon's death at the latest).
    fn start_op(&mut self, op: &str, rng: &mut Rng, busybox: &Path) -> std::process::Child {
        let d = &*self.d;
        let tag = format!("c{}", self.n);
        let args: Vec<String> = match op {
            "load" => vec!["load".into(), "-i".into(), busybox.display().to_string()],
            "build" => {
                let ctx = d.dir.path().join(format!("ctx{}", self.n));
                std::fs::create_dir_all(&ctx).unwrap();
                std::fs::write(
                    ctx.join("Dockerfile"),
                    format!("FROM busybox\nRUN echo {} > /f && sleep 0.2\n", rng.next()),
                )
                .unwrap();
                vec![
                    "build".into(),
                    "-q".into(),
                    "-t".into(),
                    format!("crash-b{}", self.n),
                    ctx.display().to_string(),
                ]
            }
            "run" => [
                "run", "-d", "-p", "80", "--name", &tag, "busybox", "sleep", "1000",
            ]
            .map(String::from)
            .to_vec(),
            "commit" => vec!["commit".into(), "pre".into(), format!("crash-c{}", self.n)],
            "rm" => vec!["rm".into(), "-f".into(), "pre".into()],
            _ => unreachable!(),
        };
        Command::new(DOCKER)
            .args(&args)
            .env("DOCKER_HOST", format!("unix://{}", d.sock().display()))
            .env("DOCKER_CONFIG", d.dir.path().join("dockercfg"))
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// After the restart: every container starts, every image runs, `rm -f` leaves nothing,
    /// `system check` is clean.
    fn verify(&mut self, build_steps: &[String]) {
        let half_made = host_veth_peers();
        if !half_made.is_empty() {
            self.fail(format!(
                "half-made veth pairs in the host namespace: {half_made:?}"
            ));
        }
        let ids = self
            .docker_ok(&["ps", "-aq", "--no-trunc"])
            .unwrap_or_default();
        let ids: Vec<String> = ids.split_whitespace().map(String::from).collect();
        for id in &ids {
            // A commit pauses its container: one killed mid-commit may stay paused.
            match self.d.inspect(id, "{{.State.Status}}").as_str() {
                "running" => {}
                "paused" => {
                    self.docker_ok(&["unpause", id]);
                }
                _ => {
                    self.docker_ok(&["start", id]);
                }
            }
        }
        let images = self.docker_ok(&["images", "-q"]).unwrap_or_default();
        let mut images: Vec<&str> = images.split_whitespace().collect();
        images.dedup();
        for img in images {
            self.docker_ok(&["run", "--rm", img, "true"]);
        }
        for id in &ids {
            self.docker_ok(&["rm", "-f", id]);
        }
        let root = self.d.dir.path().join("root");
        let run = self.d.dir.path().join("run");
        for id in ids.iter().chain(build_steps) {
            for c in cgroup_dirs(id) {
                let procs = std::fs::read_to_string(c.join("cgroup.procs")).unwrap_or_default();
                self.fail(format!("cgroup left: {} (procs: {procs:?})", c.display()));
            }
        }
        for (what, dir) in [
            ("container dir", root.join("containers")),
            ("rw layer", root.join("containers-rw")),
            ("netns", run.join("netns")),
            ("runtime state", run.join("runtime")),
            ("build step runtime state", root.join("build-tmp/runtime")),
        ] {
            let left = names(&dir);
            if !left.is_empty() {
                self.fail(format!("{what} left: {left:?}"));
            }
        }
        let mounts = self.d.mounts_under_root();
        if !mounts.is_empty() {
            self.fail(format!("mounts left: {mounts:?}"));
        }
        if self.d.veths() != 0 {
            self.fail(format!(
                "{} veths left on {}",
                self.d.veths(),
                self.d.bridge
            ));
        }
        let rules = common::cli::sh("nft", &["list", "table", "inet", &self.d.table]);
        let rules = String::from_utf8_lossy(&rules.stdout);
        // Per-port rules read `dnat ip to <container>:<port>`; the fixed ones do not.
        if rules.contains("dnat ip") {
            self.fail(format!("port rules left:\n{rules}"));
        }
        let o = berth(self.d, &["system", "check"]);
        if !o.status.success() {
            self.fail(format!(
                "system check: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
            // Keep later trials meaningful.
            let _ = berth(self.d, &["system", "check", "--repair"]);
        }
    }
}

#[test]
fn crash_trials_leave_nothing_behind() {
    let Some(mut d) = Daemon::start("crash_trials_leave_nothing_behind") else {
        return;
    };
    let busybox = berth_testutil::image("crash_trials_leave_nothing_behind", "busybox").unwrap();
    let seed = seed();
    let trials: usize = std::env::var("BERTH_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("crash trials: {trials}, BERTH_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let _steps = BuildStepsGuard(d.dir.path().join("root"));
    let mut failed = Vec::new();
    for n in 0..trials {
        let op = OPS[rng.below(OPS.len() as u64) as usize];
        let delay = rng.below(700);
        let mut t = Trial {
            d: &mut d,
            n,
            problems: vec![],
        };
        if op == "commit" || op == "rm" {
            t.docker_ok(&[
                "run", "-d", "-p", "80", "--name", "pre", "busybox", "sleep", "1000",
            ]);
        }
        let mut child = t.start_op(op, &mut rng, &busybox);
        std::thread::sleep(Duration::from_millis(delay));
        t.d.kill9();
        let _ = child.kill();
        let _ = child.wait();
        let steps = build_step_ids(&t.d.dir.path().join("root"));
        t.d.spawn();
        t.verify(&steps);
        eprintln!(
            "trial {n}: {op} killed after {delay} ms: {}",
            if t.problems.is_empty() {
                "ok"
            } else {
                "FAILED"
            }
        );
        if !t.problems.is_empty() {
            failed.push(format!("trial {n} ({op}, {delay} ms): {:?}", t.problems));
        }
    }
    eprintln!(
        "crash trials: {trials}, failures: {} (BERTH_CRASH_SEED={seed})",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "BERTH_CRASH_SEED={seed}:\n{}\n{}",
        failed.join("\n"),
        d.log()
    );
    d.finish();
}

fn shim_pid(dir: &Path) -> i32 {
    std::fs::read_to_string(dir.join("shim.pid"))
        .unwrap_or_default()
        .trim()
        .parse()
        .expect("shim.pid")
}

/// Nothing of `id` is left: cgroups, netns file, runtime state, mounts, veths.
fn assert_gone(d: &Daemon, id: &str) {
    assert_eq!(
        cgroup_dirs(id),
        Vec::<std::path::PathBuf>::new(),
        "cgroups of {id}"
    );
    let run = d.dir.path().join("run");
    assert!(!run.join("netns").join(id).exists(), "netns of {id}");
    assert!(
        !run.join("runtime").join(id).exists(),
        "runtime state of {id}"
    );
    assert!(
        d.mounts_under_root().iter().all(|m| !m.contains(id)),
        "mounts of {id}: {:?}",
        d.mounts_under_root()
    );
    assert_eq!(d.veths(), 0, "veths on {}", d.bridge);
}

fn berth(d: &Daemon, args: &[&str]) -> std::process::Output {
    Command::new(&d.bin)
        .args(["-H", &format!("unix://{}", d.sock().display())])
        .args(args)
        .output()
        .unwrap()
}

/// The daemon dies after the shim created (even started) the container but before the record
/// said "running": the record says "created" while shim, workload, netns, veth, overlay and
/// cgroups exist. The restarted daemon undoes all of it: the container starts again (it
/// failed with "create netns … File exists") and `rm -f` leaves nothing.
#[test]
fn a_start_cut_short_by_a_crash_starts_again() {
    let Some(mut d) = Daemon::start("a_start_cut_short_by_a_crash_starts_again") else {
        return;
    };
    d.ok(&[
        "run", "-d", "-p", "80", "--name", "half", "busybox", "sleep", "1000",
    ]);
    let id = d.inspect("half", "{{.Id}}");
    let dir = d.dir.path().join("root/containers").join(&id);
    let (shim, pid) = (shim_pid(&dir), d.inspect("half", "{{.State.Pid}}"));
    let pid: i32 = pid.parse().unwrap();
    d.kill9();
    // The record as the start left it before its last save.
    let p = dir.join("config.v2.json");
    let mut rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    rec["state"]["status"] = "created".into();
    rec["state"]["pid"] = 0.into();
    rec["state"]["shim_pid"] = 0.into();
    rec["netns"] = serde_json::Value::Null;
    rec["endpoints"] = serde_json::json!([]);
    rec["ports"] = serde_json::json!([]);
    std::fs::write(&p, serde_json::to_vec(&rec).unwrap()).unwrap();
    d.spawn();
    assert!(!alive(pid), "the workload of the cut-short start survived");
    assert!(!alive(shim), "the shim of the cut-short start survived");
    assert_gone(&d, &id);
    d.ok(&["start", "half"]);
    assert_eq!(d.inspect("half", "{{.State.Status}}"), "running");
    let pid: i32 = d.inspect("half", "{{.State.Pid}}").parse().unwrap();
    d.ok(&["rm", "-f", "half"]);
    assert!(!alive(pid));
    assert_gone(&d, &id);
    assert!(berth(&d, &["system", "check"]).status.success());
    d.finish();
}

/// `rm -f` of a container whose record knows nothing of them removes a process in its
/// cgroup, the cgroup, a netns file and runtime state (the old remove left all four).
#[test]
fn rm_f_removes_what_exists_whatever_the_record_says() {
    let Some(d) = Daemon::start("rm_f_removes_what_exists_whatever_the_record_says") else {
        return;
    };
    let id = d.ok(&["create", "--name", "idle", "busybox", "sleep", "1000"]);
    let mut stray = StrayProcess::start(&id);
    let run = d.dir.path().join("run");
    std::fs::create_dir_all(run.join("netns")).unwrap();
    std::fs::write(run.join("netns").join(&id), "").unwrap();
    std::fs::create_dir_all(run.join("runtime").join(&id)).unwrap();
    std::fs::write(run.join("runtime").join(&id).join("state.json"), "{}").unwrap();
    d.ok(&["rm", "-f", "idle"]);
    assert!(
        stray.gone(),
        "the process in the container's cgroup survived rm -f"
    );
    assert!(!stray.cgroup.exists());
    assert_gone(&d, &id);
    d.finish();
}

/// The daemon dies while a build's RUN step runs: the restarted daemon kills the step's
/// processes and shim and removes its cgroups, netns, veth, overlay and runtime state.
#[test]
fn a_build_step_cut_short_by_a_crash_is_undone() {
    let Some(mut d) = Daemon::start("a_build_step_cut_short_by_a_crash_is_undone") else {
        return;
    };
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN sleep 1000\n").unwrap();
    let mut child = Command::new(DOCKER)
        .args(["build", "-q", ctx.to_str().unwrap()])
        .env("DOCKER_HOST", format!("unix://{}", d.sock().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("dockercfg"))
        .env("DOCKER_BUILDKIT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let root = d.dir.path().join("root");
    let _steps = BuildStepsGuard(root.clone());
    // Wait (bounded) until the step's workload runs in its cgroup.
    let mut step = None;
    for _ in 0..3000 {
        let running = build_step_ids(&root).into_iter().find(|id| {
            cgroup_dirs(id).iter().any(|c| {
                !std::fs::read_to_string(c.join("cgroup.procs"))
                    .unwrap_or_default()
                    .trim()
                    .is_empty()
            }) && root
                .join("build-tmp")
                .join(format!("{id}-shim/shim.pid"))
                .exists()
        });
        if running.is_some() {
            step = running;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let step = step.expect("the RUN step did not start");
    let shim = shim_pid(&root.join("build-tmp").join(format!("{step}-shim")));
    d.kill9();
    d.spawn();
    assert!(!alive(shim), "the build step's shim survived");
    assert_eq!(build_step_ids(&root), Vec::<String>::new());
    assert_gone(&d, &step);
    assert!(names(&root.join("build-tmp/runtime")).is_empty());
    let check = berth(&d, &["system", "check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    d.finish();
}

/// A blob written by an operation the crash cut short before its image was registered (load,
/// pull, build, commit) is collected when the daemon starts; the image's own blobs stay.
#[test]
fn blobs_of_a_cut_short_operation_are_collected_at_start() {
    let Some(mut d) = Daemon::start("blobs_of_a_cut_short_operation_are_collected_at_start") else {
        return;
    };
    d.kill9();
    let content = format!("layer of a load cut short {}", common::cli::rand_tag());
    let blob = d
        .dir
        .path()
        .join("root/blobs/sha256")
        .join(berth_oci::Digest::of(content.as_bytes()).hex());
    std::fs::write(&blob, &content).unwrap();
    d.spawn();
    assert!(!blob.exists(), "the unused blob survived the restart");
    let check = berth(&d, &["system", "check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    d.ok(&["run", "--rm", "busybox", "true"]);
    d.finish();
}
