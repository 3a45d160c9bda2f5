//! `berth kube` (issue 17): a hand-written Pod + Deployment + Service + ConfigMap file played on
//! berth (two containers talking over localhost in one pod, an init container, a Service port
//! fetched from the host), `kube down` leaving nothing; YAML generated from a container, a
//! played pod and a Compose project validates against the Kubernetes 1.30 schemas
//! (`kubernetes-validate`) and plays again on berth (round trip).

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{free_port, Daemon};

/// berth against the test daemon, in `dir` (a Compose project's) when given.
fn berth_at(d: &Daemon, dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(common::cli::berth_bin().expect("the berth binary is built"));
    c.arg("-H")
        .arg(format!("unix://{}", d.sock().display()))
        .arg("--no-autostart")
        .args(args);
    if let Some(dir) = dir {
        c.current_dir(dir);
    }
    c.output().unwrap()
}

fn berth(d: &Daemon, args: &[&str]) -> Output {
    berth_at(d, None, args)
}

/// berth's stdout; fails the test when berth fails.
fn berth_in(d: &Daemon, dir: Option<&Path>, args: &[&str]) -> String {
    let o = berth_at(d, dir, args);
    assert!(
        o.status.success(),
        "berth {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn berth_ok(d: &Daemon, args: &[&str]) -> String {
    berth_in(d, None, args)
}

fn get(port: u16) -> String {
    get_path(port, "/")
}

fn get_path(port: u16, path: &str) -> String {
    let o = common::cli::sh(
        "wget",
        &["-qO-", "-T", "5", &format!("http://127.0.0.1:{port}{path}")],
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The page at `port` once it serves one (up to 5 s).
fn page(port: u16) -> String {
    page_at(port, "/")
}

/// The page at `port` and `path` once it serves one (up to 5 s).
fn page_at(port: u16, path: &str) -> String {
    let mut page = String::new();
    for _ in 0..50 {
        page = get_path(port, path);
        if !page.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    page
}

/// The project network `kube play` uses, made beforehand on the harness's own subnet and bridge
/// (so parallel test daemons never pick the same addresses).
fn kube_network(d: &mut Daemon) {
    let bridge = format!("bk{}k", d.tag);
    d.user_bridges.push(bridge.clone());
    let subnet = d.subnet_n(2);
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        "berth-kube",
    ]);
}

/// A test daemon with the `kube play` network made (None: the test is skipped).
fn kube_daemon(t: &str) -> Option<Daemon> {
    let mut d = Daemon::start(t)?;
    kube_network(&mut d);
    Some(d)
}

fn validate(file: &Path) {
    let o = Command::new("python3")
        .args(["-m", "kubernetes_validate", "-k", "1.30.0", "--strict"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubernetes-validate {}: {}{}\n{}",
        file.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(file).unwrap()
    );
}

/// A YAML stream's documents, read by PyYAML (which kubernetes-validate brings).
fn yaml_docs(file: &Path) -> Vec<serde_json::Value> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn ids(d: &Daemon) -> Vec<String> {
    d.ok(&["ps", "-aq"])
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn kube_play_pod_deployment_service_then_down() {
    let t = "kube_play_pod_deployment_service_then_down";
    let Some(d) = kube_daemon(t) else {
        return;
    };
    let port = free_port();
    let file = d.dir.path().join("app.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{GREETING: hello from a configmap}}
---
apiVersion: v1
kind: Pod
metadata:
  name: duo
  labels: {{app: duo}}
spec:
  initContainers:
    - name: prep
      image: busybox
      command: [sh, -c, 'echo "$GREETING" > /www/index.html']
      envFrom: [{{configMapRef: {{name: settings}}}}]
      volumeMounts: [{{name: www, mountPath: /www}}]
  containers:
    - name: server
      image: busybox
      command: [httpd]
      args: ["-f", "-p", "8080", "-h", "/www"]
      ports: [{{containerPort: 8080, name: http}}]
      volumeMounts: [{{name: www, mountPath: /www}}]
    - name: client
      image: busybox
      command: [sh, -c]
      args: ["until wget -qO /tmp/got http://localhost:8080/; do sleep 0.2; done; sleep 300"]
  volumes:
    - {{name: www, emptyDir: {{}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: c
          image: busybox
          args: [sleep, "300"]
---
apiVersion: v1
kind: Service
metadata: {{name: duo}}
spec:
  selector: {{app: duo}}
  ports: [{{port: {port}, targetPort: http}}]
"#
        ),
    )
    .unwrap();
    berth_ok(&d, &["kube", "play", file.to_str().unwrap()]);
    // The Service's port, from the host.
    assert_eq!(page(port), "hello from a configmap\n");
    // Two containers of one pod talk over localhost.
    let mut got = String::new();
    for _ in 0..50 {
        let o = d.docker(&["exec", "duo-client", "cat", "/tmp/got"]);
        got = String::from_utf8_lossy(&o.stdout).into_owned();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got, "hello from a configmap\n");
    // The init container ran to completion first; the deployment has its replicas.
    assert_eq!(
        d.inspect("duo-prep", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert_eq!(d.inspect("api-1-c", "{{.State.Running}}"), "true");
    assert_eq!(d.inspect("api-2-c", "{{.State.Running}}"), "true");
    // Kubernetes' command/args: command replaced the entrypoint, args the cmd.
    assert_eq!(
        d.inspect("duo-server", "{{json .Config.Entrypoint}}"),
        r#"["httpd"]"#
    );

    berth_ok(&d, &["kube", "down", file.to_str().unwrap()]);
    assert!(ids(&d).is_empty(), "kube down left containers");
    assert!(
        d.ok(&["volume", "ls", "-q"]).is_empty(),
        "kube down left the emptyDir"
    );
    assert!(
        !d.docker(&["network", "inspect", "berth-kube"])
            .status
            .success(),
        "kube down left the pod network"
    );

    // Bad input: an unsupported field is listed, nothing is made.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: true\n  containers: [{name: c, image: busybox}]\n",
    )
    .unwrap();
    let o = berth(&d, &["kube", "play", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "pod p: unsupported fields: spec.hostPID"
    );
    assert!(ids(&d).is_empty());
    d.finish();
}

#[test]
fn kube_generate_validates_and_plays_again() {
    let t = "kube_generate_validates_and_plays_again";
    if !berth_testutil::require_python_module(t, "kubernetes_validate") {
        return;
    }
    let Some(mut d) = kube_daemon(t) else {
        return;
    };
    let port = free_port();
    let dir = d.dir.path().to_path_buf();
    // A container: published port, volume, healthcheck, limits, user, capabilities.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "-v",
        "webdata:/data",
        "--health-cmd",
        "true",
        "--memory",
        "64m",
        "--cap-drop",
        "NET_RAW",
        "-e",
        "MODE=demo",
        "busybox",
        "sh",
        "-c",
        "echo generated > /data/index.html; exec httpd -f -p 80 -h /data",
    ]);
    let web = dir.join("web.yaml");
    std::fs::write(&web, berth_ok(&d, &["kube", "generate", "web"])).unwrap();
    validate(&web);
    let text = std::fs::read_to_string(&web).unwrap();
    assert!(
        text.contains("kind: Pod") && text.contains("kind: Service"),
        "{text}"
    );
    assert!(text.contains("kind: PersistentVolumeClaim"), "{text}");
    let deploy = dir.join("web-deploy.yaml");
    std::fs::write(
        &deploy,
        berth_ok(&d, &["kube", "generate", "--type", "deployment", "web"]),
    )
    .unwrap();
    validate(&deploy);

    // Round trip: the same app again, from its YAML.
    d.ok(&["rm", "-f", "web"]);
    assert_eq!(get(port), "");
    berth_ok(&d, &["kube", "play", web.to_str().unwrap()]);
    assert_eq!(page(port), "generated\n");
    // A played pod generates too (its ports from the infra), validates and plays again.
    let pod = dir.join("pod.yaml");
    std::fs::write(&pod, berth_ok(&d, &["kube", "generate", "web-pod"])).unwrap();
    validate(&pod);
    let text = std::fs::read_to_string(&pod).unwrap();
    assert!(text.contains("kind: Service"), "{text}");
    berth_ok(&d, &["kube", "down", web.to_str().unwrap()]);
    assert!(ids(&d).is_empty(), "kube down left containers");
    assert_eq!(get(port), "");
    berth_ok(&d, &["kube", "play", pod.to_str().unwrap()]);
    assert_eq!(page(port), "generated\n");
    assert!(d
        .inspect("web-pod-web", "{{json .Config.Env}}")
        .contains("MODE=demo"));
    berth_ok(&d, &["kube", "down", pod.to_str().unwrap()]);
    assert!(ids(&d).is_empty(), "kube down left containers");

    // A Compose project: run by `berth compose`, written as YAML (its env_file a ConfigMap),
    // and played again: the same page on the same port.
    let proj = dir.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let cport = free_port();
    let bridge = format!("bk{}c", d.tag);
    d.user_bridges.push(bridge.clone());
    std::fs::write(
        proj.join("app.env"),
        "GREETING=hello\nWHO=from-the-env-file\n",
    )
    .unwrap();
    std::fs::write(proj.join("token.txt"), "s3cret").unwrap();
    std::fs::write(
        proj.join("compose.yaml"),
        format!(
            r#"services:
  app:
    image: busybox
    command: [sh, -c, 'echo "$$GREETING $$WHO $$(cat /run/secrets/token)" > /tmp/index.html; exec httpd -f -p 80 -h /tmp']
    env_file: [app.env]
    secrets: [token]
    environment: {{WHO: compose}}
    ports: ["127.0.0.1:{cport}:80"]
    volumes: [data:/data]
    deploy: {{resources: {{limits: {{cpus: "0.5", memory: 32M}}}}}}
    healthcheck: {{test: [CMD, "true"], interval: 10s}}
  db:
    image: busybox
    command: [sleep, "300"]
    environment: {{A: "1"}}
    deploy: {{replicas: 2}}
volumes:
  data: {{}}
secrets:
  token: {{file: ./token.txt}}
networks:
  default:
    ipam: {{config: [{{subnet: "{}"}}]}}
    driver_opts: {{com.docker.network.bridge.name: {bridge}}}
"#,
            d.subnet_n(3)
        ),
    )
    .unwrap();
    berth_in(&d, Some(&proj), &["compose", "up", "-d"]);
    let served = page(cport);
    assert_eq!(served, "hello compose s3cret\n");
    berth_in(&d, Some(&proj), &["compose", "down", "-v"]);
    assert!(ids(&d).is_empty(), "compose down left containers");
    let composed = dir.join("compose-k8s.yaml");
    std::fs::write(
        &composed,
        berth_in(&d, Some(&proj), &["kube", "generate", "--compose"]),
    )
    .unwrap();
    validate(&composed);
    let docs = yaml_docs(&composed);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "Deployment").count(),
        2,
        "{kinds:?}"
    );
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the env file as a ConfigMap");
    assert_eq!(cm["metadata"]["name"], "proj-app-env");
    assert_eq!(
        cm["data"],
        serde_json::json!({"GREETING": "hello", "WHO": "from-the-env-file"})
    );
    let app = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "proj-app")
        .unwrap();
    let c = &app["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["envFrom"],
        serde_json::json!([{"configMapRef": {"name": "proj-app-env"}}])
    );
    assert_eq!(
        c["env"],
        serde_json::json!([{"name": "WHO", "value": "compose"}])
    );
    // Its secret: a Secret, mounted by key where Compose put it.
    let secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret")
        .expect("the compose secret as a Secret");
    assert_eq!(secret["metadata"]["name"], "proj-app-secrets");
    assert_eq!(secret["data"]["token"], "czNjcmV0");
    assert_eq!(
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["subPath"] == "token")
            .map(|m| &m["mountPath"]),
        Some(&serde_json::json!("/run/secrets/token"))
    );
    let db = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "proj-db")
        .unwrap();
    assert_eq!(db["spec"]["replicas"], 2);
    // Round trip: the project's YAML runs the same app again.
    berth_ok(&d, &["kube", "play", composed.to_str().unwrap()]);
    assert_eq!(page(cport), served);
    for c in ["proj-db-1-db", "proj-db-2-db", "proj-app-1-app"] {
        assert_eq!(d.inspect(c, "{{.State.Running}}"), "true", "{c}");
    }
    assert_eq!(
        d.inspect("proj-app-1-app", "{{.HostConfig.Memory}}"),
        (32 << 20).to_string()
    );
    berth_ok(&d, &["kube", "down", composed.to_str().unwrap()]);
    assert!(ids(&d).is_empty(), "kube down left containers");
    assert_eq!(get(cport), "");
    // Only the claims' volumes are kept (as a PersistentVolume's data is).
    let mut left: Vec<String> = d
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect();
    left.sort();
    assert_eq!(left, ["proj-data", "webdata"]);
    for v in left {
        d.ok(&["volume", "rm", &v]);
    }
    assert!(
        !d.docker(&["network", "inspect", "berth-kube"])
            .status
            .success(),
        "kube down left the pod network"
    );
    d.finish();
}

/// A pod's containers share its UTS namespace through the infra container: `hostname` in
/// both is the pod's name (not the host's); `run --uts container:X` does the same by hand, and
/// the daemon refuses `--hostname` with it, a missing donor (at create) and a stopped one (at
/// start).
#[test]
fn pod_containers_share_the_pods_hostname() {
    let t = "pod_containers_share_the_pods_hostname";
    let Some(d) = kube_daemon(t) else {
        return;
    };
    let file = d.dir.path().join("uts.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: named}\nspec:\n  containers:\n    - {name: a, image: busybox, args: [sleep, \"300\"]}\n    - {name: b, image: busybox, args: [sleep, \"300\"]}\n",
    )
    .unwrap();
    berth_ok(&d, &["kube", "play", file.to_str().unwrap()]);
    let host = String::from_utf8_lossy(&common::cli::sh("hostname", &[]).stdout)
        .trim()
        .to_string();
    assert_ne!(host, "named");
    for c in ["named-a", "named-b", "named-infra"] {
        assert_eq!(d.ok(&["exec", c, "busybox", "hostname"]), "named", "{c}");
        assert_eq!(
            d.ok(&["exec", c, "busybox", "cat", "/etc/hostname"]),
            "named",
            "{c}"
        );
    }
    assert_eq!(
        d.inspect("named-a", "{{.HostConfig.UTSMode}} {{.Config.Hostname}}"),
        "container:named-infra named"
    );
    // By hand, through berth's own `run --uts`.
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "joiner",
            "--uts",
            "container:named-infra",
            "busybox",
            "sleep",
            "300",
        ],
    );
    assert_eq!(d.ok(&["exec", "joiner", "hostname"]), "named");
    // A joiner's own hostname is refused: the UTS namespace is the donor's.
    let refused = |body: &str, want: &str| {
        let (code, got) = d.api("POST", "/containers/create?name=refused", Some(body));
        assert_eq!(code, 400, "{got}");
        assert!(got.contains(want), "{got}");
    };
    refused(
        r#"{"Image":"busybox","Hostname":"mine","HostConfig":{"UTSMode":"container:named-infra"}}"#,
        "conflicting options: hostname and the UTS mode",
    );
    refused(
        r#"{"Image":"busybox","HostConfig":{"UTSMode":"container:nobody"}}"#,
        "can't join UTS of container nobody: No such container: nobody",
    );
    refused(
        r#"{"Image":"busybox","HostConfig":{"UTSMode":"private"}}"#,
        "invalid UTS mode: private",
    );
    // A stopped donor: the joiner is refused at start.
    d.ok(&["create", "--name", "donor", "busybox", "sleep", "300"]);
    let o = berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "late",
            "--uts",
            "container:donor",
            "busybox",
            "true",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("can't join UTS of container donor") && err.contains("is not running"),
        "{err}"
    );
    for c in ["late", "donor", "joiner"] {
        d.ok(&["rm", "-f", c]);
    }
    berth_ok(&d, &["kube", "down", file.to_str().unwrap()]);
    assert!(ids(&d).is_empty(), "kube down left containers");
    d.finish();
}

