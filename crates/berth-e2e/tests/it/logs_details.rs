//! `docker logs --details` (issue 14): each line starts with the container's log attributes,
//! the labels and env variables its `--log-opt labels=/env=/…-regex` name, as dockerd does.

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
