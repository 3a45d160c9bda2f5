//! Real builds (root, busybox from the shared OCI archive) through berth-build and the daemon's
//! store/runtime backend: stages, ARG/ENV/WORKDIR/USER, RUN forms, .dockerignore, COPY
//! ownership/modes/hardlinks, ADD archives, the cache (no-change, one file changed, resume
//! after failure), context escapes, `RUN --mount=from` a stage, and skopeo/umoci reading a
//! saved result.
//!
//! `harness = false`: this binary is also the shim executable (`build shim <dir>`), which must
//! start before any thread exists.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_build::{
    build, BuildBackend, BuildError, BuildOutput, BuildRequest, CopyRequest, Download, Event,
    Layer, RunRequest, RunResult, Sink, State,
};
use berth_daemon::build::backend::{BuildBackendConfig, StoreBuildBackend};
use berth_dockerfile::ignore::Matcher;
use berth_oci::{Digest, Reference};
use berth_store::Store;

mod common;

#[path = "build/add_url.rs"]
mod add_url;
#[path = "../../berth-build/tests/support/http.rs"]
mod http;
#[path = "build/network.rs"]
mod network;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("shim") {
        match berth_runtime::ShimArgs::from_args(args.into_iter().skip(2)) {
            Some(a) => berth_runtime::shim_main(a),
            None => std::process::exit(2),
        }
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let tests: &[(&str, fn())] = &[
        (
            "multi_stage_with_args_env_workdir_user_and_run_forms",
            multi_stage,
        ),
        (
            "context_ignore_chown_chmod_hardlinks_add_tar",
            copy_semantics,
        ),
        (
            "cache_no_change_one_file_changed_and_resume",
            cache_behaviour,
        ),
        ("context_escapes_are_refused", context_escapes),
        ("run_mount_from_a_stage_leaves_no_layer", run_mount_from),
        ("saved_image_is_read_by_skopeo_and_umoci", saved_image_tools),
        ("docker_cli_build_against_the_daemon", docker_cli_build),
        ("add_url_from_a_loopback_server", add_url::add_url),
        (
            "run_steps_get_the_bridge_or_the_host_network",
            network::run_network,
        ),
    ];
    // Before any thread: the in-process daemons use a bridge of their own.
    let bridge = network::BridgeEnv::set();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let mut failed = Vec::new();
    for (name, f) in tests {
        if filter.as_deref().is_some_and(|x| !name.contains(x)) {
            continue;
        }
        eprintln!("test {name} ...");
        if std::panic::catch_unwind(f).is_err() {
            eprintln!("test {name} ... FAILED");
            failed.push(*name);
        } else {
            eprintln!("test {name} ... ok");
        }
    }
    drop(bridge);
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(101);
    }
}

/// Counts what the backend was asked to do.
struct Counting {
    inner: StoreBuildBackend,
    runs: AtomicUsize,
    copies: AtomicUsize,
}

#[async_trait::async_trait]
impl BuildBackend for Counting {
    async fn resolve_image(&self, name: &str, pull: bool) -> Result<State, BuildError> {
        self.inner.resolve_image(name, pull).await
    }
    async fn run(&self, p: &State, r: RunRequest, s: Sink) -> Result<RunResult, BuildError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.inner.run(p, r, s).await
    }
    async fn copy(&self, p: &State, r: CopyRequest) -> Result<Option<Layer>, BuildError> {
        self.copies.fetch_add(1, Ordering::SeqCst);
        self.inner.copy(p, r).await
    }
    async fn mkdir(&self, p: &State, path: String, u: String) -> Result<Option<Layer>, BuildError> {
        self.inner.mkdir(p, path, u).await
    }
    async fn register(&self, s: &State) -> Result<Digest, BuildError> {
        self.inner.register(s).await
    }
    async fn commit(&self, s: &State, t: &[String]) -> Result<Digest, BuildError> {
        self.inner.commit(s, t).await
    }
    async fn cache_get(&self, k: &str) -> Result<Option<State>, BuildError> {
        self.inner.cache_get(k).await
    }
    async fn cache_put(&self, k: &str, s: &State) -> Result<(), BuildError> {
        self.inner.cache_put(k, s).await
    }
    async fn fetch(&self, url: &str) -> Result<Download, BuildError> {
        self.inner.fetch(url).await
    }
}