/// ConfigMap and Secret volumes: every key as a file with `defaultMode`, items with their own
/// paths and modes, base64 `data` decoded, `subPath` mounting one key, read-only whatever
/// `readOnly` says; a missing non-optional source refuses the play with one line and makes
/// nothing, an optional one is an empty volume; `kube down` removes the volumes.
#[test]
fn kube_play_configmap_and_secret_volumes() {
    let t = "kube_play_configmap_and_secret_volumes";
    let Some(d) = kube_daemon(t) else {
        return;
    };
    let file = d.dir.path().join("vols.yaml");
    let doc = |extra: &str| {
        format!(
            r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: app-config}}
data:
  app.conf: "listen 8080\n"
  level: debug
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
data: {{password: czNjcjN0}}
stringData: {{user: admin}}
---
apiVersion: v1
kind: Pod
metadata: {{name: vols}}
spec:
  containers:
    - name: app
      image: busybox
      args: [sleep, "300"]
      volumeMounts:
        - {{name: config, mountPath: /etc/app}}
        - {{name: secret, mountPath: /run/secrets/app, readOnly: false}}
        - {{name: config, mountPath: /opt/level, subPath: level}}
        - {{name: maybe, mountPath: /maybe}}
  volumes:
    - name: config
      configMap: {{name: app-config, defaultMode: 0440}}
    - name: secret
      secret:
        secretName: creds
        items: [{{key: password, path: db/pass, mode: 0400}}, {{key: user, path: user}}]
    - name: maybe
      {extra}
"#
        )
    };
    // A missing, non-optional ConfigMap: one line, nothing made.
    std::fs::write(&file, doc("configMap: {name: absent}")).unwrap();
    let o = berth(&d, &["kube", "play", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        r#"pod vols: volume "maybe": ConfigMap "absent", which the file does not define (and the volume is not optional)"#
    );
    assert!(ids(&d).is_empty());
    assert!(d.ok(&["volume", "ls", "-q"]).is_empty());
    // Invalid base64 names the key.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\ndata: {token: '%%%'}\n",
    )
    .unwrap();
    let o = berth(&d, &["kube", "play", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("document 1 (Secret bad): data.token: not valid base64"),
        "{err}"
    );

    std::fs::write(&file, doc("secret: {secretName: absent, optional: true}")).unwrap();
    berth_ok(&d, &["kube", "play", file.to_str().unwrap()]);
    let sh = |cmd: &str| d.ok(&["exec", "vols-app", "sh", "-c", cmd]);
    assert_eq!(sh("cat /etc/app/app.conf"), "listen 8080");
    assert_eq!(sh("cat /etc/app/level"), "debug");
    assert_eq!(sh("stat -c '%a %u' /etc/app/app.conf"), "440 0");
    assert_eq!(sh("cat /run/secrets/app/db/pass"), "s3cr3t");
    assert_eq!(sh("stat -c %a /run/secrets/app/db/pass"), "400");
    assert_eq!(sh("cat /run/secrets/app/user"), "admin");
    assert_eq!(sh("stat -c %a /run/secrets/app/user"), "644");
    assert_eq!(sh("ls /run/secrets/app | tr '\\n' ' '"), "db user");
    assert_eq!(sh("cat /opt/level"), "debug");
    assert_eq!(sh("ls -A /maybe | wc -l"), "0");
    // Read-only, even where the mount asked for readOnly: false.
    let o = d.docker(&[
        "exec",
        "vols-app",
        "sh",
        "-c",
        "echo x > /run/secrets/app/user",
    ]);
    assert!(!o.status.success(), "a secret volume was writable");
    // No helper left.
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}}"])
            .lines()
            .filter(|n| n.contains("fill"))
            .count(),
        0
    );

    berth_ok(&d, &["kube", "down", file.to_str().unwrap()]);
    assert!(ids(&d).is_empty(), "kube down left containers");
    assert!(
        d.ok(&["volume", "ls", "-q"]).is_empty(),
        "kube down left the ConfigMap and Secret volumes"
    );
    d.finish();
}

