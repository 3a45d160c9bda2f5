//! The API over TCP is authenticated: with `--tlsverify` the real docker CLI and the berth CLI
//! get in with a client certificate from the test's CA, while a client without one and plain
//! HTTP are refused; a non-loopback TCP listener without TLS is refused at start. Certificates
//! are made with openssl in a temp dir.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::{berth_bin, free_port, rand_tag, Daemon, Opts, DOCKER};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl {args:?}: {o:?}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
pub(crate) fn make_certs(dir: &Path) {
    let key = |name: &str| {
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                name,
            ],
        )
    };
    key("ca-key.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca-key.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=berth test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.pem",
        ],
    );
    for (who, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        key(&format!("{who}-key.pem"));
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{who}-key.pem"),
                "-subj",
                &format!("/CN={who}"),
                "-out",
                &format!("{who}.csr"),
            ],
        );
        std::fs::write(dir.join(format!("{who}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "3650",
                "-extfile",
                &format!("{who}.ext"),
                "-out",
                &format!("{who}-cert.pem"),
            ],
        );
    }
}

pub(crate) fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Run a client command with a clean environment: no docker host, context or TLS variables,
/// and an empty cert dir unless the test sets one.
pub(crate) fn client(bin: &Path, cfg: &Path, args: &[String], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(bin);
    c.args(args)
        .env("DOCKER_CONFIG", cfg)
        .env("DOCKER_CERT_PATH", cfg)
        .env("HOME", cfg)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("BERTH_HOST")
        .env("BERTH_NO_AUTOSTART", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn curl(args: &[String]) -> Output {
    Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap()
}

/// A daemon on `tcp://127.0.0.1:<free port>` with `--tlsverify` and the test CA's certificates
/// (in the returned temp dir: ca.pem, server-*.pem, client-cert.pem, client-key.pem).
pub(crate) fn tlsverify_daemon(test: &str) -> Option<(Daemon, tempfile::TempDir, String)> {
    if !berth_testutil::require_root(test)
        || !berth_testutil::require_cmds(test, &["openssl", "curl", "docker"])
    {
        return None;
    }
    let certs = tempfile::tempdir().unwrap();
    let c = certs.path();
    make_certs(c);
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let (ca, scert, skey) = (
        c.join("ca.pem"),
        c.join("server-cert.pem"),
        c.join("server-key.pem"),
    );
    let extra = [
        "-H".to_string(),
        host.clone(),
        "--tlsverify".into(),
        "--tlscacert".into(),
        s(&ca),
        "--tlscert".into(),
        s(&scert),
        "--tlskey".into(),
        s(&skey),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let d = Daemon::start_opts(
        test,
        Opts {
            extra_args: &extra,
            ..Default::default()
        },
    )?;
    Some((d, certs, host))
}

#[test]
fn tlsverify_admits_only_clients_with_a_certificate() {
    let test = "tlsverify_admits_only_clients_with_a_certificate";
    let Some((d, certs, host)) = tlsverify_daemon(test) else {
        return;
    };
    let c = certs.path();
    let ca = c.join("ca.pem");
    let (ccert, ckey) = (c.join("client-cert.pem"), c.join("client-key.pem"));
    let port = host.rsplit(':').next().unwrap().to_string();
    let cfg = d.dir.path().join("tls-client");
    std::fs::create_dir_all(&cfg).unwrap();
    let tls_flags = |with_cert: bool| -> Vec<String> {
        let mut v = vec!["--tlsverify".to_string(), "--tlscacert".into(), s(&ca)];
        if with_cert {
            v.extend(["--tlscert".into(), s(&ccert), "--tlskey".into(), s(&ckey)]);
        }
        v.extend(["-H".into(), host.clone()]);
        v
    };
    let version = |bin: &Path, with_cert: bool| {
        let mut a = tls_flags(with_cert);
        a.extend([
            "version".into(),
            "--format".into(),
            "{{.Server.Version}}".into(),
        ]);
        client(bin, &cfg, &a, &[])
    };

    // The real docker CLI with a client certificate.
    let o = version(Path::new(DOCKER), true);
    assert!(o.status.success(), "docker over TLS: {o:?}\n{}", d.log());
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
    // Without one, the handshake is refused.
    let o = version(Path::new(DOCKER), false);
    assert!(!o.status.success(), "docker without a client cert got in");

    // curl: the same, and plain HTTP gets no answer.
    let ping = format!("https://127.0.0.1:{port}/_ping");
    let o = curl(&[
        "--cacert".into(),
        s(&ca),
        "--cert".into(),
        s(&ccert),
        "--key".into(),
        s(&ckey),
        ping.clone(),
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "OK", "{o:?}");
    let o = curl(&["--cacert".into(), s(&ca), ping]);
    assert!(!o.status.success() && o.stdout.is_empty(), "{o:?}");
    let o = curl(&[format!("http://127.0.0.1:{port}/_ping")]);
    assert!(o.stdout != b"OK", "plain HTTP answered: {o:?}");

    // The berth CLI: flags, then DOCKER_TLS_VERIFY with DOCKER_CERT_PATH.
    let berth = d.bin.clone();
    let o = version(&berth, true);
    assert!(o.status.success(), "berth over TLS: {o:?}");
    // Attach (an upgraded connection) works through TLS for both CLIs.
    for bin in [Path::new(DOCKER), &berth] {
        let mut a = tls_flags(true);
        a.extend(["run", "--rm", "busybox", "echo", "over-tls"].map(String::from));
        let o = client(bin, &cfg, &a, &[]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "over-tls",
            "{}: {o:?}",
            bin.display()
        );
    }
    let o = version(&berth, false);
    assert!(!o.status.success(), "berth without a client cert got in");
    let env_dir = d.dir.path().join("docker-cert-path");
    std::fs::create_dir_all(&env_dir).unwrap();
    for (from, to) in [(&ca, "ca.pem"), (&ccert, "cert.pem"), (&ckey, "key.pem")] {
        std::fs::copy(from, env_dir.join(to)).unwrap();
    }
    let o = client(
        &berth,
        &cfg,
        &["-H".into(), host.clone(), "version".into()],
        &[
            ("DOCKER_TLS_VERIFY", "1".into()),
            ("DOCKER_CERT_PATH", s(&env_dir)),
        ],
    );
    assert!(o.status.success(), "berth with DOCKER_TLS_VERIFY: {o:?}");
    d.finish();
}

/// Run `berth daemon` with `args`; it must exit by itself within 30s.
fn daemon_exits(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    let tag = rand_tag();
    let mut child = Command::new(bin)
        .args(["daemon", "--root"])
        .arg(dir.join("root"))
        .arg("--exec-root")
        .arg(dir.join("run"))
        .args(["--bridge", "none", "--nft-table", &format!("berthtls{tag}")])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            for fam in ["inet", "ip"] {
                let _ =
                    common::cli::sh("nft", &["delete", "table", fam, &format!("berthtls{tag}")]);
            }
            panic!("berth daemon {args:?} kept running: {o:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn non_loopback_tcp_without_tls_is_refused() {
    let test = "non_loopback_tcp_without_tls_is_refused";
    if !berth_testutil::require_root(test) {
        return;
    }
    let Some(bin) = berth_bin() else {
        assert!(!berth_testutil::in_ci(), "{test}: build berth-cli first");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = format!("tcp://0.0.0.0:{}", free_port());
    // A private socket too, so that even a daemon that failed to refuse touches no shared path.
    let sock = format!("unix://{}", dir.path().join("d.sock").display());
    let o = daemon_exits(&bin, dir.path(), &["-H", &sock, "-H", &host]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].contains("--tlsverify") && lines[0].contains("--insecure-tcp"),
        "{err}"
    );
    // Nothing was created before the refusal.
    assert!(!dir.path().join("root").exists());
}

#[test]
fn tcp_host_alone_binds_no_unix_socket() {
    let test = "tcp_host_alone_binds_no_unix_socket";
    let Some(bin) = berth_bin() else {
        assert!(!berth_testutil::in_ci(), "{test}: build berth-cli first");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = berth_daemon::DaemonConfig::under(dir.path());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let daemon = common::cli::Bare::spawn(&bin, dir.path(), &["-H", &format!("tcp://{addr}")]);
    let up = (0..1000).any(|_| {
        std::net::TcpStream::connect(addr).is_ok() || {
            std::thread::sleep(Duration::from_millis(10));
            false
        }
    });
    assert!(up, "tcp listener never came up");
    assert!(!cfg.socket.exists(), "a unix socket was bound too");
    let (status, err) = daemon.term();
    assert!(status.success(), "{err}");
}