/// (content, mode, uid, gid, inode, mtime) of a file in an image.
type FileInfo = (String, u32, u32, u32, u64, i64);

struct Env {
    tmp: tempfile::TempDir,
    store: Arc<Store>,
    backend: Arc<Counting>,
    ctx: PathBuf,
}

impl Env {
    fn new(test: &str) -> Option<Env> {
        if !berth_testutil::require_root(test) {
            return None;
        }
        let archive = berth_testutil::image(test, "busybox")?;
        let tmp = tempfile::Builder::new()
            .prefix("berth-build-")
            .tempdir()
            .unwrap();
        let store = Arc::new(Store::open(&tmp.path().join("root")).unwrap());
        let recs =
            berth_store::load_archive(&store, std::fs::File::open(archive).unwrap()).unwrap();
        store
            .tag(&recs[0].id, &Reference::parse("busybox:latest").unwrap())
            .unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        let backend = Arc::new(Counting {
            inner: StoreBuildBackend::new(
                store.clone(),
                BuildBackendConfig {
                    shim_exe: std::env::current_exe().unwrap(),
                    root: store.root().to_path_buf(),
                    puller: None,
                    network: None,
                    extra_hosts: vec![("extra.berth.test".into(), "127.0.0.2".into())],
                    host_resolv: None,
                    events: None,
                    netns_dir: None,
                    http: berth_http_reqwest::ReqwestConnector::shared(),
                    ssh: Default::default(),
                },
            ),
            runs: AtomicUsize::new(0),
            copies: AtomicUsize::new(0),
        });
        Some(Env {
            tmp,
            store,
            backend,
            ctx,
        })
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.ctx.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn build_with(
        &self,
        dockerfile: &str,
        args: &[(&str, &str)],
    ) -> (Result<BuildOutput, BuildError>, String) {
        let ignore = std::fs::read_to_string(self.ctx.join(".dockerignore"))
            .map(|t| Matcher::from_dockerignore(&t).unwrap())
            .unwrap_or_default();
        let req = BuildRequest {
            dockerfile: dockerfile.into(),
            context: self.ctx.clone(),
            ignore,
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            tags: vec!["built:test".into()],
            ..Default::default()
        };
        let log = Arc::new(Mutex::new(String::new()));
        let l2 = log.clone();
        let sink: Sink = Arc::new(move |e: Event| {
            let mut l = l2.lock().unwrap();
            match e {
                Event::Step { index, total, text } => {
                    l.push_str(&format!("Step {index}/{total} : {text}\n"))
                }
                Event::Cached => l.push_str(" ---> Using cache\n"),
                Event::Output { data, .. } => l.push_str(&String::from_utf8_lossy(&data)),
                Event::StepDone { id } => l.push_str(&format!(" ---> {}\n", &id.hex()[..12])),
                _ => {}
            }
        });
        let be: Arc<dyn BuildBackend> = self.backend.clone();
        let res = tokio::runtime::Handle::current().block_on(build(be, req, sink));
        let out = log.lock().unwrap().clone();
        (res, out)
    }

    fn build(&self, dockerfile: &str) -> BuildOutput {
        let (r, log) = self.build_with(dockerfile, &[]);
        match r {
            Ok(o) => o,
            Err(e) => panic!("build failed: {e}\n{log}"),
        }
    }

    /// Read files from an image's filesystem.
    fn read(&self, image: &Digest, paths: &[&str]) -> Vec<Option<FileInfo>> {
        use std::os::unix::fs::MetadataExt;
        let id = format!(
            "t{}",
            &Digest::of(format!("{image}{:?}", std::time::SystemTime::now()).as_bytes()).hex()
                [..16]
        );
        let rw = self.store.create_rw_layer(&id, Some(image)).unwrap();
        struct Rm<'a>(&'a Store, String);
        impl Drop for Rm<'_> {
            fn drop(&mut self) {
                let _ = self.0.remove_rw_layer(&self.1);
            }
        }
        let _rm = Rm(&self.store, id.clone());
        self.store.mount_rw_layer(&id).unwrap();
        paths
            .iter()
            .map(|p| {
                let host = rw.merged.join(p.trim_start_matches('/'));
                let md = std::fs::symlink_metadata(&host).ok()?;
                let content = if md.is_file() {
                    std::fs::read_to_string(&host).unwrap_or_default()
                } else {
                    String::new()
                };
                Some((
                    content,
                    md.mode() & 0o7777,
                    md.uid(),
                    md.gid(),
                    md.ino(),
                    md.mtime(),
                ))
            })
            .collect()
    }
}

