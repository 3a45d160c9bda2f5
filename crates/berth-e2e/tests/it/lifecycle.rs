//! `berth daemon` as a process: stale socket replaced, socket mode 0660, pid file, optional TCP
//! listener, refusal to start twice, clean removal of socket and pid file on SIGTERM. No root
//! needed (the binary must be built: `cargo build -p berth-cli --bin berth`).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use berth_daemon::DaemonConfig;

use crate::common::cli::{berth_bin, free_port, Bare};

fn wait_for_socket(p: &std::path::Path) {
    for _ in 0..1000 {
        if std::os::unix::net::UnixStream::connect(p).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("daemon never listened on {}", p.display());
}

#[test]
fn daemon_owns_socket_and_pid_file() {
    let test = "daemon_owns_socket_and_pid_file";
    let Some(bin) = berth_bin() else {
        assert!(!berth_testutil::in_ci(), "{test}: build berth-cli first");
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("berth-life-")
        .tempdir()
        .unwrap();
    let cfg = DaemonConfig::under(dir.path());
    // Optional TCP listener on a loopback port picked by the kernel.
    let tcp_addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    std::fs::create_dir_all(cfg.socket.parent().unwrap()).unwrap();
    // A stale socket: bound, then its listener dropped.
    drop(std::os::unix::net::UnixListener::bind(&cfg.socket).unwrap());
    assert!(cfg.socket.exists());

    let unix = format!("unix://{}", cfg.socket.display());
    let tcp = format!("tcp://{tcp_addr}");
    let args = ["-H", unix.as_str(), "-H", tcp.as_str()];
    let daemon = Bare::spawn(&bin, dir.path(), &args);
    wait_for_socket(&cfg.socket);
    let mode = std::fs::metadata(&cfg.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    // The pid file follows the socket (bind first refuses a live daemon's socket); it is
    // written whole, so poll (bounded) until it appears.
    let pid = (0..500)
        .find_map(|_| {
            std::fs::read_to_string(cfg.pid_file())
                .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(10)))
                .ok()
        })
        .expect("pid file written");
    assert_eq!(pid.trim(), daemon.pid().to_string());

    // The TCP listener is bound after the unix socket (once the store is open).
    let mut tcp = (0..1000)
        .find_map(|_| {
            std::net::TcpStream::connect(tcp_addr)
                .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(10)))
                .ok()
        })
        .expect("tcp listener up");
    tcp.write_all(b"GET /v1.50/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("api-version: 1.53"),
        "{resp}"
    );
    assert!(resp.ends_with("OK"), "{resp}");

    // A second daemon on the same socket is refused and leaves the first one's files alone.
    let (status, err) = Bare::spawn(&bin, dir.path(), &args).exits();
    assert!(!status.success());
    assert!(err.contains("another daemon is listening"), "{err}");
    assert!(cfg.pid_file().exists());
    wait_for_socket(&cfg.socket);

    let (status, err) = daemon.term();
    assert!(status.success(), "{err}");
    assert!(!cfg.socket.exists(), "socket removed on shutdown");
    assert!(!cfg.pid_file().exists(), "pid file removed on shutdown");
}

#[test]
fn daemon_log_has_no_colour_codes_when_not_a_terminal() {
    // A log file or journal gets plain text (dockerd's logrus colours only a terminal).
    let test = "daemon_log_has_no_colour_codes_when_not_a_terminal";
    let Some(bin) = berth_bin() else {
        assert!(!berth_testutil::in_ci(), "{test}: build berth-cli first");
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("berth-life-")
        .tempdir()
        .unwrap();
    let cfg = DaemonConfig::under(dir.path());
    let unix = format!("unix://{}", cfg.socket.display());
    let daemon = Bare::spawn(&bin, dir.path(), &["-H", &unix]);
    wait_for_socket(&cfg.socket);
    let (status, err) = daemon.term();
    assert!(status.success(), "{err}");
    assert!(err.contains("berth daemon listening"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "colour codes in a non-terminal log: {err:?}"
    );
}
