//! berth-testutil: gates for tests that need root or a host tool. A developer without the
//! prerequisite sees "skipped: …"; under `CI=true` a missing prerequisite fails the test.

pub mod registry;

use std::path::{Path, PathBuf};

/// True when running under CI, where every prerequisite must be present.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

fn skip_or_fail(test: &str, why: &str) -> bool {
    if in_ci() {
        panic!("{test}: {why} (CI=true, so this is a failure, not a skip)");
    }
    eprintln!("skipped: {test}: {why}");
    false
}

/// Returns true when the test may run as root; otherwise skips (or fails in CI).
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        true
    } else {
        skip_or_fail(test, "needs root")
    }
}

/// Find `cmd` on PATH.
pub fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Returns true when every command is on PATH; otherwise skips (or fails in CI).
pub fn require_cmds(test: &str, cmds: &[&str]) -> bool {
    for c in cmds {
        if which(c).is_none() {
            return skip_or_fail(test, &format!("needs `{c}` on PATH"));
        }
    }
    true
}

/// Returns true when python3 can import `module`; otherwise skips (or fails in CI).
pub fn require_python_module(test: &str, module: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        true
    } else {
        skip_or_fail(
            test,
            &format!("needs the Python module {module} (scripts/deps.sh installs it)"),
        )
    }
}

/// A Python interpreter that can import `module`: `python3` on PATH, else the system's
/// `/usr/bin/python3` (Debian's `python3-*` packages live there when PATH has another Python);
/// None skips (or fails in CI).
pub fn python_with(test: &str, module: &str) -> Option<&'static str> {
    let found = ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        skip_or_fail(
            test,
            &format!("needs the Python module {module} (scripts/deps.sh installs it)"),
        );
    }
    found
}

/// The shared test images directory (`../shared/images` beside the repo), or BERTH_TEST_IMAGES.
pub fn images_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_TEST_IMAGES") {
        return PathBuf::from(p);
    }
    repo_dir().join("../shared/images")
}

/// The repository root. `cargo test` sets CARGO_MANIFEST_DIR for the running test (the package
/// directory, two levels below the root); that is preferred over the compile-time value, which a
/// target dir shared between two checkouts can leave pointing at the other checkout.
fn repo_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join("../..")
}

/// Path of one shared image archive, e.g. `image("busybox")` → `.../busybox.oci.tar`.
/// Skips (or fails in CI) when it is missing.
pub fn image(test: &str, name: &str) -> Option<PathBuf> {
    let p = images_dir().join(format!("{name}.oci.tar"));
    if p.is_file() {
        Some(p)
    } else {
        skip_or_fail(test, &format!("needs test image {}", p.display()));
        None
    }
}

/// The shared corpora directory (`../shared/corpora` beside the repo).
pub fn corpora_dir() -> PathBuf {
    repo_dir().join("../shared/corpora")
}
