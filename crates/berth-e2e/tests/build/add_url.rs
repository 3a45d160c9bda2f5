//! `ADD <url>` through the daemon's backend against a server on 127.0.0.1: the file keeps its
//! URL name in a directory destination, is mode 0600 with the server's Last-Modified as mtime,
//! is not extracted although it is a tar, `--chown`/`--chmod` apply, `--checksum` guards it,
//! and a no-change rebuild re-downloads but reuses the cached layer.

use std::process::Command;
use std::sync::atomic::Ordering;

use berth_oci::Digest;

use crate::http::Server;
use crate::Env;

pub fn add_url() {
    let Some(env) = Env::new("add_url_from_a_loopback_server") else {
        return;
    };
    let srv = Server::start();
    let src = env.tmp.path().join("tarsrc");
    std::fs::create_dir_all(src.join("pkg")).unwrap();
    std::fs::write(src.join("pkg/inner.txt"), "inside").unwrap();
    let tar = env.tmp.path().join("pkg.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg("pkg")
        .status()
        .unwrap();
    assert!(st.success());
    let tar_bytes = std::fs::read(&tar).unwrap();
    let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
    srv.file("/files/pkg.tar", &tar_bytes, Some(lm));
    srv.file("/files/notes.txt", b"notes\n", None);
    env.write("local.txt", "local");
    let (tar_url, txt_url) = (srv.url("/files/pkg.tar"), srv.url("/files/notes.txt"));
    let sum = Digest::of(&tar_bytes);
    let df = format!(
        "FROM busybox\nADD {tar_url} /dl/\nADD --chown=1000:1001 --chmod=0644 {txt_url} /dl/renamed.txt\n\
         ADD --checksum={sum} {tar_url} /sum/\nADD {tar_url} local.txt /multi/\n"
    );
    let out = env.build(&df);
    let f = env.read(
        &out.image_id,
        &[
            "/dl/pkg.tar",
            "/dl/pkg/inner.txt",
            "/dl/renamed.txt",
            "/multi/pkg.tar",
            "/multi/local.txt",
            "/sum/pkg.tar",
        ],
    );
    let t = f[0].as_ref().expect("the tar is stored under its URL name");
    assert_eq!(t.0.len(), tar_bytes.len());
    assert_eq!((t.1, t.2, t.3), (0o600, 0, 0), "0600, root-owned");
    assert_eq!(t.5, 784111777, "mtime from Last-Modified");
    assert!(f[1].is_none(), "a downloaded tar is never extracted");
    let n = f[2].as_ref().expect("file destination");
    assert_eq!(
        (n.0.as_str(), n.1, n.2, n.3),
        ("notes\n", 0o644, 1000, 1001)
    );
    assert!(f[3].is_some() && f[4].as_ref().unwrap().0 == "local" && f[5].is_some());

    // No change: downloaded again to compare, every step from the cache.
    let copies = env.backend.copies.load(Ordering::SeqCst);
    let again = env.build(&df);
    assert_eq!((again.steps_run, again.image_id), (0, out.image_id.clone()));
    assert_eq!(srv.hits("/files/pkg.tar"), 6);
    assert_eq!(env.backend.copies.load(Ordering::SeqCst), copies);

    // A wrong --checksum fails at its line, names the URL and both digests, adds nothing.
    let bad = Digest::of(b"not it");
    let (r, _) = env.build_with(
        &format!("FROM busybox\nADD --checksum={bad} {tar_url} /x/\n"),
        &[],
    );
    let m = r.unwrap_err().to_string();
    assert!(m.starts_with("dockerfile:2: "), "{m}");
    for want in [tar_url.as_str(), &bad.to_string(), &sum.to_string()] {
        assert!(m.contains(want), "{want} missing from: {m}");
    }
    assert_eq!(env.backend.copies.load(Ordering::SeqCst), copies);
    let (r, _) = env.build_with(&format!("FROM busybox\nADD {}/gone /x\n", srv.url("")), &[]);
    let m = r.unwrap_err().to_string();
    assert!(
        m.starts_with("dockerfile:2: ") && m.contains("/gone") && m.contains("404"),
        "{m}"
    );
    let left = std::fs::read_dir(env.store.root().join("build-tmp/downloads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "downloads are removed");
    drop(env.tmp);
}
