//! BuildKit's services as berth answers them on `/grpc`: `moby.buildkit.v1.Control` (Solve,
//! Status, ListWorkers, Info, DiskUsage, Prune) and the `moby.buildkit.v1.frontend.LLBBridge`
//! a client-side build function (buildx, Compose v2) drives: Ping, Solve with the
//! `dockerfile.v0` frontend, Return. A `Control.Solve` registers a job under its ref; the
//! bridge's calls find it by their `buildid` metadata; `Status` replays its progress.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api_types::ImageService;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::{oneshot, Notify};

use crate::grpc::{self, Body, Code, Status};
use crate::progress::Log;
use crate::proto::control as pb;
use crate::proto::gateway as gw;
use crate::session::Sessions;

/// How long a bridge call or `Status` waits for the `Control.Solve` it belongs to (they are
/// sent concurrently), and a build for its session to connect.
pub const RENDEZVOUS: Duration = Duration::from_secs(30);
/// The metadata naming the build a gateway call belongs to (BuildKit's `client/buildid`).
pub const BUILD_ID: &str = "buildkit-controlapi-buildid";
/// How long a finished job stays for a late `Status` reader.
const KEEP_FINISHED: Duration = Duration::from_secs(60);

/// What a client's build function returns: the image its result stands for (None: no
/// result), or its error.
type Outcome = Result<Option<String>, Status>;

/// One `Control.Solve` in progress.
pub struct Job {
    pub r#ref: String,
    pub session: String,
    pub log: Log,
    /// Result refs handed to the client → the image each stands for.
    refs: Mutex<HashMap<String, String>>,
    returned: Mutex<Option<oneshot::Sender<Outcome>>>,
    solves: AtomicUsize,
    /// Frontend runs started (each names its vertices apart).
    pub(crate) runs: AtomicUsize,
}

/// BuildKit's API over berth's image service.
pub struct BuildKit {
    pub(crate) images: Arc<dyn ImageService>,
    pub sessions: Arc<Sessions>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    jobs_changed: Notify,
    /// Context caches a sync is using (by shared key and directory).
    pub(crate) syncing: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// Removes a job from the table a while after its solve ends.
struct JobGuard(Arc<BuildKit>, Arc<Job>);

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.1.log.close();
        let (kit, r) = (self.0.clone(), self.1.r#ref.clone());
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                tokio::time::sleep(KEEP_FINISHED).await;
                if let Ok(mut j) = kit.jobs.lock() {
                    j.remove(&r);
                }
            });
        }
    }
}

/// What a solve's result becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Export {
    /// No exporter (a probe build) or `cacheonly`.
    Nothing,
    /// `moby`/`image`: an image in berth's store, tagged with these names (and pushed to
    /// their registries with `push=true`).
    Image { names: Vec<String>, push: bool },
    /// `docker`/`oci`: the image as one archive sent to the client (an OCI layout with
    /// docker's `manifest.json`, as `docker save` writes), tagged with these names.
    Archive { names: Vec<String> },
    /// `tar`: the image's filesystem as one tar sent to the client.
    Tar,
    /// `local`: the image's filesystem as files in the client's directory.
    Local,
}

