//! The start sequence against the recording double: each step failing in turn undoes exactly
//! what was done, last first; a start abandoned mid-step undoes that step too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime::{ContainerSpec, LogConfig, ShimConfig};
use berth_task::recording::{Call, Recording, NETNS};
use berth_task::{
    start, Attached, MountedLayer, PlannedFile, Prepare, StartError, StartPlan, Task,
};
use futures::FutureExt;

const DIR: &str = "/state/c1";
const LAYERS: [&str; 2] = ["a", "b"];

/// A caller: mounts two layers (a build step's `--mount=from` stages), plans two files (a
/// container's `hosts`, kept; a build step's scratch `resolv.conf`, removed on unwind), logs
/// its own steps on the double.
struct TestPrep {
    fx: Arc<Recording>,
    reap_failed_spawn: bool,
}

fn kept() -> PathBuf {
    PathBuf::from(DIR).join("hosts")
}

fn scratch() -> PathBuf {
    PathBuf::from("/tmp/c1-resolv.conf")
}

#[async_trait::async_trait]
impl Prepare<Recording> for TestPrep {
    fn layers(&self) -> Vec<String> {
        LAYERS.iter().map(|l| l.to_string()).collect()
    }

    async fn plan(
        &mut self,
        rootfs: &Path,
        net: &Attached<()>,
        layers: &[MountedLayer],
    ) -> Result<StartPlan, String> {
        // The layers arrive mounted, in the order asked for.
        let ids: Vec<&str> = layers.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["layer-a", "layer-b"]);
        assert_eq!(layers[1].path, Path::new("/layers/b"));
        self.fx.record(Call::Plan).await?;
        let file = |path: PathBuf, text: &str, remove_on_unwind| PlannedFile {
            path,
            text: text.into(),
            what: "test file".into(),
            remove_on_unwind,
        };
        Ok(StartPlan {
            files: vec![
                file(kept(), "127.0.0.1 localhost\n", false),
                file(scratch(), &net.resolv, true),
            ],
            shim_dir: DIR.into(),
            config: ShimConfig {
                spec: ContainerSpec {
                    id: "c1".into(),
                    rootfs: rootfs.to_path_buf(),
                    ..Default::default()
                },
                state_root: "/state/runtime".into(),
                log: LogConfig::with_defaults(PathBuf::from(DIR).join("log.json")),
                start_on_request: true,
            },
            reap_failed_spawn: self.reap_failed_spawn,
        })
    }

    async fn created(&mut self, _shim: &PathBuf) -> Result<(), String> {
        self.fx.record(Call::Created).await
    }
}

/// The full sequence, in order, when nothing fails.
fn sequence() -> Vec<Call> {
    vec![
        Call::MountRootfs,
        Call::AttachNetwork,
        Call::MountLayer("a".into()),
        Call::MountLayer("b".into()),
        Call::Plan,
        Call::WriteFile(kept()),
        Call::WriteFile(scratch()),
        Call::SpawnShim,
        Call::Created,
        Call::StartShim,
    ]
}

/// What undoing the calls done before (and including) `upto` must call, last first, when
/// `upto` failed; a failed step undid itself.
fn undo_of(done: &[Call], failed_spawn_reaped: bool) -> Vec<Call> {
    let mut out = Vec::new();
    for c in done.iter().rev() {
        match c {
            Call::MountRootfs => out.push(Call::UnmountRootfs),
            Call::AttachNetwork => out.push(Call::DetachNetwork(Some(NETNS.into()))),
            Call::MountLayer(l) => out.push(Call::UnmountLayer(format!("layer-{l}"))),
            Call::WriteFile(p) if *p == scratch() => out.push(Call::RemoveFile(p.clone())),
            Call::SpawnShim => out.push(Call::ReapShim(DIR.into())),
            _ => {}
        }
    }
    if failed_spawn_reaped {
        out.insert(0, Call::ReapShim(DIR.into()));
    }
    out
}

