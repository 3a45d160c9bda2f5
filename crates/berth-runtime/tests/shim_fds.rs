//! fd hygiene of spawned shims: a descriptor the spawner left inheritable (no O_CLOEXEC, as
//! some libraries open sockets and database files) must not reach the shim or its container.

mod common;

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use common::Fixture;

/// The targets of a process's open fds (`/proc/<pid>/fd/*`).
fn fd_targets(pid: i32) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let t = std::fs::read_link(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), t))
        })
        .collect()
}

/// Clear FD_CLOEXEC, as a careless library would have opened the fd.
fn make_inheritable(fd: i32) {
    // SAFETY: fcntl on an fd this test owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC), 0);
    }
}

/// Before, the shim was spawned with only fd 3 set up: both strays showed in its fd table.
#[tokio::test]
async fn shim_inherits_no_stray_fds() {
    let Some(f) = Fixture::new("shim_inherits_no_stray_fds") else {
        return;
    };
    // A "database" file and a listening "API socket", both inheritable.
    let db_path = f.tmp.path().join("stray-meta.db");
    let db = std::fs::File::create(&db_path).unwrap();
    make_inheritable(db.as_raw_fd());
    let sock_path = f.tmp.path().join("stray-api.sock");
    let sock = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    make_inheritable(sock.as_raw_fd());
    let sock_inode = {
        use std::os::unix::fs::MetadataExt;
        // /proc shows a socket fd as socket:[<inode>]: the inode of the fd, not of the path.
        std::fs::metadata(format!("/proc/self/fd/{}", sock.as_raw_fd()))
            .unwrap()
            .ino()
    };
    let stray_sock = PathBuf::from(format!("socket:[{sock_inode}]"));

    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth-runtime-shim"));
    let (s, started) =
        berth_runtime::Shim::spawn(exe, &f.dir, &f.config(f.spec(&["sleep", "1000"])))
            .await
            .unwrap();
    let mut seen = Vec::new();
    for pid in [started.shim_pid, started.container_pid] {
        let fds = fd_targets(pid);
        assert!(!fds.is_empty(), "cannot read the fds of {pid}");
        for (n, t) in fds {
            if t == db_path || t == stray_sock {
                seen.push(format!("pid {pid} fd {n} -> {}", t.display()));
            }
        }
    }
    s.kill(9).await.unwrap();
    s.wait().await.unwrap();
    assert!(seen.is_empty(), "stray fds inherited: {seen:?}");
    drop((db, sock));
}
