//! Out-of-process harness: the `berth` binary (built by `cargo build -p berth-cli`) as a daemon on
//! a temp root and socket with its own bridge, subnet and nft table, driven by the real docker CLI
//! or raw API calls. Dropping it removes everything it made (containers, mounts, bridges, nft
//! tables, netns and links the test registered), also on panic; `finish` additionally asserts
//! that nothing is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const DOCKER: &str = "/usr/local/bin/docker";

/// The berth binary beside the test executable (or BERTH_BIN).
pub fn berth_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return Some(p.into());
    }
    // target/debug/deps/<test> → target/debug/berth
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("berth");
    p.exists().then_some(p)
}

/// Six random hex digits, to keep names of parallel tests apart.
/// Subnets reserved for each daemon of a test process (`Daemon::subnet_n`).
const SUBNETS_PER_DAEMON: u32 = 4;

pub fn rand_tag() -> String {
    let mut b = [0u8; 3];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// A detached 100x20 tmux session running `cmd` (a real terminal for `run -it`), killed when
/// dropped.
pub struct Tmux(String);

impl Tmux {
    pub fn start(cmd: &str) -> Tmux {
        let name = format!("bt{}", rand_tag());
        let o = Tmux::run(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "100",
            "-y",
            "20",
            cmd,
        ]);
        assert!(o.status.success(), "tmux: {o:?}");
        Tmux(name)
    }
    fn run(args: &[&str]) -> Output {
        Command::new("tmux").args(args).output().unwrap()
    }
    /// What the terminal shows now.
    pub fn pane(&self) -> String {
        String::from_utf8_lossy(&Tmux::run(&["capture-pane", "-p", "-t", &self.0]).stdout)
            .into_owned()
    }
    /// Type `keys` and Enter.
    pub fn type_line(&self, keys: &str) {
        Tmux::run(&["send-keys", "-t", &self.0, keys, "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Tmux::run(&["kill-session", "-t", &self.0]);
    }
}

pub fn link_exists(name: &str) -> bool {
    sh("ip", &["link", "show", name]).status.success()
}

pub fn table_exists(t: &str) -> bool {
    sh("nft", &["list", "table", "inet", t]).status.success()
}

/// How to start a daemon; `Opts::default()` is what most tests want.
pub struct Opts<'a> {
    /// Commands the test needs besides docker (skipped locally, a failure in CI when missing).
    pub cmds: &'a [&'a str],
    /// Written to `<dir>/daemon.json` and passed as `--config-file`.
    pub daemon_json: Option<&'a str>,
    /// Give bridge, subnet and nft table as `berth daemon` flags rather than the environment.
    pub via_flags: bool,
    /// Load the busybox test image after start.
    pub busybox: bool,
    /// More `berth daemon` flags (another -H, TLS files, --group).
    pub extra_args: &'a [&'a str],
    /// The daemon dir's mode (default: tempfile's 0700); `--userns-remap` needs others'
    /// search bit on the way to its root (0711).
    pub dir_mode: Option<u32>,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            cmds: &[],
            daemon_json: None,
            via_flags: false,
            busybox: true,
            extra_args: &[],
            dir_mode: None,
        }
    }
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub pid: u32,
    pub bin: PathBuf,
    pub tag: String,
    pub bridge: String,
    pub table: String,
    pub subnet: String,
    /// The first of this daemon's [`SUBNETS_PER_DAEMON`] subnets (see [`Daemon::subnet_n`]).
    subnet_base: u32,
    via_flags: bool,
    with_config: bool,
    extra_args: Vec<String>,
    /// Bridges of user networks the test creates (removed on drop if still there).
    pub user_bridges: Vec<String>,
    /// Network namespaces the test created with `ip netns add`.
    pub netns: Vec<String>,
    /// Host links the test created.
    pub links: Vec<String>,
}

impl Daemon {
    /// A daemon with busybox loaded; None when the test must be skipped (not root, no docker, no
    /// binary — outside CI only).
    pub fn start(test: &str) -> Option<Daemon> {
        Daemon::start_opts(test, Opts::default())
    }

