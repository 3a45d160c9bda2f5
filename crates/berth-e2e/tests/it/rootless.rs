//! Rootless mode end to end: a test user (made here with `useradd`, a subordinate range in
//! /etc/subuid and /etc/subgid) starts `berth daemon` itself and, with the same commands and no
//! root anywhere, loads an image, runs containers (root inside, the user outside), uses a named
//! volume, builds a Dockerfile with a RUN step, is reached by the docker CLI, publishes a port
//! on the host's 127.0.0.1 (slirp4netns), resolves containers by name on a user network, and
//! cannot read what the user cannot. The user, its ranges, its processes and its files are
//! removed on drop, also on panic.

use crate::common;
use common::host_uid;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::cli::{berth_bin, rand_tag, DOCKER};

use common::TEST_RANGE as RANGE;

/// A throwaway user with its own subordinate range, home and runtime dir, and its daemon.
struct User {
    name: String,
    uid: u32,
    /// The first host id of its subordinate range (container uid 1 is this).
    sub_start: u32,
    dir: tempfile::TempDir,
    bin: PathBuf,
    daemon: Option<Child>,
}

impl User {
    /// Create the user, with a subordinate range when `range`; None when the test is skipped
    /// (not root, a tool missing, no binary).
    fn create(test: &str, range: bool) -> Option<User> {
        let tools = [
            "useradd",
            "userdel",
            "setpriv",
            "newuidmap",
            "newgidmap",
            "docker",
        ];
        if !berth_testutil::require_root(test) || !berth_testutil::require_cmds(test, &tools) {
            return None;
        }
        let Some(bin) = berth_bin() else {
            assert!(!berth_testutil::in_ci(), "{test}: berth binary not built");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("berth-rootless-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let tag = rand_tag();
        let name = format!("bertht{tag}");
        let home = dir.path().join("home");
        let sub_start = common::test_range_start(&tag);
        let uid = common::add_test_user(&name, Some(&home), range.then_some(sub_start));
        let mut u = User {
            sub_start,
            name,
            uid,
            dir,
            bin,
            daemon: None,
        };
        for d in [home.clone(), u.runtime_dir()] {
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
            nix::unistd::chown(&d, Some(uid.into()), Some(uid.into())).unwrap();
        }
        // The binary must be executable by the user; a private checkout's is copied.
        if !u
            .cmd_raw(&["test", "-x"])
            .arg(&u.bin)
            .status()
            .unwrap()
            .success()
        {
            let copy = u.dir.path().join("berth");
            std::fs::copy(&u.bin, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            u.bin = copy;
        }
        Some(u)
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn socket(&self) -> PathBuf {
        self.runtime_dir().join("berth/berth.sock")
    }

    /// `args` run as the user, with a login-like environment and nothing of root's.
    fn cmd_raw(&self, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.uid.to_string(),
        ])
        .args(["--init-groups", "env", "-i"])
        .arg(format!("HOME={}", self.home().display()))
        .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir().display()))
        .arg(format!("USER={}", self.name))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .arg("BERTH_NO_AUTOSTART=1")
        .args(args);
        c
    }

    /// `berth args` as the user.
    fn berth(&self, args: &[&str]) -> Command {
        let mut c = self.cmd_raw(&[self.bin.to_str().unwrap()]);
        c.args(args);
        c
    }