fn run(fx: Recording, reap_failed_spawn: bool) -> (Arc<Recording>, Result<(), StartError<String>>) {
    let fx = Arc::new(fx);
    let mut task = Task::new(fx.clone(), "c1");
    let mut prep = TestPrep {
        fx: fx.clone(),
        reap_failed_spawn,
    };
    let r = start(&mut task, &mut prep)
        .now_or_never()
        .expect("the double never waits");
    let r = r.map(|running| {
        assert_eq!(running.started.container_pid, 101);
        assert_eq!(running.rootfs, PathBuf::from("/rw/c1/merged"));
        task.keep();
    });
    (fx, r)
}

#[test]
fn success_keeps_everything() {
    let (fx, r) = run(Recording::default(), false);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(fx.calls(), sequence());
}

#[test]
fn each_failing_step_undoes_exactly_what_was_done_in_reverse() {
    for reap in [false, true] {
        let seq = sequence();
        for (i, failing) in seq.iter().enumerate() {
            let (fx, r) = run(Recording::failing(failing.clone()), reap);
            let err = r.expect_err("the injected failure fails the start");
            match (failing, &err) {
                (Call::SpawnShim, StartError::Spawn(_))
                | (Call::StartShim, StartError::Start(_)) => {}
                (Call::SpawnShim | Call::StartShim, e) => panic!("{failing:?}: wrong error {e:?}"),
                (_, StartError::Effect(m)) => assert!(m.contains("injected"), "{m}"),
                (_, e) => panic!("{failing:?}: wrong error {e:?}"),
            }
            let done = &seq[..i];
            let mut want = seq[..=i].to_vec();
            want.extend(undo_of(done, reap && *failing == Call::SpawnShim));
            assert_eq!(
                fx.calls(),
                want,
                "failing {failing:?} (reap failed spawn: {reap})"
            );
        }
    }
}

#[test]
fn a_start_abandoned_mid_step_undoes_that_step_too() {
    let seq = sequence();
    for (i, hanging) in seq.iter().enumerate() {
        let fx = Arc::new(Recording::hanging(hanging.clone()));
        let mut task = Task::new(fx.clone(), "c1");
        let mut prep = TestPrep {
            fx: fx.clone(),
            reap_failed_spawn: false,
        };
        // The cancelled build: its future is dropped while the step is in flight.
        assert!(start(&mut task, &mut prep).now_or_never().is_none());
        task.unwind().now_or_never().expect("undo never waits");
        // The step in flight may have half happened: it is undone like a finished one
        // (the network's namespace was not reported yet, so none is named); a layer mount in
        // flight has no id yet, it releases what it made itself.
        let mut want = seq[..=i].to_vec();
        let done = match hanging {
            Call::MountLayer(_) => &seq[..i],
            _ => &seq[..=i],
        };
        let mut undo = undo_of(done, false);
        if *hanging == Call::AttachNetwork {
            undo = undo
                .into_iter()
                .map(|c| match c {
                    Call::DetachNetwork(_) => Call::DetachNetwork(None),
                    c => c,
                })
                .collect();
        }
        want.extend(undo);
        assert_eq!(fx.calls(), want, "hanging in {hanging:?}");
    }
}

#[test]
fn unwinding_after_success_releases_in_reverse() {
    // A build step: the container ran and exited; everything goes before the diff.
    let fx = Arc::new(Recording::default());
    let mut task = Task::new(fx.clone(), "c1");
    let mut prep = TestPrep {
        fx: fx.clone(),
        reap_failed_spawn: true,
    };
    start(&mut task, &mut prep)
        .now_or_never()
        .expect("the double never waits")
        .expect("starts");
    task.unwind().now_or_never().expect("undo never waits");
    let mut want = sequence();
    want.extend(undo_of(&sequence(), false));
    assert_eq!(fx.calls(), want);
    assert!(task.is_empty());
}