/// `RUN --mount=type=bind,from=STAGE`: the step reads the stage's files through a layer the
/// step's task mounts; the mount target leaves no trace in the image and, the build over, no
/// rw layer is left in the store (nor after a step that fails).
fn run_mount_from() {
    let Some(env) = Env::new("run_mount_from_a_stage_leaves_no_layer") else {
        return;
    };
    let df = "FROM busybox AS tools\nRUN mkdir -p /opt && echo from-stage > /opt/tool.txt\n\
              FROM busybox\n\
              RUN --mount=type=bind,from=tools,source=/opt,target=/mnt/tools \
              cat /mnt/tools/tool.txt > /seen.txt && ! touch /mnt/tools/ro 2>/dev/null\n";
    let out = env.build(df);
    let got = env.read(&out.image_id, &["/seen.txt", "/mnt/tools"]);
    assert_eq!(got[0].as_ref().map(|f| f.0.as_str()), Some("from-stage\n"));
    assert!(got[1].is_none(), "the mount target stays out of the layer");
    let rw = env.store.root().join("containers-rw");
    let left = |what: &str| {
        let names: Vec<_> = std::fs::read_dir(&rw)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(names.is_empty(), "{what}: rw layers left: {names:?}");
    };
    left("after the build");
    let failing = "FROM busybox AS tools\nRUN echo x > /x\nFROM busybox\n\
                   RUN --mount=type=bind,from=tools,source=/x,target=/x cat /x && false\n";
    let (r, log) = env.build_with(failing, &[]);
    assert!(r.is_err(), "{log}");
    left("after a failed step");
}