    fn out(&self, args: &[&str]) -> Output {
        self.berth(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `berth args` as the user, which must succeed; its trimmed stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.out(args);
        assert!(
            o.status.success(),
            "berth {args:?}: {}\n{}",
            stderr(&o),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// `berth daemon` as the user, with its defaults; waits for the socket.
    fn start_daemon(&mut self) {
        self.start_daemon_with(&[]);
    }

    /// [`User::start_daemon`] with extra `berth daemon` flags.
    fn start_daemon_with(&mut self, flags: &[&str]) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).unwrap();
        let mut args = vec!["daemon"];
        args.extend(flags);
        let child = self
            .berth(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let up = common::poll(20, || {
            (self.socket().exists() && self.out(&["version"]).status.success()).then_some(())
        });
        assert!(
            up.is_some(),
            "rootless daemon did not come up:\n{}",
            self.log()
        );
    }

    /// Stop the daemon by its pid (SIGTERM, SIGKILL after 15 s).
    fn stop_daemon(&mut self) {
        let Some(mut c) = self.daemon.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let gone = common::poll(15, || c.try_wait().ok().flatten());
        if gone.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `berth build` as the user of a context `dir` (in its home) holding `dockerfile`: the tag.
    fn build(&self, dir: &str, dockerfile: &str) -> String {
        let (tag, o) = self.build_output(dir, dockerfile);
        assert!(o.status.success(), "build: {}\n{}", stderr(&o), self.log());
        tag
    }

    /// [`User::build`] whatever its outcome: the tag asked for and the output.
    fn build_output(&self, dir: &str, dockerfile: &str) -> (String, Output) {
        let ctx = self.home().join(dir);
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let _ = Command::new("chown")
            .arg("-R")
            .arg(format!("{0}:{0}", self.uid))
            .arg(&ctx)
            .status();
        let tag = format!("rlb{}", rand_tag());
        let o = self.out(&["build", "-t", &tag, ctx.to_str().unwrap()]);
        (tag, o)
    }

    /// Entry names of the top layer of `image`, from `berth save` to stdout.
    fn top_layer(&self, image: &str) -> Vec<String> {
        let o = self.out(&["save", image]);
        assert!(o.status.success(), "save: {}", stderr(&o));
        common::saved_top_layer_entries(&o.stdout)
    }

    /// The user's fuse-overlayfs processes (one per mounted layer).
    fn fuse_processes(&self) -> Vec<i32> {
        self.processes()
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "fuse-overlayfs")
            })
            .collect()
    }

    /// The daemon proper: the supervisor's child in the namespaces (beside slirp4netns).
    fn inner_daemon(&self) -> i32 {
        let sup = self
            .daemon
            .as_ref()
            .expect("daemon started")
            .id()
            .to_string();
        let field = |p: i32, f: &str| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| Some(l.strip_prefix(f)?.trim().to_string()))
        };
        self.processes()
            .into_iter()
            .find(|p| {
                field(*p, "PPid:").as_deref() == Some(&sup)
                    && field(*p, "Name:").as_deref() != Some("slirp4netns")
            })
            .expect("the inner daemon")
    }

    /// Whether a host uid is the user's or one of its subordinate ids.
    fn owns(&self) -> impl Fn(u32) -> bool {
        let (uid, ids) = (self.uid, self.sub_start..self.sub_start + RANGE);
        move |u| u == uid || ids.contains(&u)
    }

    /// Host processes running as the user or one of its subordinate ids.
    fn processes(&self) -> Vec<i32> {
        common::processes_of(self.owns())
    }
}

impl Drop for User {
    fn drop(&mut self) {
        self.stop_daemon();
        // Containers outlive their daemon (as rootful ones do): ended by pid, then the user.
        common::remove_test_user(&self.name, self.owns());
        // Layers and volumes hold files of subordinate ids, some read-only.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(self.dir.path())
            .status();
    }
}

/// A device node the user must open: slirp4netns's /dev/net/tun, fuse-overlayfs's /dev/fuse.
/// Most distributions' udev makes them 0666; a host without udev leaves the kernel's 0600.
/// Opened for the test, the old mode restored on drop.
struct DevOpen {
    path: &'static str,
    old: Option<u32>,
}

impl DevOpen {
    fn open(path: &'static str) -> DevOpen {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        if mode & 0o666 == 0o666 {
            return DevOpen { path, old: None };
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        DevOpen {
            path,
            old: Some(mode),
        }
    }
}

impl Drop for DevOpen {
    fn drop(&mut self) {
        if let Some(mode) = self.old {
            let _ = std::fs::set_permissions(self.path, std::fs::Permissions::from_mode(mode));
        }
    }
}

