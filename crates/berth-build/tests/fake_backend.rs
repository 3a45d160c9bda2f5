//! The executor against an in-memory backend (no root): stage concurrency and selection,
//! cache keys reacting to build args and context bytes, ONBUILD triggers, `ADD <url>` from a
//! server on 127.0.0.1 (naming, checksums, errors, content-keyed cache).

#[path = "support/http.rs"]
mod http;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_build::{
    build, BuildBackend, BuildError, BuildRequest, CopyFrom, CopyRequest, Download, ErrorKind,
    Fetcher, Layer, MountSource, NamedContext, RunRequest, RunResult, SecretValue, Sink, State,
};
use berth_oci::{media_type, Descriptor, Digest, ImageConfig};

#[derive(Default)]
struct Fake {
    cache: Mutex<HashMap<String, State>>,
    runs: Mutex<Vec<String>>,
    active: AtomicUsize,
    max_active: AtomicUsize,
    base_onbuild: Vec<String>,
    /// Where `ADD <url>` downloads go (None: the trait's default refusal).
    downloads: Option<std::path::PathBuf>,
    /// What COPY/ADD was given: (name, url, mode, mtime, bytes) per source file.
    copied: Mutex<Vec<Copied>>,
    /// The state the last `commit` was given (the built image).
    committed: Mutex<Option<State>>,
    /// Every RUN request, in order.
    requests: Mutex<Vec<RunRequest>>,
    /// Every COPY/ADD request, in order.
    copy_requests: Mutex<Vec<CopyRequest>>,
}

type Copied = (String, Option<String>, u32, Option<i64>, Vec<u8>);

fn layer(seed: &str) -> Layer {
    let d = Digest::of(seed.as_bytes());
    Layer {
        descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, d.clone(), 1),
        diff_id: d,
    }
}

#[async_trait::async_trait]
impl BuildBackend for Fake {
    async fn resolve_image(&self, name: &str, _pull: bool) -> Result<State, BuildError> {
        let mut config = ImageConfig::default();
        config.config.on_build = (!self.base_onbuild.is_empty()).then(|| self.base_onbuild.clone());
        config.rootfs.diff_ids.push(Digest::of(name.as_bytes()));
        Ok(State {
            config,
            layers: vec![layer(name).descriptor],
            rootfs: Some(Digest::of(name.as_bytes())),
        })
    }
    async fn run(&self, p: &State, r: RunRequest, _s: Sink) -> Result<RunResult, BuildError> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_active.fetch_max(now, Ordering::SeqCst);
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
        let cmd = r.args.last().cloned().unwrap_or_default();
        self.runs.lock().unwrap().push(cmd.clone());
        self.requests.lock().unwrap().push(r.clone());
        Ok(RunResult {
            exit_code: 0,
            layer: Some(layer(&format!("{}{cmd}{:?}", p.id(), r.env))),
        })
    }
    async fn copy(&self, p: &State, r: CopyRequest) -> Result<Option<Layer>, BuildError> {
        self.copy_requests.lock().unwrap().push(r.clone());
        if let CopyFrom::Context(sources) = &r.from {
            for s in sources {
                let e = &s.entries[0];
                let bytes = std::fs::read(&e.host).unwrap_or_default();
                self.copied.lock().unwrap().push((
                    s.name.clone(),
                    s.url.clone(),
                    e.mode,
                    e.mtime,
                    bytes,
                ));
            }
        }
        Ok(Some(layer(&format!("{}{r:?}", p.id()))))
    }
    async fn fetch(&self, url: &str) -> Result<Download, BuildError> {
        let dir = self.downloads.as_ref().expect("downloads dir");
        Fetcher::new(&berth_http_reqwest::ReqwestConnector)?
            .download(url, dir)
            .await
    }
    async fn mkdir(&self, _p: &State, _d: String, _u: String) -> Result<Option<Layer>, BuildError> {
        Ok(None)
    }
    async fn register(&self, s: &State) -> Result<Digest, BuildError> {
        Ok(s.id())
    }
    async fn commit(&self, s: &State, _t: &[String]) -> Result<Digest, BuildError> {
        *self.committed.lock().unwrap() = Some(s.clone());
        Ok(s.id())
    }
    async fn cache_get(&self, k: &str) -> Result<Option<State>, BuildError> {
        Ok(self.cache.lock().unwrap().get(k).cloned())
    }
    async fn cache_put(&self, k: &str, s: &State) -> Result<(), BuildError> {
        self.cache.lock().unwrap().insert(k.to_string(), s.clone());
        Ok(())
    }
}

