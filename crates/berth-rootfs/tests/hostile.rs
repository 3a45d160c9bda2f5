//! The hostile-input suite ([`berth_rootfs::testsuite`]) against every confined entry point:
//! layer apply, archive put (docker cp into a container), ADD of a local archive, COPY of
//! hostile names, archive get / export and diff of a tree a hostile layer left behind. Each
//! must refuse or confine, never write outside the root, never panic.

use std::io::Write;

use berth_rootfs::archive::{self, ExtractOpts};
use berth_rootfs::testsuite::{run_cases, Case, Outcome, Sandbox, SENTINEL};
use berth_rootfs::writer::{Owner, RootWriter};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn apply(sb: &Sandbox, c: &Case) -> Outcome {
    berth_rootfs::apply_layer(&sb.root, "hostile", &c.tar(sb)[..])
        .map(|_| ())
        .map_err(err)
}

/// The cases every entry point must refuse (nothing of theirs can be confined).
fn assert_refused(what: &str, results: &[(&str, Outcome)], names: &[&str]) {
    for (name, outcome) in results {
        if names.contains(name) {
            assert!(outcome.is_err(), "{what}: {name:?} was not refused");
        }
    }
}

const MUST_REFUSE: &[&str] = &[
    "dotdot names",
    "dotdot inside a name",
    "dot then dotdot",
    "hardlink out with dotdot",
    "hardlink to an absolute host path",
    "hardlink through an absolute symlink",
    "size far beyond the data",
];

#[test]
fn layer_apply_refuses_or_confines_every_case() {
    if !berth_testutil::require_root("layer_apply_refuses_or_confines_every_case") {
        return;
    }
    let r = run_cases("apply", apply);
    assert_refused("apply", &r, MUST_REFUSE);
}

#[test]
fn archive_put_refuses_or_confines_every_case() {
    if !berth_testutil::require_root("archive_put_refuses_or_confines_every_case") {
        return;
    }
    for (copy_uid_gid, dest) in [(false, "/"), (true, "/dst")] {
        let opts = ExtractOpts {
            copy_uid_gid,
            ..Default::default()
        };
        let r = run_cases("archive put", |sb, c| {
            std::fs::create_dir_all(sb.root.join("dst")).map_err(err)?;
            archive::extract(&sb.root, &[], dest, opts, &c.tar(sb)[..]).map_err(err)
        });
        assert_refused("archive put", &r, MUST_REFUSE);
    }
}

#[test]
fn add_of_a_local_archive_refuses_or_confines_every_case() {
    if !berth_testutil::require_root("add_of_a_local_archive_refuses_or_confines_every_case") {
        return;
    }
    let r = run_cases("ADD", |sb, c| {
        let w = RootWriter::open(&sb.root).map_err(err)?;
        w.extract_from("/app", &c.tar(sb)[..]).map_err(err)
    });
    assert_refused("ADD", &r, MUST_REFUSE);
}

/// COPY writes each hostile entry name as a file, after the case's layer was applied (so the
/// symlinks it planted are in place): every write resolves inside the root.
#[test]
fn copy_of_hostile_names_stays_inside() {
    if !berth_testutil::require_root("copy_of_hostile_names_stays_inside") {
        return;
    }
    run_cases("COPY", |sb, c| {
        let _ = apply(sb, c);
        let w = RootWriter::open(&sb.root).map_err(err)?;
        let mut last = Ok(());
        for n in c.names(sb) {
            let owner = Owner::default();
            let r1 = w.write_file(&n, &mut &b"copied"[..], 0o644, owner);
            let r2 = w.symlink(&format!("{n}.lnk"), "/", owner);
            let r3 = w.dir(&format!("{n}.d"), 0o755, owner);
            let r4 = w.mkdir_all(&format!("{n}.p/q"), 0o755, owner).map(|_| ());
            let r5 = w.set_mtime(&n, 1);
            for r in [r1, r2, r3, r4, r5] {
                if let Err(e) = r {
                    last = Err(err(e));
                }
            }
        }
        last
    });
}

/// Reading a tree a hostile layer left (symlinks to `/` and to the sentinel dir, devices):
/// archive get, export and diff never follow a link out, so the sentinel's bytes never show.
#[test]
fn archive_get_export_and_diff_never_read_outside() {
    if !berth_testutil::require_root("archive_get_export_and_diff_never_read_outside") {
        return;
    }
    run_cases("archive get / export / diff", |sb, c| {
        let _ = apply(sb, c);
        let mut names = c.names(sb);
        names.push("/".into());
        for n in names {
            let mut out = Vec::new();
            let _ = archive::archive(&sb.root, &[], &n, &mut out);
            assert!(
                !contains(&out, SENTINEL),
                "archive of {n:?} read the sentinel"
            );
            let _ = archive::stat(&sb.root, &[], &n);
        }
        let mut out = Vec::new();
        archive::export(&sb.root, &mut out).map_err(err)?;
        assert!(!contains(&out, SENTINEL), "export read the sentinel");
        out.flush().map_err(err)?;
        let changes = archive::changes(&sb.root, &[]).map_err(err)?;
        let out_dir = sb.outside_abs();
        for ch in &changes {
            assert!(!ch.path.contains("sentinel") || ch.path.starts_with(&out_dir));
        }
        Ok(())
    });
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The suite can fail: an unpacker that joins entry names to the root path by hand (the
/// classic bug) writes through `../` and planted symlinks into the sentinel dir, and the
/// suite reports it.
#[test]
fn the_suite_catches_an_unconfined_unpacker() {
    if !berth_testutil::require_root("the_suite_catches_an_unconfined_unpacker") {
        return;
    }
    fn naive(root: &std::path::Path, tar_bytes: &[u8]) -> std::io::Result<()> {
        let mut a = tar::Archive::new(tar_bytes);
        for e in a.entries()? {
            let mut e = e?;
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let p = root.join(name.trim_start_matches('/'));
            match e.header().entry_type() {
                tar::EntryType::Symlink => {
                    let t = e.link_name()?.unwrap_or_default().into_owned();
                    std::os::unix::fs::symlink(t, &p)?;
                }
                tar::EntryType::Regular => {
                    let mut data = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut data)?;
                    std::fs::write(&p, data)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
    let caught = std::panic::catch_unwind(|| {
        run_cases("naive unpack", |sb, c| {
            naive(&sb.root, &c.tar(sb)).map_err(err)
        })
    });
    let msg = caught.expect_err("the naive unpacker escaped unnoticed");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("wrote outside the root"), "{msg}");
}
