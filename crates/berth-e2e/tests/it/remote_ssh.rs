//! Remote hosts over ssh: an OpenSSH server started by the test on 127.0.0.1 (own host key,
//! config and authorized key, throwaway client key, known_hosts pinned to that host key, root
//! logins refused) where an unprivileged user made by the test logs in; its sessions get `BERTH_HOST` = the test daemon's socket and a PATH where `berth` is the built
//! binary and `docker` a shim running it. Then `berth -H ssh://…` (run, stdin attach, logs -f,
//! cp, build, `run -it` under tmux) and the docker CLI with `DOCKER_HOST=ssh://…` reach the
//! test daemon through `berth system dial-stdio`, and unreachable host, failed authentication,
//! a changed host key and a missing remote berth each fail with one line and exit 1.

use crate::common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::{free_port, rand_tag, Daemon, Tmux, DOCKER};

const SSHD: &str = "/usr/sbin/sshd";

/// The test's sshd, killed by PID when dropped (also on panic).
struct Sshd {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// Who the sessions log in as.
    user: TestUser,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
    /// The client-side ssh config: the throwaway key and known_hosts holding only this sshd's key.
    fn client_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }
}

/// The unprivileged user the ssh sessions log in as (`ssh://<user>@…`), made by the test and
/// removed with its group when dropped (also on panic), its leftover sessions ended first.
/// It reaches the daemon the way `berth daemon --group` lets a group in: the socket is
/// `root:<its group>` 0660.
struct TestUser {
    name: String,
    uid: u32,
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let uid = self.uid;
        common::remove_test_user(&self.name, move |u| u == uid);
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl TestUser {
    fn create(d: &Daemon) -> TestUser {
        let name = format!("bt{}", rand_tag());
        let home = d.dir.path().join("ssh/home");
        // `-p '*'`: no password, and not locked (sshd without PAM refuses a locked "!" account).
        let o = Command::new("useradd")
            .args(["-M", "-U", "-p", "*", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(&name)
            .output()
            .unwrap();
        assert!(o.status.success(), "useradd {name}: {o:?}");
        let id = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8_lossy(&id.stdout)
            .trim()
            .parse()
            .unwrap_or(u32::MAX);
        let u = TestUser { name, uid };
        std::fs::create_dir_all(&home).unwrap();
        let chown = |p: &Path, owner: &str| {
            let o = Command::new("chown").arg(owner).arg(p).output().unwrap();
            assert!(o.status.success(), "chown {owner} {}: {o:?}", p.display());
        };
        chown(&home, &format!("{0}:{0}", u.name));
        chown(&d.sock(), &format!("root:{}", u.name));
        chmod(&d.sock(), 0o660);
        // The test's temp dir is root's (0700): let the user through to the socket and to the
        // sshd files it reads (its authorized keys, the remote PATH), without listing it.
        chmod(d.dir.path(), 0o711);
        u
    }
}

fn keygen(path: &Path) {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "berth-test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "ssh-keygen: {o:?}");
}

fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    chmod(path, 0o755);
}

/// Start sshd for `d`: sessions see `berth` (the built binary) and a `docker` shim first on
/// PATH and `BERTH_HOST` naming `d`'s socket.
fn start_sshd(d: &Daemon) -> Sshd {
    let dir = d.dir.path().join("ssh");
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o755);
    let user = TestUser::create(d);
    let rbin = dir.join("remote-bin");
    std::fs::create_dir_all(&rbin).unwrap();
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    std::os::unix::fs::symlink(&d.bin, rbin.join("berth")).unwrap();
    // What `docker system dial-stdio` (the docker CLI's remote command) resolves to.
    write_exec(&rbin.join("docker"), "#!/bin/sh\nexec berth \"$@\"\n");
    // sshd's privilege separation directory (Debian's ssh.service makes it at boot).
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile none\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPermitRootLogin no\n\
             PubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             SetEnv PATH={rbin}:/usr/local/bin:/usr/bin:/bin BERTH_HOST=unix://{sock} \
             BERTH_NO_AUTOSTART=1\n",
            dir = dir.display(),
            rbin = rbin.display(),
            sock = d.sock().display(),
        ),
    )
    .unwrap();
    let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let mut f = host_pub.split_whitespace();
    let (kt, key) = (f.next().unwrap(), f.next().unwrap());
    std::fs::write(
        dir.join("known_hosts"),
        format!("[127.0.0.1]:{port} {kt} {key}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("ssh_config"),
        format!(
            "Host *\n  IdentityFile {dir}/client_key\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  LogLevel ERROR\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let child = Command::new(SSHD)
        .arg("-f")
        .arg(&cfg)
        .args(["-D", "-e"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let s = Sshd {
        child,
        port,
        dir,
        user,
    };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "sshd did not listen: {}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

/// The berth CLI with `-H ssh://…` (via BERTH_HOST) and the test's ssh config (BERTH_SSH_OPTS).
fn berth(d: &Daemon, s: &Sshd, user: &str, env: &[(&str, String)]) -> Command {
    let user = if user.is_empty() { &s.user.name } else { user };
    let mut c = Command::new(&d.bin);
    c.env("BERTH_HOST", format!("ssh://{user}@127.0.0.1:{}", s.port))
        .env(
            "BERTH_SSH_OPTS",
            format!("-F {}", s.client_config().display()),
        )
        .env("BERTH_NO_AUTOSTART", "1")
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_SSH_REMOTE_CMD")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// A daemon without images, for tests that only talk to the API.
fn bare_daemon(test: &str) -> Option<Daemon> {
    let opts = common::cli::Opts {
        busybox: false,
        ..Default::default()
    };
    Daemon::start_opts(test, opts)
}

/// [`berth`] as the test user with its remote command replaced.
fn with_remote(d: &Daemon, s: &Sshd, cmd: String) -> Command {
    berth(d, s, "", &[("BERTH_SSH_REMOTE_CMD", cmd)])
}

fn run(mut c: Command, args: &[&str]) -> Output {
    c.args(args).output().unwrap()
}

fn ok(o: Output, what: &str, s: &Sshd) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}\nsshd: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout),
        s.log()
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn berth_and_docker_reach_berth_over_ssh() {
    let test = "berth_and_docker_reach_berth_over_ssh";
    if !berth_testutil::require_cmds(test, &["ssh", "ssh-keygen", "tmux", SSHD]) {
        return;
    }
    let Some(d) = Daemon::start(test) else {
        return;
    };
    let s = start_sshd(&d);
    let b = || berth(&d, &s, "", &[]);
    // The sessions are the unprivileged test user's, not root's.
    let whoami = Command::new("ssh")
        .arg("-F")
        .arg(s.client_config())
        .args([
            "-p",
            &s.port.to_string(),
            "-l",
            &s.user.name,
            "127.0.0.1",
            "id -un",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(ok(whoami, "ssh id -un", &s).trim(), s.user.name);

    // run: a fresh ssh child per request, the container's output back through dial-stdio
    let out = ok(
        run(b(), &["run", "--rm", "busybox", "echo", "hi"]),
        "run",
        &s,
    );
    assert_eq!(out, "hi\n");

    // stdin through a hijacked connection, closed at EOF (ssh's stdin half-closes the socket)
    let input = d.dir.path().join("input");
    std::fs::write(&input, vec![b'x'; 300_000]).unwrap();
    let mut c = b();
    c.stdin(std::fs::File::open(&input).unwrap());
    let o = run(
        c,
        &[
            "run",
            "-i",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "wc -c; echo done",
        ],
    );
    let out = ok(o, "run -i", &s);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["300000", "done"]
    );

    // logs -f streams until the container ends
    let name = format!("rs{}", rand_tag());
    ok(
        run(
            b(),
            &[
                "run",
                "-d",
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                "echo one; sleep 1; echo two >&2",
            ],
        ),
        "run -d",
        &s,
    );
    let o = run(b(), &["logs", "-f", &name]);
    let (out, err) = (
        ok(o.clone(), "logs -f", &s),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!((out.as_str(), err.trim()), ("one\n", "two"));

    // cp both ways, 2 MiB of non-text bytes
    let data: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let local = d.dir.path().join("blob.bin");
    std::fs::write(&local, &data).unwrap();
    let dst = format!("{name}:/blob.bin");
    ok(
        run(b(), &["cp", local.to_str().unwrap(), &dst]),
        "cp in",
        &s,
    );
    let back = d.dir.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    ok(
        run(b(), &["cp", &dst, back.to_str().unwrap()]),
        "cp out",
        &s,
    );
    assert!(std::fs::read(back.join("blob.bin")).unwrap() == data);

    // build: the context streamed up, progress streamed back
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("msg"), "built remotely\n").unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY msg /msg\n").unwrap();
    let tag = format!("rsbuild{}:t", rand_tag());
    ok(
        run(b(), &["build", "-q", "-t", &tag, ctx.to_str().unwrap()]),
        "build",
        &s,
    );
    let out = ok(
        run(b(), &["run", "--rm", &tag, "cat", "/msg"]),
        "run built",
        &s,
    );
    assert_eq!(out, "built remotely\n");

    // the remote command can be replaced (here: the binary's full path and its own -H)
    let remote = format!(
        "{} -H unix://{} system dial-stdio",
        d.bin.display(),
        d.sock().display()
    );
    // ... and DOCKER_HOST names the host when neither -H nor BERTH_HOST does
    let mut c = with_remote(&d, &s, remote);
    c.env_remove("BERTH_HOST").env(
        "DOCKER_HOST",
        format!("ssh://{}@127.0.0.1:{}", s.user.name, s.port),
    );
    let o = run(c, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(ok(o, "ps via override", &s).contains(&name));

    // the docker CLI: DOCKER_HOST=ssh://…, its `docker system dial-stdio` lands on berth
    let cbin = s.dir.join("client-bin");
    std::fs::create_dir_all(&cbin).unwrap();
    write_exec(
        &cbin.join("ssh"),
        &format!(
            "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
            s.client_config().display()
        ),
    );
    let path = format!(
        "{}:{}",
        cbin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let docker = |args: &[&str]| {
        Command::new(DOCKER)
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("ssh://{}@127.0.0.1:{}", s.user.name, s.port),
            )
            .env("DOCKER_CONFIG", s.dir.join("dockercfg"))
            .env("PATH", &path)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = ok(
        docker(&["run", "--rm", "busybox", "echo", "via docker"]),
        "docker run",
        &s,
    );
    assert_eq!(out, "via docker\n");
    let out = ok(docker(&["logs", &name]), "docker logs", &s);
    assert_eq!(out, "one\n");
    run_it_under_tmux(&d, &s);
    drop(s);
    d.finish();
}

/// `run -it` through ssh in a real terminal: the prompt, typed input and the exit code.
fn run_it_under_tmux(d: &Daemon, s: &Sshd) {
    let rc = s.dir.join("rc");
    let cmd = format!(
        "BERTH_HOST=ssh://{user}@127.0.0.1:{port} BERTH_SSH_OPTS='-F {cfg}' {bin} run -it --rm \
         busybox sh; echo $? > {rc}; sleep 60",
        user = s.user.name,
        port = s.port,
        cfg = s.client_config().display(),
        bin = d.bin.display(),
        rc = rc.display()
    );
    let t = Tmux::start(&cmd);
    let pane = || t.pane();
    let t0 = Instant::now();
    // capture-pane drops trailing blanks: busybox's prompt shows as "/ #"
    while !pane().contains("/ #") && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    t.type_line("echo hi$((40+2)); exit 7");
    let t0 = Instant::now();
    while std::fs::read_to_string(&rc).unwrap_or_default().is_empty()
        && t0.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(pane().contains("hi42"), "{}", pane());
    assert_eq!(
        std::fs::read_to_string(&rc).unwrap().trim(),
        "7",
        "{}",
        pane()
    );
}

#[test]
fn ssh_failures_say_which_in_one_line() {
    let test = "ssh_failures_say_which_in_one_line";
    if !berth_testutil::require_cmds(test, &["ssh", "ssh-keygen", SSHD]) {
        return;
    }
    let Some(d) = bare_daemon(test) else {
        return;
    };
    let s = start_sshd(&d);
    let fails = |mut c: Command, want: &str| {
        let o = c.args(["version"]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        assert!(
            err.starts_with("error during connect: ssh://") && err.contains(want),
            "want {want:?} in {err:?}\nsshd: {}",
            s.log()
        );
    };
    // no berth at the remote command's path
    fails(
        with_remote(&d, &s, "/nonexistent/berth system dial-stdio".into()),
        "no berth on the remote",
    );
    // a user whose key is not authorized
    fails(berth(&d, &s, "berthnouser", &[]), "authentication failed");
    // nothing listening
    let mut c = berth(&d, &s, "", &[]);
    c.env(
        "BERTH_HOST",
        format!("ssh://root@127.0.0.1:{}", free_port()),
    );
    fails(c, "cannot reach the host");
    // a host key other than the pinned one
    let kh = s.dir.join("known_hosts");
    let good = std::fs::read_to_string(&kh).unwrap();
    keygen(&s.dir.join("other_key"));
    let other = std::fs::read_to_string(s.dir.join("other_key.pub")).unwrap();
    let other: Vec<&str> = other.split_whitespace().take(2).collect();
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {} {}\n", s.port, other[0], other[1]),
    )
    .unwrap();
    fails(berth(&d, &s, "", &[]), "host key verification failed");
    std::fs::write(&kh, good).unwrap();
    // the remote daemon down: dial-stdio's own line comes back
    let remote = "berth -H unix:///nonexistent.sock system dial-stdio";
    let o = run(with_remote(&d, &s, remote.into()), &["version"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("dial-stdio") && err.contains("/nonexistent.sock"),
        "{err}"
    );
    drop(s);
    d.finish();
}

/// Whether `b` holds a whole HTTP response with a Content-Length body.
fn whole_response(b: &[u8]) -> bool {
    let s = String::from_utf8_lossy(b);
    let Some((head, body)) = s.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .expect("the daemon sends Content-Length for /version");
    body.len() >= len
}

#[test]
fn dial_stdio_relays_to_the_daemon_socket() {
    let test = "dial_stdio_relays_to_the_daemon_socket";
    let Some(d) = bare_daemon(test) else {
        return;
    };
    // One keep-alive request; once its whole answer is back, stdin ends. The daemon would keep
    // the connection open for a next request, so the relay ends only because it shut the
    // socket's write side at stdin's EOF.
    let mut child = Command::new(&d.bin)
        .args(["-H", &format!("unix://{}", d.sock().display())])
        .args(["system", "dial-stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
            let _ = tx.send(buf[..n].to_vec());
        }
    });
    std::io::Write::write_all(&mut stdin, b"GET /version HTTP/1.1\r\nHost: berth\r\n\r\n").unwrap();
    let mut got = Vec::new();
    while !whole_response(&got) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(c) => got.extend(c),
            Err(e) => panic!("no whole answer ({e}): {}", String::from_utf8_lossy(&got)),
        }
    }
    let out = String::from_utf8_lossy(&got).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("\"ApiVersion\""), "{out}");
    drop(stdin);
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dial-stdio did not end after its stdin did");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    d.finish();
}
