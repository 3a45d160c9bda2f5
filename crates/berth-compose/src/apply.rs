//! Applying a project through the Engine API client (any daemon, local or `-H` remote): `up`
//! creates what is missing and recreates only containers whose config hash changed, wave by
//! wave in dependency order (the services of a wave in parallel), waiting for
//! `service_healthy` / `service_completed_successfully` dependencies; `down` removes the
//! project's containers and networks (and volumes with `-v`); `ps` lists its containers.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_client::{Client, ErrorKind};
use hyper::Method;
use serde_json::{json, Value};

use crate::plan::{self, labels, ProjectInfo};
use crate::Project;

/// Why `up`, `down` or `ps` failed; the text names the object.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: berth_client::Error,
    },
    #[error("network {0} declared as external, but could not be found")]
    ExternalNetwork(String),
    #[error("external volume \"{0}\" not found")]
    ExternalVolume(String),
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("service {service:?} has no image {image} and --no-build was given: build it first (berth compose build {service})")]
    NotBuilt { service: String, image: String },
    #[error("failed to build service {service:?}: {detail}")]
    Build { service: String, detail: String },
    #[error("dependency failed to start: container {container} is unhealthy")]
    Unhealthy { container: String },
    #[error("service {service:?} didn't complete successfully: exit {code}")]
    NotCompleted { service: String, code: i64 },
    #[error("dependency failed to start: container {container} exited ({code})")]
    Exited { container: String, code: i64 },
    #[error("environment variable {variable} is not set: it is the source of {target}")]
    MissingVariable { target: String, variable: String },
    #[error("timeout waiting for container {container} to be running (and healthy)")]
    WaitTimeout { container: String },
}

fn api(what: impl Into<String>) -> impl FnOnce(berth_client::Error) -> ApplyError {
    let what = what.into();
    move |source| ApplyError::Api { what, source }
}

/// Options of `up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// Only these services (and what they depend on); empty: all.
    pub services: Vec<String>,
    /// `--build`: build images before starting, even when they exist.
    pub build: bool,
    /// `--no-build`: never build; a missing image is an error.
    pub no_build: bool,
    /// `--scale SERVICE=N`: replica counts that win over the file's.
    pub scale: BTreeMap<String, u32>,
    /// `create`: make the containers but do not start them.
    pub no_start: bool,
    /// `--no-deps`: only the named services, not what they depend on.
    pub no_deps: bool,
}

/// One image to build for a service: its normalized `build` section and the tag to give it.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub service: String,
    pub image: String,
    pub spec: Value,
}

/// Builds an image (the CLI's `build` over the same client); the error text is shown.
pub type Builder<'b, 'f> =
    &'b (dyn Fn(BuildRequest) -> futures::future::BoxFuture<'f, Result<(), String>> + Sync);

/// Options of `down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// `--rmi`: remove the services' images too — `all` of them, or only `local` ones (built
    /// without an `image:` name).
    pub rmi: Option<RmiMode>,
    pub volumes: bool,
    pub remove_orphans: bool,
    pub timeout: Option<i64>,
}

/// Which images `down --rmi` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmiMode {
    All,
    Local,
}

/// A progress line sink (`Container app-web-1  Started`).
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

use berth_client::escape as enc;

fn label_filter(kv: &str) -> String {
    enc(&json!({"label": [kv]}).to_string())
}

/// The project's containers (all states), as `GET /containers/json` lists them.
pub async fn containers(c: &Client, project: &str) -> Result<Vec<Value>, ApplyError> {
    let path = format!(
        "/containers/json?all=1&filters={}",
        label_filter(&format!("{}={project}", labels::PROJECT))
    );
    c.get_json(&path).await.map_err(api("list containers"))
}

/// Whether a listed container is a service replica (not a `run` one-off).
fn is_replica(c: &Value) -> bool {
    label(c, labels::ONEOFF) != Some("True")
}

