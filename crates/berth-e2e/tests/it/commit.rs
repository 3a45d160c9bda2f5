//! `docker commit` and `docker diff` end to end: the real docker CLI against a berth daemon (the
//! `berth` binary, built by `cargo build -p berth-cli`) on a temp root, socket, bridge and nft
//! table. Covers --change/-m/-a, history, Parent, pause, Docker's error for a bad change, and
//! that engine-made mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf, /.dockerenv …)
//! stay out of diff and of the committed layer (the init layer).

use crate::common;

use std::time::Duration;

use common::cli::Daemon;

trait CommitExt {
    fn top_layer_entries(&self, image: &str) -> Vec<String>;
}

impl CommitExt for Daemon {
    /// Entry names of the top layer of `image` (from `docker save`).
    fn top_layer_entries(&self, image: &str) -> Vec<String> {
        let out = self.dir.path().join("save.tar");
        self.ok(&["save", "-o", out.to_str().unwrap(), image]);
        let names = common::saved_top_layer_entries(&std::fs::read(&out).unwrap());
        let _ = std::fs::remove_file(&out);
        names
    }
}

#[test]
fn commit_with_change_message_and_author() {
    let Some(d) = Daemon::start("commit_with_change_message_and_author") else {
        return;
    };
    d.ok(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo hello > /hi",
    ]);
    let id = d.ok(&[
        "commit",
        "-m",
        "saved hi",
        "-a",
        "Ann <ann@example.com>",
        "-c",
        r#"CMD ["cat","/hi"]"#,
        "-c",
        "ENV GREETING=hello",
        "c1",
        "hiimg:v1",
    ]);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(d.ok(&["run", "--rm", "hiimg:v1"]), "hello");
    let hist = d.ok(&[
        "history",
        "--format",
        "{{.Comment}}|{{.CreatedBy}}",
        "hiimg:v1",
    ]);
    let top = hist.lines().next().unwrap();
    assert!(top.starts_with("saved hi|sh -c echo hello > /hi"), "{hist}");
    let busybox = d.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.Id}}|{{.Parent}}|{{.Author}}|{{.Comment}}",
            "hiimg:v1"
        ]),
        format!("{id}|{busybox}|Ann <ann@example.com>|saved hi")
    );
    let env = d.ok(&["inspect", "-f", "{{json .Config.Env}}", "hiimg:v1"]);
    assert!(
        env.contains("GREETING=hello") && env.contains("PATH="),
        "{env}"
    );
    // No repository: an untagged image, its id printed.
    let untagged = d.ok(&["commit", "c1"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", &untagged]), untagged);
}

#[test]
fn diff_and_commit_hold_only_the_containers_changes() {
    let Some(d) = Daemon::start("diff_and_commit_hold_only_the_containers_changes") else {
        return;
    };
    d.ok(&["run", "--name", "tt", "busybox", "touch", "/test"]);
    assert_eq!(d.ok(&["diff", "tt"]), "A /test");
    // The engine's mount points are there for the process, but below the rw layer.
    let seen = d.ok(&[
        "run",
        "--name",
        "ee",
        "busybox",
        "sh",
        "-c",
        "echo x >> /etc/passwd; ls /.dockerenv /etc/hosts /etc/hostname /etc/resolv.conf",
    ]);
    assert_eq!(seen.lines().count(), 4, "{seen}");
    assert_eq!(d.ok(&["diff", "ee"]), "C /etc\nC /etc/passwd");
    d.ok(&["commit", "tt", "touched"]);
    assert_eq!(d.top_layer_entries("touched"), ["test"]);
    d.ok(&["commit", "ee", "edited"]);
    assert_eq!(d.top_layer_entries("edited"), ["etc", "etc/passwd"]);
    // A container from the committed image works and diffs clean itself.
    d.ok(&["run", "--name", "again", "touched", "ls", "/test"]);
    assert_eq!(d.ok(&["diff", "again"]), "");
}

#[test]
fn bad_change_fails_like_docker_and_creates_nothing() {
    let Some(d) = Daemon::start("bad_change_fails_like_docker_and_creates_nothing") else {
        return;
    };
    d.ok(&["run", "--name", "cx", "busybox", "touch", "/x"]);
    let before = d.ok(&["images", "-aq"]);
    let o = d.docker(&["commit", "-c", "RUN x", "cx", "bad:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "Error response from daemon: RUN is not a valid change command"
    );
    assert_eq!(d.ok(&["images", "-aq"]), before);
    let o = d.docker(&["commit", "nosuchcontainer"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such container: nosuchcontainer"));
}

#[test]
fn commit_pauses_a_running_container_unless_told_not_to() {
    let Some(d) = Daemon::start("commit_pauses_a_running_container_unless_told_not_to") else {
        return;
    };
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo up > /up; exec sleep 1000",
    ]);
    // The file is written by the container itself: wait until it shows in the diff.
    for _ in 0..400 {
        if d.ok(&["diff", "live"]).contains("A /up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    d.ok(&["commit", "live", "live:paused"]);
    d.ok(&["commit", "--pause=false", "live", "live:unpaused"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "live"]),
        "running"
    );
    assert_eq!(d.ok(&["run", "--rm", "live:paused", "cat", "/up"]), "up");
    assert_eq!(d.ok(&["run", "--rm", "live:unpaused", "cat", "/up"]), "up");
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        // Up to the next second: everything above has happened by then.
        &(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1)
        .to_string(),
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev
        .lines()
        .filter(|a| matches!(*a, "pause" | "unpause" | "commit"))
        .collect();
    // Only the first commit pauses.
    assert_eq!(actions, ["pause", "unpause", "commit", "commit"], "{ev}");
}