impl Export {
    /// The one exporter a solve asks for, or a clear refusal naming it.
    pub fn of(req: &pb::SolveRequest) -> Result<Export, Status> {
        let mut exporters = req.exporters.clone();
        if exporters.is_empty() && !req.exporter_deprecated.is_empty() {
            exporters.push(pb::Exporter {
                r#type: req.exporter_deprecated.clone(),
                attrs: req.exporter_attrs_deprecated.clone(),
            });
        }
        if exporters.len() > 1 {
            return Err(Status::unimplemented(format!(
                "berth exports one output per build; this one asks for {} ({})",
                exporters.len(),
                exporters
                    .iter()
                    .map(|e| e.r#type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let Some(e) = exporters.into_iter().next() else {
            return Ok(Export::Nothing);
        };
        let names: Vec<String> = e
            .attrs
            .get("name")
            .map(|n| {
                n.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        match e.r#type.as_str() {
            "moby" | "image" => {
                let push = e.attrs.get("push").map(String::as_str) == Some("true");
                if push && names.is_empty() {
                    return Err(Status::invalid(
                        "exporter image with push=true needs a name to push to",
                    ));
                }
                Ok(Export::Image { names, push })
            }
            "docker" | "oci" => Ok(Export::Archive { names }),
            "tar" => Ok(Export::Tar),
            "local" => Ok(Export::Local),
            "cacheonly" => Ok(Export::Nothing),
            t => Err(Status::invalid(format!(
                "unknown exporter {t:?}: BuildKit's are image, moby, docker, oci, tar, local and cacheonly"
            ))),
        }
    }
}

/// Write a stream to a file.
async fn copy_to_file(
    mut s: berth_api_types::ByteStream,
    path: &std::path::Path,
) -> Result<(), Status> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let bad = |e: std::io::Error| Status::internal(format!("export: {e}"));
    let mut f = tokio::fs::File::create(path).await.map_err(bad)?;
    while let Some(c) = s.next().await {
        f.write_all(&c.map_err(bad)?).await.map_err(bad)?;
    }
    f.flush().await.map_err(bad)
}

/// `name` as `(repository, tag)` (`latest` when untagged).
pub fn split_name(name: &str) -> Result<(String, String), Status> {
    if name.contains('@') {
        return Err(Status::invalid(format!(
            "cannot tag a build result with the digest reference {name:?}"
        )));
    }
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    Ok(match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "latest".to_string()),
    })
}

fn host_platform() -> pb::Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        a => a,
    };
    pb::Platform {
        architecture: arch.into(),
        os: "linux".into(),
        ..Default::default()
    }
}

fn version() -> pb::BuildkitVersion {
    pb::BuildkitVersion {
        package: "berth".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        revision: String::new(),
    }
}

/// The one worker: berth's own builder on this host.
pub fn worker() -> pb::WorkerRecord {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    pb::WorkerRecord {
        id: "berth".into(),
        labels: [
            ("org.mobyproject.buildkit.worker.executor", "berth"),
            (
                "org.mobyproject.buildkit.worker.hostname",
                hostname.as_str(),
            ),
            ("org.mobyproject.buildkit.worker.network", "host"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        platforms: vec![host_platform()],
        buildkit_version: Some(version()),
    }
}

/// The gateway capabilities berth has (a client falls back to the frozen defaults for LLB).
pub fn frontend_caps() -> Vec<gw::ApiCap> {
    [
        "solve.base",
        "solve.inlinereturn",
        "return",
        "returnmap",
        "proto.refarray",
        "gateway.evaluate",
    ]
    .into_iter()
    .map(|id| gw::ApiCap {
        id: id.into(),
        enabled: true,
        ..Default::default()
    })
    .collect()
}

/// A `/system/df` build-cache item as BuildKit's usage record.
fn usage_record(i: berth_api_types::BuildCacheItem) -> pb::UsageRecord {
    let ts = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| pb::Timestamp {
                seconds: t.timestamp(),
                nanos: t.timestamp_subsec_nanos() as i32,
            })
    };
    pb::UsageRecord {
        created_at: ts(&i.created_at),
        last_used_at: ts(&i.last_used_at),
        id: i.id,
        mutable: false,
        in_use: i.in_use,
        size: i.size as i64,
        usage_count: i.usage_count,
        description: i.description,
        record_type: i.typ,
        shared: i.shared,
    }
}

impl BuildKit {
    pub fn new(images: Arc<dyn ImageService>) -> Arc<Self> {
        Arc::new(BuildKit {
            images,
            sessions: Arc::new(Sessions::default()),
            jobs: Mutex::new(HashMap::new()),
            jobs_changed: Notify::new(),
            syncing: Arc::default(),
        })
    }