/// GET `path` from 127.0.0.1:`port`: the response body.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `berth load` as the user, the archive on stdin (the user need not read the shared dir).
fn load_output(u: &User, archive: &Path) -> Output {
    let mut c = u
        .berth(&["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    // A refused archive may be closed early: the exit status tells.
    let _ = std::io::copy(&mut std::fs::File::open(archive).unwrap(), &mut stdin);
    drop(stdin);
    c.wait_with_output().unwrap()
}

/// [`load_output`], which must succeed: its stdout.
fn load(u: &User, archive: &Path) -> String {
    let o = load_output(u, archive);
    assert!(o.status.success(), "load: {}\n{}", stderr(&o), u.log());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn rootless_daemon_runs_as_an_ordinary_user() {
    let test = "rootless_daemon_runs_as_an_ordinary_user";
    let Some(img) = common::busybox(test) else {
        return;
    };
    if !berth_testutil::require_cmds(test, &["slirp4netns"]) {
        return;
    }
    let Some(mut u) = User::create(test, true) else {
        return;
    };
    let _tun = DevOpen::open("/dev/net/tun");
    u.start_daemon();
    // The daemon itself runs as the user on the host, state in the XDG places.
    let pid = u.daemon.as_ref().unwrap().id() as i32;
    assert_eq!(host_uid(pid), Some(u.uid));
    let root = u.home().join(".local/share/berth");
    assert!(root.join("meta.db").exists(), "{}", root.display());
    assert_eq!(std::fs::metadata(&root).unwrap().uid(), u.uid);

    assert!(load(&u, &img).contains("Loaded image: busybox"));
    let info = u.ok(&["info"]);
    let docker_host = format!("unix://{}", u.socket().display());
    assert!(info.contains("Rootless: true"), "{info}");
    assert!(
        info.contains(&format!("DOCKER_HOST={docker_host}")),
        "{info}"
    );

    // Root inside, the user outside.
    assert_eq!(u.ok(&["run", "--rm", "busybox", "id", "-u"]), "0");
    let name = format!("rl{}", rand_tag());
    u.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "120"]);
    let cpid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", &name])
        .parse()
        .unwrap();
    assert_eq!(host_uid(cpid), Some(u.uid), "container root on the host");
    // uid 1000 inside is sub_start + 999 outside.
    let other = format!("rl{}", rand_tag());
    u.ok(&[
        "run", "-d", "--name", &other, "-u", "1000", "busybox", "sleep", "120",
    ]);
    let opid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", &other])
        .parse()
        .unwrap();
    assert_eq!(host_uid(opid), Some(u.sub_start + 999));
    u.ok(&["rm", "-f", &other]);

    // A named volume: a file chowned to 1000 inside belongs to sub_start + 999 on the host.
    let vol = format!("rlv{}", rand_tag());
    u.ok(&["volume", "create", &vol]);
    let mount = format!("{vol}:/data");
    u.ok(&[
        "run",
        "--rm",
        "-v",
        &mount,
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f && chown 1000:1000 /data/f",
    ]);
    assert_eq!(
        u.ok(&["run", "--rm", "-v", &mount, "busybox", "cat", "/data/f"]),
        "kept"
    );
    let host_file = root.join("volumes").join(&vol).join("_data/f");
    let meta = std::fs::metadata(&host_file).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (u.sub_start + 999, u.sub_start + 999)
    );

    // A build with a RUN step (a rootless container too), files owned inside the range.
    let tag = u.build(
        "ctx",
        "FROM busybox\nRUN echo built > /b && mkdir /o && chown 2000:2000 /o\nCMD cat /b\n",
    );
    assert_eq!(u.ok(&["run", "--rm", &tag]), "built");
    assert_eq!(
        u.ok(&["run", "--rm", &tag, "stat", "-c", "%u", "/o"]),
        "2000"
    );

    // The docker CLI against the user's socket.
    let ps = u
        .cmd_raw(&[DOCKER, "-H", &docker_host, "ps", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    assert!(ps.status.success(), "docker ps: {}", stderr(&ps));
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), name);

    // Nothing the user cannot reach: root's files stay closed to container root.
    for (src, cmd) in [("/etc/shadow", "cat /m"), ("/root", "ls /m")] {
        let mount = format!("{src}:/m");
        let o = u.out(&["run", "--rm", "-v", &mount, "busybox", "sh", "-c", cmd]);
        assert!(!o.status.success(), "{src} was readable");
        assert!(
            stderr(&o).contains("Permission denied"),
            "{src}: {}",
            stderr(&o)
        );
    }
    // Limits cannot be applied without cgroups: refused by flag, nothing created.
    let o = u.out(&["run", "--rm", "--memory", "64m", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("--memory: resource limits need cgroup v2 delegation"),
        "{}",
        stderr(&o)
    );

    // Nor can a container be frozen: said so, not a missing file.
    let o = u.out(&["pause", &name]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("pause needs the container's freezer cgroup"),
        "{}",
        stderr(&o)
    );

    // A published port is served on the host's 127.0.0.1 (slirp4netns forwards it into the
    // daemon's namespace) and closed again when the container goes.
    let port = common::cli::free_port();
    let web = format!("rlw{}", rand_tag());
    let publish = format!("127.0.0.1:{port}:80");
    let id = u.ok(&[
        "run", "-d", "--name", &web, "-p", &publish, "busybox", "httpd", "-f", "-p", "80", "-h",
        "/etc",
    ]);
    let body = common::poll(10, || http_get(port, "/hostname").ok()).expect("published port");
    assert_eq!(body.trim(), &id[..12]);
    u.ok(&["rm", "-f", &web]);
    assert!(
        http_get(port, "/hostname").is_err(),
        "port still open after rm"
    );
    // Ports the host keeps for root are refused with the sysctl that opens them.
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if start > 80 {
        let o = u.out(&["run", "--rm", "-p", "127.0.0.1:80:80", "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains("sysctl net.ipv4.ip_unprivileged_port_start=80"),
            "{}",
            stderr(&o)
        );
    }

    // Two containers on a user network reach each other by name.
    let net = format!("rln{}", rand_tag());
    u.ok(&["network", "create", &net]);
    let (a, b) = (format!("rla{}", rand_tag()), format!("rlb{}", rand_tag()));
    let serve = |n: &str| {
        let httpd = ["httpd", "-f", "-p", "80", "-h", "/etc"];
        let mut args = vec!["run", "-d", "--name", n, "--network", &net, "busybox"];
        args.extend(httpd);
        u.ok(&args)
    };
    let a_id = serve(&a);
    let b_id = serve(&b);
    let url = |n: &str| format!("http://{n}/hostname");
    assert_eq!(
        u.ok(&["exec", &a, "wget", "-q", "-O-", &url(&b)]),
        b_id[..12]
    );
    assert_eq!(
        u.ok(&["exec", &b, "wget", "-q", "-O-", &url(&a)]),
        a_id[..12]
    );
    u.ok(&["rm", "-f", &a, &b]);
    u.ok(&["network", "rm", &net]);

    u.ok(&["rm", "-f", &name]);
    assert!(u.ok(&["ps", "-aq"]).is_empty());
    u.stop_daemon();
    // The daemon and its shims are gone with it: no process of the user or its range is left.
    let left = common::poll(10, || u.processes().is_empty().then_some(()));
    assert!(left.is_some(), "left running: {:?}", u.processes());
}

#[test]
fn rootless_without_subordinate_ids_maps_root_alone_and_says_how_to_add_a_range() {
    let test = "rootless_without_subordinate_ids_maps_root_alone_and_says_how_to_add_a_range";
    let (Some(busybox), Some(debian)) = (
        common::busybox(test),
        berth_testutil::image(test, "debian-bookworm-minbase"),
    ) else {
        return;
    };
    let Some(mut u) = User::create(test, false) else {
        return;
    };
    u.start_daemon();
    let usermod = format!(
        "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}",
        u.name
    );
    let log = u.log();
    let warning = log
        .lines()
        .find(|l| l.contains("no subordinate ids"))
        .unwrap_or_default();
    assert!(
        warning.contains("single id") && warning.contains(&usermod),
        "{log}"
    );
    // Root alone works: busybox's files all belong to root.
    assert!(load(&u, &busybox).contains("Loaded image: busybox"));
    assert_eq!(u.ok(&["run", "--rm", "busybox", "id", "-u"]), "0");
    let pid = u.daemon.as_ref().unwrap().id() as i32;
    assert_eq!(host_uid(pid), Some(u.uid));
    // Another user, or an image with other owners' files, needs a range: one line says how.
    let o = u.out(&["run", "--rm", "-u", "1000", "busybox", "id"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(&usermod), "{}", stderr(&o));
    let o = load_output(&u, &debian);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("is not mapped in this user namespace") && err.contains(&usermod),
        "{err}"
    );
    assert!(!u
        .ok(&["images", "--format", "{{.Repository}}"])
        .contains("debian"));
    u.stop_daemon();
}

/// Opaque directories (a layer replacing a directory of a lower one) in rootless mode: built,
/// run, committed and saved with kernel overlayfs (`user.overlay.opaque`, mounted with
/// `userxattr`), then the same store served by a daemon forced onto fuse-overlayfs, whose
/// mounts go away with `rm` and at the daemon's stop.
#[test]
fn rootless_opaque_dirs_on_overlay2_and_fuse_overlayfs() {
    let test = "rootless_opaque_dirs_on_overlay2_and_fuse_overlayfs";
    let Some(img) = common::busybox(test) else {
        return;
    };
    if !berth_testutil::require_cmds(test, &["fuse-overlayfs", "nsenter"]) {
        return;
    }
    let Some(mut u) = User::create(test, true) else {
        return;
    };
    let _fuse = DevOpen::open("/dev/fuse");
    let _tun = DevOpen::open("/dev/net/tun");
    u.start_daemon();
    assert!(
        u.ok(&["info"]).contains("Storage Driver: overlay2"),
        "{}",
        u.log()
    );
    load(&u, &img);
    let opq = "d/.wh..wh..opq".to_string();
    let tag = u.build(
        "opq",
        "FROM busybox\nRUN mkdir -p /d && touch /d/a\nRUN rm -rf /d && mkdir /d && touch /d/b\n",
    );
    assert_eq!(u.ok(&["run", "--rm", &tag, "ls", "/d"]), "b");
    let top = u.top_layer(&tag);
    assert!(top.contains(&opq) && top.contains(&"d/b".into()), "{top:?}");
    // A container replacing the image's directory: its commit is opaque there too.
    let c = format!("rlc{}", rand_tag());
    u.ok(&[
        "run",
        "--name",
        &c,
        &tag,
        "sh",
        "-c",
        "rm -rf /d && mkdir /d && touch /d/c",
    ]);
    let committed = format!("rlk{}", rand_tag());
    u.ok(&["commit", &c, &committed]);
    u.ok(&["rm", &c]);
    assert_eq!(u.ok(&["run", "--rm", &committed, "ls", "/d"]), "c");
    let top = u.top_layer(&committed);
    assert!(top.contains(&opq) && top.contains(&"d/c".into()), "{top:?}");
    // A loopback resolver of the host (systemd-resolved's stub, here bound over the daemon's
    // own view of /etc/resolv.conf; the bind goes with its mount namespace) is reached
    // through slirp4netns's DNS: containers are told 10.0.2.3.
    let fake = u.dir.path().join("resolv.conf");
    std::fs::write(&fake, "nameserver 127.0.0.53\nsearch example.test\n").unwrap();
    let bound = Command::new("nsenter")
        .args(["-t", &u.inner_daemon().to_string(), "-m", "mount", "--bind"])
        .arg(&fake)
        .arg("/etc/resolv.conf")
        .output()
        .unwrap();
    assert!(bound.status.success(), "nsenter mount: {}", stderr(&bound));
    for net in ["bridge", "host"] {
        let r = u.ok(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ]);
        assert!(
            r.contains("nameserver 10.0.2.3") && !r.contains("127.0.0.53"),
            "{net}: {r}"
        );
        assert!(r.contains("search example.test"), "{net}: {r}");
    }

    // COPY --chown to an id the namespace does not map: one line saying which ids it does.
    let (bad, o) = u.build_output(
        "chown",
        "FROM busybox\nCOPY --chown=70000:70000 Dockerfile /x\n",
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("owner 70000:70000 is not mapped in this user namespace")
            && err.contains("maps container ids 0-65536 only"),
        "{err}"
    );
    assert!(!u.out(&["image", "inspect", &bad]).status.success());
    u.stop_daemon();

    // The same store through fuse-overlayfs.
    u.start_daemon_with(&["--storage-driver", "fuse-overlayfs"]);
    assert!(
        u.ok(&["info"]).contains("Storage Driver: fuse-overlayfs"),
        "{}",
        u.log()
    );
    assert_eq!(u.ok(&["run", "--rm", &tag, "ls", "/d"]), "b");
    assert_eq!(u.ok(&["run", "--rm", &committed, "ls", "/d"]), "c");
    let f = format!("rlf{}", rand_tag());
    u.ok(&["run", "-d", "--name", &f, &tag, "sleep", "120"]);
    let cpid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", &f])
        .parse()
        .unwrap();
    let mounts = std::fs::read_to_string(format!("/proc/{cpid}/mounts")).unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some("/") && l.contains("fuse.fuse-overlayfs")),
        "{mounts}"
    );
    // Root and another user of the range write through it.
    u.ok(&[
        "exec",
        &f,
        "sh",
        "-c",
        "rm -rf /d && mkdir /d && echo w > /d/w && mkdir -m 1777 /t",
    ]);
    u.ok(&["exec", "-u", "1000", &f, "touch", "/t/u"]);
    let fc = format!("rlk{}", rand_tag());
    u.ok(&["commit", &f, &fc]);
    assert_eq!(u.ok(&["run", "--rm", &fc, "cat", "/d/w"]), "w");
    assert_eq!(u.ok(&["run", "--rm", &fc, "ls", "/d"]), "w");
    assert_eq!(
        u.ok(&["run", "--rm", &fc, "stat", "-c", "%u", "/t/u"]),
        "1000"
    );
    let top = u.top_layer(&fc);
    assert_eq!(top.iter().filter(|n| **n == opq).count(), 1, "{top:?}");
    assert!(top.contains(&"d/w".into()), "{top:?}");
    u.ok(&["rm", "-f", &f]);
    let gone = common::poll(10, || u.fuse_processes().is_empty().then_some(()));
    assert!(
        gone.is_some(),
        "fuse-overlayfs left: {:?}",
        u.fuse_processes()
    );
    // A stopped container's layer mounted by `cp` is unmounted when the daemon stops, also
    // when its supervisor is killed outright (the daemon gets its parent-death SIGTERM;
    // slirp4netns sees its exit fd close).
    let g = format!("rlg{}", rand_tag());
    u.ok(&["run", "--name", &g, &tag, "true"]);
    let o = u.out(&["cp", &format!("{g}:/d/b"), "-"]);
    assert!(o.status.success(), "cp: {}", stderr(&o));
    assert!(!u.fuse_processes().is_empty(), "cp mounted nothing");
    let mut supervisor = u.daemon.take().unwrap();
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    let left = common::poll(15, || u.processes().is_empty().then_some(()));
    let names: Vec<String> = u
        .processes()
        .iter()
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
        .collect();
    assert!(left.is_some(), "left running: {names:?}\n{}", u.log());

    // An unknown driver: one line, no daemon.
    let o = u.out(&["daemon", "--storage-driver", "vfs"]);
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown storage driver \"vfs\""), "{err}");
}
