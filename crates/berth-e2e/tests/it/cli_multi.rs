//! The berth CLI on several containers at once, against a berth daemon: `stop a b`, `kill`, `rm`,
//! `pause` run concurrently as docker's CLI does, print each name as it completes in argument
//! order and report the failures together at the end (exit 1); `stats` watches several
//! containers, and without arguments follows the containers that start and die.

use crate::common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::cli::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `stop a b` signals both before waiting for either: each container, on SIGTERM, marks that
/// it got it in a shared volume and exits only once the other one got its SIGTERM too. Stopped
/// one after the other, the first would wait out the whole timeout and be killed (137); stopped
/// together, both see the other's mark and exit 0 by themselves. No clock is read.
#[test]
fn stop_signals_all_containers_concurrently() {
    let Some(d) = Daemon::start("stop_signals_all_containers_concurrently") else {
        return;
    };
    for (me, other) in [("ha", "hb"), ("hb", "ha")] {
        let script = format!(
            "trap 'touch /v/{me}; while [ ! -e /v/{other} ]; do sleep 0.1; done; exit 0' TERM; \
             touch /v/{me}-up; while :; do sleep 0.1; done"
        );
        d.ok(&[
            "run", "-d", "--name", me, "-v", "hs:/v", "busybox", "sh", "-c", &script,
        ]);
    }
    // Both traps are installed before stopping (bounded poll on the shared volume).
    let ready = common::poll(60, || {
        let o = d.docker(&[
            "exec",
            "ha",
            "sh",
            "-c",
            "test -e /v/ha-up && test -e /v/hb-up",
        ]);
        o.status.success().then_some(())
    });
    assert!(ready.is_some(), "containers did not come up");
    // The timeout only bounds the sequential case; the concurrent one never reaches it.
    let o = d.berth(&["stop", "-t", "60", "ha", "hb"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "ha\nhb\n");
    assert_eq!(text(&o.stderr), "");
    for n in ["ha", "hb"] {
        assert_eq!(
            d.inspect(n, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 0",
            "{n} was killed: it never saw the other container's SIGTERM"
        );
    }
}

/// Names print in argument order, failures together at the end with docker 20.10's texts.
#[test]
fn multi_container_commands_report_like_docker() {
    let Some(d) = Daemon::start("multi_container_commands_report_like_docker") else {
        return;
    };
    for n in ["one", "two", "six"] {
        d.ok(&["run", "-d", "--name", n, "busybox", "sleep", "600"]);
    }
    let o = d.berth(&["pause", "one", "nosuch", "two"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "one\ntwo\n");
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: No such container: nosuch\n"
    );
    let o = d.berth(&["unpause", "two", "one"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "two\none\n");

    let o = d.berth(&["kill", "six", "x1", "x2"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "six\n");
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: No such container: x1\n\
         Error response from daemon: No such container: x2\n"
    );

    let o = d.berth(&["stop", "-t", "1", "two", "gone", "one"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "two\none\n");
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: No such container: gone\n"
    );

    // rm: a missing container is the client's "Error: No such container" (docker 20.10); with
    // -f it is only reported and does not fail the command.
    let o = d.berth(&["rm", "one", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "one\n");
    assert_eq!(text(&o.stderr), "Error: No such container: nosuch\n");
    d.ok(&["run", "-d", "--name", "run", "busybox", "sleep", "600"]);
    let o = d.berth(&["rm", "-f", "nosuch", "two", "run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "two\nrun\n");
    assert_eq!(text(&o.stderr), "Error: No such container: nosuch\n");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "six");
}

/// `stats` without arguments prints a table per frame and follows the daemon's events: a
/// container started later joins the table, one that dies leaves it (docker's CLI; berth used
/// to keep the list it had at the start). Bounded by frames read, not by time.
#[test]
fn stats_follows_started_and_dead_containers() {
    let Some(d) = Daemon::start("stats_follows_started_and_dead_containers") else {
        return;
    };
    d.ok(&["run", "-d", "--name", "st1", "busybox", "sleep", "600"]);
    let mut child = Command::new(&d.bin)
        .arg("-H")
        .arg(format!("unix://{}", d.sock().display()))
        .args(["stats", "--format", "table {{.Name}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Frames are "NAME" and one line per container; read until `want` holds for one, at most
    // `max` frames (killing the child if it never does, so the read cannot hang).
    let mut pending: Option<Vec<String>> = None;
    let mut until = |want: &dyn Fn(&[String]) -> bool, max: usize| -> Option<Vec<String>> {
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.ok()?;
            if line == "NAME" {
                if let Some(f) = pending.take() {
                    seen += 1;
                    if want(&f) {
                        pending = Some(vec![]);
                        return Some(f);
                    }
                    if seen >= max {
                        return None;
                    }
                }
                pending = Some(vec![]);
            } else if let Some(f) = pending.as_mut() {
                f.push(line);
            }
        }
        None
    };
    let first = until(&|f| f == ["st1"], 40);
    d.ok(&["run", "-d", "--name", "st2", "busybox", "sleep", "600"]);
    let both = until(&|f| f.len() == 2, 40);
    d.ok(&["kill", "st1"]);
    let after = until(&|f| f == ["st2"], 40);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(first, Some(vec!["st1".to_string()]));
    let mut both = both.expect("st2 never joined the table");
    both.sort();
    assert_eq!(both, ["st1", "st2"]);
    assert_eq!(
        after,
        Some(vec!["st2".to_string()]),
        "st1 stayed after it died"
    );
}

/// `--no-stream` prints one table, rows in argument order; a missing container fails the
/// command before any table, with the daemon's error (docker 20.10's output).
#[test]
fn stats_no_stream_prints_one_table() {
    let Some(d) = Daemon::start("stats_no_stream_prints_one_table") else {
        return;
    };
    for n in ["sa", "sb"] {
        d.ok(&["run", "-d", "--name", n, "busybox", "sleep", "600"]);
    }
    let o = d.berth(&[
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}",
        "sb",
        "sa",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "NAME\nsb\nsa\n");
    let o = d.berth(&["stats", "--no-stream", "nosuch", "sa"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "");
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: No such container: nosuch\n"
    );
}
