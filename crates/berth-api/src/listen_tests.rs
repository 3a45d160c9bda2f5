use super::*;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn non_loopback_tcp_needs_client_verification_or_insecure_flag() {
    let any: SocketAddr = "0.0.0.0:2376".parse().unwrap();
    let lo: SocketAddr = "127.0.0.1:2375".parse().unwrap();
    let lo6: SocketAddr = "[::1]:2375".parse().unwrap();
    let tls = TlsConfig {
        cert: "c.pem".into(),
        key: "k.pem".into(),
        client_ca: None,
    };
    let verify = TlsConfig {
        client_ca: Some("ca.pem".into()),
        ..tls.clone()
    };
    let e = tcp_policy(any, None, false).unwrap_err().to_string();
    assert!(
        e.contains("--tlsverify") && e.contains("--insecure-tcp") && !e.contains('\n'),
        "{e}"
    );
    assert!(
        tcp_policy(any, Some(&tls), false).is_err(),
        "--tls alone lets anyone in"
    );
    assert!(tcp_policy(any, Some(&verify), false).unwrap().is_none());
    assert!(tcp_policy(any, None, true).unwrap().is_some());
    for a in [lo, lo6] {
        let w = tcp_policy(a, None, false).unwrap().expect("loopback warns");
        assert!(w.contains("plain HTTP"), "{w}");
    }
}

#[test]
fn group_gid_reads_etc_group() {
    let etc = "root:x:0:\nberthgrp:x:1234:alice,bob\nbad:x:\n";
    assert_eq!(group_gid("berthgrp", etc), Some(1234));
    assert_eq!(group_gid("root", etc), Some(0));
    assert_eq!(group_gid("4321", etc), Some(4321));
    assert_eq!(group_gid("nope", etc), None);
    assert_eq!(group_gid("bad", etc), None);
    assert_eq!(group_gid("berth", etc), None, "no prefix match");
}

fn ping_app() -> axum::Router {
    axum::Router::new().route("/_ping", axum::routing::get(|| async { "OK" }))
}

/// Serve `ping_app` on a loopback port with a short header-read limit.
async fn short_limit_server() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let limits = Limits {
        header_read: Duration::from_millis(300),
        ..Limits::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(Listener::Tcp(l, None), ping_app(), limits, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// Read until EOF; panics when the server keeps the connection open for 10s.
async fn read_to_eof(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("the server must close a slow or idle connection")
        .ok();
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let (addr, _stop) = short_limit_server().await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Headers that never end (slowloris).
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let got = read_to_eof(&mut s).await;
    assert!(!got.contains("200 OK"), "{got}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let (addr, _stop) = short_limit_server().await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, then the connection (kept alive) is closed once idle too long.
    let got = read_to_eof(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let (addr, stop) = short_limit_server().await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_eof(&mut s).await.ends_with("OK"));
    stop.send(()).unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("listener still open after shutdown");
}

#[test]
fn socket_group_opens_the_exec_root_it_lives_in() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let exec_root = t.path().join("run");
    std::fs::create_dir(&exec_root).unwrap();
    std::fs::set_permissions(&exec_root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sock = exec_root.join("berth.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    // Without a group: 0660, and the exec root stays closed.
    restrict_socket(&sock, None, &exec_root).unwrap();
    assert_eq!((mode(&sock), mode(&exec_root)), (0o660, 0o700));
    // With a group (our own, so this runs unprivileged): the group may traverse, not list.
    let gid = rustix::process::getegid().as_raw();
    restrict_socket(&sock, Some(gid), &exec_root).unwrap();
    assert_eq!((mode(&sock), mode(&exec_root)), (0o660, 0o710));
    let m = std::fs::metadata(&sock).unwrap();
    assert_eq!(m.gid(), gid);
    // A socket elsewhere leaves the exec root alone.
    let other = t.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).unwrap();
    restrict_socket(&sock, Some(gid), &other).unwrap();
    assert_eq!(mode(&other), 0o700);
}

/// A self-signed certificate and key made with openssl in `dir`; None when openssl is missing
/// (outside CI).
fn self_signed(dir: &Path) -> Option<TlsConfig> {
    if !berth_testutil::require_cmds("listen tls tests", &["openssl"]) {
        return None;
    }
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    Some(TlsConfig {
        cert,
        key,
        client_ca: None,
    })
}

#[test]
fn tls_files_that_cannot_be_used_name_their_flag() {
    let t = tempfile::tempdir().unwrap();
    let Some(good) = self_signed(t.path()) else {
        return;
    };
    assert!(tls_acceptor(&good).is_ok());
    let missing = TlsConfig {
        cert: t.path().join("nope.pem"),
        ..good.clone()
    };
    let e = tls_acceptor(&missing).err().unwrap().to_string();
    assert!(e.contains("nope.pem") && e.contains("--tlscert"), "{e}");
    let bad_ca = TlsConfig {
        client_ca: Some(good.key.clone()),
        ..good.clone()
    };
    let e = tls_acceptor(&bad_ca).err().unwrap().to_string();
    assert!(e.contains("--tlscacert"), "{e}");
    let swapped = TlsConfig {
        key: good.cert.clone(),
        ..good
    };
    let e = tls_acceptor(&swapped).err().unwrap().to_string();
    assert!(e.contains("--tlskey"), "{e}");
}

#[tokio::test]
async fn a_silent_tls_client_is_cut_off() {
    let t = tempfile::tempdir().unwrap();
    let Some(files) = self_signed(t.path()) else {
        return;
    };
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let limits = Limits {
        tls_handshake: Duration::from_millis(300),
        ..Limits::default()
    };
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let tls = Some(tls_acceptor(&files).unwrap());
    tokio::spawn(serve(Listener::Tcp(l, tls), ping_app(), limits, async {
        let _ = rx.await;
    }));
    // Connects and never starts the handshake.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    read_to_eof(&mut s).await;
}