fn req(df: &str, ctx: &std::path::Path, args: &[(&str, &str)]) -> BuildRequest {
    BuildRequest {
        dockerfile: df.into(),
        context: ctx.to_path_buf(),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn sink() -> Sink {
    Arc::new(|_| {})
}

#[tokio::test]
async fn independent_stages_run_concurrently_and_unneeded_ones_are_skipped() {
    let ctx = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let df = "FROM a AS one\nRUN one\nFROM b AS two\nRUN two\nFROM c AS unused\nRUN unused\n\
              FROM d\nCOPY --from=one /x /x\nCOPY --from=two /y /y\n";
    build(fake.clone(), req(df, ctx.path(), &[]), sink())
        .await
        .unwrap();
    let mut runs = fake.runs.lock().unwrap().clone();
    runs.sort();
    assert_eq!(runs, ["one", "two"]);
    assert_eq!(
        fake.max_active.load(Ordering::SeqCst),
        2,
        "stages one and two overlapped"
    );
}

#[tokio::test]
async fn build_args_and_context_bytes_drive_the_cache() {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("f"), "1").unwrap();
    let fake = Arc::new(Fake::default());
    let df = "FROM base\nRUN early\nARG V\nRUN uses-arg\nCOPY f /f\nRUN last\n";
    let o1 = build(fake.clone(), req(df, ctx.path(), &[("V", "1")]), sink())
        .await
        .unwrap();
    // ARG is a step (an image with its history entry, as the classic builder's).
    assert_eq!((o1.steps_run, o1.steps_cached), (5, 0));
    let o2 = build(fake.clone(), req(df, ctx.path(), &[("V", "2")]), sink())
        .await
        .unwrap();
    assert_eq!(
        (o2.steps_run, o2.steps_cached),
        (4, 1),
        "the ARG with its new value and the steps after it rerun"
    );
    let o3 = build(fake.clone(), req(df, ctx.path(), &[("V", "2")]), sink())
        .await
        .unwrap();
    assert_eq!(
        (o3.steps_run, o3.image_id.clone()),
        (0, o2.image_id.clone())
    );
    std::fs::write(ctx.path().join("f"), "2").unwrap();
    let o4 = build(fake.clone(), req(df, ctx.path(), &[("V", "2")]), sink())
        .await
        .unwrap();
    assert_eq!(
        (o4.steps_run, o4.steps_cached),
        (2, 3),
        "COPY and what follows rerun"
    );
    // RUN sees the ARG in its environment.
    let runs = fake.runs.lock().unwrap().clone();
    assert_eq!(runs.iter().filter(|r| *r == "uses-arg").count(), 2);
}

#[tokio::test]
async fn onbuild_triggers_of_the_base_run_first() {
    let ctx = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake {
        base_onbuild: vec!["RUN trigger".into(), "ENV FROM_TRIGGER=1".into()],
        ..Default::default()
    });
    let (tx, log) = {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let s: Sink = Arc::new(move |e| l.lock().unwrap().push(format!("{e:?}")));
        (s, log)
    };
    let mut r = req("FROM base\nRUN mine\n", ctx.path(), &[]);
    r.tags = vec!["x".into()];
    let out = build(fake.clone(), r, tx).await.unwrap();
    assert_eq!(*fake.runs.lock().unwrap(), ["trigger", "mine"]);
    assert_eq!(out.steps_run, 3);
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("build trigger")));
    let e = build(
        fake.clone(),
        req("FROM base\nRUN <<EOF\n", ctx.path(), &[]),
        sink(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[tokio::test]
async fn add_url_downloads_names_checks_and_keys_the_cache_by_content() {
    let ctx = tempfile::tempdir().unwrap();
    let dl = tempfile::tempdir().unwrap();
    let srv = http::Server::start();
    let lm = "Tue, 15 Nov 1994 08:12:31 GMT";
    srv.file("/pkg/tool.tar", b"v1 bytes", Some(lm));
    let fake = Arc::new(Fake {
        downloads: Some(dl.path().to_path_buf()),
        ..Default::default()
    });
    let url = srv.url("/pkg/tool.tar");
    let df = format!("FROM base\nADD {url} /opt/\nRUN after\n");
    let o1 = build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap();
    assert_eq!((o1.steps_run, o1.steps_cached), (2, 0));
    {
        let c = fake.copied.lock().unwrap();
        assert_eq!(c.len(), 1);
        let (name, from, mode, mtime, bytes) = &c[0];
        assert_eq!(name, "tool.tar", "named after the URL path");
        assert_eq!(from.as_deref(), Some(url.as_str()));
        assert_eq!((*mode, *mtime), (0o600, Some(784887151)));
        assert_eq!(bytes, b"v1 bytes");
    }
    // The step re-downloads to compare content: same bytes, cache hit, nothing copied.
    let o2 = build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap();
    assert_eq!(
        (o2.steps_run, o2.image_id.clone()),
        (0, o1.image_id.clone())
    );
    assert_eq!(srv.hits("/pkg/tool.tar"), 2);
    assert_eq!(fake.copied.lock().unwrap().len(), 1);
    // New bytes behind the same URL: the ADD and what follows run again.
    srv.file("/pkg/tool.tar", b"v2 bytes", None);
    let o3 = build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap();
    assert_eq!((o3.steps_run, o3.steps_cached), (2, 0));
    assert_eq!(fake.copied.lock().unwrap()[1].4, b"v2 bytes");
    assert_eq!(
        std::fs::read_dir(dl.path()).unwrap().count(),
        0,
        "downloads are removed after their step"
    );

    // --checksum: a match builds; a mismatch names the URL and both digests, copies nothing.
    let good = Digest::of(b"v2 bytes");
    let df = format!("FROM base\nADD --checksum={good} {url} /opt/x\n");
    build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap();
    let bad = Digest::of(b"something else");
    let df = format!("FROM base\nADD --checksum={bad} {url} /opt/x\n");
    let before = fake.copied.lock().unwrap().len();
    let e = build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("dockerfile:2: "), "{m}");
    assert!(
        m.contains(&url) && m.contains(&bad.to_string()) && m.contains(&good.to_string()),
        "{m}"
    );
    assert_eq!(fake.copied.lock().unwrap().len(), before, "nothing added");

    // HTTP errors name the URL and the status, at the ADD line.
    let missing = srv.url("/nope.txt");
    let df = format!("FROM base\nENV A=1\nADD {missing} /x\n");
    let e = build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("dockerfile:3: "), "{m}");
    assert!(m.contains(&missing) && m.contains("404 Not Found"), "{m}");
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // COPY never downloads, and --checksum needs a URL source.
    std::fs::write(ctx.path().join("f"), "x").unwrap();
    let df = format!("FROM base\nCOPY {url} /x\n");
    let m = build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap_err()
        .to_string();
    assert!(m.contains("use ADD"), "{m}");
    let df = format!("FROM base\nADD --checksum={good} f /x\n");
    let m = build(fake.clone(), req(&df, ctx.path(), &[]), sink())
        .await
        .unwrap_err()
        .to_string();
    assert!(m.contains("--checksum"), "{m}");
}

