//! `berth daemon --userns-remap USER` end to end (dockerd's user namespace remapping): a test
//! user with a subordinate range made here; a private daemon remapped to it keeps its state in
//! `<root>/<start>.<start>`, unpacks layers shifted into the range, runs containers as root
//! inside and the range's first id outside, gives named volumes to that id, honours
//! `--userns=host` and refuses `--privileged` without it; execs join its user namespace;
//! builds, commits and `docker cp` store
//! and send the container's ids (0), not the host's. The daemon, its containers and the user
//! (with its ranges) are removed on drop, also on panic.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common;
use common::cli::{rand_tag, Daemon, Opts};

/// The test user and its range; removed (processes first) on drop.
struct RemapUser {
    name: String,
    start: u32,
}

impl RemapUser {
    /// A fresh user, with a subordinate range when `range`; None when the test is skipped.
    fn create(test: &str, range: bool) -> Option<RemapUser> {
        let tools = ["useradd", "usermod", "userdel"];
        if !berth_testutil::require_root(test) || !berth_testutil::require_cmds(test, &tools) {
            return None;
        }
        let tag = rand_tag();
        let user = RemapUser {
            name: format!("bertr{tag}"),
            start: common::test_range_start(&tag),
        };
        common::add_test_user(&user.name, None, range.then_some(user.start));
        Some(user)
    }

    /// `berth daemon --userns-remap <user>` on its own root and socket in `dir`, expected to
    /// exit: its status and stderr.
    fn bare_exit(
        &self,
        test: &str,
        dir: &std::path::Path,
    ) -> Option<(std::process::ExitStatus, String)> {
        let Some(bin) = common::cli::berth_bin() else {
            assert!(!berth_testutil::in_ci(), "{test}: berth binary not built");
            return None;
        };
        let sock = format!("unix://{}", dir.join("d.sock").display());
        let args = ["-H", &sock, "--userns-remap", &self.name];
        Some(common::cli::Bare::spawn(&bin, dir, &args).exits())
    }

    fn owns(&self) -> impl Fn(u32) -> bool {
        let ids = self.start..self.start + common::TEST_RANGE;
        move |u| ids.contains(&u)
    }
}

impl Drop for RemapUser {
    fn drop(&mut self) {
        common::remove_test_user(&self.name, self.owns());
    }
}

/// The Uid and Gid lines' real ids of a host process.
fn real_ids(pid: &str) -> (u32, u32) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| -> u32 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

/// Entries (name → (uid, gid)) of a tar, gunzipped when it is gzip.
fn owners(tar_bytes: &[u8]) -> HashMap<String, (u64, u64)> {
    let r: Box<dyn Read + '_> = if tar_bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(tar_bytes))
    } else {
        Box::new(tar_bytes)
    };
    let mut a = tar::Archive::new(r);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let name = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            (name, (h.uid().unwrap(), h.gid().unwrap()))
        })
        .collect()
}