fn label<'a>(c: &'a Value, key: &str) -> Option<&'a str> {
    c.pointer(&format!("/Labels/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
}

fn cname(c: &Value) -> String {
    c.pointer("/Names/0")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string()
}

fn id(c: &Value) -> String {
    c.get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn services_of(p: &Project) -> serde_json::Map<String, Value> {
    p.model
        .get("services")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The image a service runs: its `image`, else `<project>-<service>` (what `build` tags).
pub fn image_of(project: &str, service: &str, svc: &Value) -> String {
    svc.get("image")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("{project}-{service}"))
}

/// `build [SERVICE...]`: every selected service with a `build` section.
pub async fn build(
    p: &Project,
    services: &[String],
    builder: Builder<'_, '_>,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let all = services_of(p);
    for s in services {
        if !all.contains_key(s) {
            return Err(ApplyError::NoSuchService(s.clone()));
        }
    }
    for (name, svc) in &all {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        if let Some(spec) = svc.get("build") {
            run_build(&p.name, name, svc, spec, builder, out).await?;
        }
    }
    Ok(())
}

async fn run_build(
    project: &str,
    name: &str,
    svc: &Value,
    spec: &Value,
    builder: Builder<'_, '_>,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let image = image_of(project, name, svc);
    out(&format!(" {name} Building"));
    builder(BuildRequest {
        service: name.to_string(),
        image: image.clone(),
        spec: spec.clone(),
    })
    .await
    .map_err(|detail| ApplyError::Build {
        service: name.to_string(),
        detail,
    })?;
    out(&format!(" {name} Built"));
    Ok(())
}

/// `up -d`.
pub async fn up(
    c: &Client,
    p: &Project,
    o: &UpOptions,
    builder: Builder<'_, '_>,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let all = services_of(p);
    for s in &o.services {
        if !all.contains_key(s) {
            return Err(ApplyError::NoSuchService(s.clone()));
        }
    }
    let selected = if o.no_deps && !o.services.is_empty() {
        let mut s = o.services.clone();
        s.sort();
        s
    } else {
        with_dependencies(&all, &o.services)
    };
    ensure_networks(c, p, out).await?;
    ensure_volumes(c, p, out).await?;
    let mut existing = containers(c, &p.name).await?;
    existing.retain(is_replica);
    let orphans: Vec<&Value> = existing
        .iter()
        .filter(|x| label(x, labels::SERVICE).is_some_and(|s| !all.contains_key(s)))
        .collect();
    if !orphans.is_empty() {
        if o.remove_orphans {
            for x in orphans {
                remove_container(c, x, None, false, out).await?;
            }
        } else {
            let names: Vec<String> = orphans.iter().map(|x| cname(x)).collect();
            out(&format!(
                "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(" ")
            ));
        }
    }
    let deps: BTreeMap<&str, Vec<&str>> = selected
        .iter()
        .map(|name| {
            let d: Vec<&str> = all[name.as_str()]
                .get("depends_on")
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .map(String::as_str)
                        .filter(|k| selected.iter().any(|s| s == k))
                        .collect()
                })
                .unwrap_or_default();
            (name.as_str(), d)
        })
        .collect();
    let waves = crate::order::start_order(&deps).map_err(|cycle| {
        ApplyError::NoSuchService(format!("dependency cycle: {}", cycle.join(" -> ")))
    })?;
    let info = ProjectInfo::of(p);
    for wave in waves {
        let jobs = wave.iter().map(|name| {
            let svc = &all[*name];
            let mine: Vec<Value> = existing
                .iter()
                .filter(|x| label(x, labels::SERVICE) == Some(*name))
                .cloned()
                .collect();
            converge(c, p, &info, name, svc, mine, o, builder, out)
        });
        for r in futures::future::join_all(jobs).await {
            r?;
        }
    }
    Ok(())
}

/// `services` and, transitively, what they depend on; all services when empty.
fn with_dependencies(all: &serde_json::Map<String, Value>, services: &[String]) -> Vec<String> {
    if services.is_empty() {
        return all.keys().cloned().collect();
    }
    let mut out: Vec<String> = Vec::new();
    let mut todo: Vec<String> = services.to_vec();
    while let Some(s) = todo.pop() {
        if out.contains(&s) {
            continue;
        }
        if let Some(d) = all
            .get(&s)
            .and_then(|v| v.get("depends_on"))
            .and_then(Value::as_object)
        {
            todo.extend(d.keys().cloned());
        }
        out.push(s);
    }
    out.sort();
    out
}

async fn ensure_networks(c: &Client, p: &Project, out: Progress<'_>) -> Result<(), ApplyError> {
    ensure_resources(c, p, Resource::Network, out).await
}

