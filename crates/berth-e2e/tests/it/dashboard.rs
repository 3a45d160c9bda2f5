//! The dashboard (`berth daemon --ui`) from outside: a real headless Chromium driven by
//! selenium (`dashboard_driver.py`) logs in with `berth ui`'s one-time link, pulls busybox from
//! a local registry, runs it from the form with a published port, follows its logs and stats,
//! uses the shell, stops and removes it, and meets a forged cross-site form; screenshots go to
//! `target/dashboard-shots/`. Without a browser: every UI and API route on the UI port is 401
//! without a session, a cross-site write is 403, a non-loopback `--ui` without TLS is refused.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testutil::registry::Registry;
use common::cli::{berth_bin, free_port, rand_tag, Daemon, Opts};

/// A daemon serving the dashboard on a free loopback port: (daemon, ui address).
fn daemon_with_ui(test: &str, cmds: &[&str]) -> Option<(Daemon, String)> {
    let ui = format!("127.0.0.1:{}", free_port());
    let extra = ["--ui", ui.as_str()];
    let d = Daemon::start_opts(
        test,
        Opts {
            cmds,
            busybox: false,
            extra_args: &extra,
            ..Opts::default()
        },
    )?;
    Some((d, ui))
}

/// `berth ui --no-browser`'s link.
fn login_url(d: &Daemon) -> String {
    let out = Command::new(&d.bin)
        .arg("-H")
        .arg(format!("unix://{}", d.sock().display()))
        .args(["ui", "--no-browser"])
        .env("BERTH_NO_AUTOSTART", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "berth ui: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let url = text.lines().last().unwrap_or("").to_string();
    assert!(url.contains("/login?token="), "{text}");
    url
}

/// One raw HTTP/1.1 request: (status, headers+body as text).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[test]
fn dashboard_routes_need_a_session_and_the_same_origin() {
    let test = "dashboard_routes_need_a_session_and_the_same_origin";
    let Some((d, ui)) = daemon_with_ui(test, &[]) else {
        return;
    };
    for (m, p) in [
        ("GET", "/"),
        ("GET", "/app.js"),
        ("GET", "/index.html"),
        ("GET", "/login"),
        ("GET", "/login?token=0000"),
        ("GET", "/api/_ping"),
        ("GET", "/api/containers/json"),
        ("GET", "/api/v1.41/info"),
        ("POST", "/api/containers/create"),
        ("DELETE", "/api/images/busybox"),
        ("GET", "/api/events"),
        ("POST", "/api/berth/ui/login"),
    ] {
        let (st, text) = http(&ui, m, p, &[], "");
        assert_eq!(st, 401, "{m} {p}: {text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{text}"
        );
    }
    // A link works once.
    let url = login_url(&d);
    let path = &url[url.find("/login").unwrap()..];
    let (st, text) = http(&ui, "GET", path, &[], "");
    assert_eq!(st, 303, "{text}");
    let cookie = text
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(
        http(&ui, "GET", path, &[], "").0,
        401,
        "a used link logged in again"
    );
    // The session reaches the Engine API, in process.
    let c = ("Cookie", cookie.as_str());
    let (st, text) = http(&ui, "GET", "/api/version", &[c], "");
    assert_eq!(st, 200, "{text}");
    assert!(text.contains("\"ApiVersion\""), "{text}");
    // The session outlives a daemon restart (kept in the runtime dir).
    let mut d = d;
    d.term();
    d.spawn();
    let (st, text) = http(&ui, "GET", "/api/_ping", &[c], "");
    assert_eq!(st, 200, "the session did not survive a restart: {text}");
    // Forged writes: another origin, or no dashboard header, create nothing.
    let name = format!("forged{}", rand_tag());
    let create = format!("/api/containers/create?name={name}");
    let body = r#"{"Image":"busybox"}"#;
    let json = ("Content-Type", "application/json");
    let own = format!("http://{ui}");
    for h in [
        vec![
            c,
            json,
            ("Origin", "http://evil.example"),
            ("X-Berth-UI", "1"),
        ],
        vec![c, json, ("Origin", own.as_str())],
        vec![
            c,
            json,
            ("Origin", own.as_str()),
            ("X-Berth-UI", "1"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    ] {
        let (st, text) = http(&ui, "POST", &create, &h, body);
        assert_eq!(st, 403, "{h:?}: {text}");
        assert!(text.contains("cross-site request refused"), "{text}");
    }
    let (st, _) = d.api("GET", &format!("/containers/{name}/json"), None);
    assert_eq!(st, 404, "a forged request created {name}");
    // The dashboard's own write goes through (and reaches the engine's answer).
    let (st, text) = http(
        &ui,
        "POST",
        &create,
        &[c, json, ("Origin", own.as_str()), ("X-Berth-UI", "1")],
        body,
    );
    assert_eq!(st, 404, "no busybox here, so the engine says: {text}");
    assert!(text.contains("No such image"), "{text}");
    d.finish();
}

#[test]
fn dashboard_refuses_a_non_loopback_address_without_tls() {
    let test = "dashboard_refuses_a_non_loopback_address_without_tls";
    if !berth_testutil::require_root(test) {
        return;
    }
    let Some(bin) = berth_bin() else {
        assert!(!berth_testutil::in_ci(), "{test}: berth binary not built");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let ui = format!("0.0.0.0:{}", free_port());
    let daemon = common::cli::Bare::spawn(
        &bin,
        dir.path(),
        &["-H", &format!("unix://{}", sock.display()), "--ui", &ui],
    );
    let (status, err) = daemon.exits();
    assert!(!status.success());
    let line = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        line.contains(&format!(
            "refusing to serve the dashboard on {ui} without TLS"
        )),
        "{err}"
    );
    assert!(!sock.exists(), "the socket was bound before the refusal");
    assert!(
        !dir.path().join("root").exists(),
        "state was made before the refusal"
    );
}

/// Where screenshots go: `<target>/dashboard-shots/` (CI keeps it as an artifact).
fn shots_dir(bin: &std::path::Path) -> PathBuf {
    // <target>/debug/berth → <target>/dashboard-shots
    let target = bin.parent().and_then(|p| p.parent()).unwrap_or(bin);
    target.join("dashboard-shots")
}

#[test]
fn dashboard_in_a_real_browser() {
    let test = "dashboard_in_a_real_browser";
    if !berth_testutil::require_cmds(
        test,
        &["chromium", "chromedriver", "docker-registry", "skopeo"],
    ) {
        return;
    }
    let Some(python) = berth_testutil::python_with(test, "selenium") else {
        return;
    };
    let Some(busybox) = berth_testutil::image(test, "busybox") else {
        return;
    };
    let Some((d, _ui)) = daemon_with_ui(test, &[]) else {
        return;
    };
    let reg = Registry::start();
    let repo = format!("dash{}/busybox:1", rand_tag());
    reg.put_archive(&busybox, &repo);
    let image_ref = format!("{}/{repo}", reg.addr);
    let name = format!("dash{}", rand_tag());
    let shots = shots_dir(&d.bin);
    let _ = std::fs::remove_dir_all(&shots);
    let profile = d.dir.path().join("chromium-profile");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/dashboard_driver.py");
    let port = free_port().to_string();
    // The driver asks for a daemon restart mid-run by creating `restart`; we answer `restarted`.
    let signals = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .args([login_url(&d).as_str(), &image_ref, &port, &name])
        .arg(&shots)
        .arg(&profile)
        .arg(signals.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a hung run takes chromedriver and chromium with it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let started = Instant::now();
    let mut d = d;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if signals.path().join("restart").exists() && !signals.path().join("restarted").exists() {
            d.term();
            d.spawn();
            std::fs::write(signals.path().join("restarted"), "").unwrap();
        }
        if started.elapsed() > Duration::from_secs(300) {
            // SAFETY: kill(2) on the process group of the child this test spawned.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("{out}");
    let status = status.unwrap_or_else(|| panic!("the browser run hung (5 min): {out}\n{err}"));
    // The driver's own verdict (the traceback's last line) comes first: long CI logs are cut
    // in the middle.
    let verdict = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        status.success() && out.contains("DASHBOARD OK"),
        "driver failed: {verdict}\n{out}\n{err}\ndaemon log:\n{}",
        d.log()
    );
    // What the browser did, seen from the API: the container is gone, the image is there.
    let (st, _) = d.api("GET", &format!("/containers/{name}/json"), None);
    assert_eq!(st, 404, "the dashboard did not remove {name}");
    let (st, _) = d.api("GET", &format!("/containers/{name}-forged/json"), None);
    assert_eq!(st, 404, "the forged form created a container");
    let (st, body) = d.api("GET", &format!("/images/{image_ref}/json"), None);
    assert_eq!(st, 200, "{body}");
    for n in 1..=15 {
        let found = std::fs::read_dir(&shots).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{n:02}-"))
        });
        assert!(found, "screenshot {n} missing in {}", shots.display());
    }
    d.finish();
}