/// The owners in each layer of `image` (bottom first), read from `docker save`.
fn layer_owners(d: &Daemon, image: &str) -> Vec<HashMap<String, (u64, u64)>> {
    let o = d.docker(&["save", image]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut a = tar::Archive::new(&o.stdout[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(name, b);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| owners(&files[l.as_str().unwrap()]))
        .collect()
}

#[test]
fn userns_remap_maps_containers_root_to_the_users_range() {
    let test = "userns_remap_maps_containers_root_to_the_users_range";
    let Some(user) = RemapUser::create(test, true) else {
        return;
    };
    let (start, tag) = (user.start, rand_tag());
    // Declared after the user: dropped (daemon and containers stopped) before it.
    let Some(d) = Daemon::start_opts(
        test,
        Opts {
            extra_args: &["--userns-remap", &user.name],
            dir_mode: Some(0o711),
            ..Opts::default()
        },
    ) else {
        return;
    };

    // Store separation: the state root is <root>/<uid>.<gid>; layers are unpacked shifted.
    let root = d.ok(&["info", "-f", "{{.DockerRootDir}}"]);
    assert!(root.ends_with(&format!("/{start}.{start}")), "{root}");
    let bin = std::path::Path::new(&root).join("snapshots");
    let shifted = busybox_owner(&bin);
    assert_eq!(shifted, Some((start, start)), "busybox's files in {root}");
    let sec = d.ok(&["info", "-f", "{{json .SecurityOptions}}"]);
    assert!(sec.contains("name=userns"), "{sec}");

    // Root inside, the range's first id outside; a missing -w is made for that root.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "id", "-u"]), "0");
    let wd = d.ok(&[
        "run",
        "--rm",
        "-w",
        "/made/here",
        "busybox",
        "sh",
        "-c",
        "touch f && stat -c %u:%g .",
    ]);
    assert_eq!(wd, "0:0");
    let id = d.ok(&["run", "-d", "busybox", "sleep", "300"]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", &id]);
    assert_eq!(real_ids(&pid), (start, start));
    let mode = d.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", &id]);
    assert_eq!(mode, "");
    // An exec joins the container's user namespace too: root inside, the range outside.
    assert_eq!(d.ok(&["exec", &id, "id", "-u"]), "0");
    let map = d.ok(&["exec", &id, "cat", "/proc/self/uid_map"]);
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", &start.to_string(), "65536"]
    );
    d.ok(&["exec", "-d", &id, "sleep", "299"]);
    let exec_pid = common::poll(10, || {
        common::processes_of(|u| u == start).into_iter().find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x00299\x00")
        })
    })
    .expect("the detached exec's process");
    assert_eq!(real_ids(&exec_pid.to_string()), (start, start));
    // Sharing its pid namespace joins its user namespace: the same ids.
    let ps = d.ok(&[
        "run",
        "--rm",
        "--pid",
        &format!("container:{id}"),
        "busybox",
        "sh",
        "-c",
        "id -u; ps -o comm",
    ]);
    assert!(ps.starts_with("0\n") && ps.contains("sleep"), "{ps}");
    d.ok(&["rm", "-f", &id]);

    // A named volume's files belong to the range on the host.
    let vol = format!("remapvol{tag}");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/data"),
        "busybox",
        "sh",
        "-c",
        "touch /data/f",
    ]);
    let mp = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vol]);
    let m = std::fs::metadata(std::path::Path::new(&mp).join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (start, start));
    let m = std::fs::metadata(&mp).unwrap();
    assert_eq!((m.uid(), m.gid()), (start, start), "the volume's _data");

    // The remapped root is nobody to the host: a host-root file bound in stays unreadable,
    // which the host's ids (--userns=host) can read.
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "/etc/shadow:/s:ro",
        "busybox",
        "cat",
        "/s",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    d.ok(&[
        "run",
        "--rm",
        "--userns=host",
        "-v",
        "/etc/shadow:/s:ro",
        "busybox",
        "cat",
        "/s",
    ]);

    // --userns=host keeps the host's ids (and allows --privileged); --privileged alone is refused.
    let map = d.ok(&[
        "run",
        "--rm",
        "--userns=host",
        "busybox",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    let map = d.ok(&["run", "--rm", "busybox", "cat", "/proc/self/uid_map"]);
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", &start.to_string(), "65536"]
    );
    d.ok(&[
        "run",
        "--rm",
        "--userns=host",
        "--privileged",
        "busybox",
        "true",
    ]);
    let o = d.docker(&["run", "--rm", "--privileged", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("privileged mode is incompatible with user namespaces"),
        "{e}"
    );
    let e = d.fails(&["run", "--rm", "--network", "host", "busybox", "true"]);
    assert!(
        e.contains("cannot share the host's network namespace"),
        "{e}"
    );

    // A build's RUN layer stores the container's ids.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo hi > /built && mkdir /o && chown 2000:2000 /o\n\
         RUN --mount=type=cache,target=/cache touch /cache/x && stat -c %u:%g /cache/x > /cached\n",
    )
    .unwrap();
    let image = format!("remapbuild{tag}");
    d.ok(&["build", "-t", &image, common::path_str(ctx.path())]);
    let layers = layer_owners(&d, &image);
    let (run1, run2) = (&layers[layers.len() - 2], &layers[layers.len() - 1]);
    assert_eq!(run1.get("built"), Some(&(0, 0)), "{run1:?}");
    assert_eq!(run1.get("o"), Some(&(2000, 2000)), "{run1:?}");
    assert_eq!(run2.get("cached"), Some(&(0, 0)), "{run2:?}");
    // The cache dir is the remapped root's: the step could write into it.
    assert_eq!(d.ok(&["run", "--rm", &image, "cat", "/cached"]), "0:0");
    assert_eq!(
        d.ok(&["run", "--rm", &image, "stat", "-c", "%u:%g", "/built", "/o"]),
        "0:0\n2000:2000"
    );

    // A commit too; docker cp out sends owner 0.
    let c = format!("remapc{tag}");
    d.ok(&[
        "run",
        "--name",
        &c,
        "busybox",
        "sh",
        "-c",
        "echo data > /root/made",
    ]);
    let committed = format!("remapcommit{tag}");
    d.ok(&["commit", &c, &committed]);
    let layer = layer_owners(&d, &committed).pop().unwrap();
    assert_eq!(layer.get("root/made"), Some(&(0, 0)), "{layer:?}");
    let cp = d.docker(&["cp", &format!("{c}:/root/made"), "-"]);
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    assert_eq!(owners(&cp.stdout).get("made"), Some(&(0, 0)));
    // ...and docker cp in gives the file to the container's root.
    let src = ctx.path().join("in.txt");
    std::fs::write(&src, "in").unwrap();
    d.ok(&["cp", common::path_str(&src), &format!("{c}:/root/in.txt")]);
    d.ok(&["commit", &c, &committed]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            &committed,
            "stat",
            "-c",
            "%u:%g",
            "/root/in.txt"
        ]),
        "0:0"
    );
    d.ok(&["rm", "-f", &c]);
}