async fn ensure_volumes(c: &Client, p: &Project, out: Progress<'_>) -> Result<(), ApplyError> {
    ensure_resources(c, p, Resource::Volume, out).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resource {
    Network,
    Volume,
}

/// Create the project's networks or volumes that do not exist; an external one must.
async fn ensure_resources(
    c: &Client,
    p: &Project,
    kind: Resource,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let (section, path, word) = match kind {
        Resource::Network => ("networks", "/networks", "Network"),
        Resource::Volume => ("volumes", "/volumes", "Volume"),
    };
    let Some(items) = p.model.get(section).and_then(Value::as_object) else {
        return Ok(());
    };
    for (key, spec) in items {
        let (name, body) = match kind {
            Resource::Network => {
                let n = plan::network_name(&p.model, key);
                let b = plan::network_body(&p.name, key, spec, &n);
                (n, b)
            }
            Resource::Volume => {
                let n = plan::volume_name(&p.model, key);
                let b = plan::volume_body(&p.name, key, spec, &n);
                (n, b)
            }
        };
        let what = format!("{} {name}", word.to_lowercase());
        let there = c.exists(&format!("{path}/{}", enc(&name))).await;
        if there.map_err(api(what.clone()))? {
            continue;
        }
        if spec.get("external").and_then(Value::as_bool) == Some(true) {
            return Err(match kind {
                Resource::Network => ApplyError::ExternalNetwork(name),
                Resource::Volume => ApplyError::ExternalVolume(name),
            });
        }
        c.post_json::<Value, _>(&format!("{path}/create"), Some(&body))
            .await
            .map_err(api(what))?;
        out(&format!(" {word} {name}  Created"));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn converge(
    c: &Client,
    p: &Project,
    info: &ProjectInfo<'_>,
    name: &str,
    svc: &Value,
    mut mine: Vec<Value>,
    o: &UpOptions,
    builder: Builder<'_, '_>,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    wait_for_dependencies(c, p, svc).await?;
    ensure_image(c, &p.name, name, svc, o, builder, out).await?;
    let want = o
        .scale
        .get(name)
        .copied()
        .unwrap_or_else(|| plan::replicas(svc));
    let hash = plan::config_hash(svc);
    mine.sort_by_key(|x| {
        label(x, labels::NUMBER)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    for x in &mine {
        let n = label(x, labels::NUMBER)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX);
        if n > want {
            remove_container(c, x, None, false, out).await?;
        }
    }
    for n in 1..=want {
        let current = mine
            .iter()
            .find(|x| label(x, labels::NUMBER) == Some(&n.to_string()));
        match current {
            Some(x)
                if o.no_recreate
                    || (!o.force_recreate && label(x, labels::CONFIG_HASH) == Some(&hash)) =>
            {
                let running = x.get("State").and_then(Value::as_str) == Some("running");
                let cn = cname(x);
                if running {
                    out(&format!(" Container {cn}  Running"));
                } else if !o.no_start {
                    start(c, &id(x), &cn, out).await?;
                }
            }
            Some(x) => {
                out(&format!(" Container {}  Recreate", cname(x)));
                remove_container(c, x, None, false, out).await?;
                let (cid, cn) = create(c, p, info, name, svc, n, out).await?;
                if !o.no_start {
                    start(c, &cid, &cn, out).await?;
                }
            }
            None => {
                let (cid, cn) = create(c, p, info, name, svc, n, out).await?;
                if !o.no_start {
                    start(c, &cid, &cn, out).await?;
                }
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn ensure_image(
    c: &Client,
    project: &str,
    service: &str,
    svc: &Value,
    o: &UpOptions,
    builder: Builder<'_, '_>,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let image = image_of(project, service, svc);
    let exists = c
        .exists(&format!("/images/{}/json", enc(&image)))
        .await
        .map_err(api(format!("image {image}")))?;
    if let Some(spec) = svc.get("build") {
        if o.no_build {
            if exists {
                return Ok(());
            }
            return Err(ApplyError::NotBuilt {
                service: service.to_string(),
                image,
            });
        }
        if exists && !o.build {
            return Ok(());
        }
        return run_build(project, service, svc, spec, builder, out).await;
    }
    if exists {
        return Ok(());
    }
    out(&format!(" {service} Pulling"));
    let path = format!("/images/create?fromImage={}", enc(&image));
    let body = c
        .send(Method::POST, &path, berth_client::body::empty())
        .await
        .map_err(api(format!("pull {image}")))?;
    // The progress stream carries a failure as an `error` line.
    for line in body.split(|b| *b == b'\n') {
        if let Ok(v) = serde_json::from_slice::<Value>(line) {
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(ApplyError::Api {
                    what: format!("pull {image}"),
                    source: berth_client::Error::Api {
                        status: 500,
                        message: e.to_string(),
                    },
                });
            }
        }
    }
    out(&format!(" {service} Pulled"));
    Ok(())
}

/// Create container `number` of `service` and connect its other networks: (id, name).
async fn create(
    c: &Client,
    p: &Project,
    info: &ProjectInfo<'_>,
    service: &str,
    svc: &Value,
    number: u32,
    out: Progress<'_>,
) -> Result<(String, String), ApplyError> {
    let cn = plan::container_name(&p.name, service, svc, number);
    let body = plan::create_body(info, &p.model, service, svc, number);
    create_from(c, p, service, svc, cn, body, out).await
}

async fn create_from(
    c: &Client,
    p: &Project,
    service: &str,
    svc: &Value,
    cn: String,
    body: Value,
    out: Progress<'_>,
) -> Result<(String, String), ApplyError> {
    let created: Value = c
        .post_json(
            &format!("/containers/create?name={}", enc(&cn)),
            Some(&body),
        )
        .await
        .map_err(api(format!("container {cn}")))?;
    let cid = created
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    out(&format!(" Container {cn}  Created"));
    if svc.get("network_mode").is_none() {
        for (key, settings) in plan::service_networks(svc).iter().skip(1) {
            let net = plan::network_name(&p.model, key);
            let body =
                json!({"Container": cid, "EndpointConfig": plan::endpoint(service, &cn, settings)});
            c.post(&format!("/networks/{}/connect", enc(&net)), Some(&body))
                .await
                .map_err(api(format!("connect {cn} to {net}")))?;
        }
    }
    write_files(c, p, svc, &cid, &cn).await?;
    Ok((cid, cn))
}

/// Secrets and configs whose bytes are not a host file: written into the created container
/// (as one tar through `PUT /containers/{id}/archive`) before it starts.
async fn write_files(
    c: &Client,
    p: &Project,
    svc: &Value,
    cid: &str,
    cn: &str,
) -> Result<(), ApplyError> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut any = false;
    for f in plan::secret_and_config_files(&p.model, svc) {
        let data = match &f.source {
            plan::FileSource::Host(_) => continue,
            plan::FileSource::Content(s) => s.clone(),
            plan::FileSource::Variable(v) => match p.env.get(v) {
                Some(s) => s.clone(),
                None => {
                    return Err(ApplyError::MissingVariable {
                        target: f.target.clone(),
                        variable: v.clone(),
                    })
                }
            },
        };
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(f.mode);
        h.set_mtime(0);
        h.set_cksum();
        let path = f.target.trim_start_matches('/').to_string();
        tar.append_data(&mut h, path, data.as_bytes())
            .map_err(|e| ApplyError::Api {
                what: format!("container {cn}: {}", f.target),
                source: berth_client::Error::Io {
                    what: "writing a tar".into(),
                    source: e,
                },
            })?;
        any = true;
    }
    if !any {
        return Ok(());
    }
    let bytes = tar.into_inner().map_err(|e| ApplyError::Api {
        what: format!("container {cn}"),
        source: berth_client::Error::Io {
            what: "writing a tar".into(),
            source: e,
        },
    })?;
    c.stream(
        hyper::Method::PUT,
        &format!("/containers/{cid}/archive?path=/"),
        berth_client::body::bytes(bytes),
        &[("Content-Type", "application/x-tar")],
    )
    .await
    .map_err(api(format!("container {cn}: secrets and configs")))?
    .collect()
    .await
    .map_err(api(format!("container {cn}: secrets and configs")))?;
    Ok(())
}

async fn start(c: &Client, cid: &str, cn: &str, out: Progress<'_>) -> Result<(), ApplyError> {
    c.post::<Value>(&format!("/containers/{cid}/start"), None)
        .await
        .map_err(api(format!("container {cn}")))?;
    out(&format!(" Container {cn}  Started"));
    Ok(())
}

/// Wait until each dependency meets its condition (`service_started` needs nothing more:
/// the waves already started it).
async fn wait_for_dependencies(c: &Client, p: &Project, svc: &Value) -> Result<(), ApplyError> {
    let Some(deps) = svc.get("depends_on").and_then(Value::as_object) else {
        return Ok(());
    };
    for (dep, spec) in deps {
        let condition = spec
            .get("condition")
            .and_then(Value::as_str)
            .unwrap_or("service_started");
        if condition == "service_started" {
            continue;
        }
        let ids: Vec<(String, String)> = containers(c, &p.name)
            .await?
            .iter()
            .filter(|x| label(x, labels::SERVICE) == Some(dep.as_str()))
            .map(|x| (id(x), cname(x)))
            .collect();
        for (cid, cn) in ids {
            loop {
                let info: Value = c
                    .get_json(&format!("/containers/{cid}/json"))
                    .await
                    .map_err(api(format!("container {cn}")))?;
                let status = info.pointer("/State/Status").and_then(Value::as_str);
                let code = info
                    .pointer("/State/ExitCode")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                match condition {
                    "service_healthy" => {
                        match info.pointer("/State/Health/Status").and_then(Value::as_str) {
                            Some("healthy") => break,
                            Some("unhealthy") => {
                                return Err(ApplyError::Unhealthy { container: cn })
                            }
                            None => break,
                            _ => {}
                        }
                        if status == Some("exited") {
                            return Err(ApplyError::Exited {
                                container: cn,
                                code,
                            });
                        }
                    }
                    _ => {
                        if status == Some("exited") {
                            if code == 0 {
                                break;
                            }
                            return Err(ApplyError::NotCompleted {
                                service: dep.clone(),
                                code,
                            });
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(())
}

async fn remove_container(
    c: &Client,
    x: &Value,
    timeout: Option<i64>,
    volumes: bool,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let cid = id(x);
    let cn = cname(x);
    if x.get("State").and_then(Value::as_str) == Some("running") {
        let q = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
        match c
            .post::<Value>(&format!("/containers/{cid}/stop{q}"), None)
            .await
        {
            Ok(()) => {}
            Err(e) if e.status() == Some(304) => {}
            Err(e) => return Err(api(format!("container {cn}"))(e)),
        }
        out(&format!(" Container {cn}  Stopped"));
    }
    let v = if volumes { "1" } else { "0" };
    c.delete_if_exists(&format!("/containers/{cid}?force=1&v={v}"))
        .await
        .map_err(api(format!("container {cn}")))?;
    out(&format!(" Container {cn}  Removed"));
    Ok(())
}

/// `down`.
pub async fn down(
    c: &Client,
    p: &Project,
    o: &DownOptions,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let all = services_of(p);
    for x in containers(c, &p.name).await? {
        let orphan = label(&x, labels::SERVICE).is_some_and(|s| !all.contains_key(s));
        if orphan && !o.remove_orphans {
            continue;
        }
        remove_container(c, &x, o.timeout, o.volumes, out).await?;
    }
    let nets: Vec<Value> = c
        .get_json(&format!(
            "/networks?filters={}",
            label_filter(&format!("{}={}", labels::PROJECT, p.name))
        ))
        .await
        .map_err(api("list networks"))?;
    for n in nets {
        let name = n.get("Name").and_then(Value::as_str).unwrap_or_default();
        if c.delete_if_exists(&format!("/networks/{}", enc(name)))
            .await
            .map_err(api(format!("network {name}")))?
        {
            out(&format!(" Network {name}  Removed"));
        }
    }
    if let Some(mode) = o.rmi {
        let mut seen = Vec::new();
        for (name, svc) in &all {
            if mode == RmiMode::Local && svc.get("image").is_some() {
                continue;
            }
            let image = image_of(&p.name, name, svc);
            if seen.contains(&image) {
                continue;
            }
            seen.push(image.clone());
            if c.delete_if_exists(&format!("/images/{}", enc(&image)))
                .await
                .map_err(api(format!("image {image}")))?
            {
                out(&format!(" Image {image}  Removed"));
            }
        }
    }
    if o.volumes {
        let vols: Value = c
            .get_json(&format!(
                "/volumes?filters={}",
                label_filter(&format!("{}={}", labels::PROJECT, p.name))
            ))
            .await
            .map_err(api("list volumes"))?;
        for v in vols
            .get("Volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = v.get("Name").and_then(Value::as_str).unwrap_or_default();
            if c.delete_if_exists(&format!("/volumes/{}", enc(name)))
                .await
                .map_err(api(format!("volume {name}")))?
            {
                out(&format!(" Volume {name}  Removed"));
            }
        }
    }
    Ok(())
}

/// `start`, `stop`, `restart`, `kill` on the project's containers of `services` (all: empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Kill,
}

/// Apply `action` to the selected services' containers; dependencies first for start and
/// restart, dependents first for stop and kill.
pub async fn lifecycle(
    c: &Client,
    p: &Project,
    action: Action,
    services: &[String],
    timeout: Option<i64>,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    let all = services_of(p);
    for s in services {
        if !all.contains_key(s) {
            return Err(ApplyError::NoSuchService(s.clone()));
        }
    }
    let deps: BTreeMap<&str, Vec<&str>> = all
        .iter()
        .map(|(name, svc)| {
            let d: Vec<&str> = svc
                .get("depends_on")
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            (name.as_str(), d)
        })
        .collect();
    let mut order: Vec<&str> = crate::order::start_order(&deps)
        .map_err(|cycle| {
            ApplyError::NoSuchService(format!("dependency cycle: {}", cycle.join(" -> ")))
        })?
        .into_iter()
        .flatten()
        .collect();
    if matches!(action, Action::Stop | Action::Kill) {
        order.reverse();
    }
    let mut existing = containers(c, &p.name).await?;
    existing.retain(is_replica);
    let t = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
    for name in order {
        if !services.is_empty() && !services.iter().any(|s| s == name) {
            continue;
        }
        let mut mine: Vec<&Value> = existing
            .iter()
            .filter(|x| label(x, labels::SERVICE) == Some(name))
            .collect();
        mine.sort_by_key(|x| cname(x));
        for x in mine {
            let (cid, cn) = (id(x), cname(x));
            let (path, done) = match action {
                Action::Start => (format!("/containers/{cid}/start"), "Started"),
                Action::Stop => (format!("/containers/{cid}/stop{t}"), "Stopped"),
                Action::Restart => (format!("/containers/{cid}/restart{t}"), "Started"),
                Action::Kill => (format!("/containers/{cid}/kill"), "Killed"),
            };
            match c.post::<Value>(&path, None).await {
                Ok(()) => {}
                // Already in the asked state (start of a running one, stop of a stopped one).
                Err(e) if e.status() == Some(304) => {}
                Err(e) if action == Action::Kill && e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(api(format!("container {cn}"))(e)),
            }
            out(&format!(" Container {cn}  {done}"));
        }
    }
    Ok(())
}

/// The project's containers of `service` sorted by number: (id, name).
pub async fn service_containers(
    c: &Client,
    p: &Project,
    service: &str,
) -> Result<Vec<(String, String)>, ApplyError> {
    if !services_of(p).contains_key(service) {
        return Err(ApplyError::NoSuchService(service.to_string()));
    }
    let mut mine: Vec<(u32, String, String)> = containers(c, &p.name)
        .await?
        .iter()
        .filter(|x| is_replica(x) && label(x, labels::SERVICE) == Some(service))
        .map(|x| {
            let n = label(x, labels::NUMBER)
                .and_then(|n| n.parse().ok())
                .unwrap_or(u32::MAX);
            (n, id(x), cname(x))
        })
        .collect();
    mine.sort();
    Ok(mine.into_iter().map(|(_, i, n)| (i, n)).collect())
}

/// What `run` changes in a one-off container of a service.
#[derive(Debug, Clone, Default)]
pub struct OneOff {
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries added to (and overriding) the service's environment.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `--service-ports`: publish the service's ports (off by default, as in Compose).
    pub service_ports: bool,
    /// `--name`; default `<project>-<service>-run-<12 hex>`.
    pub name: Option<String>,
    pub tty: bool,
    pub stdin_open: bool,
}

/// `run`: start what the service depends on, then create (not start) a one-off container of
/// the service: (id, name). The caller starts and attaches to it.
pub async fn create_oneoff(
    c: &Client,
    p: &Project,
    service: &str,
    one: &OneOff,
    builder: Builder<'_, '_>,
    out: Progress<'_>,
) -> Result<(String, String), ApplyError> {
    let all = services_of(p);
    let Some(svc) = all.get(service) else {
        return Err(ApplyError::NoSuchService(service.to_string()));
    };
    let deps: Vec<String> = svc
        .get("depends_on")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if deps.is_empty() {
        ensure_networks(c, p, out).await?;
        ensure_volumes(c, p, out).await?;
    } else {
        let o = UpOptions {
            services: deps,
            ..UpOptions::default()
        };
        up(c, p, &o, builder, out).await?;
    }
    wait_for_dependencies(c, p, svc).await?;
    ensure_image(
        c,
        &p.name,
        service,
        svc,
        &UpOptions::default(),
        builder,
        out,
    )
    .await?;
    let mut svc = svc.clone();
    if let Some(m) = svc.as_object_mut() {
        if !one.service_ports {
            m.remove("ports");
        }
        if let Some(cmd) = &one.command {
            m.insert("command".into(), json!(cmd));
        }
        if let Some(ep) = &one.entrypoint {
            m.insert("entrypoint".into(), json!(ep));
        }
        if let Some(u) = &one.user {
            m.insert("user".into(), json!(u));
        }
        if let Some(w) = &one.workdir {
            m.insert("working_dir".into(), json!(w));
        }
        m.insert("tty".into(), json!(one.tty));
        m.insert("stdin_open".into(), json!(one.stdin_open));
        m.remove("container_name");
        m.remove("restart");
        let env = m.entry("environment").or_insert_with(|| json!({}));
        for e in &one.env {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            env[k] = json!(v);
        }
    }
    let info = ProjectInfo::of(p);
    let mut body = plan::create_body(&info, &p.model, service, &svc, 1);
    let cn = one.name.clone().unwrap_or_else(|| {
        let mut b = [0u8; 6];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = std::io::Read::read_exact(&mut f, &mut b);
        }
        format!("{}-{service}-run-{}", p.name, hex::encode(b))
    });
    body["Labels"][labels::ONEOFF] = json!("True");
    if let Some(l) = body["Labels"].as_object_mut() {
        l.remove(labels::NUMBER);
        l.remove(labels::CONFIG_HASH);
    }
    if let Some(eps) = body
        .pointer_mut("/NetworkingConfig/EndpointsConfig")
        .and_then(Value::as_object_mut)
    {
        for ep in eps.values_mut() {
            ep["Aliases"] = json!([service, cn]);
        }
    }
    create_from(c, p, service, &svc, cn, body, out).await
}

/// `up --wait`: until every replica of the selected services is running, and healthy when it
/// has a healthcheck; a container that exits or turns unhealthy fails the wait.
pub async fn wait_ready(
    c: &Client,
    p: &Project,
    services: &[String],
    timeout: Option<Duration>,
) -> Result<(), ApplyError> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut ids: Vec<(String, String)> = Vec::new();
    for name in services_of(p).keys() {
        if services.is_empty() || services.contains(name) {
            ids.extend(service_containers(c, p, name).await?);
        }
    }
    for (cid, cn) in ids {
        loop {
            let info: Value = c
                .get_json(&format!("/containers/{cid}/json"))
                .await
                .map_err(api(format!("container {cn}")))?;
            let status = info.pointer("/State/Status").and_then(Value::as_str);
            let health = info.pointer("/State/Health/Status").and_then(Value::as_str);
            match (status, health) {
                (Some("running"), None | Some("healthy")) => break,
                (_, Some("unhealthy")) => return Err(ApplyError::Unhealthy { container: cn }),
                (Some("exited") | Some("dead"), _) => {
                    return Err(ApplyError::Exited {
                        container: cn,
                        code: info
                            .pointer("/State/ExitCode")
                            .and_then(Value::as_i64)
                            .unwrap_or(0),
                    })
                }
                _ => {}
            }
            if deadline.is_some_and(|d| std::time::Instant::now() > d) {
                return Err(ApplyError::WaitTimeout { container: cn });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
