//! Whether the pid in a daemon's pid file still names a live berth daemon: the process exists,
//! is not a zombie or dead (`/proc/<pid>/stat` state `Z`/`X`), and runs berth's `daemon`
//! subcommand. A zombie left by a crashed daemon's parent, or a recycled pid now used by some
//! other program, must not keep a new daemon from starting.

use std::path::Path;

/// The state letter of `/proc/<pid>/stat` (the field after the parenthesized command name,
/// which may itself contain spaces and parentheses). None: no such process.
pub(crate) fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Whether `argv` (NUL-separated `/proc/<pid>/cmdline`) is berth's daemon: a `daemon`
/// argument after an executable named berth* or the same file as `our_exe`.
fn is_daemon_cmdline(cmdline: &[u8], exe: Option<&Path>, our_exe: Option<&Path>) -> bool {
    let mut args = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let Some(argv0) = args.next() else {
        return false;
    };
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let same_exe = matches!((exe, our_exe), (Some(a), Some(b)) if a == b);
    // Linked as `dockerd`, berth is the daemon without a `daemon` argument.
    if name == "dockerd" && same_exe {
        return true;
    }
    let named_berth = name.starts_with("berth");
    (named_berth || same_exe) && args.any(|a| a == "daemon")
}

/// Whether `pid` is a running (not zombie) berth daemon. A process whose command line cannot
/// be read counts as a daemon: refusing to start is the safe answer when unsure.
pub(crate) fn is_live_daemon(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_state(pid) {
        None | Some('Z') | Some('X') | Some('x') => return false,
        Some(_) => {}
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return true;
    };
    if cmdline.is_empty() {
        // Kernel threads and processes exiting right now have no command line.
        return false;
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let ours = std::env::current_exe().ok();
    is_daemon_cmdline(&cmdline, exe.as_deref(), ours.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// Kills and reaps a test child on every exit path.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn wait_for_state(pid: i32, want: char) {
        for _ in 0..500 {
            if proc_state(pid) == Some(want) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "process {pid} never reached state {want}: {:?}",
            proc_state(pid)
        );
    }

    /// Before, any existing /proc/<pid> counted as a live daemon, an unreaped zombie too.
    #[test]
    fn an_unreaped_zombie_is_not_a_live_daemon() {
        // argv "berth … daemon" so that only the zombie state tells it apart.
        let c = Child(
            Command::new("sh")
                .arg0("berth")
                .args(["-c", "exit 0", "daemon"])
                .spawn()
                .unwrap(),
        );
        let pid = c.0.id() as i32;
        wait_for_state(pid, 'Z');
        assert!(!is_live_daemon(pid), "zombie {pid} taken for a daemon");
        // The daemon's start path: a pid file naming the zombie is stale, not a refusal.
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("berth.pid");
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        let pf = crate::server::PidFile::create(&path).expect("zombie pid refused the start");
        let mine = std::fs::read_to_string(&path).unwrap();
        assert_eq!(mine.trim(), std::process::id().to_string());
        drop(pf);
    }

    #[test]
    fn a_running_berth_daemon_is_live_and_other_programs_are_not() {
        // sh blocks in its `read` builtin (argv stays "berth -c … daemon"); no grandchild
        // that would outlive the test when the Child guard kills sh.
        let d = Child(
            Command::new("sh")
                .arg0("berth")
                .args(["-c", "read x", "daemon"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let pid = d.0.id() as i32;
        wait_for_state(pid, 'S');
        assert!(is_live_daemon(pid));
        let d2 = tempfile::tempdir().unwrap();
        let path = d2.path().join("berth.pid");
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        let e = crate::server::PidFile::create(&path)
            .err()
            .expect("live daemon not refused");
        assert!(e.to_string().contains("another berth daemon"), "{e}");
        // A recycled pid now used by something else.
        let other = Child(Command::new("sleep").arg("1000").spawn().unwrap());
        let opid = other.0.id() as i32;
        wait_for_state(opid, 'S');
        assert!(!is_live_daemon(opid));
        assert!(!is_live_daemon(0));
        assert!(!is_live_daemon(-5));
    }

    #[test]
    fn state_is_read_past_a_command_name_with_parens() {
        // The test's process exists and is no zombie (its main thread may sleep or run).
        assert!(matches!(
            proc_state(std::process::id() as i32),
            Some('R' | 'S')
        ));
        assert_eq!(proc_state(i32::MAX), None);
        assert!(is_daemon_cmdline(
            b"/usr/bin/berth\0--debug\0daemon\0",
            None,
            None
        ));
        assert!(!is_daemon_cmdline(b"/usr/bin/berth\0run\0x\0", None, None));
        let p = Path::new("/x/test-bin");
        assert!(is_daemon_cmdline(
            b"/x/test-bin\0daemon\0",
            Some(p),
            Some(p)
        ));
        assert!(!is_daemon_cmdline(
            b"/x/other\0daemon\0",
            Some(Path::new("/x/other")),
            Some(p)
        ));
    }
}
