//! Classic-builder fidelity (issue 14, "Build correctness"), through the real docker CLI with
//! `DOCKER_BUILDKIT=0` and berth's own CLI: every step is an image and `rmi` of the result
//! takes its untagged chain, so a removed image is never a cache hit; `images` hides the
//! intermediate images; ADD unpacks what dockerd unpacks; Dockerfile edge cases and messages
//! in dockerd's words; `berth build -` with a Dockerfile or a context tar on stdin.

use std::io::Write;
use std::process::Output;

use crate::common;

use common::cli::Daemon;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `docker build` of `dockerfile` in a fresh context holding `files`, with `args`.
fn build(d: &Daemon, dockerfile: &str, files: &[(&str, &[u8])], args: &[&str]) -> Output {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, bytes) in files {
        std::fs::write(ctx.path().join(name), bytes).unwrap();
    }
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    a.push(ctx.path().to_str().unwrap());
    d.docker(&a)
}

fn build_ok(d: &Daemon, dockerfile: &str, files: &[(&str, &[u8])], args: &[&str]) -> String {
    let o = build(d, dockerfile, files, args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "build failed:\n{out}\n{err}");
    out
}

/// The IDs a classic build prints after each step (` ---> 0123456789ab`).
fn step_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|l| l.len() == 12 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(String::from)
        .collect()
}

/// Every step is an image (its printed ID inspects, its parent is the step before), `rmi` of
/// the result deletes the untagged chain and a rebuild runs every step again: an image `rmi`
/// reported deleted is never a cache hit (before: the RUN step's image outlived the rmi and
/// the rebuild skipped it, "Using cache").
#[test]
fn rmi_of_a_build_takes_its_steps_out_of_the_cache() {
    let Some(d) = Daemon::start("rmi_of_a_build_takes_its_steps_out_of_the_cache") else {
        return;
    };
    let df = "FROM busybox\nRUN echo ran > /marker\nENV STEP=env\nCMD [\"cat\", \"/marker\"]\n";
    let first = build_ok(&d, df, &[], &["-t", "bf-chain"]);
    let ids = step_ids(&first);
    assert_eq!(ids.len(), 4, "FROM, RUN, ENV, CMD:\n{first}");
    for (i, id) in ids.iter().enumerate().skip(1) {
        let parent = d.inspect(id, "{{.Parent}}");
        let want = d.inspect(&ids[i - 1], "{{.Id}}");
        assert_eq!(parent, want, "step {i}'s parent is the step before");
    }
    let again = build_ok(&d, df, &[], &["-t", "bf-chain"]);
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");

    let rmi = d.ok(&["rmi", "bf-chain"]);
    let deleted = rmi.lines().filter(|l| l.starts_with("Deleted: ")).count();
    assert!(deleted >= 3, "rmi deletes the untagged chain:\n{rmi}");
    for id in &ids[1..] {
        assert_ne!(d.code(&["image", "inspect", id]), 0, "{id} was deleted");
    }
    assert!(
        d.code(&["image", "inspect", "busybox"]) == 0,
        "the tagged base stays"
    );
    let rebuilt = build_ok(&d, df, &[], &["-t", "bf-chain"]);
    assert!(!rebuilt.contains("Using cache"), "{rebuilt}");
    assert!(rebuilt.contains("Running in"), "{rebuilt}");
    // As dockerd (rm=true): the RUN container goes before the step's image is printed.
    let run = rebuilt
        .lines()
        .find_map(|l| l.strip_prefix(" ---> Running in "))
        .unwrap();
    let removed = format!("Removing intermediate container {run}\n ---> ");
    assert!(rebuilt.contains(&removed), "{rebuilt}");
    assert_eq!(d.ok(&["run", "--rm", "bf-chain"]), "ran");

    // `image prune` removes dangling images only: the chain under a tagged image stays
    // cached (dockerd skips untagged images with children).
    d.ok(&["image", "prune", "-f"]);
    let cached = build_ok(&d, df, &[], &["-t", "bf-chain"]);
    assert_eq!(cached.matches("Using cache").count(), 3, "{cached}");
    d.ok(&["rmi", "bf-chain"]);
    d.finish();
}