    /// The job `r`, waiting up to [`RENDEZVOUS`] for its `Control.Solve` to register it.
    async fn job(&self, r: &str) -> Result<Arc<Job>, Status> {
        if r.is_empty() {
            return Err(Status::invalid(format!(
                "the call names no build: {BUILD_ID} metadata missing"
            )));
        }
        let deadline = tokio::time::Instant::now() + RENDEZVOUS;
        loop {
            let notified = self.jobs_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(j) = self.jobs.lock().ok().and_then(|m| m.get(r).cloned()) {
                return Ok(j);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Status::not_found(format!("no build {r:?} in progress")));
            }
        }
    }

    /// Answer one gRPC call on `/grpc`.
    pub async fn dispatch(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let build_id = grpc::metadata(req.headers(), BUILD_ID)
            .unwrap_or_default()
            .to_string();
        let body = req.into_body();
        tracing::debug!(method = %path, build = %build_id, "buildkit call");
        match path.as_str() {
            "/moby.buildkit.v1.Control/Solve" => {
                grpc::unary(async { self.solve(grpc::read_unary(body).await?).await }.await)
            }
            "/moby.buildkit.v1.Control/Status" => match grpc::read_unary(body).await {
                Err(e) => grpc::error_response(&e),
                Ok(r) => self.status(r),
            },
            "/moby.buildkit.v1.Control/ListWorkers" => grpc::unary(Ok(pb::ListWorkersResponse {
                record: vec![worker()],
            })),
            "/moby.buildkit.v1.Control/Info" => grpc::unary(Ok(pb::InfoResponse {
                buildkit_version: Some(version()),
            })),
            "/moby.buildkit.v1.Control/DiskUsage" => match self.images.build_cache().await {
                Err(e) => grpc::error_response(&Status::internal(e.to_string())),
                Ok(items) => grpc::unary(Ok(pb::DiskUsageResponse {
                    record: items.into_iter().map(usage_record).collect(),
                })),
            },
            "/moby.buildkit.v1.Control/Prune" => {
                let r = self.images.build_prune().await;
                match r {
                    Err(e) => grpc::error_response(&Status::internal(e.to_string())),
                    Ok((ids, _)) => {
                        grpc::streaming(futures::stream::iter(ids.into_iter().map(|id| {
                            Ok(pb::UsageRecord {
                                id,
                                record_type: "regular".into(),
                                ..Default::default()
                            })
                        })))
                    }
                }
            }
            "/moby.buildkit.v1.frontend.LLBBridge/Ping" => grpc::unary(Ok(gw::PongResponse {
                frontend_api_caps: frontend_caps(),
                llb_caps: vec![],
                workers: vec![worker()],
            })),
            "/moby.buildkit.v1.frontend.LLBBridge/Solve" => grpc::unary(
                async {
                    let req: gw::SolveRequest = grpc::read_unary(body).await?;
                    self.bridge_solve(&build_id, req).await
                }
                .await,
            ),
            "/moby.buildkit.v1.frontend.LLBBridge/Return" => grpc::unary(
                async {
                    let req: gw::ReturnRequest = grpc::read_unary(body).await?;
                    self.bridge_return(&build_id, req).await
                }
                .await,
            ),
            "/moby.buildkit.v1.frontend.LLBBridge/Evaluate" => {
                grpc::unary(Ok(gw::EvaluateResponse {}))
            }
            other => grpc::error_response(&Status::unimplemented(format!(
                "{other} is not implemented by berth's BuildKit API"
            ))),
        }
    }

    async fn solve(self: &Arc<Self>, req: pb::SolveRequest) -> Result<pb::SolveResponse, Status> {
        let export = Export::of(&req)?;
        match req.frontend.as_str() {
            "" if req.definition.is_some() => {
                return Err(Status::unimplemented(
                    "solving an LLB definition is not supported by berth's builder: build with the dockerfile.v0 frontend",
                ))
            }
            "" | "dockerfile.v0" => {}
            f => {
                return Err(Status::unimplemented(format!(
                    "frontend {f:?} is not supported by berth: only dockerfile.v0"
                )))
            }
        }
        if req.r#ref.is_empty() {
            return Err(Status::invalid("a solve needs a ref"));
        }
        let (tx, rx) = oneshot::channel();
        let job = Arc::new(Job {
            r#ref: req.r#ref.clone(),
            session: req.session.clone(),
            log: Log::default(),
            refs: Mutex::new(HashMap::new()),
            returned: Mutex::new(Some(tx)),
            solves: AtomicUsize::new(0),
            runs: AtomicUsize::new(0),
        });
        {
            let mut jobs = self
                .jobs
                .lock()
                .map_err(|_| Status::internal("job table poisoned"))?;
            if jobs.contains_key(&req.r#ref) {
                return Err(Status::new(
                    Code::AlreadyExists,
                    format!("a build with ref {:?} already exists", req.r#ref),
                ));
            }
            jobs.insert(req.r#ref.clone(), job.clone());
        }
        self.jobs_changed.notify_waiters();
        let _guard = JobGuard(self.clone(), job.clone());
        let image = if req.frontend.is_empty() {
            // The client runs the build function; it ends with LLBBridge.Return.
            rx.await.map_err(|_| {
                Status::new(
                    Code::Cancelled,
                    "the build's client went away before returning a result",
                )
            })??
        } else {
            Some(self.run_frontend(&job, &req.frontend_attrs).await?)
        };
        self.export(export, image, &req.session).await
    }

    async fn export(
        &self,
        export: Export,
        image: Option<String>,
        session: &str,
    ) -> Result<pb::SolveResponse, Status> {
        let mut out = HashMap::new();
        if export == Export::Nothing {
            return Ok(pb::SolveResponse::default());
        }
        let id = image.ok_or_else(|| Status::invalid("the build returned no result to export"))?;
        let names = match &export {
            Export::Image { names, .. } | Export::Archive { names } => names.clone(),
            _ => vec![],
        };
        for n in &names {
            let (repo, tag) = split_name(n)?;
            self.images
                .tag(&id, &repo, &tag)
                .await
                .map_err(|e| Status::internal(format!("tag {id} as {n}: {e}")))?;
        }
        out.insert("containerimage.digest".to_string(), id.clone());
        out.insert("containerimage.config.digest".to_string(), id.clone());
        if !names.is_empty() {
            out.insert("image.name".to_string(), names.join(","));
        }
        let client = || self.sessions.get(session, RENDEZVOUS);
        match export {
            Export::Image { push: true, .. } => {
                let client = client().await?;
                for n in &names {
                    self.push(&client, n).await?;
                }
            }
            Export::Archive { .. } => {
                let saved = if names.is_empty() {
                    vec![id.clone()]
                } else {
                    names.clone()
                };
                let archive = self
                    .images
                    .save(saved)
                    .await
                    .map_err(|e| Status::internal(format!("export {id} as an archive: {e}")))?;
                client().await?.file_send(0, archive).await?;
            }
            Export::Tar => {
                let fs = self.rootfs(&id).await?;
                client().await?.file_send(0, fs).await?;
            }
            Export::Local => {
                let fs = self.rootfs(&id).await?;
                let tmp = tempfile::NamedTempFile::new()
                    .map_err(|e| Status::internal(format!("export: scratch file: {e}")))?;
                copy_to_file(fs, tmp.path()).await?;
                let path = tmp.path().to_path_buf();
                let entries = tokio::task::spawn_blocking(move || crate::sender::index(&path))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))??;
                let conn = client().await?.file_send_dir(0).await?;
                crate::sender::send(conn, tmp.path(), &entries).await?;
            }
            Export::Image { .. } | Export::Nothing => {}
        }
        Ok(pb::SolveResponse {
            exporter_response: out,
        })
    }

    /// Image `id`'s filesystem as a tar stream.
    async fn rootfs(&self, id: &str) -> Result<berth_api_types::ByteStream, Status> {
        self.images
            .export_rootfs(id)
            .await
            .map_err(|e| Status::internal(format!("export the filesystem of {id}: {e}")))
    }

    /// Push `name` with the login the client shares for its registry.
    async fn push(&self, client: &crate::session::Session, name: &str) -> Result<(), Status> {
        use futures::StreamExt;
        let (repo, tag) = split_name(name)?;
        let registry = berth_oci::Reference::parse(name)
            .map_err(|e| Status::invalid(format!("push {name}: {e}")))?
            .registry;
        let host = if registry == berth_oci::reference::DEFAULT_REGISTRY {
            "registry-1.docker.io".to_string()
        } else {
            registry
        };
        let registry_auth = client.registry_auth(&host).await?;
        let mut progress = self
            .images
            .push(berth_api_types::PushOptions {
                name: repo,
                tag,
                registry_auth,
            })
            .await
            .map_err(|e| Status::new(Code::Unknown, format!("push {name}: {e}")))?;
        while let Some(m) = progress.next().await {
            if let Some(e) = m.error {
                return Err(Status::new(Code::Unknown, format!("push {name}: {e}")));
            }
        }
        Ok(())
    }

    fn status(self: &Arc<Self>, req: pb::StatusRequest) -> Response<Body> {
        let kit = self.clone();
        let updates = futures::stream::unfold(
            (kit, req.r#ref, None::<Arc<Job>>, 0usize),
            |(kit, r, job, from)| async move {
                let job = match job {
                    Some(j) => j,
                    // A solve that never comes ends the stream (the client's Solve reports why).
                    None => kit.job(&r).await.ok()?,
                };
                let u = job.log.read_from(from).await;
                if u.is_empty() {
                    return None;
                }
                let n = from + u.len();
                Some((
                    futures::stream::iter(u.into_iter().map(Ok)),
                    (kit, r, Some(job), n),
                ))
            },
        );
        grpc::streaming(futures::StreamExt::flatten(updates))
    }

    async fn bridge_solve(
        self: &Arc<Self>,
        build_id: &str,
        req: gw::SolveRequest,
    ) -> Result<gw::SolveResponse, Status> {
        let job = self.job(build_id).await?;
        if req.r#final {
            return Err(Status::unimplemented(
                "a final gateway solve is not supported by berth: the client must use Return",
            ));
        }
        match req.frontend.as_str() {
            "dockerfile.v0" => {}
            "" if req.definition.is_some() => {
                return Err(Status::unimplemented(
                    "solving an LLB definition is not supported by berth's builder: build with the dockerfile.v0 frontend",
                ))
            }
            "" => return Ok(gw::SolveResponse::default()),
            f => {
                return Err(Status::unimplemented(format!(
                    "frontend {f:?} is not supported by berth: only dockerfile.v0"
                )))
            }
        }
        if let Some(r) = req
            .frontend_opt
            .get("requestid")
            .filter(|r| r.starts_with("frontend."))
        {
            return Err(Status::unimplemented(format!(
                "frontend request {r:?} (docker build --call/--check) is not supported by berth"
            )));
        }
        let image = self.run_frontend(&job, &req.frontend_opt).await?;
        let n = job.solves.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-result-{n}", job.r#ref);
        if let Ok(mut refs) = job.refs.lock() {
            refs.insert(id.clone(), image);
        }
        Ok(gw::SolveResponse {
            r#ref: String::new(),
            result: Some(gw::BuildResult {
                result: Some(gw::build_result::Result::Ref(gw::Ref { id })),
                metadata: HashMap::new(),
            }),
        })
    }

    async fn bridge_return(
        &self,
        build_id: &str,
        req: gw::ReturnRequest,
    ) -> Result<gw::ReturnResponse, Status> {
        let job = self.job(build_id).await?;
        let outcome = match (req.error, req.result) {
            (Some(e), _) if e.code != 0 => Err(Status::new(Code::from_i32(e.code), e.message)),
            (_, None) => Ok(None),
            (_, Some(res)) => {
                let id =
                    match res.result {
                        None => None,
                        Some(gw::build_result::Result::Ref(r)) => Some(r.id),
                        Some(gw::build_result::Result::RefDeprecated(id)) => Some(id),
                        Some(_) => return Err(Status::unimplemented(
                            "returning several results (multi-platform) is not supported by berth",
                        )),
                    }
                    .filter(|id| !id.is_empty());
                match id {
                    None => Ok(None),
                    Some(id) => {
                        let image = job.refs.lock().ok().and_then(|r| r.get(&id).cloned());
                        Ok(Some(image.ok_or_else(|| {
                            Status::invalid(format!("result {id:?} is not one of this build's"))
                        })?))
                    }
                }
            }
        };
        let tx = job.returned.lock().ok().and_then(|mut t| t.take());
        match tx {
            Some(tx) => {
                let _ = tx.send(outcome);
                Ok(gw::ReturnResponse {})
            }
            None => Err(Status::new(
                Code::FailedPrecondition,
                format!("build {build_id} already returned"),
            )),
        }
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