    pub fn start_opts(test: &str, opts: Opts) -> Option<Daemon> {
        if !berth_testutil::require_root(test)
            || !berth_testutil::require_cmds(test, &["docker"])
            || !berth_testutil::require_cmds(test, opts.cmds)
        {
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
        let tag = rand_tag();
        let subnet_base = {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let slot = NEXT.fetch_add(SUBNETS_PER_DAEMON, std::sync::atomic::Ordering::Relaxed);
            std::process::id().wrapping_mul(131) % 25_600 + slot
        };
        let mut d = Daemon {
            dir: tempfile::Builder::new()
                .prefix("berth-e2e-")
                .tempdir()
                .unwrap(),
            pid: 0,
            bin,
            bridge: format!("bt{tag}"),
            table: format!("bertht{tag}"),
            subnet: String::new(),
            subnet_base,
            tag,
            via_flags: opts.via_flags,
            with_config: opts.daemon_json.is_some(),
            extra_args: opts.extra_args.iter().map(|a| a.to_string()).collect(),
            user_bridges: vec![],
            netns: vec![],
            links: vec![],
        };
        d.subnet = d.subnet_n(0);
        if let Some(j) = opts.daemon_json {
            std::fs::write(d.dir.path().join("daemon.json"), j).unwrap();
        }
        if let Some(mode) = opts.dir_mode {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        d.spawn();
        if opts.busybox {
            let img = berth_testutil::image(test, "busybox")?;
            d.ok(&["load", "-i", img.to_str().unwrap()]);
        }
        Some(d)
    }

    /// A /24 no other daemon of this test process uses (a random pick collided once in CI:
    /// two daemons, one subnet); `n` (0..4) picks one of this daemon's, 0 is its default
    /// bridge's. Blocks are handed out in order from a per-process start in 10.100-199.x.
    pub fn subnet_n(&self, n: u32) -> String {
        assert!(
            n < SUBNETS_PER_DAEMON,
            "subnet_n({n}): at most {SUBNETS_PER_DAEMON}"
        );
        let idx = (self.subnet_base + n) % 25_600;
        format!("10.{}.{}.0/24", 100 + idx / 256, idx % 256)
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    /// Start (or restart after `kill9`) the daemon process and wait until it answers.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.sock());
        let _ = std::fs::remove_file(self.dir.path().join("run/berth.pid"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["daemon", "--root"])
            .arg(self.dir.path().join("root"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .arg("--exec-root")
            .arg(self.dir.path().join("run"));
        cmd.args(&self.extra_args);
        if self.with_config {
            cmd.arg("--config-file")
                .arg(self.dir.path().join("daemon.json"));
        }
        if self.via_flags {
            let bip = self.subnet.replace(".0/24", ".1/24");
            cmd.args(["--bridge", &self.bridge, "--bip", &bip])
                .args(["--nft-table", &self.table])
                .env_remove("BERTH_DEFAULT_BRIDGE")
                .env_remove("BERTH_NFT_TABLE")
                .env_remove("BERTH_DEFAULT_BRIDGE_SUBNET");
        } else {
            cmd.env("BERTH_DEFAULT_BRIDGE", &self.bridge)
                .env("BERTH_NFT_TABLE", &self.table)
                .env("BERTH_DEFAULT_BRIDGE_SUBNET", &self.subnet);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.pid = child.id();
        // Reaped by kill9 (waitpid on this PID); we wait on the socket instead.
        std::mem::forget(child);
        for _ in 0..400 {
            if self.sock().exists() && self.docker(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("daemon did not come up: {}", self.log());
    }

    pub fn kill9(&mut self) {
        if self.pid == 0 {
            return;
        }
        // SAFETY: plain kill(2) on the daemon pid we spawned.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        let mut st = 0;
        // SAFETY: reap our own child.
        unsafe { libc::waitpid(self.pid as i32, &mut st, 0) };
        self.pid = 0;
    }

    /// Whether the daemon process this harness spawned is still ours to stop.
    pub fn running(&self) -> bool {
        self.pid != 0
    }

    /// Stop the daemon as a service manager would (SIGTERM) and reap it.
    pub fn term(&mut self) {
        if self.pid == 0 {
            return;
        }
        // SAFETY: plain kill(2) on the daemon pid we spawned.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let mut st = 0;
        // SAFETY: reap our own child.
        unsafe { libc::waitpid(self.pid as i32, &mut st, 0) };
        self.pid = 0;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The real docker CLI aimed at this daemon (own config dir, classic builder).
    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("dockercfg"))
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT");
        c
    }

    /// Run the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Run the real docker CLI against this daemon with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .docker_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    /// The `berth` CLI itself against this daemon (for berth's own commands and flags).
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// docker's trimmed stdout; fails the test with stderr when the command fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).trim_end().to_string()
    }

    /// `load -i archive`: the name of the image it loaded.
    pub fn load(&self, archive: &std::path::Path) -> String {
        let loaded = self.ok(&["load", "-i", archive.to_str().unwrap()]);
        loaded
            .lines()
            .find_map(|l| l.strip_prefix("Loaded image: "))
            .unwrap_or_else(|| panic!("no image name in {loaded:?}"))
            .to_string()
    }

    /// A docker command expected to fail: its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    pub fn code(&self, args: &[&str]) -> i32 {
        self.docker(args).status.code().unwrap_or(-1)
    }

    pub fn inspect(&self, name: &str, fmt: &str) -> String {
        self.ok(&["inspect", "-f", fmt, name])
    }

    /// A raw API call through curl: (HTTP status, body).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
            .arg("--unix-socket")
            .arg(self.sock())
            .arg(format!("http://localhost{path}"));
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        let o = c.output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn mounts_under_root(&self) -> Vec<String> {
        let root = self.dir.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&root))
            .collect()
    }

    /// veths attached to the default bridge.
    pub fn veths(&self) -> usize {
        Daemon::veths_on(&self.bridge)
    }

    /// veths attached to a bridge.
    pub fn veths_on(br: &str) -> usize {
        let o = sh("ip", &["-o", "link", "show", "master", br]);
        String::from_utf8_lossy(&o.stdout).lines().count()
    }

    /// Nothing of a removed container is left: mounts, cgroups.
    pub fn assert_clean(&self, id: &str) {
        assert!(
            self.mounts_under_root().iter().all(|m| !m.contains(id)),
            "mount leak"
        );
        for c in ["memory", "pids", "cpu"] {
            let p = Path::new("/sys/fs/cgroup").join(c).join("berth").join(id);
            assert!(!p.exists(), "cgroup leak {}", p.display());
        }
    }

    /// Tear down and check that no bridge, veth, nft table, netns or mount of this test is left.
    pub fn finish(mut self) {
        self.cleanup();
        for b in [&self.bridge]
            .into_iter()
            .chain(self.user_bridges.iter())
            .chain(self.links.iter())
        {
            assert!(!link_exists(b), "leftover link {b}");
        }
        assert!(!table_exists(&self.table), "leftover nft table");
        for n in &self.netns {
            assert!(
                !Path::new("/run/netns").join(n).exists(),
                "leftover netns {n}"
            );
        }
        assert!(self.mounts_under_root().is_empty(), "leftover mounts");
    }

    fn cleanup(&mut self) {
        if self.pid != 0 {
            let ids = self.docker(&["ps", "-aq", "--no-trunc"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
            // User networks a failed test did not remove (their bridges outlive the daemon).
            let _ = self.docker(&["network", "prune", "-f"]);
            self.kill9();
        }
        for m in self.mounts_under_root().iter().rev() {
            let _ = sh("umount", &["-l", m]);
        }
        for b in [&self.bridge]
            .into_iter()
            .chain(self.user_bridges.iter())
            .chain(self.links.iter())
        {
            if link_exists(b) {
                let _ = sh("ip", &["link", "del", b]);
            }
        }
        for n in &self.netns {
            let _ = sh("ip", &["netns", "del", n]);
        }
        for fam in ["inet", "ip"] {
            let _ = sh("nft", &["delete", "table", fam, &self.table]);
        }
    }
}

/// A network namespace standing for another machine on the host's link (see
/// [`Daemon::neighbour`]).
pub struct Neighbour {
    /// `ip netns` name.
    pub ns: String,
    /// The host's end: an IPv4 address on a /30 and a unique local IPv6 address on a /64.
    pub host4: String,
    pub host6: String,
    /// The namespace's end, on the same prefixes.
    pub ns4: String,
    pub ns6: String,
}

impl Daemon {
    /// A neighbour: a namespace reached from the host over a veth, both ends addressed in
    /// IPv4 and IPv6 (no DAD, usable at once). Its namespace and the host's veth end are
    /// removed with this daemon's cleanup, also when the test panics.
    pub fn neighbour(&mut self) -> Neighbour {
        let n = self.netns.len();
        let ns = format!("bnb{}{n}", self.tag);
        let (hv, nv) = (format!("bv{}{n}h", self.tag), format!("bv{}{n}n", self.tag));
        self.netns.push(ns.clone());
        self.links.push(hv.clone());
        let b = u32::from_str_radix(&self.tag, 16).unwrap();
        let net4 = format!("10.{}.{}", 200 + (b % 50), (b >> 8) & 0xff);
        let net6 = format!("fd42:{}:{}{n}::", &self.tag[..4], &self.tag[4..]);
        let (host4, ns4) = (
            format!("{net4}.{}", 4 * n + 1),
            format!("{net4}.{}", 4 * n + 2),
        );
        // Written as Rust (and the kernel) print them, for comparisons with what others saw.
        let v6 = |i: u8| {
            format!("{net6}{i}")
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .to_string()
        };
        let (host6, ns6) = (v6(1), v6(2));
        for a in [
            vec!["netns", "add", &ns],
            vec!["link", "add", &hv, "type", "veth", "peer", "name", &nv],
            vec!["link", "set", &nv, "netns", &ns],
            vec!["addr", "add", &format!("{host4}/30"), "dev", &hv],
            vec![
                "-6",
                "addr",
                "add",
                &format!("{host6}/64"),
                "dev",
                &hv,
                "nodad",
            ],
            vec!["link", "set", &hv, "up"],
            vec!["-n", &ns, "addr", "add", &format!("{ns4}/30"), "dev", &nv],
            vec![
                "-n",
                &ns,
                "-6",
                "addr",
                "add",
                &format!("{ns6}/64"),
                "dev",
                &nv,
                "nodad",
            ],
            vec!["-n", &ns, "link", "set", &nv, "up"],
            vec!["-n", &ns, "link", "set", "lo", "up"],
        ] {
            let o = sh("ip", &a);
            assert!(
                o.status.success(),
                "ip {a:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Neighbour {
            ns,
            host4,
            host6,
            ns4,
            ns6,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// `berth daemon` run bare on `<dir>/root` and `<dir>/run` (no bridge, its own nft table name)
/// with extra `args`, for tests of the process itself; killed and reaped on drop if still running.
pub struct Bare {
    child: std::process::Child,
    table: String,
}

impl Bare {
    pub fn spawn(bin: &Path, dir: &Path, args: &[&str]) -> Bare {
        let table = format!("berthbare{}", rand_tag());
        let child = Command::new(bin)
            .args(["daemon", "--root"])
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("run"))
            .args(["--bridge", "none", "--nft-table", &table])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Bare { child, table }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait (at most 30s) for the process to exit by itself; its status and stderr.
    pub fn exits(mut self) -> (std::process::ExitStatus, String) {
        let start = std::time::Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "berth daemon kept running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        (status, err)
    }

    /// Stop it as a service manager would (SIGTERM) and wait for it to exit.
    pub fn term(self) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) on the pid of the child this value owns (not yet reaped).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.exits()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for fam in ["inet", "ip"] {
            let _ = Command::new("nft")
                .args(["delete", "table", fam, &self.table])
                .stderr(Stdio::null())
                .output();
        }
    }
}
