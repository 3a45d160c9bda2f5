//! Contexts shared with the docker CLI: one made by `docker context create` is listed and used
//! by berth (`--context`, `DOCKER_CONTEXT`, `context use`), one made by `berth context create`
//! is used by docker, compose and kube follow the current context, `-H`/`BERTH_HOST` win over
//! the context, and an unknown context is one
//! line, exit 1. TLS contexts (ca/cert/key) reach a `--tlsverify` daemon, and contexts move
//! between the two CLIs through `export`/`import`. Everything lives in a `DOCKER_CONFIG` under
//! the test's temp dir.

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
            .any(|l| l.starts_with("dk ") && l.trim_end().ends_with(&host)),
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
    // compose and kube go through the same selection: the context's daemon runs the project
    let proj = d.dir.path().join("ctxproj");
    std::fs::create_dir_all(&proj).unwrap();
    let file = proj.join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  web:\n    image: busybox\n    command: sleep 300\n    init: true\n",
    )
    .unwrap();
    let f = file.display().to_string();
    ok(
        berth(&["compose", "-f", &f, "-p", "ctxproj", "up", "-d"], &[]),
        "compose up in the current context",
    );
    let names = ok(
        berth(&["ps", "--format", "{{.Names}}"], &[]),
        "ps after compose up",
    );
    let web = names
        .lines()
        .find(|n| n.starts_with("ctxproj"))
        .unwrap_or_else(|| panic!("compose made no container here: {names}"))
        .to_string();
    let yaml = ok(berth(&["kube", "generate", &web], &[]), "kube generate");
    assert!(yaml.contains("kind: Pod"), "{yaml}");
    ok(
        berth(&["compose", "-f", &f, "-p", "ctxproj", "down"], &[]),
        "compose down",
    );
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

#[test]
fn contexts_carry_tls_and_move_between_the_clis() {
    let test = "contexts_carry_tls_and_move_between_the_clis";
    let Some((d, certs, host)) = crate::tls::tlsverify_daemon(test) else {
        return;
    };
    let c = certs.path();
    let s = crate::tls::s;
    let cfg = d.dir.path().join("ctx-tls");
    std::fs::create_dir_all(&cfg).unwrap();
    let run = |bin: &std::path::Path, args: &[&str]| -> Output {
        let a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
        crate::tls::client(bin, &cfg, &a, &[])
    };
    let ok = |o: Output, what: &str| -> String {
        assert!(o.status.success(), "{what}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let docker = std::path::Path::new(DOCKER);
    let berth = d.bin.clone();
    fn with_ctx(name: &str) -> [&str; 5] {
        [
            "--context",
            name,
            "version",
            "--format",
            "{{.Server.Version}}",
        ]
    }
    let tls_ep = format!(
        "host={host},ca={},cert={},key={}",
        s(&c.join("ca.pem")),
        s(&c.join("client-cert.pem")),
        s(&c.join("client-key.pem"))
    );

    // docker's TLS context is used by berth: CA checked, client certificate presented.
    ok(
        run(docker, &["context", "create", "dtls", "--docker", &tls_ep]),
        "docker context create with TLS",
    );
    let v = ok(run(&berth, &with_ctx("dtls")), "berth --context dtls");
    assert!(!v.trim().is_empty());
    // berth describes it as docker does.
    let fmt = [
        "--format",
        "{{json .TLSMaterial}} {{.Endpoints.docker.SkipTLSVerify}}",
    ];
    let mut args = vec!["context", "inspect", "dtls"];
    args.extend(fmt);
    assert_eq!(
        ok(run(&berth, &args), "berth context inspect"),
        ok(run(docker, &args), "docker context inspect")
    );

    // berth's TLS context, exported by berth, imported and used by docker.
    let no_tls = format!("host={host}");
    ok(
        run(&berth, &["context", "create", "btls", "--docker", &no_tls]),
        "berth context create",
    );
    let o = run(&berth, &with_ctx("btls"));
    assert!(
        !o.status.success(),
        "plain HTTP to a TLS daemon worked: {o:?}"
    );
    ok(
        run(
            &berth,
            &[
                "context",
                "update",
                "btls",
                "--docker",
                &tls_ep,
                "--description",
                "tls now",
            ],
        ),
        "berth context update",
    );
    ok(run(&berth, &with_ctx("btls")), "berth after update");
    let out = d.dir.path().join("btls.dockercontext");
    ok(
        run(&berth, &["context", "export", "btls", &s(&out)]),
        "berth context export",
    );
    ok(
        run(docker, &["context", "import", "from-berth", &s(&out)]),
        "docker context import",
    );
    ok(
        run(docker, &with_ctx("from-berth")),
        "docker --context from-berth",
    );

    // docker's export, imported by berth (through stdin).
    let dout = d.dir.path().join("dtls.tar");
    ok(
        run(docker, &["context", "export", "dtls", &s(&dout)]),
        "docker context export",
    );
    let o = Command::new(&berth)
        .args(["context", "import", "from-docker", "-"])
        .env("DOCKER_CONFIG", &cfg)
        .stdin(std::fs::File::open(&dout).unwrap())
        .output()
        .unwrap();
    ok(o, "berth context import -");
    ok(
        run(&berth, &with_ctx("from-docker")),
        "berth --context from-docker",
    );
    let desc = ok(
        run(
            &berth,
            &["context", "ls", "--format", "{{.Name}}={{.Description}}"],
        ),
        "ls --format",
    );
    assert!(desc.lines().any(|l| l == "btls=tls now"), "{desc}");

    // -H and --context together: docker's refusal, one line.
    let o = run(&berth, &["-H", &host, "--context", "dtls", "ps"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "conflicting options: either specify --host or --context, not both"
    );
    // A hostile archive: refused in one line, nothing imported.
    let bad = d.dir.path().join("bad.tar");
    std::fs::write(&bad, b"not a tar").unwrap();
    let o = run(&berth, &["context", "import", "bad", &s(&bad)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(!run(&berth, &["context", "inspect", "bad"]).status.success());

    ok(run(&berth, &["context", "use", "from-docker"]), "use");
    assert_eq!(
        ok(run(&berth, &["context", "show"]), "show"),
        "from-docker\n"
    );
    assert_eq!(
        ok(run(docker, &["context", "show"]), "docker show"),
        "from-docker\n"
    );
    d.finish();
}