fn multi_stage() {
    let Some(env) = Env::new("multi_stage_with_args_env_workdir_user_and_run_forms") else {
        return;
    };
    let df = r#"ARG BASE=busybox
FROM $BASE AS build
ARG WHO=world
ENV GREETING=hello
WORKDIR /src
RUN echo "$GREETING $WHO" > shell.txt && pwd > pwd.txt
RUN ["sh", "-c", "echo exec > exec.txt"]
RUN grep extra.berth.test /etc/hosts > hosts.txt
RUN <<EOF
echo heredoc > heredoc.txt
id -u > uid.txt
EOF
FROM busybox AS other
RUN echo unused > /unused

FROM busybox
COPY --from=build /src/ /out/
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd
USER app
WORKDIR /home/app/work
RUN id -u > me.txt
ENTRYPOINT ["sh", "-c"]
CMD ["echo hi"]
LABEL stage=final
"#;
    let (res, log) = env.build_with(df, &[("WHO", "berth")]);
    let out = res.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(
        !log.contains("RUN echo unused"),
        "stage not needed for the target was built:\n{log}"
    );
    let files = env.read(
        &out.image_id,
        &[
            "/out/shell.txt",
            "/out/pwd.txt",
            "/out/exec.txt",
            "/out/heredoc.txt",
            "/out/uid.txt",
            "/home/app/work/me.txt",
            "/home/app/work",
            "/out/hosts.txt",
        ],
    );
    let text = |i: usize| files[i].as_ref().map(|f| f.0.clone()).unwrap_or_default();
    assert_eq!(text(0), "hello berth\n");
    assert_eq!(text(1), "/src\n");
    assert_eq!(text(2), "exec\n");
    assert_eq!(text(3), "heredoc\n");
    assert_eq!(text(4), "0\n");
    assert_eq!(text(5), "1234\n");
    assert_eq!(
        text(7),
        "127.0.0.2\textra.berth.test\n",
        "--add-host reaches RUN"
    );
    let wd = files[6].as_ref().unwrap();
    assert_eq!((wd.2, wd.1), (1234, 0o755), "WORKDIR is created for USER");
    let rec = env.store.image(&out.image_id.to_string()).unwrap();
    let c = &rec.config;
    assert_eq!(c.config.user.as_deref(), Some("app"));
    assert_eq!(c.config.working_dir.as_deref(), Some("/home/app/work"));
    assert_eq!(c.config.entrypoint.as_ref().unwrap(), &["sh", "-c"]);
    assert_eq!(c.config.cmd.as_ref().unwrap(), &["echo hi"]);
    assert_eq!(c.config.labels.as_ref().unwrap()["stage"], "final");
    // base (1 layer) + COPY, RUN passwd, WORKDIR, RUN id => 5 layers.
    assert_eq!(c.rootfs.diff_ids.len(), 5);
    assert_eq!(rec.layers.len(), 5);
    let non_empty = c.history.iter().filter(|h| !h.empty_layer).count();
    assert_eq!(non_empty, c.rootfs.diff_ids.len());
    let last: Vec<&str> = c
        .history
        .iter()
        .rev()
        .take(3)
        .map(|h| h.created_by.as_deref().unwrap())
        .collect();
    assert_eq!(
        last,
        [
            "LABEL stage=final",
            "CMD [\"echo hi\"]",
            "ENTRYPOINT [\"sh\",\"-c\"]"
        ]
    );
    assert!(c
        .history
        .iter()
        .any(|h| h.created_by.as_deref() == Some("RUN /bin/sh -c id -u > me.txt # buildkit")));
    // Each layer holds only its step's change; built layers are kept uncompressed (a push
    // compresses them), so the blob is the tar itself.
    assert_eq!(rec.layers[4].media_type, berth_oci::media_type::OCI_LAYER);
    let blob = env.store.read_blob(&rec.layers[4].digest).unwrap();
    let mut names: Vec<String> = tar::Archive::new(&blob[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["home", "home/app", "home/app/work", "home/app/work/me.txt"]
    );
    assert_eq!(env.store.image("built:test").unwrap().id, out.image_id);
    // The parent chain reaches the intermediate image of the last RUN (Docker's `Parent`).
    let parent = rec.parent.clone().expect("built image has a parent");
    let p = env.store.image(&parent.to_string()).unwrap();
    assert_eq!(p.layers, rec.layers);
    assert!(p.repo_tags.is_empty());
    drop(env.tmp);
}

fn copy_semantics() {
    let Some(env) = Env::new("context_ignore_chown_chmod_hardlinks_add_tar") else {
        return;
    };
    env.write(
        ".dockerignore",
        "**/*.log\n!keep.log\nsecret/\nDockerfile\n",
    );
    env.write("app/main.sh", "echo main\n");
    env.write("app/debug.log", "noise");
    env.write("keep.log", "kept");
    env.write("secret/key", "nope");
    env.write("app/hard1", "same inode");
    std::fs::hard_link(env.ctx.join("app/hard1"), env.ctx.join("app/hard2")).unwrap();
    std::os::unix::fs::symlink("main.sh", env.ctx.join("app/link")).unwrap();
    let tar_src = env.tmp.path().join("tarsrc");
    std::fs::create_dir_all(tar_src.join("pkg")).unwrap();
    std::fs::write(tar_src.join("pkg/inner.txt"), "from tar").unwrap();
    let st = Command::new("tar")
        .arg("-czf")
        .arg(env.ctx.join("files.tar.gz"))
        .arg("-C")
        .arg(&tar_src)
        .arg("pkg")
        .status()
        .unwrap();
    assert!(st.success());
    let out = env.build(
        "FROM busybox\nCOPY --chown=1000:1001 --chmod=0640 . /ctx/\nCOPY app/main.sh /bin/\nADD files.tar.gz /x/\nCOPY keep.log /renamed\n",
    );
    let f = env.read(
        &out.image_id,
        &[
            "/ctx/app/main.sh",
            "/ctx/app/debug.log",
            "/ctx/keep.log",
            "/ctx/secret/key",
            "/ctx/app/hard1",
            "/ctx/app/hard2",
            "/x/pkg/inner.txt",
            "/renamed",
            "/ctx/Dockerfile",
            "/bin/main.sh",
            "/ctx/app/link",
        ],
    );
    let main = f[0].as_ref().expect("main.sh copied");
    assert_eq!(
        (main.0.as_str(), main.1, main.2, main.3),
        ("echo main\n", 0o640, 1000, 1001)
    );
    assert!(f[1].is_none(), "**/*.log is ignored");
    assert_eq!(f[2].as_ref().unwrap().0, "kept", "!keep.log re-includes");
    assert!(f[3].is_none(), "secret/ is ignored");
    assert_eq!(
        f[4].as_ref().unwrap().4,
        f[5].as_ref().unwrap().4,
        "hardlinks kept"
    );
    assert_eq!(f[6].as_ref().unwrap().0, "from tar");
    assert_eq!(f[7].as_ref().unwrap().0, "kept");
    assert!(f[8].is_none());
    // /bin exists in busybox: the file goes into it, owned by root.
    let m = f[9].as_ref().unwrap();
    assert_eq!((m.2, m.3), (0, 0));
    assert!(f[10].is_some());
    drop(env.tmp);
}

fn cache_behaviour() {
    let Some(env) = Env::new("cache_no_change_one_file_changed_and_resume") else {
        return;
    };
    env.write("a.txt", "a");
    env.write("b.txt", "b1");
    let df = "FROM busybox\nCOPY a.txt /a.txt\nRUN --mount=type=cache,target=/cache echo one >> /cache/count\nCOPY b.txt /b.txt\nRUN --mount=type=cache,target=/cache echo two >> /cache/count && cat /b.txt > /seen\n";
    let t0 = std::time::Instant::now();
    let first = env.build(df);
    let cold = t0.elapsed();
    assert_eq!(first.steps_cached, 0);
    let runs = env.backend.runs.load(Ordering::SeqCst);
    let copies = env.backend.copies.load(Ordering::SeqCst);
    assert_eq!((runs, copies), (2, 2));

    let t1 = std::time::Instant::now();
    let (again, log) = env.build_with(df, &[]);
    let warm = t1.elapsed();
    let again = again.unwrap();
    assert_eq!(
        again.image_id, first.image_id,
        "a no-change rebuild gives the same image"
    );
    assert_eq!(again.steps_run, 0, "{log}");
    assert_eq!(log.matches("Using cache").count(), 4, "{log}");
    assert_eq!(
        env.backend.runs.load(Ordering::SeqCst),
        2,
        "no container ran"
    );
    assert_eq!(
        env.backend.copies.load(Ordering::SeqCst),
        2,
        "nothing was copied"
    );
    let cache_dir = env.store.root().join("build-cache-mounts");
    let count = || -> String {
        let d = std::fs::read_dir(&cache_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::read_to_string(d.join("count")).unwrap()
    };
    assert_eq!(count(), "one\ntwo\n");

    // An mtime-only change keeps the cache.
    let f = std::fs::File::options()
        .write(true)
        .open(env.ctx.join("b.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    drop(f);
    assert_eq!(env.build(df).steps_run, 0);

    env.write("b.txt", "b2");
    let t2 = std::time::Instant::now();
    let changed = env.build(df);
    let one = t2.elapsed();
    assert_eq!((changed.steps_cached, changed.steps_run), (2, 2));
    assert_eq!(count(), "one\ntwo\ntwo\n");
    assert_eq!(
        env.read(&changed.image_id, &["/seen"])[0]
            .as_ref()
            .unwrap()
            .0,
        "b2"
    );
    eprintln!("  timings: cold {cold:?}, no-change {warm:?}, one-file-changed {one:?}");

    // A failing RUN names its line and keeps the good steps cached.
    let bad = "FROM busybox\nCOPY a.txt /a.txt\nRUN echo good > /good\nRUN false\nRUN echo after\n";
    let (r, _) = env.build_with(bad, &[]);
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        "The command '/bin/sh -c false' returned a non-zero code: 1"
    );
    assert_eq!(e.line(), Some(4));
    let fixed =
        "FROM busybox\nCOPY a.txt /a.txt\nRUN echo good > /good\nRUN true\nRUN echo after\n";
    let runs_before = env.backend.runs.load(Ordering::SeqCst);
    let out = env.build(fixed);
    assert_eq!(
        (out.steps_cached, out.steps_run),
        (2, 2),
        "resumed after the good steps"
    );
    assert_eq!(env.backend.runs.load(Ordering::SeqCst) - runs_before, 2);
    drop(env.tmp);
}

fn context_escapes() {
    let Some(env) = Env::new("context_escapes_are_refused") else {
        return;
    };
    std::fs::write(env.tmp.path().join("outside"), "secret").unwrap();
    std::os::unix::fs::symlink("../outside", env.ctx.join("up")).unwrap();
    let (r, _) = env.build_with("FROM busybox\nCOPY ../outside /x\n", &[]);
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with("dockerfile:2: forbidden path outside the build context"),
        "{e}"
    );
    let (r, _) = env.build_with("FROM busybox\nCOPY up /x\n", &[]);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("points outside the build context"), "{e}");
    let (r, _) = env.build_with("FROM busybox\nCOPY missing /x\n", &[]);
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with("dockerfile:2: ") && e.contains("\"/missing\": not found"),
        "{e}"
    );
    // A symlink inside the image cannot redirect a COPY out of the rootfs.
    env.write("f", "data");
    let out = env.build("FROM busybox\nRUN ln -s /../../../../tmp /escape\nCOPY f /escape/f\n");
    assert_eq!(
        env.read(&out.image_id, &["/tmp/f"])[0].as_ref().unwrap().0,
        "data"
    );
    drop(env.tmp);
}

