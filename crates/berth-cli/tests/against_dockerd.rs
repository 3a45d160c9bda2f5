//! End-to-end: the berth binary against a real dockerd started by the test.

mod common;

use std::process::Stdio;

use berth_testutil::registry::Registry;
use common::{ok, Dockerd};

fn prereqs(test: &str) -> Option<std::path::PathBuf> {
    if !berth_testutil::require_root(test)
        || !berth_testutil::require_cmds(test, &["dockerd", "skopeo"])
    {
        return None;
    }
    berth_testutil::image(test, "busybox")
}

#[test]
fn image_commands() {
    let Some(bb) = prereqs("image_commands") else {
        return;
    };
    let d = Dockerd::start("img");
    d.load_busybox(&bb);

    let out = ok(d.berth().arg("images"));
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    // Column widths follow the data (CREATED grows with the image's age), so compare the
    // layout, not fixed strings: the same columns, and each cell starts under its header.
    let cols = table_columns(header);
    let names: Vec<&str> = cols.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        names,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{header}"
    );
    let cells = cells_under(row, &cols);
    assert_eq!(cells[0], "busybox", "{row}");
    assert_eq!(cells[1], "latest", "{row}");
    assert_eq!(cells[2].len(), 12, "{row}");
    assert!(cells[3].ends_with(" ago"), "{row}");
    assert!(cells[4].ends_with("MB"), "{row}");

    let id = ok(d.berth().args(["images", "-q"])).trim().to_string();
    assert_eq!(id.len(), 12);
    let full = ok(d
        .berth()
        .args(["inspect", "--type", "image", "-f", "{{.Id}}", "busybox"]));
    assert!(full.trim().starts_with(&format!("sha256:{id}")), "{full}");

    let j = ok(d.berth().args(["images", "--format", "{{json .}}"]));
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["ID"], id.as_str());

    ok(d.berth().args(["tag", "busybox", "localhost:5000/bb:v1"]));
    let t = ok(d
        .berth()
        .args(["images", "--format", "table {{.Repository}}:{{.Tag}}"]));
    assert!(t.contains("localhost:5000/bb:v1"), "{t}");
    let arr = ok(d.berth().args(["image", "inspect", "localhost:5000/bb:v1"]));
    let arr: serde_json::Value = serde_json::from_str(&arr).unwrap();
    assert_eq!(arr.as_array().unwrap().len(), 1);

    assert_eq!(
        ok(d.berth().args(["rmi", "localhost:5000/bb:v1"])),
        "Untagged: localhost:5000/bb:v1\n"
    );
    let o = d.berth().args(["rmi", "nosuch:1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("Error response from daemon: No such image")
    );

    let o = d.berth().args(["inspect", "nosuch"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error: No such object: nosuch\n"
    );

    let h = ok(d.berth().args(["history", "busybox"]));
    assert!(h.starts_with("IMAGE "), "{h}");

    // save → rmi → load round trip
    let saved = d.dir.join("saved.tar");
    ok(d.berth().args(["save", "-o"]).arg(&saved).arg("busybox"));
    assert!(std::fs::metadata(&saved).unwrap().len() > 1_000_000);
    ok(d.berth().args(["rmi", "busybox"]));
    assert_eq!(ok(d.berth().args(["images", "-q"])), "");
    let o = d
        .berth()
        .arg("load")
        .stdin(std::fs::File::open(&saved).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(ok(d.berth().args(["images", "-q"])).trim(), id);

    let df = ok(d.berth().args(["system", "df"]));
    assert!(df.starts_with("TYPE "), "{df}");
    assert!(df.contains("\nImages          1 "), "{df}");
    let v = ok(d
        .berth()
        .args(["version", "--format", "{{.Server.ApiVersion}}"]));
    assert!(v.trim().starts_with("1."), "{v}");
}

#[test]
fn container_commands() {
    let Some(bb) = prereqs("container_commands") else {
        return;
    };
    let d = Dockerd::start("ctr");
    d.load_busybox(&bb);

    // run --rm: output and exit status pass through
    assert_eq!(
        ok(d.berth()
            .args(["run", "--rm", "--network", "none", "busybox", "echo", "hi"])),
        "hi\n"
    );
    let o = d
        .berth()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");

    // -i forwards stdin and half-closes it
    let mut child = d
        .berth()
        .args(["run", "-i", "--rm", "--network", "none", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"through stdin\n")
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "through stdin\n");

    // -d, ps, logs, exec, stop, rm
    let name = format!("bcli-web-{}", std::process::id());
    let id = ok(d.berth().args([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "-e",
        "X=42",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]));
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = ok(d
        .berth()
        .args(["ps", "--format", "{{.ID}} {{.Names}} {{.State}}"]));
    assert_eq!(ps, format!("{} {name} running\n", &id[..12]));
    assert_eq!(
        ok(d.berth().args(["exec", &name, "sh", "-c", "echo $X"])),
        "42\n"
    );
    let o = d
        .berth()
        .args(["exec", &name, "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7));
    // logs: the line is written before exec'ing sleep, which we observed via exec above
    assert_eq!(ok(d.berth().args(["logs", &name])), "started\n");
    assert_eq!(
        ok(d.berth().args(["stop", "-t", "1", &name])),
        format!("{name}\n")
    );
    let st = ok(d
        .berth()
        .args(["inspect", "-f", "{{.State.Status}}", &name]));
    assert_eq!(st, "exited\n");
    assert_eq!(ok(d.berth().args(["rm", &name])), format!("{name}\n"));
    assert_eq!(ok(d.berth().args(["ps", "-a", "-q"])), "");

    // create + start -a
    let cid = ok(d
        .berth()
        .args(["create", "--network", "none", "busybox", "echo", "created"]));
    assert_eq!(ok(d.berth().args(["start", "-a", cid.trim()])), "created\n");
    ok(d.berth().args(["rm", cid.trim()]));

    // -it through a real pty (script(1)): raw mode, tty output, the shell's exit status
    if berth_testutil::require_cmds("container_commands", &["script"]) {
        let bin = assert_cmd::cargo::cargo_bin!("berth").display().to_string();
        let run = |input: &str, args: &str| {
            let mut c = std::process::Command::new("script");
            c.args(["-qec", &format!("{bin} {args}"), "/dev/null"])
                .env("BERTH_HOST", &d.host)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            let mut ch = c.spawn().unwrap();
            {
                use std::io::Write;
                ch.stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
            }
            ch.wait_with_output().unwrap()
        };
        let o = run(
            "echo $((6*7))\nexit 5\n",
            "run -it --rm --network none busybox sh",
        );
        assert_eq!(o.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&o.stdout).contains("\r\n42\r\n"));
        // ctrl-p ctrl-q detaches: exit 0, container still running. The keys are sent only
        // after the shell answered, i.e. once berth has the terminal in raw mode (in cooked
        // mode the pty would eat ctrl-q as XON).
        let tname = format!("bcli-tty-{}", std::process::id());
        let mut ch = std::process::Command::new("script")
            .args([
                "-qec",
                &format!("{bin} run -it --name {tname} --network none busybox sh"),
                "/dev/null",
            ])
            .env("BERTH_HOST", &d.host)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = ch.stdin.take().unwrap();
        let mut stdout = ch.stdout.take().unwrap();
        {
            use std::io::{Read, Write};
            stdin.write_all(b"echo $((1+1))rdy\n").unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&seen).contains("2rdy") {
                let n = stdout.read(&mut buf).unwrap();
                assert!(
                    n > 0,
                    "session ended early: {}",
                    String::from_utf8_lossy(&seen)
                );
                seen.extend_from_slice(&buf[..n]);
            }
            stdin.write_all(b"\x10\x11").unwrap();
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest);
        }
        drop(stdin);
        assert_eq!(ch.wait().unwrap().code(), Some(0));
        let st = ok(d
            .berth()
            .args(["inspect", "-f", "{{.State.Running}}", &tname]));
        assert_eq!(st, "true\n");
        ok(d.berth().args(["rm", "-f", &tname]));
    }

    // usage errors exit 125 like docker
    let o = d
        .berth()
        .args(["run", "--memory", "10q", "busybox"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "invalid argument \"10q\" for \"-m, --memory\" flag: invalid size: '10q'\nSee 'berth run --help'.\n"
    );
}

#[test]
fn push_and_pull_through_a_loopback_registry() {
    let test = "push_and_pull_through_a_loopback_registry";
    let Some(bb) = prereqs(test) else { return };
    if !berth_testutil::require_cmds(test, &["docker-registry"]) {
        return;
    }
    let reg = Registry::start();
    let d = Dockerd::start("reg");
    d.load_busybox(&bb);
    let r = format!("{}/bb:v1", reg.addr);
    ok(d.berth().args(["tag", "busybox", &r]));
    let out = ok(d.berth().args(["push", &r]));
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    ok(d.berth().args(["rmi", &r, "busybox"]));
    assert_eq!(ok(d.berth().args(["images", "-q"])), "");

    // non-terminal stdout: plain lines, then the full reference
    let out = ok(d.berth().args(["pull", &r]));
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    assert!(out.ends_with(&format!("{r}\n")), "{out}");
    assert_eq!(ok(d.berth().args(["pull", "-q", &r])), format!("{r}\n"));

    // run pulls a missing image itself
    ok(d.berth().args(["rmi", &r]));
    let o = d
        .berth()
        .args(["run", "--rm", "--network", "none", &r, "echo", "pulled"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr)
        .starts_with(&format!("Unable to find image '{r}' locally")));
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("pulled\n"));

    // a missing tag is an error message from the stream → exit 1
    let o = d
        .berth()
        .args(["pull", &format!("{}/bb:nope", reg.addr)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// The columns of a docker-style table header: (start offset, name). Columns are separated by
/// at least two spaces (Go's tabwriter padding); a single space stays inside a name ("IMAGE ID").
fn table_columns(header: &str) -> Vec<(usize, &str)> {
    let mut cols = Vec::new();
    let mut start = None;
    let b = header.as_bytes();
    for i in 0..=b.len() {
        let gap = i == b.len() || (b[i] == b' ' && b.get(i + 1).is_none_or(|c| *c == b' '));
        match (start, gap) {
            (None, false) if b[i] != b' ' => start = Some(i),
            (Some(s), true) => {
                cols.push((s, header[s..i].trim_end()));
                start = None;
            }
            _ => {}
        }
    }
    cols
}

/// The cells of `row` under `cols`: each cell starts exactly at its column's offset.
fn cells_under<'a>(row: &'a str, cols: &[(usize, &str)]) -> Vec<&'a str> {
    cols.iter()
        .enumerate()
        .map(|(i, (s, name))| {
            assert!(
                *s == 0 || row.as_bytes()[s - 1] == b' ',
                "cell {name} does not start at column {s}: {row:?}"
            );
            let end = cols.get(i + 1).map_or(row.len(), |(e, _)| *e);
            row[*s..end].trim_end()
        })
        .collect()
}

#[test]
fn table_columns_follow_tabwriter_layout() {
    let h = "REPOSITORY   TAG       IMAGE ID       CREATED          SIZE";
    let cols = table_columns(h);
    assert_eq!(
        cols,
        [
            (0, "REPOSITORY"),
            (13, "TAG"),
            (23, "IMAGE ID"),
            (38, "CREATED"),
            (55, "SIZE")
        ]
    );
    let row = "busybox      latest    0123456789ab   10 months ago    4.3MB";
    assert_eq!(
        cells_under(row, &cols),
        [
            "busybox",
            "latest",
            "0123456789ab",
            "10 months ago",
            "4.3MB"
        ]
    );
}
