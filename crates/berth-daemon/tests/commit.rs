//! `docker commit` and `docker diff` end to end: the real docker CLI against a berth daemon (the
//! `berth` binary, built by `cargo build -p berth-cli`) on a temp root, socket, bridge and nft
//! table. Covers --change/-m/-a, history, Parent, pause, Docker's error for a bad change, and
//! that engine-made mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf, /.dockerenv …)
//! stay out of diff and of the committed layer (the init layer).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const DOCKER: &str = "/usr/local/bin/docker";

fn berth_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return Some(p.into());
    }
    // target/debug/deps/<test> → target/debug/berth
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("berth");
    p.exists().then_some(p)
}

fn rand_tag() -> String {
    let mut b = [0u8; 3];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Daemon {
    dir: tempfile::TempDir,
    pid: u32,
    bridge: String,
    table: String,
}

impl Daemon {
    /// None when the test must be skipped (not root / no binary outside CI).
    fn start(test: &str) -> Option<Daemon> {
        if !berth_testutil::require_root(test) || !berth_testutil::require_cmds(test, &["docker"]) {
            return None;
        }
        let Some(bin) = berth_bin() else {
            assert!(
                !berth_testutil::in_ci(),
                "{test}: berth binary not built (cargo build -p berth-cli)"
            );
            eprintln!("skipped {test}: build berth-cli first or set BERTH_BIN");
            return None;
        };
        let img = berth_testutil::image(test, "busybox")?;
        let tag = rand_tag();
        let b = u32::from_str_radix(&tag, 16).unwrap();
        let mut d = Daemon {
            dir: tempfile::Builder::new()
                .prefix("berth-commit-")
                .tempdir()
                .unwrap(),
            pid: 0,
            bridge: format!("bm{tag}"),
            table: format!("berthm{tag}"),
        };
        let subnet = format!("10.{}.{}.0/24", 100 + (b >> 8) % 100, b & 0xff);
        d.spawn(&bin, &subnet);
        d.ok(&["load", "-i", img.to_str().unwrap()]);
        Some(d)
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    fn spawn(&mut self, bin: &PathBuf, subnet: &str) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).unwrap();
        let child = Command::new(bin)
            .args(["daemon", "--root"])
            .arg(self.dir.path().join("root"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .arg("--exec-root")
            .arg(self.dir.path().join("run"))
            .env("BERTH_DEFAULT_BRIDGE", &self.bridge)
            .env("BERTH_NFT_TABLE", &self.table)
            .env("BERTH_DEFAULT_BRIDGE_SUBNET", subnet)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.pid = child.id();
        // Reaped in Drop (waitpid); we wait on the socket instead.
        std::mem::forget(child);
        for _ in 0..400 {
            if self.sock().exists() && self.docker(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("daemon did not come up: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("dockercfg"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).trim_end().to_string()
    }

    fn mounts_under_root(&self) -> Vec<String> {
        let root = self.dir.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&root))
            .collect()
    }

    /// Entry names of the top layer of `image` (from `docker save`).
    fn top_layer_entries(&self, image: &str) -> Vec<String> {
        let out = self.dir.path().join("save.tar");
        self.ok(&["save", "-o", out.to_str().unwrap(), image]);
        let read = |name: &str| -> Vec<u8> {
            let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
            for e in a.entries().unwrap() {
                let mut e = e.unwrap();
                if e.path().unwrap().to_str() == Some(name) {
                    let mut b = Vec::new();
                    e.read_to_end(&mut b).unwrap();
                    return b;
                }
            }
            panic!("{name} not in the saved archive");
        };
        let m: serde_json::Value = serde_json::from_slice(&read("manifest.json")).unwrap();
        let layer = m[0]["Layers"].as_array().unwrap().last().unwrap().clone();
        let blob = read(layer.as_str().unwrap());
        let plain = if blob.starts_with(&[0x1f, 0x8b]) {
            let mut v = Vec::new();
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut v)
                .unwrap();
            v
        } else {
            blob
        };
        let mut names: Vec<String> = tar::Archive::new(&plain[..])
            .entries()
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path().unwrap().display().to_string();
                p.trim_end_matches('/').to_string()
            })
            .collect();
        names.sort();
        let _ = std::fs::remove_file(&out);
        names
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // SAFETY: plain kill(2) on the daemon pid we spawned.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        let mut st = 0;
        // SAFETY: reap our own child.
        unsafe { libc::waitpid(self.pid as i32, &mut st, 0) };
        for m in self.mounts_under_root().iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        for fam in ["inet", "ip"] {
            let _ = Command::new("nft")
                .args(["delete", "table", fam, &self.table])
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn commit_with_change_message_and_author() {
    let Some(d) = Daemon::start("commit_with_change_message_and_author") else {
        return;
    };
    d.ok(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo hello > /hi",
    ]);
    let id = d.ok(&[
        "commit",
        "-m",
        "saved hi",
        "-a",
        "Ann <ann@example.com>",
        "-c",
        r#"CMD ["cat","/hi"]"#,
        "-c",
        "ENV GREETING=hello",
        "c1",
        "hiimg:v1",
    ]);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(d.ok(&["run", "--rm", "hiimg:v1"]), "hello");
    let hist = d.ok(&[
        "history",
        "--format",
        "{{.Comment}}|{{.CreatedBy}}",
        "hiimg:v1",
    ]);
    let top = hist.lines().next().unwrap();
    assert!(top.starts_with("saved hi|sh -c echo hello > /hi"), "{hist}");
    let busybox = d.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.Id}}|{{.Parent}}|{{.Author}}|{{.Comment}}",
            "hiimg:v1"
        ]),
        format!("{id}|{busybox}|Ann <ann@example.com>|saved hi")
    );
    let env = d.ok(&["inspect", "-f", "{{json .Config.Env}}", "hiimg:v1"]);
    assert!(
        env.contains("GREETING=hello") && env.contains("PATH="),
        "{env}"
    );
    // No repository: an untagged image, its id printed.
    let untagged = d.ok(&["commit", "c1"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", &untagged]), untagged);
}

#[test]
fn diff_and_commit_hold_only_the_containers_changes() {
    let Some(d) = Daemon::start("diff_and_commit_hold_only_the_containers_changes") else {
        return;
    };
    d.ok(&["run", "--name", "tt", "busybox", "touch", "/test"]);
    assert_eq!(d.ok(&["diff", "tt"]), "A /test");
    // The engine's mount points are there for the process, but below the rw layer.
    let seen = d.ok(&[
        "run",
        "--name",
        "ee",
        "busybox",
        "sh",
        "-c",
        "echo x >> /etc/passwd; ls /.dockerenv /etc/hosts /etc/hostname /etc/resolv.conf",
    ]);
    assert_eq!(seen.lines().count(), 4, "{seen}");
    assert_eq!(d.ok(&["diff", "ee"]), "C /etc\nC /etc/passwd");
    d.ok(&["commit", "tt", "touched"]);
    assert_eq!(d.top_layer_entries("touched"), ["test"]);
    d.ok(&["commit", "ee", "edited"]);
    assert_eq!(d.top_layer_entries("edited"), ["etc", "etc/passwd"]);
    // A container from the committed image works and diffs clean itself.
    d.ok(&["run", "--name", "again", "touched", "ls", "/test"]);
    assert_eq!(d.ok(&["diff", "again"]), "");
}

#[test]
fn bad_change_fails_like_docker_and_creates_nothing() {
    let Some(d) = Daemon::start("bad_change_fails_like_docker_and_creates_nothing") else {
        return;
    };
    d.ok(&["run", "--name", "cx", "busybox", "touch", "/x"]);
    let before = d.ok(&["images", "-aq"]);
    let o = d.docker(&["commit", "-c", "RUN x", "cx", "bad:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "Error response from daemon: RUN is not a valid change command"
    );
    assert_eq!(d.ok(&["images", "-aq"]), before);
    let o = d.docker(&["commit", "nosuchcontainer"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such container: nosuchcontainer"));
}

#[test]
fn commit_pauses_a_running_container_unless_told_not_to() {
    let Some(d) = Daemon::start("commit_pauses_a_running_container_unless_told_not_to") else {
        return;
    };
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo up > /up; exec sleep 1000",
    ]);
    // The file is written by the container itself: wait until it shows in the diff.
    for _ in 0..400 {
        if d.ok(&["diff", "live"]).contains("A /up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    d.ok(&["commit", "live", "live:paused"]);
    d.ok(&["commit", "--pause=false", "live", "live:unpaused"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "live"]),
        "running"
    );
    assert_eq!(d.ok(&["run", "--rm", "live:paused", "cat", "/up"]), "up");
    assert_eq!(d.ok(&["run", "--rm", "live:unpaused", "cat", "/up"]), "up");
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        // Up to the next second: everything above has happened by then.
        &(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1)
        .to_string(),
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev
        .lines()
        .filter(|a| matches!(*a, "pause" | "unpause" | "commit"))
        .collect();
    // Only the first commit pauses.
    assert_eq!(actions, ["pause", "unpause", "commit", "commit"], "{ev}");
}