#[tokio::test]
async fn cache_from_limits_reuse_to_the_named_images() {
    let ctx = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let df = "FROM base\nENV A=1\nRUN one\nRUN two\n";
    let o1 = build(fake.clone(), req(df, ctx.path(), &[]), sink())
        .await
        .unwrap();
    assert_eq!(o1.steps_cached, 0);
    let mut r = req(df, ctx.path(), &[]);
    r.cache_from = Some(vec![]);
    let o2 = build(fake.clone(), r, sink()).await.unwrap();
    assert_eq!(
        (o2.steps_cached, o2.steps_run),
        (0, 3),
        "--cache-from naming no existing image trusts nothing"
    );
    // The image o2 built, as a cache source: its layer chain is the longest cached one.
    let chain = fake
        .cache
        .lock()
        .unwrap()
        .values()
        .map(|s| s.config.rootfs.diff_ids.clone())
        .max_by_key(|c| c.len())
        .unwrap();
    let mut r = req(df, ctx.path(), &[]);
    r.cache_from = Some(vec![chain]);
    let o3 = build(fake.clone(), r, sink()).await.unwrap();
    assert_eq!((o3.steps_cached, o3.steps_run), (3, 0));
    assert_eq!(o3.image_id, o2.image_id);
}

/// The built image keeps the config of the container its last step ran in (dockerd's
/// `ContainerConfig`, whose `Volumes` docker-compose 1.29 reads): a RUN's argv, or moby's
/// `#(nop) ` command for a step that ran nothing.
#[tokio::test]
async fn the_image_records_its_last_steps_container_config() {
    let ctx = tempfile::tempdir().unwrap();
    for (df, cmd) in [
        (
            "FROM a\nRUN echo hi\nVOLUME /data\n",
            vec!["/bin/sh", "-c", "#(nop) ", "VOLUME [\"/data\"]"],
        ),
        (
            "FROM a\nVOLUME /data\nENTRYPOINT [\"e\"]\nRUN touch /x\n",
            vec!["/bin/sh", "-c", "touch /x"],
        ),
    ] {
        let fake = Arc::new(Fake::default());
        build(fake.clone(), req(df, ctx.path(), &[]), sink())
            .await
            .unwrap();
        let s = fake.committed.lock().unwrap().clone().unwrap();
        let cc = &s.config.extra["container_config"];
        assert_eq!(cc["Cmd"], serde_json::json!(cmd), "{df}");
        assert_eq!(cc["Volumes"], serde_json::json!({"/data": {}}), "{df}");
        assert!(cc.get("Entrypoint").is_none(), "{df}: {cc}");
    }
}

