//! `docker logs --details` (issue 14): each line starts with the container's log attributes,
//! the labels and env variables its `--log-opt labels=/env=/…-regex` name, as dockerd does;
//! and `berth logs` saying when rotation dropped older lines (issue 20).

use crate::common;

use common::cli::Daemon;

#[test]
fn logs_details_prefix_each_line_with_the_log_attributes() {
    let Some(d) = Daemon::start("logs_details_prefix_each_line_with_the_log_attributes") else {
        return;
    };
    d.ok(&[
        "run",
        "--name",
        "det",
        "--label",
        "team=a b",
        "--label",
        "other=x",
        "-e",
        "STAGE=dev",
        "-e",
        "ZONE=eu/1",
        "--log-opt",
        "labels=team",
        "--log-opt",
        "env-regex=^Z",
        "--log-opt",
        "env=STAGE",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    let o = d.docker(&["logs", "--details", "det"]);
    assert!(o.status.success());
    // Sorted by key, query-escaped, comma-joined, then one space (before: no prefix at all).
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "STAGE=dev,ZONE=eu%2F1,team=a+b one\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "STAGE=dev,ZONE=eu%2F1,team=a+b two\n"
    );
    // No attributes: just the separating space; without --details: nothing.
    d.ok(&["run", "--name", "plain", "busybox", "echo", "hi"]);
    assert_eq!(
        String::from_utf8_lossy(&d.docker(&["logs", "--details", "plain"]).stdout),
        " hi\n"
    );
    assert_eq!(d.ok(&["logs", "plain"]), "hi");
    // Timestamps come first, as dockerd writes them.
    let o = d.ok(&["logs", "--details", "-t", "plain"]);
    let (ts, rest) = o.split_once(' ').unwrap();
    assert!(ts.ends_with('Z'), "{o}");
    assert_eq!(rest, " hi", "{o}");
}

/// Lines the json-file rotation dropped for good are announced by `berth logs` on stderr
/// once (the answer's `X-Berth-Log-Rotated`); a log that lost nothing gets no such line, and
/// docker's CLI (which ignores the header) prints only the lines.
#[test]
fn berth_logs_says_when_rotation_dropped_lines() {
    let Some(d) = Daemon::start("berth_logs_says_when_rotation_dropped_lines") else {
        return;
    };
    let bin = common::cli::berth_bin().expect("the berth binary is built");
    let berth_logs = |name: &str| {
        std::process::Command::new(&bin)
            .arg("-H")
            .arg(format!("unix://{}", d.sock().display()))
            .args(["--no-autostart", "logs", name])
            .output()
            .unwrap()
    };
    d.ok(&[
        "run",
        "--name",
        "small",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "seq",
        "1",
        "5",
    ]);
    d.ok(&[
        "run",
        "--name",
        "spilled",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "seq",
        "1",
        "2000",
    ]);
    let o = berth_logs("small");
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n2\n3\n4\n5\n");
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let o = berth_logs("spilled");
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.ends_with("2000\n") && !out.starts_with("1\n"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("rotated away").count(), 1, "{err}");
    assert!(err.contains("max-file"), "{err}");
    let o = d.docker(&["logs", "spilled"]);
    assert!(o.status.success() && o.stderr.is_empty());

    // inspect shows the rotation in force: the options given, or berth's defaults while
    // HostConfig.LogConfig.Config stays as the user left it (empty, as dockerd's).
    let fmt = "{{json .LogRotation}} {{json .HostConfig.LogConfig.Config}}";
    assert_eq!(
        d.ok(&["inspect", "--format", fmt, "small"]).trim(),
        r#"{"MaxFile":2,"MaxSize":1024} {"max-file":"2","max-size":"1k"}"#
    );
    d.ok(&["create", "--name", "plain", "busybox", "true"]);
    assert_eq!(
        d.ok(&["inspect", "--format", fmt, "plain"]).trim(),
        r#"{"MaxFile":3,"MaxSize":10485760} {}"#
    );
    d.ok(&[
        "create",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "true",
    ]);
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "quiet"])).unwrap();
    assert!(
        v[0].get("LogRotation").is_none(),
        "no log, no rotation: {v}"
    );
    d.finish();
}
