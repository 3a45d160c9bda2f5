//! `docker commit` (`POST /commit`): a container's rw changes become one new layer over its
//! image. The request's config (or the container's) gets the `--change`s applied and is then
//! merged over the container's config as moby's `merge` does; the history entry carries the
//! comment, the author and the container's command. The config work is pure ([`runtime_config`],
//! [`merge`], [`child_config`]); [`commit_rw_layer`] does the store I/O with the builder's
//! diff → layer → image code.

use crate::containers::Status;
use std::collections::HashMap;

use berth_api_types::service::CommitOptions;
use berth_api_types::ContainerService;
use berth_build::BuildError;
use berth_oci::config::{HealthConfig, History};
use berth_oci::{Digest, ImageConfig, ImageRuntimeConfig, Reference};
use berth_store::{ImageRecord, Store};

use crate::build::backend::{diff_layer, register_state, set_parent};
use crate::containers::stored::ContainerConfig;
use crate::engine::Engine;
use crate::error::{DaemonError, Result};

fn blank(s: &Option<String>) -> bool {
    s.as_deref().unwrap_or("").is_empty()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// A container `Config` as an image runtime config (the fields an image keeps).
pub fn runtime_config(c: &ContainerConfig) -> ImageRuntimeConfig {
    let set = |v: &Option<Vec<String>>| {
        v.as_ref().map(|v| {
            v.iter()
                .map(|k| (k.clone(), serde_json::json!({})))
                .collect()
        })
    };
    let text = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    ImageRuntimeConfig {
        user: text(&c.user),
        exposed_ports: set(&c.exposed_ports),
        env: c.env.clone(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        volumes: set(&c.volumes),
        working_dir: text(&c.working_dir),
        labels: c
            .labels
            .as_ref()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        stop_signal: text(&c.stop_signal),
        healthcheck: c.healthcheck.as_ref().map(|h| HealthConfig {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        on_build: c.on_build.clone(),
        shell: c.shell.clone(),
        args_escaped: c.args_escaped,
    }
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// moby's `merge(userConf, imageConf)`: what the committed config leaves unset comes from the
/// container's config (`ctr`); env, labels, ports and volumes are unions, the user's winning.
pub fn merge(user: &mut ImageRuntimeConfig, ctr: &ImageRuntimeConfig) {
    if blank(&user.user) {
        user.user = ctr.user.clone();
    }
    match (user.exposed_ports.as_mut(), ctr.exposed_ports.as_ref()) {
        (Some(u), Some(c)) if !u.is_empty() => {
            for (k, v) in c {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (Some(u), _) if !u.is_empty() => {}
        _ => user.exposed_ports = ctr.exposed_ports.clone(),
    }
    match user.env.as_mut() {
        Some(u) if !u.is_empty() => {
            for e in ctr.env.iter().flatten() {
                if !u.iter().any(|x| env_key(x) == env_key(e)) {
                    u.push(e.clone());
                }
            }
        }
        _ => user.env = ctr.env.clone(),
    }
    let labels = user.labels.get_or_insert_with(Default::default);
    for (k, v) in ctr.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = ctr.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = ctr.entrypoint.clone();
        }
    }
    if let Some(c) = &ctr.healthcheck {
        match user.healthcheck.as_mut() {
            None => user.healthcheck = Some(c.clone()),
            Some(u) => {
                if u.test.as_ref().is_none_or(|t| t.is_empty()) {
                    u.test = c.test.clone();
                }
                for (mine, theirs) in [
                    (&mut u.interval, c.interval),
                    (&mut u.timeout, c.timeout),
                    (&mut u.start_period, c.start_period),
                    (&mut u.start_interval, c.start_interval),
                    (&mut u.retries, c.retries),
                ] {
                    if mine.unwrap_or(0) == 0 {
                        *mine = theirs;
                    }
                }
            }
        }
    }
    if blank(&user.working_dir) {
        user.working_dir = ctr.working_dir.clone();
    }
    match user.volumes.as_mut() {
        Some(u) if !u.is_empty() => {
            for (k, v) in ctr.volumes.iter().flatten() {
                u.insert(k.clone(), v.clone());
            }
        }
        _ => user.volumes = ctr.volumes.clone(),
    }
    if blank(&user.stop_signal) {
        user.stop_signal = ctr.stop_signal.clone();
    }
}

/// Who made the commit and why (the history entry).
#[derive(Clone, Debug, Default)]
pub struct CommitInfo {
    pub author: String,
    pub comment: String,
    /// The container's command, joined by spaces (moby's `created_by`).
    pub created_by: String,
    /// Recorded as the config's `container` (moby's V1 field); empty: none.
    pub container_id: String,
    /// The committed container's config, recorded as the config's `container_config` (moby's
    /// V1 field, shown as the image's `ContainerConfig`); None: none.
    pub container_config: Option<serde_json::Value>,
}

/// moby's `NewChildImage`: the parent's config with `runtime` as its config, the new layer's
/// diff id appended (None: nothing changed, an empty-layer history entry) and one history
/// entry; `author` replaces the parent's, and so do the V1 `container` and `container_config`
/// fields (the parent's are dropped rather than passed on as this image's).
pub fn child_config(
    parent: &ImageConfig,
    runtime: ImageRuntimeConfig,
    diff_id: Option<Digest>,
    info: &CommitInfo,
    now: &str,
) -> ImageConfig {
    let mut cfg = parent.clone();
    cfg.config = runtime;
    let empty_layer = diff_id.is_none();
    if let Some(d) = diff_id {
        cfg.rootfs.diff_ids.push(d);
    }
    cfg.created = Some(now.to_string());
    cfg.author = non_empty(&info.author);
    match &info.container_config {
        Some(c) => cfg.extra.insert("container_config".into(), c.clone()),
        None => cfg.extra.remove("container_config"),
    };
    match non_empty(&info.container_id) {
        Some(id) => cfg.extra.insert("container".into(), serde_json::json!(id)),
        None => cfg.extra.remove("container"),
    };
    cfg.history.push(History {
        created: Some(now.to_string()),
        created_by: Some(info.created_by.clone()),
        author: non_empty(&info.author),
        comment: non_empty(&info.comment),
        empty_layer,
    });
    cfg
}

/// Diff rw layer `rw_id` against `parent`, store the change as a layer and register the child
/// image (tagged with `tags`, `parent` recorded as its Parent). Blocking.
pub fn commit_rw_layer(
    store: &Store,
    rw_id: &str,
    parent: &ImageRecord,
    runtime: ImageRuntimeConfig,
    info: &CommitInfo,
    tags: &[Reference],
) -> Result<Digest, BuildError> {
    let layer = diff_layer(
        store,
        rw_id,
        &parent.config.rootfs.diff_ids,
        &store.root().join("build-tmp"),
    )?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let cfg = child_config(
        &parent.config,
        runtime,
        layer.as_ref().map(|l| l.diff_id.clone()),
        info,
        &now,
    );
    let mut layers = parent.layers.clone();
    layers.extend(layer.map(|l| l.descriptor));
    let id = register_state(store, &cfg, &layers, tags)?;
    set_parent(store, &id, Some(&parent.id));
    Ok(id)
}

/// `repo[:tag]` as the tag to give the new image (none without a repo).
fn tag_of(repo: &str, tag: &str) -> Result<Vec<Reference>> {
    if repo.is_empty() {
        return Ok(Vec::new());
    }
    let full = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    let r = Reference::parse(&full).map_err(DaemonError::invalid)?;
    if r.digest.is_some() {
        return Err(DaemonError::invalid("cannot import digest reference"));
    }
    Ok(vec![r.with_default_tag()])
}

/// Unpauses a container paused for a commit on every exit path: in line when the commit ends
/// ([`Unpause::now`]), or from a task when the request is dropped mid-commit (the client
/// disconnected and the server dropped the handler's future at an await).
struct Unpause {
    engine: Option<Engine>,
    id: String,
}

impl Unpause {
    fn new(engine: &Engine, id: &str) -> Unpause {
        Unpause {
            engine: Some(engine.clone()),
            id: id.to_string(),
        }
    }

    async fn run(engine: Engine, id: String) {
        if let Err(e) = ContainerService::unpause(&engine, &id).await {
            tracing::warn!(container_id = %id, error = %e, "cannot unpause after commit");
        }
    }

    async fn now(mut self) {
        if let Some(e) = self.engine.take() {
            Unpause::run(e, std::mem::take(&mut self.id)).await;
        }
    }
}

impl Drop for Unpause {
    fn drop(&mut self) {
        let Some(engine) = self.engine.take() else {
            return;
        };
        let id = std::mem::take(&mut self.id);
        tracing::info!(container_id = %id, "commit abandoned: unpausing the container");
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(Unpause::run(engine, id));
            }
            Err(_) => {
                tracing::error!(container_id = %id, "no runtime to unpause the container after an abandoned commit")
            }
        }
    }
}

impl Engine {
    /// `POST /commit`: see the module docs. A running container is paused while its changes
    /// are read when `opts.pause` (and unpaused afterwards, also on failure).
    pub(crate) async fn commit_container(&self, opts: CommitOptions) -> Result<String> {
        let store = self.store().cloned().ok_or_else(|| {
            DaemonError::Unavailable("this engine has no layer store to commit to".into())
        })?;
        let ctr = self.inner.containers.get(&opts.container)?;
        let rec = ctr.snapshot();
        match rec.state.status {
            Status::Dead => {
                return Err(DaemonError::Conflict(format!(
                    "You cannot commit container {} which is Dead",
                    rec.id
                )))
            }
            Status::Removing => {
                return Err(DaemonError::Conflict(format!(
                    "You cannot commit container {} which is being removed",
                    rec.id
                )))
            }
            _ => {}
        }
        let tags = tag_of(&opts.repo, &opts.tag)?;
        let user_cfg = opts
            .config
            .clone()
            .map(Into::into)
            .unwrap_or_else(|| rec.config.clone());
        let mut img = ImageConfig {
            config: runtime_config(&user_cfg),
            ..Default::default()
        };
        crate::images::changes::apply_to_image(&mut img, &opts.changes)?;
        let mut runtime = img.config;
        merge(&mut runtime, &runtime_config(&rec.config));
        let info = CommitInfo {
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            created_by: rec.config.cmd.clone().unwrap_or_default().join(" "),
            container_id: rec.id.clone(),
            container_config: serde_json::to_value(&rec.config).ok(),
        };
        let parent_id = rec.image_id.clone();

        // moby ignores pause failures (e.g. the container stopped meanwhile).
        let paused = (opts.pause
            && rec.state.status == Status::Running
            && ContainerService::pause(self, &rec.id).await.is_ok())
        .then(|| Unpause::new(self, &rec.id));
        let (id2, tags2) = (rec.id.clone(), tags.clone());
        let res = tokio::task::spawn_blocking(move || {
            let parent = store
                .image(&parent_id)
                .map_err(|e| DaemonError::NotFound(e.to_string()))?;
            commit_rw_layer(&store, &id2, &parent, runtime, &info, &tags2)
                .map_err(DaemonError::from)
        })
        .await;
        if let Some(p) = paused {
            p.now().await;
        }
        let id = res??;

        let image_ref = tags.first().map(|r| r.familiar()).unwrap_or_default();
        if !image_ref.is_empty() {
            self.events()
                .image("tag", &id.to_string(), &image_ref, &HashMap::new());
        }
        let extra = HashMap::from([
            ("comment".to_string(), opts.comment),
            ("imageID".to_string(), id.to_string()),
            ("imageRef".to_string(), image_ref),
        ]);
        self.ctr_event("commit", &rec, extra);
        tracing::info!(container_id = %rec.id, image = %id, "committed container");
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn ctr() -> ImageRuntimeConfig {
        let c: ContainerConfig = serde_json::from_value(serde_json::json!({
            "User": "nobody",
            "Env": ["PATH=/bin", "A=1"],
            "Cmd": ["sh", "-c", "echo hi"],
            "WorkingDir": "/w",
            "Labels": {"a": "1", "b": "2"},
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/data": {}},
            "StopSignal": "SIGINT",
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5, "Retries": 3}
        }))
        .unwrap();
        runtime_config(&c)
    }

    #[test]
    fn empty_user_config_takes_the_containers() {
        let mut u = ImageRuntimeConfig::default();
        merge(&mut u, &ctr());
        assert_eq!(u, ctr());
    }

    #[test]
    fn merge_follows_moby() {
        let mut u = ImageRuntimeConfig {
            env: Some(s(&["A=2", "B=3"])),
            labels: Some([("b".to_string(), "x".to_string())].into()),
            exposed_ports: Some([("8000/tcp".to_string(), serde_json::json!({}))].into()),
            healthcheck: Some(HealthConfig {
                interval: Some(7),
                ..Default::default()
            }),
            entrypoint: Some(s(&["top"])),
            ..Default::default()
        };
        merge(&mut u, &ctr());
        assert_eq!(u.env.unwrap(), s(&["A=2", "B=3", "PATH=/bin"]));
        let l = u.labels.unwrap();
        assert_eq!((l["a"].as_str(), l["b"].as_str()), ("1", "x"));
        let ports: Vec<String> = u.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, s(&["80/tcp", "8000/tcp"]));
        let h = u.healthcheck.unwrap();
        assert_eq!(h.test.unwrap(), s(&["CMD", "true"]));
        assert_eq!((h.interval, h.retries), (Some(7), Some(3)));
        // An entrypoint of its own keeps the container's Cmd out.
        assert_eq!(u.cmd, None);
        assert_eq!(u.user.as_deref(), Some("nobody"));
        assert_eq!(u.working_dir.as_deref(), Some("/w"));
    }

    #[test]
    fn changes_then_merge_like_docker_commit_c() {
        let mut img = ImageConfig {
            config: ctr(),
            ..Default::default()
        };
        crate::images::changes::apply_to_image(
            &mut img,
            &s(&[r#"CMD ["cat","/hi"]"#, "EXPOSE 8000"]),
        )
        .unwrap();
        let mut rt = img.config;
        merge(&mut rt, &ctr());
        assert_eq!(rt.cmd.unwrap(), s(&["cat", "/hi"]));
        assert!(rt.exposed_ports.unwrap().contains_key("8000/tcp"));
    }

    #[test]
    fn child_config_appends_layer_and_history() {
        let parent = ImageConfig {
            author: Some("old".into()),
            history: vec![History::default()],
            extra: [
                ("container".to_string(), serde_json::json!("parentctr")),
                ("container_config".to_string(), serde_json::json!({})),
            ]
            .into(),
            ..Default::default()
        };
        let d = Digest::of(b"layer");
        let info = CommitInfo {
            author: "me".into(),
            comment: "why".into(),
            created_by: "sh -c echo".into(),
            container_id: "abc".into(),
            container_config: Some(serde_json::json!({"Cmd": ["sh", "-c", "echo"]})),
        };
        let c = child_config(
            &parent,
            ctr(),
            Some(d.clone()),
            &info,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(c.rootfs.diff_ids, vec![d]);
        assert_eq!(c.author.as_deref(), Some("me"));
        assert_eq!(c.history.len(), 2);
        let h = &c.history[1];
        assert_eq!(h.comment.as_deref(), Some("why"));
        assert_eq!(h.created_by.as_deref(), Some("sh -c echo"));
        assert!(!h.empty_layer);
        assert_eq!(c.extra["container"], "abc");
        assert_eq!(c.extra["container_config"]["Cmd"][2], "echo");
        let e = child_config(&parent, ctr(), None, &CommitInfo::default(), "t");
        assert!(e.history[1].empty_layer && e.author.is_none());
        assert!(e.extra.is_empty());
        assert!(e.rootfs.diff_ids.is_empty());
    }

    #[test]
    fn tags_need_a_repo_and_no_digest() {
        assert!(tag_of("", "x").unwrap().is_empty());
        assert_eq!(tag_of("img", "").unwrap()[0].familiar(), "img:latest");
        assert_eq!(tag_of("a/b", "v1").unwrap()[0].familiar(), "a/b:v1");
        let dig = format!("img@sha256:{}", "a".repeat(64));
        assert!(tag_of(&dig, "").is_err());
    }
}
