//! Why libcontainer failed, in its own words: its processes (the intermediate and init forks of
//! the shim) report only the outermost error text ("failed syscall") to the shim, but log each
//! failing step (`failed to drop capabilities err=…`) as a tracing error first. The shim keeps
//! those events in `<dir>/runtime-errors.log` — the forks inherit its subscriber and the file
//! descriptor (libcontainer marks it close-on-exec, so it stays open until the workload's
//! execve) — and appends the ones an operation produced to that operation's error.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub(crate) const FILE: &str = "runtime-errors.log";

/// A boxed layer of the shim's subscriber.
pub(crate) type BoxedLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The tracing layer that appends error events (message and fields, one line each) to the
/// file in `dir`, emptied first (one shim per start: the file never outgrows one run); None
/// when the file cannot be opened.
pub(crate) fn layer(dir: &Path) -> Option<BoxedLayer> {
    use std::os::unix::fs::OpenOptionsExt;
    use tracing_subscriber::Layer;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(FILE))
        .ok()?;
    let _ = file.set_len(0);
    Some(
        tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::ERROR)
            .boxed(),
    )
}

/// Where the next operation's events will start.
pub(crate) fn mark(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(FILE))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// `outer`, followed by the failing steps logged since `since` (oldest first: the root cause).
pub(crate) fn explain(outer: &str, dir: &Path, since: u64) -> String {
    let steps = read_since(&dir.join(FILE), since);
    compose(outer, &steps)
}

fn read_since(path: &PathBuf, since: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(since)).is_ok() {
            let _ = f.take(16 << 10).read_to_string(&mut text);
        }
    }
    text
}

/// The logged steps behind `outer`: the events before the first one that repeats the outer
/// error's own last words (from there on the same failure is only passed up, then cleaned up
/// after), or that one event alone when nothing came before it.
fn compose(outer: &str, log: &str) -> String {
    let tail = outer.rsplit(": ").next().unwrap_or(outer).trim();
    let mut steps: Vec<&str> = Vec::new();
    for l in log.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !tail.is_empty() && l.contains(tail) {
            if steps.is_empty() && l != tail {
                steps.push(l);
            }
            break;
        }
        if !steps.contains(&l) && steps.len() < 4 {
            steps.push(l);
        }
    }
    if steps.is_empty() {
        outer.to_string()
    } else {
        format!("{outer} ({})", steps.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_outer_error() {
        let log = "failed to drop capabilities err=SetCaps(EPERM)\nfailed to initialize container process: failed syscall\nfailed to wait for init ready: failed syscall\nfailed to open container state file err=ENOENT\n";
        assert_eq!(
            compose("error in executing process : failed syscall", log),
            "error in executing process : failed syscall (failed to drop capabilities err=SetCaps(EPERM))"
        );
        // Only the propagating event: it is the detail.
        assert_eq!(
            compose(
                "x: failed to prepare rootfs",
                "failed to prepare rootfs err=Mount(ENODEV)\n"
            ),
            "x: failed to prepare rootfs (failed to prepare rootfs err=Mount(ENODEV))"
        );
        assert_eq!(compose("boom", ""), "boom");
    }

    #[test]
    fn only_events_after_the_mark_count() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE), "old failure\n").unwrap();
        let m = mark(d.path());
        assert_eq!(explain("outer", d.path(), m), "outer");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join(FILE))
            .unwrap();
        writeln!(f, "failed to prepare rootfs err=Mount(EACCES)").unwrap();
        assert_eq!(
            explain("outer", d.path(), m),
            "outer (failed to prepare rootfs err=Mount(EACCES))"
        );
    }
}

#[cfg(test)]
mod layer_tests {
    #[test]
    fn error_events_reach_the_file() {
        use tracing_subscriber::layer::SubscriberExt;
        let d = tempfile::tempdir().unwrap();
        let layers: Vec<_> = super::layer(d.path()).into_iter().collect();
        let sub = tracing_subscriber::registry().with(layers);
        tracing::subscriber::with_default(sub, || {
            tracing::info!("not this");
            tracing::error!(err = "EPERM", "failed to drop capabilities");
        });
        let text = std::fs::read_to_string(d.path().join(super::FILE)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join(super::FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the log may name paths and ids: owner only"
        );
        assert_eq!(text.trim(), "failed to drop capabilities err=\"EPERM\"");
    }
}