/// The owner of the first `bin/busybox` found under the store's snapshots.
fn busybox_owner(snapshots: &std::path::Path) -> Option<(u32, u32)> {
    for e in std::fs::read_dir(snapshots).ok()?.flatten() {
        let f = e.path().join("fs/bin/busybox");
        if let Ok(m) = std::fs::symlink_metadata(&f) {
            return Some((m.uid(), m.gid()));
        }
    }
    None
}

#[test]
fn userns_remap_without_a_range_refuses_to_start_naming_usermod() {
    let test = "userns_remap_without_a_range_refuses_to_start_naming_usermod";
    let Some(user) = RemapUser::create(test, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((status, err)) = user.bare_exit(test, dir.path()) else {
        return;
    };
    assert!(!status.success());
    assert!(
        err.contains(&format!(
            "no subordinate ids for {} in /etc/subuid; add a range: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}",
            user.name, user.name
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        !dir.path().join("root").exists(),
        "nothing made: {:?}",
        std::fs::read_dir(dir.path()).map(|r| r.count())
    );
}

#[test]
fn userns_remap_refuses_a_root_the_remapped_root_cannot_reach() {
    let test = "userns_remap_refuses_a_root_the_remapped_root_cannot_reach";
    let Some(user) = RemapUser::create(test, true) else {
        return;
    };
    // A 0700 dir: the remapped root could not search it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let Some((status, err)) = user.bare_exit(test, dir.path()) else {
        return;
    };
    assert!(!status.success());
    assert!(
        err.contains(&format!(
            "{} does not let the remapped root ({s}:{s}) reach",
            dir.path().display(),
            s = user.start
        )) && err.contains("chmod o+x"),
        "{err}"
    );
    assert!(!dir.path().join("root").exists());
}
