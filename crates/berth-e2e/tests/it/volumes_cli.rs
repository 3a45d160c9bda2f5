//! Volumes and docker cp end to end with the REAL docker CLI against an in-process daemon.

use crate::common;

use common::TestDaemon;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn docker_volume_crud_prune_and_df() {
    let t = "docker_volume_crud_prune_and_df";
    if !berth_testutil::require_root(t) || !berth_testutil::require_cmds(t, &["docker"]) {
        return;
    }
    let d = TestDaemon::start();
    assert_eq!(
        d.docker_ok(&["volume", "create", "--label", "env=test", "data1"])
            .trim(),
        "data1"
    );
    // Idempotent create, as Docker.
    d.docker_ok(&["volume", "create", "data1"]);
    let anon = d.docker_ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "anonymous volume name: {anon}");
    // Name with a slash: Docker's message.
    let o = d.docker(&["volume", "create", "a/b"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "create a/b: \"a/b\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        ),
        "{}",
        stderr(&o)
    );
    let ls = d.docker_ok(&["volume", "ls", "-q"]);
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort();
    let mut want = vec!["data1", anon.as_str()];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(
        d.docker_ok(&["volume", "ls", "-q", "--filter", "label=env=test"])
            .trim(),
        "data1"
    );
    assert_eq!(
        d.docker_ok(&["volume", "ls", "-q", "--filter", "name=ata"])
            .trim(),
        "data1"
    );
    let mp = d.docker_ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}} {{.Driver}} {{.Scope}} {{.Labels.env}}",
        "data1",
    ]);
    let want_mp = d.root().join("volumes/data1/_data");
    assert_eq!(mp.trim(), format!("{} local local test", want_mp.display()));
    // Data written into the volume shows in df and is freed by prune --all.
    std::fs::write(want_mp.join("blob"), vec![7u8; 1 << 20]).unwrap();
    let df = d.docker_ok(&["system", "df", "-v", "--format", "{{json .Volumes}}"]);
    assert!(df.contains("data1"), "{df}");
    // Default prune removes only anonymous volumes (docker ≥ 23).
    let out = d.docker_ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon), "{out}");
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]).trim(), "data1");
    let out = d.docker_ok(&["volume", "prune", "-f", "--all"]);
    assert!(out.contains("data1"), "{out}");
    assert!(out.contains("Total reclaimed space: 1."), "{out}");
    assert!(!want_mp.exists());
    // Missing volume: 404 with Docker's text; -f ignores it.
    let o = d.docker(&["volume", "rm", "nosuch"]);
    assert!(
        stderr(&o).contains("get nosuch: no such volume"),
        "{}",
        stderr(&o)
    );
    d.docker_ok(&["volume", "rm", "-f", "nosuch"]);
}

#[test]
fn docker_cp_both_ways_stays_inside_the_container() {
    let t = "docker_cp_both_ways_stays_inside_the_container";
    if !berth_testutil::require_root(t) || !berth_testutil::require_cmds(t, &["docker"]) {
        return;
    }
    let d = TestDaemon::start();
    // A container rw layer on an empty image, made through the store the daemon uses (once
    // the daemon has opened it: opening repairs the store).
    d.docker_ok(&["version"]);
    let id = "c0ffee".repeat(10) + "abcd";
    let store = berth_store::Store::open(&d.root()).unwrap();
    let l = store.create_rw_layer(&id, None).unwrap();
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }
    let _g = Unmount(l.merged.clone());
    std::fs::create_dir_all(l.upper.join("etc")).unwrap();
    std::fs::write(l.upper.join("etc/shadow"), b"container-shadow").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", l.upper.join("leak")).unwrap();
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    // Out of the container, following the link (-L): the container's file, never the host's.
    let dst = host.join("got");
    d.docker_ok(&["cp", "-L", &format!("{id}:/leak"), dst.to_str().unwrap()]);
    assert_eq!(std::fs::read(&dst).unwrap(), b"container-shadow");
    // Into the container.
    std::fs::write(host.join("in.txt"), b"from host").unwrap();
    d.docker_ok(&[
        "cp",
        host.join("in.txt").to_str().unwrap(),
        &format!("{id}:/etc/"),
    ]);
    assert_eq!(
        std::fs::read(l.upper.join("etc/in.txt")).unwrap(),
        b"from host"
    );
    // Directories both ways.
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/f"), b"deep").unwrap();
    d.docker_ok(&[
        "cp",
        host.join("tree").to_str().unwrap(),
        &format!("{id}:/"),
    ]);
    assert_eq!(std::fs::read(l.upper.join("tree/sub/f")).unwrap(), b"deep");
    let back = host.join("back");
    d.docker_ok(&["cp", &format!("{id}:/etc"), back.to_str().unwrap()]);
    assert_eq!(std::fs::read(back.join("in.txt")).unwrap(), b"from host");
    assert_eq!(
        std::fs::read(back.join("shadow")).unwrap(),
        b"container-shadow"
    );
    // A missing path: docker's 404 text.
    let o = d.docker(&["cp", &format!("{id}:/nope"), back.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Could not find the file /nope"));
    // diff sees both.
    let diff = d.docker_ok(&["diff", &id]);
    assert!(diff.contains("A /etc/in.txt"), "{diff}");
    // export streams the rootfs.
    let tarp = host.join("export.tar");
    d.docker_ok(&["export", "-o", tarp.to_str().unwrap(), &id]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tarp)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("etc/in.txt"), "{list}");
    drop(_g);
    store.remove_rw_layer(&id).unwrap();
}

/// Found by moby's TestLiveRestore: after a daemon restart the volumes of existing containers
/// were no longer "in use", so `volume rm` deleted the data of a running container.
#[test]
fn volumes_stay_in_use_across_a_daemon_restart() {
    let Some(mut d) = common::cli::Daemon::start("volumes_stay_in_use_across_a_daemon_restart")
    else {
        return;
    };
    d.ok(&["volume", "create", "keep"]);
    let run = d.ok(&[
        "run",
        "-d",
        "-v",
        "keep:/data",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/f; sleep 600",
    ]);
    let created = d.ok(&[
        "create",
        "--mount",
        "type=volume,src=keep2,dst=/d",
        "busybox",
        "true",
    ]);
    d.term();
    d.spawn();
    for (vol, id) in [("keep", &run), ("keep2", &created)] {
        let err = d.fails(&["volume", "rm", vol]);
        assert!(
            err.contains("volume is in use") && err.contains(&id[..12]),
            "{vol}: {err}"
        );
    }
    assert_eq!(d.ok(&["exec", &run, "cat", "/data/f"]), "x");
    d.ok(&["rm", "-f", &run, &created]);
    d.ok(&["volume", "rm", "keep", "keep2"]);
}
