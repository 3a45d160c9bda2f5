//! berth as containerd's OCI runtime (issue 17): Debian's containerd 1.6, started here with its
//! own root, state and socket, runs busybox through `berth-runc` (a symlink to the berth binary)
//! as the runc shim's runtime binary — output, exit codes, exec, pause/resume, a memory update
//! through containerd's Tasks/Update API, metrics, kill, checkpoint refused — and nothing is
//! left afterwards. Also `berth-runc` alone
//! on a bundle: its lifecycle and bad input (bad config.json, id in use, delete of a running
//! container, unknown command or flag).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::cli::{berth_bin, rand_tag};

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The berth binary as `<dir>/berth-runc` (argv[0] selects runc's command line).
fn runc_link(dir: &Path) -> PathBuf {
    let bin = berth_bin().expect("the berth binary (cargo build -p berth-cli)");
    let link = dir.join("berth-runc");
    std::os::unix::fs::symlink(bin, &link).unwrap();
    link
}

/// Unpack the busybox archive's layer into `<bundle>/rootfs` with `tar`.
fn busybox_rootfs(archive: &Path, bundle: &Path) {
    let scratch = bundle.join("oci");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::create_dir_all(&rootfs).unwrap();
    let tar = |a: &[&Path]| {
        let mut c = Command::new("tar");
        c.arg("-xf")
            .arg(a[0])
            .arg("-C")
            .arg(a[1])
            .arg("--numeric-owner");
        assert!(c.status().unwrap().success());
    };
    tar(&[archive, &scratch]);
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| scratch.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let index = json(scratch.join("index.json"));
    let manifest = json(blob(&index["manifests"][0]["digest"]));
    for l in manifest["layers"].as_array().unwrap() {
        tar(&[&blob(&l["digest"]), &rootfs]);
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// Every cgroup directory named `rel` under any hierarchy (v1 controllers or v2).
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v = Vec::new();
    if root.join(rel).is_dir() {
        v.push(root.join(rel));
    }
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let p = e.path().join(rel);
        if p.is_dir() {
            v.push(p);
        }
    }
    v
}

/// Mount points under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    let mut m: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&d))
        .collect();
    m.sort_by_key(|p| std::cmp::Reverse(p.len()));
    m
}