#[tokio::test]
async fn secret_mounts_as_buildkit_reads_them_never_in_the_cache_key_or_debug() {
    let ctx = tempfile::tempdir().unwrap();
    let df = "FROM base\n\
        RUN --mount=type=secret,id=tok cat /run/secrets/tok\n\
        RUN --mount=type=secret,id=api,env=API_KEY env\n\
        RUN --mount=type=secret,target=/etc/app.key,mode=0440,uid=1 cat /etc/app.key\n\
        RUN --mount=type=secret,id=absent,target=/x optional\n";
    let with = |tok: &str| {
        let mut r = req(df, ctx.path(), &[]);
        r.secrets = [("tok", tok), ("api", "k3y"), ("app.key", "pem")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), SecretValue(v.as_bytes().to_vec())))
            .collect();
        r
    };
    let r = with("t0k");
    let shown = format!("{r:?}");
    assert!(
        !shown.contains("t0k") && shown.contains("<secret, 3 bytes>"),
        "{shown}"
    );
    let fake = Arc::new(Fake::default());
    let o1 = build(fake.clone(), r, sink()).await.unwrap();
    let runs = fake.requests.lock().unwrap().clone();
    let secret = |r: &RunRequest| -> Vec<(String, Vec<u8>, u32, u32)> {
        r.mounts
            .iter()
            .filter_map(|m| match &m.source {
                MountSource::Secret {
                    data, mode, uid, ..
                } => {
                    assert!(m.readonly);
                    Some((m.target.clone(), data.0.clone(), *mode, *uid))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        secret(&runs[0]),
        [("/run/secrets/tok".into(), b"t0k".to_vec(), 0o400, 0)]
    );
    // env= only: an environment variable of that RUN, no file.
    assert!(secret(&runs[1]).is_empty());
    assert!(runs[1].env.contains(&"API_KEY=k3y".to_string()));
    assert!(!runs[0].env.iter().any(|e| e.starts_with("API_KEY")));
    assert_eq!(
        secret(&runs[2]),
        [("/etc/app.key".into(), b"pem".to_vec(), 0o440, 1)]
    );
    // A missing optional secret: no mount, the step still runs.
    assert!(secret(&runs[3]).is_empty());
    // A secret's value is not part of the cache key (as BuildKit): a new value reuses steps.
    let o2 = build(fake.clone(), with("other"), sink()).await.unwrap();
    assert_eq!((o2.steps_run, o2.image_id), (0, o1.image_id));

    let df = "FROM base\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n";
    let e = build(fake.clone(), req(df, ctx.path(), &[]), sink())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("secret nope: not found"), "{e}");
}

#[tokio::test]
async fn named_contexts_stand_for_images_dirs_and_stages() {
    let ctx = tempfile::tempdir().unwrap();
    let named_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        named_dir.path().join("hello.txt"),
        b"from the named context",
    )
    .unwrap();
    let df = "FROM busybox AS deps\nRUN never\n\
              FROM docker.io/library/app:latest\nCOPY --from=src hello.txt /hello.txt\n\
              COPY --from=deps /x /x\nRUN after\n";
    let request = |dir: &std::path::Path| {
        let mut r = req(df, ctx.path(), &[]);
        r.named_contexts = [
            ("app", NamedContext::Image("registry.test/app:2".into())),
            ("src", NamedContext::Dir(dir.to_path_buf())),
            ("deps", NamedContext::Image("pinned-deps:1".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        r
    };
    let fake = Arc::new(Fake::default());
    let first = build(fake.clone(), request(named_dir.path()), sink())
        .await
        .unwrap();
    // The stage `deps` was replaced: its RUN never ran.
    assert_eq!(*fake.runs.lock().unwrap(), ["after"]);
    // `FROM app` resolved the image the context names.
    let built = fake.committed.lock().unwrap().clone().unwrap();
    assert_eq!(
        built.config.rootfs.diff_ids[0],
        Digest::of(b"registry.test/app:2")
    );
    // The directory's file was read for the named context's layer.
    let read_named_file = fake.copy_requests.lock().unwrap().iter().any(|r| {
        matches!(&r.from, CopyFrom::Context(sources) if sources.iter().flat_map(|s| &s.entries)
            .any(|e| e.host == named_dir.path().join("hello.txt")))
    });
    assert!(read_named_file);
    // The same files: every step cached; other files: a different image.
    let again = build(fake.clone(), request(named_dir.path()), sink())
        .await
        .unwrap();
    assert_eq!(again.image_id, first.image_id);
    assert_eq!(again.steps_run, 0);
    std::fs::write(named_dir.path().join("hello.txt"), b"changed").unwrap();
    let changed = build(fake.clone(), request(named_dir.path()), sink())
        .await
        .unwrap();
    assert_ne!(changed.image_id, first.image_id);
    // Without the contexts, `--from=src` is an image the backend is asked for.
    let plain = build(fake.clone(), req(df, ctx.path(), &[]), sink()).await;
    assert!(plain.is_ok());
    assert!(fake.runs.lock().unwrap().contains(&"never".to_string()));
}

#[tokio::test]
async fn ssh_mounts_reach_the_forwarded_agents_as_buildkit_places_them() {
    let ctx = tempfile::tempdir().unwrap();
    let df = "FROM base\n\
        RUN --mount=type=ssh --mount=type=ssh,id=deploy,target=/agent,mode=0660,uid=7 one\n\
        RUN --mount=type=ssh,id=absent two\n";
    let mut r = req(df, ctx.path(), &[]);
    r.ssh = ["default".to_string(), "deploy".into()].into();
    let fake = Arc::new(Fake::default());
    build(fake.clone(), r, sink()).await.unwrap();
    let runs = fake.requests.lock().unwrap().clone();
    let ssh = |r: &RunRequest| -> Vec<(String, String, u32, u32)> {
        r.mounts
            .iter()
            .filter_map(|m| match &m.source {
                MountSource::Ssh { id, mode, uid, .. } => {
                    Some((m.target.clone(), id.clone(), *mode, *uid))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        ssh(&runs[0]),
        [
            (
                "/run/buildkit/ssh_agent.0".into(),
                "default".into(),
                0o600,
                0
            ),
            ("/agent".into(), "deploy".into(), 0o660, 7)
        ]
    );
    // SSH_AUTH_SOCK names the first agent socket.
    assert!(runs[0]
        .env
        .contains(&"SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".to_string()));
    // An agent the client does not forward, not required: no mount, no variable.
    assert!(ssh(&runs[1]).is_empty());
    assert!(!runs[1].env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK")));

    let df = "FROM base\nRUN --mount=type=ssh,required=true three\n";
    let e = build(fake.clone(), req(df, ctx.path(), &[]), sink())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no SSH agent \"default\""), "{e}");
}