/// Pods by hand: `pod create` with a published port, two `run --pod` containers talking over
/// localhost and reached from the host, `pod ls/inspect/stop/start/rm`, the pod's own options
/// refused on `run --pod`, and `kube generate` of the pod.
#[test]
fn pods_by_hand() {
    let t = "pods_by_hand";
    let Some(d) = kube_daemon(t) else {
        return;
    };
    let port = free_port();
    berth_ok(
        &d,
        &[
            "pod",
            "create",
            "--name",
            "duo",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
        ],
    );
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--init",
            "--pod",
            "duo",
            "--name",
            "server",
            "busybox",
            "sh",
            "-c",
            "echo by hand > /tmp/i; exec httpd -f -p 8080 -h /tmp",
        ],
    );
    berth_ok(
        &d,
        &[
            "run", "-d", "--init", "--pod", "duo", "--name", "client", "busybox", "sleep", "300",
        ],
    );
    // httpd serves /tmp, so the file is /i.
    assert_eq!(page_at(port, "/i"), "by hand\n");
    // Both containers have the pod's hostname (its UTS namespace).
    assert_eq!(d.ok(&["exec", "client", "hostname"]), "duo");
    assert_eq!(d.ok(&["exec", "server", "hostname"]), "duo");
    assert_eq!(
        d.ok(&["exec", "client", "wget", "-qO-", "http://localhost:8080/i"]),
        "by hand"
    );
    let ls = berth_ok(&d, &["pod", "ls"]);
    assert!(
        ls.contains("duo") && ls.contains("running") && ls.contains(" 2 "),
        "{ls}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&berth_ok(&d, &["pod", "inspect", "duo"])).unwrap();
    assert_eq!(inspect[0]["Containers"].as_array().unwrap().len(), 2);
    let o = berth(
        &d,
        &[
            "run",
            "--pod",
            "duo",
            "--network",
            "host",
            "busybox",
            "true",
        ],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--network cannot be used with --pod"));
    let yaml = d.dir.path().join("duo.yaml");
    std::fs::write(&yaml, berth_ok(&d, &["kube", "generate", "duo"])).unwrap();
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        text.contains("name: server") && text.contains("name: client"),
        "{text}"
    );
    berth_ok(&d, &["pod", "stop", "duo"]);
    assert_eq!(d.inspect("server", "{{.State.Running}}"), "false");
    berth_ok(&d, &["pod", "start", "duo"]);
    assert_eq!(d.inspect("client", "{{.State.Running}}"), "true");
    let o = berth(&d, &["pod", "rm", "duo"]);
    assert!(!o.status.success(), "a running pod was removed without -f");
    berth_ok(&d, &["pod", "rm", "-f", "duo"]);
    assert!(ids(&d).is_empty());
    d.ok(&["network", "rm", "berth-kube"]);
    d.finish();
}