/// A private containerd: temp root/state/socket, its own namespace; torn down on drop.
struct Containerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    sock: PathBuf,
    ns: String,
    runc: PathBuf,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("bctd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let sock = d.join("c.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{d}/debug.sock"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = sock.display(),
            d = d.display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let runc = runc_link(d);
        let c = Containerd {
            child: Some(child),
            sock,
            ns: format!("berth-e2e-{}", rand_tag()),
            runc,
            dir,
        };
        let t0 = Instant::now();
        while !c.ctr(&["version"]).status.success() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "containerd did not come up: {}",
                std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc")
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.sock)
            .arg("-n")
            .arg(&self.ns)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `ctr run` with berth as the runc shim's runtime binary.
    fn run(&self, extra: &[&str], image: &str, id: &str, cmd: &[&str]) -> Output {
        let runc = self.runc.to_string_lossy().into_owned();
        let root = self.runc_root().to_string_lossy().into_owned();
        let mut a = vec!["run", "--runc-binary", &runc, "--runc-root", &root];
        a.extend_from_slice(extra);
        a.push(image);
        a.push(id);
        a.extend_from_slice(cmd);
        self.ctr(&a)
    }

    fn task_status(&self, id: &str) -> String {
        out(&self.ctr(&["task", "ls"]))
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2).map(String::from))
            .unwrap_or_default()
    }

    fn remove_everything(&self) {
        for id in out(&self.ctr(&["task", "ls", "-q"])).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
        }
        for id in out(&self.ctr(&["c", "ls", "-q"])).lines() {
            let _ = self.ctr(&["task", "rm", "-f", id]);
            let _ = self.ctr(&["c", "rm", id]);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut ch) = self.child.take() {
            self.remove_everything();
            // SAFETY: kill(2) on the pid of the child we spawned.
            unsafe { libc::kill(ch.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while ch.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = ch.kill();
            let _ = ch.wait();
        }
        for m in mounts_under(self.dir.path()) {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        for d in cgroup_dirs(&self.ns) {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn containerd_runs_busybox_through_berth_runc() {
    let t = "containerd_runs_busybox_through_berth_runc";
    if !berth_testutil::require_root(t) || !berth_testutil::require_cmds(t, &["containerd", "ctr"])
    {
        return;
    }
    let Some(archive) = berth_testutil::image(t, "busybox") else {
        return;
    };
    let c = Containerd::start();
    let imp = c.ctr(&[
        "images",
        "import",
        "--all-platforms",
        archive.to_str().unwrap(),
    ]);
    assert!(imp.status.success(), "import: {}", err(&imp));
    let image = out(&c.ctr(&["images", "ls", "-q"]))
        .lines()
        .next()
        .expect("an imported image")
        .to_string();

    // Output and exit codes.
    let o = c.run(&["--rm"], &image, "hi", &["echo", "hi"]);
    assert!(o.status.success(), "ctr run: {}", err(&o));
    assert_eq!(out(&o), "hi\n");
    let o = c.run(&["--rm"], &image, "seven", &["sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", err(&o));

    // A long-running task: exec, pause/resume, update, metrics, checkpoint, kill.
    let o = c.run(&["-d"], &image, "s1", &["sleep", "300"]);
    assert!(o.status.success(), "ctr run -d: {}", err(&o));
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "s1",
        "sh",
        "-c",
        "echo in-exec; exit 4",
    ]);
    assert_eq!(
        (out(&o).as_str(), o.status.code()),
        ("in-exec\n", Some(4)),
        "{}",
        err(&o)
    );
    // A runtime error reaches the ctr user: go-runc reads berth-runc's `--log` json line.
    let o = c.ctr(&["task", "exec", "--exec-id", "e2", "s1", "/no/such/cmd"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("/no/such/cmd"),
        "exec of a missing command: {}",
        err(&o)
    );
    let ps = out(&c.ctr(&["task", "ps", "s1"]));
    assert!(ps.lines().count() >= 2, "task ps: {ps}");

    assert!(c.ctr(&["task", "pause", "s1"]).status.success());
    assert_eq!(c.task_status("s1"), "PAUSED");
    assert!(c.ctr(&["task", "resume", "s1"]).status.success());
    assert_eq!(c.task_status("s1"), "RUNNING");

    // ctr 1.6 has no `task update`: call containerd's Tasks/Update over gRPC as its Go client
    // does (LinuxResources as JSON in an Any); the shim runs berth-runc's `update -r -`. Then
    // read the limit back through containerd's metrics.
    let (code, msg) = grpc_update_memory(&c.sock, &c.ns, "s1", 67108864);
    assert_eq!(code, "0", "Tasks/Update: grpc-status {code} {msg}");
    let m = c.ctr(&["task", "metrics", "s1"]);
    assert!(m.status.success(), "metrics: {}", err(&m));
    let metrics = out(&m);
    assert!(metrics.contains("memory.usage_in_bytes"), "{metrics}");
    assert!(metrics.contains("pids.current"), "{metrics}");
    let limit = metrics
        .lines()
        .find(|l| l.starts_with("memory.limit_in_bytes"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    assert_eq!(limit, "67108864", "{metrics}");

    let o = c.ctr(&["task", "checkpoint", "s1"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("checkpoint is not supported by berth's runtime"),
        "{}",
        err(&o)
    );
    assert_eq!(
        c.task_status("s1"),
        "RUNNING",
        "a refused checkpoint stops nothing"
    );

    assert!(c
        .ctr(&["task", "kill", "-s", "SIGKILL", "s1"])
        .status
        .success());
    let t0 = Instant::now();
    while c.task_status("s1") != "STOPPED" {
        assert!(t0.elapsed() < Duration::from_secs(10), "s1 not stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.ctr(&["task", "rm", "s1"]).status.success());
    assert!(c.ctr(&["c", "rm", "s1"]).status.success());

    // Nothing left: tasks, containers, runtime state, cgroups, mounts of tasks.
    let root = c.runc_root().join(&c.ns);
    assert_eq!(out(&c.ctr(&["task", "ls", "-q"])), "");
    assert_eq!(out(&c.ctr(&["c", "ls", "-q"])), "");
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
    for id in ["hi", "seven", "s1"] {
        let cg = cgroup_dirs(&format!("{}/{id}", c.ns));
        assert!(cg.is_empty(), "cgroups left: {cg:?}");
    }
    let state = c.dir.path().join("state");
    assert!(
        mounts_under(&state).is_empty(),
        "{:?}",
        mounts_under(&state)
    );
    let dir = c.dir.path().to_path_buf();
    let ns = c.ns.clone();
    drop(c);
    assert!(
        mounts_under(&dir).is_empty(),
        "mounts left: {:?}",
        mounts_under(&dir)
    );
    assert!(
        cgroup_dirs(&ns).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&ns)
    );
}

/// A protobuf length-delimited field.
fn pb_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    let mut n = bytes.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
}

/// `containerd.services.tasks.v1.Tasks/Update` with a memory limit, over HTTP/2 on the unix
/// socket: returns grpc-status and grpc-message.
fn grpc_update_memory(sock: &Path, ns: &str, id: &str, limit: u64) -> (String, String) {
    let resources = format!(r#"{{"memory":{{"limit":{limit}}}}}"#);
    let mut any = Vec::new();
    pb_field(
        &mut any,
        0x0a,
        b"types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
    );
    pb_field(&mut any, 0x12, resources.as_bytes());
    let mut req = Vec::new();
    pb_field(&mut req, 0x0a, id.as_bytes());
    pb_field(&mut req, 0x12, &any);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(req.len() as u32).to_be_bytes());
    frame.extend_from_slice(&req);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let io = tokio::net::UnixStream::connect(sock).await.unwrap();
        let (client, conn) = h2::client::handshake(io).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.unwrap();
        let request =
            http::Request::post("http://containerd/containerd.services.tasks.v1.Tasks/Update")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("containerd-namespace", ns)
                .body(())
                .unwrap();
        let (resp, mut send) = client.send_request(request, false).unwrap();
        send.send_data(bytes::Bytes::from(frame), true).unwrap();
        let resp = resp.await.unwrap();
        let (head, mut body) = resp.into_parts();
        while let Some(d) = body.data().await {
            let _ = d.unwrap();
        }
        let trailers = body.trailers().await.unwrap().unwrap_or_default();
        let get = |k: &str| {
            trailers
                .get(k)
                .or_else(|| head.headers.get(k))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        (get("grpc-status"), get("grpc-message"))
    })
}

/// `berth-runc` on a bundle of its own, with a temp `--root`.
struct Bundle {
    dir: tempfile::TempDir,
    runc: PathBuf,
}

impl Bundle {
    fn new(t: &str, args: &[&str]) -> Option<Bundle> {
        let archive = berth_testutil::image(t, "busybox")?;
        let dir = tempfile::Builder::new()
            .prefix("brunc-")
            .tempdir_in("/tmp")
            .unwrap();
        let b = dir.path().join("bundle");
        busybox_rootfs(&archive, &b);
        let runc = runc_link(dir.path());
        let o = Command::new(&runc)
            .arg("spec")
            .arg("--bundle")
            .arg(&b)
            .output()
            .unwrap();
        assert!(o.status.success(), "spec: {}", err(&o));
        let cfg = b.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(args);
        std::fs::write(&cfg, spec.to_string()).unwrap();
        Some(Bundle { dir, runc })
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Run `berth-runc --root <root> ARGS`. Output goes through files, not pipes: a created
    /// container's init inherits them and holds them open until it exits (as with runc).
    fn runc(&self, args: &[&str]) -> Output {
        let (o, e) = (self.dir.path().join("out"), self.dir.path().join("err"));
        let status = Command::new(&self.runc)
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    fn state(&self, id: &str) -> serde_json::Value {
        let o = self.runc(&["state", id]);
        assert!(o.status.success(), "state: {}", err(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn ids(&self) -> Vec<String> {
        out(&self.runc(&["list", "-q"]))
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.runc(&["delete", "--force", &id]);
        }
    }
}

#[test]
fn berth_runc_lifecycle_on_a_bundle() {
    let t = "berth_runc_lifecycle_on_a_bundle";
    if !berth_testutil::require_root(t) {
        return;
    }
    let Some(b) = Bundle::new(t, &["sleep", "300"]) else {
        return;
    };
    let id = format!("rt-{}", rand_tag());
    let bundle = b.bundle().to_string_lossy().into_owned();
    let pid_file = b.dir.path().join("init.pid");
    let o = b.runc(&[
        "create",
        "--bundle",
        &bundle,
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(o.status.success(), "create: {}", err(&o));
    let s = b.state(&id);
    assert_eq!(s["status"], "created");
    assert_eq!(s["bundle"], bundle.as_str());
    assert_eq!(
        s["pid"].as_i64().unwrap().to_string(),
        std::fs::read_to_string(&pid_file).unwrap()
    );
    for k in ["ociVersion", "id", "rootfs", "created", "owner"] {
        assert!(s.get(k).is_some(), "state has no {k}: {s}");
    }
    assert!(b.runc(&["start", &id]).status.success());
    assert_eq!(b.state(&id)["status"], "running");

    let o = b.runc(&["exec", &id, "sh", "-c", "echo from-exec; exit 3"]);
    assert_eq!(
        (out(&o).as_str(), o.status.code()),
        ("from-exec\n", Some(3))
    );
    let o = b.runc(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!pids.is_empty());
    let o = b.runc(&["events", "--stats", &id]);
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (ev["type"].as_str(), ev["id"].as_str()),
        (Some("stats"), Some(id.as_str()))
    );
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);

    assert!(b.runc(&["pause", &id]).status.success());
    assert_eq!(b.state(&id)["status"], "paused");
    assert!(b.runc(&["resume", &id]).status.success());

    // Bad input: id in use, delete of a running container, unknown command and flag.
    let o = b.runc(&["create", "--bundle", &bundle, &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!("container with id {id} already exists")),
        "{}",
        err(&o)
    );
    let o = b.runc(&["delete", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("that is not stopped: running"),
        "{}",
        err(&o)
    );
    assert_eq!(
        b.state(&id)["status"],
        "running",
        "a refused delete changed nothing"
    );
    assert_eq!(b.runc(&["frobnicate"]).status.code(), Some(1));
    assert_eq!(b.runc(&["create", "--bogus", "x"]).status.code(), Some(1));

    assert!(b.runc(&["kill", &id, "KILL"]).status.success());
    let t0 = Instant::now();
    while b.state(&id)["status"] != "stopped" {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(b.runc(&["delete", &id]).status.success());
    assert!(b.ids().is_empty());
    for rel in [id.clone(), format!("youki/{id}")] {
        assert!(cgroup_dirs(&rel).is_empty(), "{:?}", cgroup_dirs(&rel));
    }

    // Attached run: output and the container's exit code; nothing kept.
    let cfg = b.bundle().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    spec["process"]["args"] = serde_json::json!(["sh", "-c", "echo ran; exit 9"]);
    std::fs::write(&cfg, spec.to_string()).unwrap();
    let o = b.runc(&["run", "--bundle", &bundle, &id]);
    assert_eq!(
        (out(&o).as_str(), o.status.code()),
        ("ran\n", Some(9)),
        "{}",
        err(&o)
    );
    assert!(b.ids().is_empty());
}

/// Receive one fd sent with SCM_RIGHTS on `conn` (runc's console-socket protocol).
fn recv_fd(conn: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg on the console socket");
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this fd in our table for us to own.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd on the console socket");
}

#[test]
fn berth_runc_sends_the_pty_master_to_the_console_socket() {
    let t = "berth_runc_sends_the_pty_master_to_the_console_socket";
    if !berth_testutil::require_root(t) {
        return;
    }
    let Some(b) = Bundle::new(t, &["sh", "-c", "[ -t 0 ] && echo is-a-tty; sleep 100"]) else {
        return;
    };
    let cfg = b.bundle().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    spec["process"]["terminal"] = true.into();
    std::fs::write(&cfg, spec.to_string()).unwrap();
    let sock = b.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let master = std::fs::File::from(recv_fd(&conn));
        let mut text = String::new();
        let mut r = std::io::BufReader::new(master);
        let _ = std::io::BufRead::read_line(&mut r, &mut text);
        text
    });
    let id = format!("tty-{}", rand_tag());
    let bundle = b.bundle().to_string_lossy().into_owned();
    let o = b.runc(&[
        "run",
        "--detach",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        &bundle,
        &id,
    ]);
    assert!(
        o.status.success(),
        "run -d with a console socket: {}",
        err(&o)
    );
    assert_eq!(got.join().unwrap().trim(), "is-a-tty");
    assert!(b.runc(&["delete", "--force", &id]).status.success());
    assert!(b.ids().is_empty());
}

#[test]
fn berth_runc_refuses_a_bad_config_and_leaves_nothing() {
    let t = "berth_runc_refuses_a_bad_config_and_leaves_nothing";
    if !berth_testutil::require_root(t) {
        return;
    }
    let Some(b) = Bundle::new(t, &["true"]) else {
        return;
    };
    let cfg = b.bundle().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    spec["process"]["args"] = "not-a-list".into();
    std::fs::write(&cfg, spec.to_string()).unwrap();
    let log = b.dir.path().join("log.json");
    let bundle = b.bundle().to_string_lossy().into_owned();
    let o = Command::new(&b.runc)
        .arg("--root")
        .arg(b.root())
        .args(["--log", log.to_str().unwrap(), "--log-format", "json"])
        .args(["create", "--bundle", &bundle, "bad"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // As go-runc reads it: the last JSON line with level error, its msg.
    let last: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["level"], "error");
    let msg = last["msg"].as_str().unwrap();
    assert!(
        msg.contains("config.json") && msg.contains("process.args"),
        "{msg}"
    );
    assert!(err(&o).contains("process.args"), "{}", err(&o));
    assert!(b.ids().is_empty());
    assert!(!b.root().join("bad").exists());
    assert!(cgroup_dirs("bad").is_empty());
}

/// containerd pulls from `berth registry serve` (issue 18): `ctr pull --plain-http` of an
/// image skopeo pushed there, then runs it through berth-runc.
#[test]
fn containerd_pulls_from_berth_registry() {
    let t = "containerd_pulls_from_berth_registry";
    if !berth_testutil::require_root(t)
        || !berth_testutil::require_cmds(t, &["containerd", "ctr", "skopeo", "curl"])
    {
        return;
    }
    let Some(archive) = berth_testutil::image(t, "busybox") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let port = crate::common::cli::free_port();
    let mut reg = Command::new(berth_bin().unwrap())
        .args([
            "registry",
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--root",
        ])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = || {
        Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/v2/")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let t0 = Instant::now();
    while !up() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "registry did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let image = format!("127.0.0.1:{port}/library/busybox:latest");
    let o = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", err(&o));
    {
        let c = Containerd::start();
        let o = c.ctr(&["images", "pull", "--plain-http", &image]);
        assert!(o.status.success(), "ctr pull: {}{}", out(&o), err(&o));
        let o = c.run(&["--rm"], &image, "pulled", &["echo", "pulled from berth"]);
        assert!(o.status.success(), "ctr run: {}", err(&o));
        assert_eq!(out(&o), "pulled from berth\n");
    }
    // SAFETY: kill(2) on the PID of the registry this test spawned and has not reaped.
    unsafe { libc::kill(reg.id() as i32, libc::SIGTERM) };
    let _ = reg.wait();
}
