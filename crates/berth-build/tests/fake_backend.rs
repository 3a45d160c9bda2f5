//! The executor against an in-memory backend (no root): stage concurrency and selection,
//! cache keys reacting to build args and context bytes, ONBUILD triggers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_build::{
    build, BuildBackend, BuildError, BuildRequest, CopyRequest, Layer, RunRequest, RunResult, Sink,
    State,
};
use berth_oci::{media_type, Descriptor, Digest, ImageConfig};

#[derive(Default)]
struct Fake {
    cache: Mutex<HashMap<String, State>>,
    runs: Mutex<Vec<String>>,
    active: AtomicUsize,
    max_active: AtomicUsize,
    base_onbuild: Vec<String>,
}

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
        Ok(RunResult {
            exit_code: 0,
            layer: Some(layer(&format!("{}{cmd}{:?}", p.id(), r.env))),
        })
    }
    async fn copy(&self, p: &State, r: CopyRequest) -> Result<Option<Layer>, BuildError> {
        Ok(Some(layer(&format!("{}{r:?}", p.id()))))
    }
    async fn mkdir(&self, _p: &State, _d: String, _u: String) -> Result<Option<Layer>, BuildError> {
        Ok(None)
    }
    async fn register(&self, s: &State) -> Result<Digest, BuildError> {
        Ok(s.id())
    }
    async fn commit(&self, s: &State, _t: &[String]) -> Result<Digest, BuildError> {
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
    assert_eq!((o1.steps_run, o1.steps_cached), (4, 0));
    let o2 = build(fake.clone(), req(df, ctx.path(), &[("V", "2")]), sink())
        .await
        .unwrap();
    assert_eq!(
        (o2.steps_run, o2.steps_cached),
        (3, 1),
        "only steps after ARG rerun"
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
        (2, 2),
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
    assert!(e.to_string().contains("dockerfile:2"), "{e}");
}
