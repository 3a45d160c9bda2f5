//! List filters end to end (real docker CLI and raw API): a bad filter key or value is a 400
//! with dockerd's words before any item is looked at, so a daemon with nothing to list
//! refuses it just as one with many items does.

use crate::common;

use common::cli::Daemon;

#[test]
fn bad_list_filters_are_refused_with_nothing_to_list() {
    let Some(d) = Daemon::start("bad_list_filters_are_refused_with_nothing_to_list") else {
        return;
    };
    // No container and no volume exists: before, each of these listed nothing, 200.
    for (args, want) in [
        (
            &["ps", "-a", "--filter", "bogus=1"][..],
            "Invalid filter 'bogus'",
        ),
        (
            &["ps", "-a", "--filter", "status=sleepy"],
            "Invalid filter 'status=sleepy'",
        ),
        (
            &["ps", "-a", "--filter", "health=fine"],
            "Unrecognised filter value for health: fine",
        ),
        (
            &["ps", "-a", "--filter", "is-task=maybe"],
            "Invalid filter 'is-task=maybe'",
        ),
        (
            &["ps", "-a", "--filter", "publish=80:80"],
            "filter for 'publish' should not contain ':': 80:80",
        ),
        (
            &["volume", "ls", "--filter", "dangling=maybe"],
            "Invalid filter 'dangling=[maybe]'",
        ),
        (
            &["volume", "ls", "--filter", "bogus=1"],
            "Invalid filter 'bogus'",
        ),
    ] {
        let err = d.fails(args);
        assert!(err.contains(want), "docker {args:?}: {err}");
    }
    let (code, body) = d.api(
        "GET",
        "/containers/json?all=1&filters=%7B%22bogus%22%3A%5B%221%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    // Good filters still list.
    assert_eq!(
        d.ok(&["ps", "-a", "-q", "--filter", "status=exited"])
            .trim(),
        ""
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])
            .trim(),
        ""
    );
    d.finish();
}

#[test]
fn container_prune_keeps_what_label_not_names() {
    let Some(d) = Daemon::start_opts(
        "container_prune_keeps_what_label_not_names",
        common::cli::Opts {
            busybox: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    d.ok(&[
        "create", "--name", "lf-keep", "--label", "keep=1", "busybox", "true",
    ]);
    d.ok(&[
        "create", "--name", "lf-drop", "--label", "keep=2", "busybox", "true",
    ]);
    d.ok(&["create", "--name", "lf-plain", "busybox", "true"]);
    // Before, `label!` was accepted and ignored: all three were removed.
    d.ok(&["container", "prune", "-f", "--filter", "label!=keep=1"]);
    let left = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left.trim(), "lf-keep", "{left}");
    d.ok(&["container", "prune", "-f", "--filter", "label=keep"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    d.finish();
}

/// `ancestor=` selects containers of the image and of every image built on it, as moby's
/// `populateImageFilterByParents` (before: only containers of that very image).
#[test]
fn ancestor_matches_images_built_on_the_ancestor() {
    let Some(d) = Daemon::start("ancestor_matches_images_built_on_the_ancestor") else {
        return;
    };
    let o = d.docker_stdin(
        &["build", "-q", "-t", "anc-child", "-"],
        b"FROM busybox\nLABEL k=v\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.ok(&["create", "--name", "of-child", "anc-child", "true"]);
    d.ok(&["create", "--name", "of-base", "busybox", "true"]);
    let names = |filter: &str| {
        let mut v: Vec<String> = d
            .ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("ancestor=busybox"), ["of-base", "of-child"]);
    assert_eq!(names("ancestor=anc-child"), ["of-child"]);
    let base_id = d.inspect("busybox", "{{.Id}}");
    assert_eq!(
        names(&format!("ancestor={}", &base_id[7..19])),
        ["of-base", "of-child"]
    );
    assert!(names("ancestor=no-such-image").is_empty());
}
