//! CLI behaviour that needs no daemon: usage errors, connection errors, autostart failure.

use assert_cmd::Command;

fn berth() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("berth"));
    c.env_remove("BERTH_HOST").env_remove("BERTH_NO_AUTOSTART");
    c
}

#[test]
fn unknown_flag_is_125_with_hint() {
    let o = berth()
        .args(["run", "--bogus", "busybox"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "unknown flag: --bogus\nSee 'berth run --help'.\n"
    );
}

#[test]
fn unreachable_daemon_without_autostart() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let o = berth()
        .args(["--no-autostart", "-H"])
        .arg(format!("unix://{}", sock.display()))
        .arg("ps")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot connect to the berth daemon") && err.contains("none.sock"),
        "{err}"
    );
    assert!(!sock.exists());
}

#[test]
fn autostart_reports_a_daemon_that_dies() {
    // The socket's parent is a regular file, so the auto-started daemon cannot bind and exits;
    // the CLI must notice and point at the log instead of waiting.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let sock = dir.path().join("file/auto.sock");
    let root = dir.path().join("root");
    let o = berth()
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .arg("--root")
        .arg(&root)
        .arg("images")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exited") && err.contains("daemon.log"),
        "{err}"
    );
    assert!(root.join("daemon.log").exists());
}

#[test]
fn flag_value_errors_come_before_any_daemon() {
    // Autostart is allowed here: a bad value must still not start (or wait for) a daemon.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("auto.sock");
    let root = dir.path().join("root");
    for (args, want) in [
        (
            vec!["run", "--cpus", "abc", "busybox"],
            "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number\nSee 'berth run --help'.\n",
        ),
        (
            vec!["create", "-m", "10q", "busybox"],
            "invalid argument \"10q\" for \"-m, --memory\" flag: invalid size: '10q'\nSee 'berth create --help'.\n",
        ),
        (
            vec!["update", "--memory-swap", "x", "c1"],
            "invalid argument \"x\" for \"--memory-swap\" flag: invalid size: 'x'\nSee 'berth update --help'.\n",
        ),
    ] {
        let o = berth()
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--root")
            .arg(&root)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), want, "{args:?}");
        assert!(!sock.exists() && !root.exists(), "{args:?} started a daemon");
    }
}

#[test]
fn unknown_command_is_docker_s_not_a_command() {
    // docker 20.10: `docker foo` → "docker: 'foo' is not a docker command.\nSee 'docker --help'"
    // on stderr, exit 1, also after global flags and with arguments after the word.
    for args in [
        vec!["foo"],
        vec!["-D", "stp", "a", "--x"],
        vec!["-H", "unix:///x", "imagee"],
    ] {
        let o = berth().args(&args).output().unwrap();
        let word = args
            .iter()
            .find(|a| !a.starts_with('-') && !a.starts_with("unix:"))
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!("berth: '{word}' is not a berth command.\nSee 'berth --help'\n"),
            "{args:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn unknown_subcommand_of_a_management_command_prints_its_usage() {
    // docker 20.10: `docker image foo` prints "\n" and `docker image`'s usage on stderr, exit 1.
    let o = berth().args(["image", "lss"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with('\n'), "{err}");
    assert!(err.contains("Usage: berth image <COMMAND>"), "{err}");
    assert!(err.contains("ls       List images"), "{err}");
    assert!(o.stdout.is_empty());
}