fn saved_image_tools() {
    if !berth_testutil::require_cmds(
        "saved_image_is_read_by_skopeo_and_umoci",
        &["skopeo", "umoci"],
    ) {
        return;
    }
    let Some(env) = Env::new("saved_image_is_read_by_skopeo_and_umoci") else {
        return;
    };
    env.write("hello.txt", "hi");
    let out = env.build("FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy\nCMD [\"cat\", \"/copy\"]\n");
    let rec = env.store.image(&out.image_id.to_string()).unwrap();
    let archive = env.tmp.path().join("img.tar");
    berth_store::save_archive(
        &env.store,
        &[(rec.clone(), vec![Reference::parse("built:test").unwrap()])],
        std::fs::File::create(&archive).unwrap(),
    )
    .unwrap();
    let o = Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["cat", "/copy"]));
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    let layout = env.tmp.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    assert!(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap()
        .success());
    let bundle = env.tmp.path().join("bundle");
    let o = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:test", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/copy")).unwrap(),
        "hi"
    );
    drop(env.tmp);
}

fn docker_cli_build() {
    let test = "docker_cli_build_against_the_daemon";
    if !berth_testutil::require_root(test) || !berth_testutil::require_cmds(test, &["docker"]) {
        return;
    }
    let Some(archive) = common::busybox(test) else {
        return;
    };
    let d = common::TestDaemon::start();
    d.docker_ok(&["load", "-i", common::path_str(&archive)]);
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("msg.txt"), "from context\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nARG V=1\nCOPY msg.txt /msg.txt\nRUN cat /msg.txt && echo v=$V > /v\nCMD [\"cat\", \"/v\"]\n",
    )
    .unwrap();
    let docker_build = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "cli-built:1"];
        args.extend_from_slice(extra);
        args.push(common::path_str(&ctx));
        Command::new("docker")
            .args(&args)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .unwrap()
    };
    let o = docker_build(&[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("Step 4/5 : RUN cat /msg.txt"), "{out}");
    assert!(
        out.contains("from context"),
        "RUN output is streamed: {out}"
    );
    assert!(out.contains("Successfully tagged cli-built:1"), "{out}");
    let o = docker_build(&[]);
    let again = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success());
    // ARG, COPY, RUN and CMD: ARG is a cached step with its own image, as dockerd's.
    assert_eq!(again.matches("Using cache").count(), 4, "{again}");
    let cfg = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}}",
        "cli-built:1",
    ]);
    assert_eq!(cfg.trim(), "[\"cat\",\"/v\"]");
    // A missing base is pulled; from a registry that is not there the build fails cleanly.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM 127.0.0.1:1/nope:1\nRUN true\n",
    )
    .unwrap();
    let o = docker_build(&[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("dockerfile:1: ") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    let o = docker_build(&[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{err}"
    );
}