/// `docker images` hides the intermediate images of a build (untagged, with a child) and
/// `images -a` shows them (before: every step was listed as `<none>`).
#[test]
fn images_hides_intermediate_build_images_unless_all() {
    let Some(d) = Daemon::start("images_hides_intermediate_build_images_unless_all") else {
        return;
    };
    let df = "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\nLABEL x=y\n";
    let out = build_ok(&d, df, &[], &["-t", "bf-list"]);
    let ids = step_ids(&out);
    let listed = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(!listed.contains("<none>"), "{listed}");
    let all = d.ok(&[
        "images",
        "-a",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    for id in &ids[1..ids.len() - 1] {
        assert!(
            all.contains(&format!("<none>:<none> {id}")),
            "{id} in:\n{all}"
        );
        assert!(!listed.contains(id.as_str()), "{id} hidden:\n{listed}");
    }
    // Rebuilt with a change, the old result loses its tag and has no child: dangling, shown.
    let old = d.inspect("bf-list", "{{.Id}}");
    build_ok(&d, &df.replace("x=y", "x=z"), &[], &["-t", "bf-list"]);
    let dangling = d.ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert!(dangling.lines().any(|l| l == old), "{dangling}");
    d.ok(&["rmi", old.as_str()]);
    d.ok(&["rmi", "bf-list"]);
    d.finish();
}

fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

/// ADD unpacks local tar archives plain, gzip, bzip2 and xz (dockerd's list; zstd as Docker
/// 23+), into the destination directory; COPY never unpacks, and a compressed file that is
/// not a tar is copied as it is (before: .tar.xz and .tar.bz2 were copied as files).
#[test]
fn add_unpacks_the_archives_dockerd_unpacks() {
    let Some(d) = Daemon::start("add_unpacks_the_archives_dockerd_unpacks") else {
        return;
    };
    let tar = tar_of("inner", b"unpacked\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&tar).unwrap();
    let bz = bz.finish().unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar).unwrap();
    let xz = xz.finish().unwrap();
    let mut text_gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    text_gz.write_all(b"not a tar\n").unwrap();
    let text_gz = text_gz.finish().unwrap();
    let df = "FROM busybox\nADD a.tar /plain/\nADD a.tar.gz /gz/\nADD a.tar.bz2 /bz2/\n\
              ADD a.tar.xz /xz/\nCOPY a.tar.xz /copied/\nADD text.gz /textgz/\n";
    let files: [(&str, &[u8]); 5] = [
        ("a.tar", &tar),
        ("a.tar.gz", &gz),
        ("a.tar.bz2", &bz),
        ("a.tar.xz", &xz),
        ("text.gz", &text_gz),
    ];
    build_ok(&d, df, &files, &["-q", "-t", "bf-add"]);
    let ls = d.ok(&[
        "run",
        "--rm",
        "bf-add",
        "sh",
        "-c",
        "cat /plain/inner /gz/inner /bz2/inner /xz/inner; ls /copied; ls /textgz",
    ]);
    assert_eq!(
        ls.lines().collect::<Vec<_>>(),
        ["unpacked", "unpacked", "unpacked", "unpacked", "a.tar.xz", "text.gz"]
    );
    d.ok(&["rmi", "bf-add"]);
    d.finish();
}

/// Dockerfile edge cases as dockerd's classic builder: `RUN []` runs the image's command,
/// `FROM scratch` alone builds an empty image, `VOLUME ""`, parse errors and a failed RUN in
/// dockerd's words (the docker CLI exits with the RUN's code, as it does against dockerd),
/// the unconsumed `--build-arg` warning, ARG in history, ONBUILD triggers in a child build.
#[test]
fn dockerfile_edge_cases_and_messages_as_dockerd() {
    let Some(d) = Daemon::start("dockerfile_edge_cases_and_messages_as_dockerd") else {
        return;
    };
    build_ok(&d, "FROM busybox\nRUN []\n", &[], &["-q"]);
    build_ok(&d, "FROM scratch\n", &[], &["-q", "-t", "bf-empty"]);
    assert_eq!(d.inspect("bf-empty", "{{len .RootFS.Layers}}"), "0");

    let cases: [(&str, &str); 3] = [
        (
            "FROM busybox\nVOLUME \"\"\n",
            "VOLUME specified can not be an empty string",
        ),
        (
            "FROM busybox\nFOO bar\n",
            "dockerfile parse error line 2: unknown instruction: FOO",
        ),
        (
            "FROM busybox\nRUN exit 3\n",
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        ),
    ];
    for (df, want) in cases {
        let o = build(&d, df, &[], &[]);
        let (out, err) = text(&o);
        assert!(
            err.contains(want),
            "{df:?}: want {want:?} in:\n{out}\n{err}"
        );
        // The CLI turns dockerd's error code into its exit status (1 when there is none).
        let code = if want.contains("exit 3") { 3 } else { 1 };
        assert_eq!(o.status.code(), Some(code), "{df:?}");
    }
    let o = build(&d, "FROM busybox\nRUN exit 3\n", &[], &[]);
    assert!(!text(&o).1.contains("dockerfile:"), "no berth line prefix");

    let out = build_ok(
        &d,
        "FROM busybox\nARG USED=default\nRUN echo $USED\n",
        &[],
        &[
            "--build-arg",
            "USED=1",
            "--build-arg",
            "UNUSED=2",
            "-t",
            "bf-args",
        ],
    );
    assert!(
        out.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{out}"
    );
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "bf-args",
    ]);
    assert!(
        hist.lines().any(|l| l.contains("ARG USED=default")),
        "{hist}"
    );
    let consumed = build_ok(
        &d,
        "FROM busybox\nARG USED\n",
        &[],
        &["--build-arg", "USED=1"],
    );
    assert!(!consumed.contains("[Warning]"), "{consumed}");

    build_ok(
        &d,
        "FROM busybox\nONBUILD RUN echo triggered > /trigger\n",
        &[],
        &["-q", "-t", "bf-onbuild"],
    );
    let child = build_ok(
        &d,
        "FROM bf-onbuild\nCMD [\"cat\", \"/trigger\"]\n",
        &[],
        &["-t", "bf-child"],
    );
    assert!(child.contains("# Executing 1 build trigger\n"), "{child}");
    assert_eq!(d.ok(&["run", "--rm", "bf-child"]), "triggered");
    assert_eq!(d.inspect("bf-child", "{{.Config.OnBuild}}"), "[]");
    for t in ["bf-empty", "bf-args", "bf-child", "bf-onbuild"] {
        d.ok(&["rmi", t]);
    }
    d.finish();
}

