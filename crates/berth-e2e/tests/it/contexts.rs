//! Contexts shared with the docker CLI: one made by `docker context create` is listed and used
//! by berth (`--context`, `DOCKER_CONTEXT`, `context use`), one made by `berth context create`
//! is used by docker, `-H`/`BERTH_HOST` win over the context, and an unknown context is one
//! line, exit 1. Everything lives in a `DOCKER_CONFIG` under the test's temp dir.

use crate::common;

use std::process::{Command, Output, Stdio};

use common::cli::{Daemon, DOCKER};

#[test]
fn contexts_are_shared_with_the_docker_cli() {
    let Some(d) = Daemon::start("contexts_are_shared_with_the_docker_cli") else {
        return;
    };
    let cfg = d.dir.path().join("ctxcfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let host = format!("unix://{}", d.sock().display());
    let cmd = |bin: &std::path::Path, args: &[&str], env: &[(&str, &str)]| -> Output {
        let mut c = Command::new(bin);
        c.args(args)
            .env("DOCKER_CONFIG", &cfg)
            .env("BERTH_NO_AUTOSTART", "1")
            .env("DOCKER_BUILDKIT", "0");
        for k in [
            "DOCKER_HOST",
            "BERTH_HOST",
            "DOCKER_CONTEXT",
            "BERTH_CONTEXT",
        ] {
            c.env_remove(k);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).output().unwrap()
    };
    let ok = |o: Output, what: &str| -> String {
        assert!(o.status.success(), "{what}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let docker = |args: &[&str]| cmd(std::path::Path::new(DOCKER), args, &[]);
    let berth = |args: &[&str], env: &[(&str, &str)]| cmd(&d.bin, args, env);

    // docker's context, berth's use of it
    let docker_ep = format!("host={host}");
    ok(
        docker(&["context", "create", "dk", "--docker", &docker_ep]),
        "docker context create",
    );
    let ls = ok(berth(&["context", "ls"], &[]), "berth context ls");
    assert!(
        ls.lines()
            .any(|l| l.starts_with("dk ") && l.ends_with(&host)),
        "{ls}"
    );
    let out = ok(
        berth(
            &["--context", "dk", "run", "--rm", "busybox", "echo", "ctx"],
            &[],
        ),
        "--context",
    );
    assert_eq!(out, "ctx\n");
    ok(
        berth(&["ps"], &[("DOCKER_CONTEXT", "dk")]),
        "DOCKER_CONTEXT",
    );
    // without a context there is no daemon at the default socket (autostart off)
    let o = berth(&["ps"], &[]);
    assert!(!o.status.success(), "default socket answered: {o:?}");
    ok(berth(&["context", "use", "dk"], &[]), "berth context use");
    assert_eq!(
        ok(docker(&["context", "show"]), "docker context show"),
        "dk\n"
    );
    ok(berth(&["ps"], &[]), "ps in the current context");
    // -H / BERTH_HOST win over the context
    let o = berth(&["ps"], &[("BERTH_HOST", "unix:///nonexistent/b.sock")]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/b.sock"));

    // berth's context, docker's use of it
    let ep = format!("host={host}");
    ok(
        berth(
            &[
                "context",
                "create",
                "bc",
                "--docker",
                &ep,
                "--description",
                "by berth",
            ],
            &[],
        ),
        "berth context create",
    );
    let out = ok(
        docker(&[
            "--context",
            "bc",
            "run",
            "--rm",
            "busybox",
            "echo",
            "from docker",
        ]),
        "docker --context",
    );
    assert_eq!(out, "from docker\n");
    let out = ok(
        docker(&["context", "inspect", "bc"]),
        "docker context inspect",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["Endpoints"]["docker"]["Host"], host.as_str(), "{out}");
    assert_eq!(v[0]["Metadata"]["Description"], "by berth", "{out}");

    // unknown context: one line, exit 1
    let o = berth(&["--context", "nope", "ps"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim(),
        "context \"nope\" does not exist (`berth context ls` lists them)"
    );

    ok(berth(&["context", "use", "default"], &[]), "use default");
    ok(
        berth(&["context", "rm", "bc", "dk"], &[]),
        "berth context rm",
    );
    assert_eq!(
        ok(docker(&["context", "ls", "-q"]), "docker context ls"),
        "default\n"
    );
    d.finish();
}