fn berth(d: &Daemon, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = std::process::Command::new(&d.bin)
        .args(["-H", &format!("unix://{}", d.sock().display())])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// `berth build -` reads a Dockerfile alone (no context) or a context tar from stdin, as the
/// docker CLI does (before: a Dockerfile on stdin was sent as the context and refused).
#[test]
fn berth_build_reads_a_dockerfile_or_a_context_tar_from_stdin() {
    let Some(d) = Daemon::start("berth_build_reads_a_dockerfile_or_a_context_tar_from_stdin")
    else {
        return;
    };
    let o = berth(
        &d,
        &["build", "-t", "bf-stdin-df", "-"],
        b"FROM busybox\nRUN echo from-stdin > /m\nCMD [\"cat\", \"/m\"]\n",
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(d.ok(&["run", "--rm", "bf-stdin-df"]), "from-stdin");

    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        (
            "Dockerfile",
            &b"FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"[..],
        ),
        ("f", &b"from-the-tar\n"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let o = berth(
        &d,
        &["build", "-t", "bf-stdin-tar", "-"],
        &b.into_inner().unwrap(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(d.ok(&["run", "--rm", "bf-stdin-tar"]), "from-the-tar");

    let o = berth(&d, &["build", "-f", "-", "-"], b"FROM busybox\n");
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("build context is not an archive"),
        "{:?}",
        text(&o)
    );
    // berth's CLI exits with a failed RUN's code, as the docker CLI does.
    let o = berth(&d, &["build", "-"], b"FROM busybox\nRUN exit 3\n");
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    for t in ["bf-stdin-df", "bf-stdin-tar"] {
        d.ok(&["rmi", t]);
    }
    d.finish();
}

/// `--network` of a build applies to its RUN steps: `container:X` joins X's namespace (before:
/// refused as an unknown network), `none` has no interface but loopback, `host` sees the
/// host's. Each RUN container shows in `docker events` as dockerd's build containers do:
/// create, start, die (with its exit code), destroy.
#[test]
fn build_network_modes_and_run_container_events() {
    let Some(d) = Daemon::start("build_network_modes_and_run_container_events") else {
        return;
    };
    d.ok(&["run", "-d", "--name", "bf-netc", "busybox", "sleep", "300"]);
    let ip = d.inspect("bf-netc", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty());
    // What RUN saw, kept in the image (not read from the streamed output).
    let addrs = |net: &str| {
        let df = "FROM busybox\nRUN ip -4 addr > /addrs 2>&1; ls -l /proc/self/ns/net >> /addrs\nCMD [\"cat\", \"/addrs\"]\n";
        build_ok(
            &d,
            df,
            &[],
            &["-q", "--no-cache", "--network", net, "-t", "bf-net"],
        );
        d.ok(&["run", "--rm", "--network", "none", "bf-net"])
    };
    let joined = addrs("container:bf-netc");
    assert!(joined.contains(&format!("inet {ip}/")), "{joined}");
    let none = addrs("none");
    assert!(
        !none.contains("eth0") && none.contains("inet 127.0.0.1/"),
        "{none}"
    );
    let host = addrs("host");
    assert!(host.contains(&d.bridge), "{host}");
    let err = text(&build(
        &d,
        "FROM busybox\nRUN true\n",
        &[],
        &["--network", "container:bf-missing"],
    ))
    .1;
    assert!(err.contains("No such container: bf-missing"), "{err}");
    d.ok(&["rmi", "bf-net"]);
    d.ok(&["rm", "-f", "bf-netc"]);

    let out = build_ok(&d, "FROM busybox\nRUN exit 0\n", &[], &["--no-cache"]);
    let short = out
        .lines()
        .find_map(|l| l.strip_prefix(" ---> Running in "))
        .expect("a RUN container")
        .trim()
        .to_string();
    let until = {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
    };
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    let mine: Vec<String> = events
        .lines()
        .filter(|l| l.split(' ').nth(1).is_some_and(|id| id.starts_with(&short)))
        .map(|l| l.trim_end().to_string())
        .collect();
    let actions: Vec<&str> = mine.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{events}");
    assert!(
        mine[2].ends_with(" 0"),
        "die carries the exit code: {}",
        mine[2]
    );
    d.finish();
}

/// An image others are built on stays while they do (dockerd's "dependent child images"):
/// `rmi` by name only untags it, by ID is a 409 even with `-f`; once the child is gone it goes.
#[test]
fn an_image_with_children_is_kept_while_they_exist() {
    let Some(d) = Daemon::start("an_image_with_children_is_kept_while_they_exist") else {
        return;
    };
    build_ok(
        &d,
        "FROM busybox\nLABEL layer=base\n",
        &[],
        &["-t", "base:1"],
    );
    build_ok(
        &d,
        "FROM base:1\nLABEL layer=child\n",
        &[],
        &["-t", "child:1"],
    );
    let base = d.inspect("base:1", "{{.Id}}");
    assert_eq!(d.inspect("child:1", "{{.Parent}}"), base);
    // By ID: refused, with or without force (before: deleted, leaving the child's Parent
    // dangling).
    for args in [vec!["rmi", &base[7..19]], vec!["rmi", "-f", &base[7..19]]] {
        let err = d.fails(&args);
        assert!(
            err.contains("(cannot be forced) - image has dependent child images"),
            "{args:?}: {err}"
        );
    }
    // By name: untagged, the image itself stays (hidden as an intermediate image).
    let out = d.ok(&["rmi", "base:1"]);
    assert!(out.starts_with("Untagged: base:1"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    assert_eq!(d.inspect(&base, "{{.Id}}"), base);
    assert!(!d.ok(&["images", "-q", "--no-trunc"]).contains(&base));
    // The child's removal takes the untagged parent chain with it.
    let out = d.ok(&["rmi", "child:1"]);
    assert!(out.contains(&format!("Deleted: {base}")), "{out}");
}
