//! The `dockerfile.v0` frontend on berth's builder: the frontend attributes as berth's
//! [`BuildOptions`], the Dockerfile and `.dockerignore` read through the client's session, the
//! context synced with the ignore patterns applied *by the client* (ignored files never reach
//! berth) and streamed as a tar into the same build path `POST /build` takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api_types::{BuildOptions, ByteStream, NamedContext, StreamSlot};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::context_cache::ContextCache;
use crate::control::{BuildKit, Job, RENDEZVOUS};
use crate::diffcopy::{receive_tar_cached, receive_to_vec, Limits};
use crate::grpc::{Code, Status};
use crate::progress::Translator;

/// Where the frontend reads its inputs: the session's directory names and the Dockerfile's.
#[derive(Debug, PartialEq, Eq)]
pub struct Inputs {
    pub filename: String,
    pub dockerfile_key: String,
    pub context_key: String,
    /// Named contexts that are directories of the session: (name, the session's dir name).
    pub named_locals: Vec<(String, String)>,
}

/// The build options the frontend attributes ask for.
pub fn build_options(attrs: &HashMap<String, String>) -> Result<(BuildOptions, Inputs), Status> {
    let get = |k: &str| attrs.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut named_locals = Vec::new();
    let mut o = BuildOptions {
        dockerfile: get("filename").unwrap_or("Dockerfile").to_string(),
        ..Default::default()
    };
    for (k, v) in attrs {
        if let Some(name) = k.strip_prefix("build-arg:") {
            o.build_args.insert(name.to_string(), v.clone());
        } else if let Some(name) = k.strip_prefix("label:") {
            o.labels.insert(name.to_string(), v.clone());
        } else if let Some(name) = k.strip_prefix("context:") {
            match NamedSource::parse(name, v)? {
                NamedSource::Image(r) => {
                    o.named_contexts
                        .insert(name.to_string(), NamedContext::Image(r));
                }
                NamedSource::Local(dir) => named_locals.push((name.to_string(), dir)),
            }
        }
    }
    named_locals.sort();
    o.target = get("target").map(str::to_string);
    // `no-cache` with stage names disables the cache for all stages: berth's cache is per build.
    o.no_cache = attrs.contains_key("no-cache");
    o.pull = get("image-resolve-mode") == Some("pull");
    o.network = match get("force-network-mode") {
        None | Some("sandbox") | Some("default") => String::new(),
        Some(n @ ("none" | "host")) => n.to_string(),
        Some(n) => {
            return Err(Status::invalid(format!(
                "unknown network mode {n:?}: want default, none or host"
            )))
        }
    };
    if let Some(p) = get("platform") {
        if p.contains(',') {
            return Err(Status::unimplemented(format!(
                "multi-platform builds ({p}) are not supported by berth"
            )));
        }
        o.platform = p.to_string();
    }
    if let Some(hosts) = get("add-hosts") {
        for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let (name, ip) = h
                .split_once('=')
                .or_else(|| h.split_once(':'))
                .ok_or_else(|| {
                    Status::invalid(format!("invalid extra host {h:?}: want name=ip"))
                })?;
            o.extra_hosts.push((name.to_string(), ip.to_string()));
        }
    }
    let inputs = Inputs {
        filename: o.dockerfile.clone(),
        dockerfile_key: get("dockerfilekey").unwrap_or("dockerfile").to_string(),
        context_key: get("contextkey").unwrap_or("context").to_string(),
        named_locals,
    };
    Ok((o, inputs))
}

/// What a `context:NAME` attribute points at.
#[derive(Debug, PartialEq, Eq)]
enum NamedSource {
    /// `docker-image://REF`
    Image(String),
    /// `local:DIR`: a directory the session serves under that name.
    Local(String),
}

impl NamedSource {
    fn parse(name: &str, value: &str) -> Result<NamedSource, Status> {
        if name.is_empty() {
            return Err(Status::invalid("a named build context needs a name"));
        }
        if let Some(r) = value.strip_prefix("docker-image://") {
            berth_oci::Reference::parse(r).map_err(|e| {
                Status::invalid(format!(
                    "named build context {name:?}: invalid image {r:?}: {e}"
                ))
            })?;
            return Ok(NamedSource::Image(r.to_string()));
        }
        if let Some(dir) = value.strip_prefix("local:").filter(|d| !d.is_empty()) {
            return Ok(NamedSource::Local(dir.to_string()));
        }
        let kind = value.split_once("://").map_or(value, |(k, _)| k);
        Err(Status::unimplemented(format!(
            "named build context {name:?} = {value:?}: berth takes docker-image:// and local directories, not {kind}"
        )))
    }
}

/// A `.dockerignore` as the exclude patterns BuildKit's frontend sends (moby's
/// `ignorefile.ReadAll`): comments and blank lines dropped, paths cleaned, leading `/` removed.
pub fn dockerignore_patterns(text: &str) -> Vec<String> {
    berth_dockerfile::ignore::read_patterns(text)
}

/// The IDs of the secrets a Dockerfile's `RUN --mount=type=secret` read (a Dockerfile that
/// does not parse has none: the build reports why).
pub fn secret_ids(dockerfile: &str) -> Vec<String> {
    mount_ids(dockerfile, berth_dockerfile::MountType::Secret, |m| {
        m.secret_id()
    })
}

/// The IDs of the SSH agents a Dockerfile's `RUN --mount=type=ssh` use.
pub fn ssh_ids(dockerfile: &str) -> Vec<String> {
    mount_ids(dockerfile, berth_dockerfile::MountType::Ssh, |m| {
        Some(m.ssh_id())
    })
}

/// The IDs `id_of` gives for a Dockerfile's RUN mounts of `kind`, sorted and unique.
fn mount_ids(
    dockerfile: &str,
    kind: berth_dockerfile::MountType,
    id_of: impl Fn(&berth_dockerfile::Mount) -> Option<String>,
) -> Vec<String> {
    let Ok(df) = berth_dockerfile::parse(dockerfile) else {
        return vec![];
    };
    let mut ids: Vec<String> = df
        .stages
        .iter()
        .flat_map(|s| &s.instructions)
        .filter_map(|i| match &i.kind {
            berth_dockerfile::InstructionKind::Run(r) => Some(&r.mounts),
            _ => None,
        })
        .flatten()
        .filter(|m| m.kind == kind)
        .filter_map(id_of)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The registries of the images a Dockerfile reads: `FROM`s, `COPY --from=` and `RUN
/// --mount=from=` that name an image (not a stage, a stage index, `scratch` or a variable):
/// registry as berth names it, host as BuildKit asks the client.
pub fn base_registries(dockerfile: &str) -> Vec<(String, String)> {
    let Ok(df) = berth_dockerfile::parse(dockerfile) else {
        return vec![];
    };
    let stages: Vec<String> = df.stages.iter().filter_map(|s| s.name.clone()).collect();
    let froms = df
        .stages
        .iter()
        .flat_map(|s| &s.instructions)
        .flat_map(|i| {
            let mut v: Vec<&str> = vec![];
            match &i.kind {
                berth_dockerfile::InstructionKind::Copy(c)
                | berth_dockerfile::InstructionKind::Add(c) => v.extend(c.from.as_deref()),
                berth_dockerfile::InstructionKind::Run(r) => {
                    v.extend(r.mounts.iter().filter_map(|m| m.from.as_deref()))
                }
                _ => {}
            }
            v
        });
    image_registries(
        df.stages
            .iter()
            .map(|s| s.base.as_str())
            .chain(froms)
            .filter(|b| {
                !b.contains('$')
                    && *b != "scratch"
                    && b.parse::<usize>().is_err()
                    && !stages.iter().any(|n| n.eq_ignore_ascii_case(b))
            }),
    )
}

/// The registries of image references: registry as berth names it, host as BuildKit asks
/// the client.
pub fn image_registries<'a>(refs: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = refs
        .into_iter()
        .filter_map(|b| berth_oci::Reference::parse(b).ok())
        .map(|r| {
            let host = if r.registry == berth_oci::reference::DEFAULT_REGISTRY {
                "registry-1.docker.io".to_string()
            } else {
                r.registry.clone()
            };
            (r.registry, host)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A small tar's regular files by path.
fn tar_files(tar_bytes: &[u8]) -> Result<HashMap<String, Vec<u8>>, Status> {
    use std::io::Read;
    let mut out = HashMap::new();
    let mut a = tar::Archive::new(tar_bytes);
    let bad = |e: std::io::Error| Status::internal(format!("read synced files: {e}"));
    for e in a.entries().map_err(bad)? {
        let mut e = e.map_err(bad)?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e.path().map_err(bad)?.to_string_lossy().into_owned();
        let mut data = vec![];
        e.read_to_end(&mut data).map_err(bad)?;
        out.insert(path, data);
    }
    Ok(out)
}

/// A context's `.dockerignore` read through the session (None: it has none).
async fn read_dockerignore(
    session: &crate::session::Session,
    dir: &str,
) -> Result<Option<String>, Status> {
    let conn = session
        .diff_copy(dir, &[".dockerignore".into()], &[])
        .await?;
    Ok(tar_files(&receive_to_vec(conn, SMALL).await?)?
        .remove(".dockerignore")
        .map(|t| String::from_utf8_lossy(&t).into_owned()))
}

/// A directory being synced as a tar stream for the builder, and the sync driving it (its
/// failure also ends the stream with an error, so the builder stops reading).
fn synced_tar(
    conn: crate::diffcopy::PacketConn,
    cache: Option<CacheInUse>,
) -> (
    ByteStream,
    impl std::future::Future<Output = Result<crate::diffcopy::Summary, Status>>,
) {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let f2 = failed.clone();
    let chunks =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) },
        );
    let end = futures::stream::once(async move { f2.lock().ok().and_then(|mut f| f.take()) })
        .filter_map(|e| async move { e.map(|e| Err(std::io::Error::other(e))) });
    let body: ByteStream = Box::pin(chunks.chain(end));
    // `keep` holds the stream open until a failure is recorded, so the stream cannot end
    // cleanly before its error is known.
    let keep = tx.clone();
    let sync = async move {
        let (cache, _in_use) = match cache {
            Some(c) => (Some(c.cache), Some(c.guard)),
            None => (None, None),
        };
        let r = receive_tar_cached(conn, tx, Limits::default(), cache).await;
        if let Err(e) = &r {
            if let Ok(mut f) = failed.lock() {
                *f = Some(e.to_string());
            }
        }
        drop(keep);
        Ok(r?)
    };
    (body, sync)
}

/// Limits for the Dockerfile and `.dockerignore` reads (they are held in memory).
const SMALL: Limits = Limits {
    max_entries: 64,
    max_bytes: 16 << 20,
};

/// A directory's cache, held by one sync at a time.
struct CacheInUse {
    cache: ContextCache,
    guard: InUse,
}

/// Marks a cache busy; a second sync of the same directory meanwhile goes without it.
struct InUse(Arc<Mutex<std::collections::HashSet<String>>>, String);

impl Drop for InUse {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.0.lock() {
            busy.remove(&self.1);
        }
    }
}

impl BuildKit {
    /// What berth kept of the last sync of `dir` by sessions sharing `session`'s key; None
    /// without a key, without a place to keep it, or while another sync uses it.
    fn context_cache(&self, session: &crate::session::Session, dir: &str) -> Option<CacheInUse> {
        if session.shared_key.is_empty() {
            return None;
        }
        let root = self.images.build_state_dir()?;
        let key = format!("{}\0{dir}", session.shared_key);
        if !self.syncing.lock().ok()?.insert(key.clone()) {
            return None;
        }
        let guard = InUse(self.syncing.clone(), key);
        match ContextCache::open(&root, &session.shared_key, dir) {
            Ok(cache) => Some(CacheInUse { cache, guard }),
            Err(e) => {
                tracing::warn!("build context cache {}: {e}", root.display());
                None
            }
        }
    }

    /// Run `dockerfile.v0` for `job`: the built image's ID.
    pub(crate) async fn run_frontend(
        &self,
        job: &Job,
        attrs: &HashMap<String, String>,
    ) -> Result<String, Status> {
        let (mut opts, inputs) = build_options(attrs)?;
        let session_of = |key: &str| {
            attrs
                .get(&format!("local-sessionid:{key}"))
                .cloned()
                .unwrap_or_else(|| job.session.clone())
        };
        let run = job.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut progress = Translator::new(&format!("berth:{}:{run}", job.r#ref));
        let df_session = self
            .sessions
            .get(&session_of(&inputs.dockerfile_key), RENDEZVOUS)
            .await?;
        let ctx_session = self
            .sessions
            .get(&session_of(&inputs.context_key), RENDEZVOUS)
            .await?;

        job.log.push(progress.start(format!(
            "[internal] load build definition from {}",
            inputs.filename
        )));
        let own_ignore = format!("{}.dockerignore", inputs.filename);
        let conn = df_session
            .diff_copy(
                &inputs.dockerfile_key,
                &[inputs.filename.clone(), own_ignore.clone()],
                &[],
            )
            .await?;
        let files = tar_files(&receive_to_vec(conn, SMALL).await?)?;
        let dockerfile = files.get(&inputs.filename).ok_or_else(|| {
            Status::invalid(format!(
                "failed to read dockerfile: open {}: no such file or directory",
                inputs.filename
            ))
        })?;
        opts.dockerfile_inline = Some(String::from_utf8_lossy(dockerfile).into_owned());
        // The secrets the Dockerfile reads, asked of the client up front (the builder mounts
        // them; a missing one fails only the steps that require it).
        let session = self.sessions.get(&job.session, RENDEZVOUS).await?;
        let text = opts.dockerfile_inline.clone().unwrap_or_default();
        for id in secret_ids(&text) {
            if let Some(data) = session.get_secret(&id).await? {
                opts.secrets.insert(id, berth_api_types::SecretBytes(data));
            }
        }
        // The SSH agents the Dockerfile's mounts use that the client forwards (each RUN
        // connection to one reaches the client's agent through the session).
        for id in ssh_ids(&text) {
            if session.has_agent(&id).await? {
                let agent = crate::session::SessionAgent {
                    session: session.clone(),
                    id: id.clone(),
                };
                opts.ssh
                    .insert(id, berth_api_types::SshForward(Arc::new(agent)));
            }
        }
        // Logins for the base images' registries, shared by the client for this build (used
        // only if the builder has to pull).
        let mut registries = base_registries(&text);
        registries.extend(image_registries(opts.named_contexts.values().filter_map(
            |c| match c {
                NamedContext::Image(r) => Some(r.as_str()),
                NamedContext::Tar(_) => None,
            },
        )));
        registries.sort();
        registries.dedup();
        for (registry, host) in registries {
            if let Some(auth) = session.registry_auth(&host).await? {
                opts.registry_auth
                    .insert(registry, berth_api_types::SecretBytes(auth.into_bytes()));
            }
        }

        job.log
            .push(progress.start("[internal] load .dockerignore".into()));
        let ignore = match files.get(&own_ignore) {
            Some(t) => Some(String::from_utf8_lossy(t).into_owned()),
            None => read_dockerignore(&ctx_session, &inputs.context_key).await?,
        };
        let excludes = ignore
            .as_deref()
            .map(dockerignore_patterns)
            .unwrap_or_default();
        opts.dockerignore_inline = Some(ignore.unwrap_or_default());

        // Named contexts that are the client's directories: each synced with its own
        // `.dockerignore` applied, streamed to the builder beside the context.
        let mut named_syncs = Vec::new();
        for (name, dir) in &inputs.named_locals {
            job.log
                .push(progress.start(format!("[context {name}] load from client")));
            let session = self.sessions.get(&session_of(dir), RENDEZVOUS).await?;
            let excludes = read_dockerignore(&session, dir)
                .await?
                .as_deref()
                .map(dockerignore_patterns)
                .unwrap_or_default();
            let conn = session.diff_copy(dir, &[], &excludes).await?;
            let (stream, sync) = synced_tar(conn, self.context_cache(&session, dir));
            opts.named_contexts
                .insert(name.clone(), NamedContext::Tar(StreamSlot::new(stream)));
            named_syncs.push(sync);
        }

        job.log
            .push(progress.start("[internal] load build context".into()));
        let conn = ctx_session
            .diff_copy(&inputs.context_key, &[], &excludes)
            .await?;
        let (body, sync) = synced_tar(conn, self.context_cache(&ctx_session, &inputs.context_key));
        let named_sync = async {
            for r in futures::future::join_all(named_syncs).await {
                r?;
            }
            Ok::<_, Status>(())
        };
        let (synced, named_synced, built) =
            tokio::join!(sync, named_sync, self.images.build(body, opts));
        let summary = synced?;
        named_synced?;
        job.log.push(progress.start(format!(
            "[internal] context: {} entries, {} bytes, {} transferred",
            summary.entries, summary.bytes, summary.transferred
        )));
        job.log.push(progress.complete());
        let mut messages = built.map_err(|e| Status::new(Code::Unknown, e.to_string()))?;
        while let Some(m) = messages.next().await {
            job.log.push(progress.message(&m));
        }
        job.log.push(progress.complete());
        if let Some(e) = progress.error {
            return Err(Status::new(Code::Unknown, e));
        }
        progress
            .image_id
            .ok_or_else(|| Status::internal("the build ended without an image"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_attributes_become_build_options() {
        let attrs: HashMap<String, String> = [
            ("filename", "app.Dockerfile"),
            ("target", "prod"),
            ("build-arg:V", "1"),
            ("label:team", "x"),
            ("no-cache", ""),
            ("image-resolve-mode", "pull"),
            ("force-network-mode", "none"),
            ("add-hosts", "db=10.0.0.5,cache=10.0.0.6"),
            ("platform", "linux/amd64"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (o, i) = build_options(&attrs).unwrap();
        assert_eq!(o.dockerfile, "app.Dockerfile");
        assert_eq!(o.target.as_deref(), Some("prod"));
        assert_eq!(o.build_args["V"], "1");
        assert_eq!(o.labels["team"], "x");
        assert!(o.no_cache && o.pull);
        assert_eq!(o.network, "none");
        assert_eq!(o.platform, "linux/amd64");
        assert_eq!(
            o.extra_hosts,
            [
                ("db".to_string(), "10.0.0.5".to_string()),
                ("cache".into(), "10.0.0.6".into())
            ]
        );
        assert_eq!(
            i,
            Inputs {
                filename: "app.Dockerfile".into(),
                dockerfile_key: "dockerfile".into(),
                context_key: "context".into(),
                named_locals: vec![],
            }
        );
        let (o, _) = build_options(&HashMap::new()).unwrap();
        assert_eq!(o.dockerfile, "Dockerfile");
        assert!(!o.no_cache);
    }

    #[test]
    fn named_contexts_are_images_or_session_dirs() {
        let attrs: HashMap<String, String> = [
            ("context:alpine", "docker-image://127.0.0.1:5000/alpine:3"),
            ("context:assets", "local:assets"),
            ("context:docs", "local:_docs"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (o, i) = build_options(&attrs).unwrap();
        assert_eq!(
            o.named_contexts["alpine"],
            NamedContext::Image("127.0.0.1:5000/alpine:3".into())
        );
        assert_eq!(o.named_contexts.len(), 1);
        assert_eq!(
            i.named_locals,
            [
                ("assets".to_string(), "assets".to_string()),
                ("docs".into(), "_docs".into())
            ]
        );
    }

    #[test]
    fn what_berth_cannot_do_is_named() {
        for (k, v, code, needle) in [
            (
                "context:base",
                "git://example.com/x.git",
                Code::Unimplemented,
                "base",
            ),
            (
                "context:base",
                "docker-image://Not A Ref",
                Code::InvalidArgument,
                "Not A Ref",
            ),
            ("context:base", "local:", Code::Unimplemented, "local:"),
            (
                "platform",
                "linux/amd64,linux/arm64",
                Code::Unimplemented,
                "multi-platform",
            ),
            (
                "force-network-mode",
                "bogus",
                Code::InvalidArgument,
                "bogus",
            ),
            ("add-hosts", "nohost", Code::InvalidArgument, "nohost"),
        ] {
            let attrs = HashMap::from([(k.to_string(), v.to_string())]);
            let e = build_options(&attrs).unwrap_err();
            assert_eq!(e.code, code, "{k}");
            assert!(e.message.contains(needle), "{}", e.message);
        }
    }

    #[test]
    fn the_secrets_a_dockerfile_reads() {
        let df = "FROM a AS one\nRUN --mount=type=secret,id=tok --mount=type=cache,target=/c x\n\
                  FROM b\nRUN --mount=type=secret,target=/etc/app.key y\n\
                  RUN --mount=type=secret,id=tok,env=T z\n";
        assert_eq!(secret_ids(df), ["app.key", "tok"]);
        assert!(secret_ids("FROM a\nRUN --mount=type=bogus x\n").is_empty());
        let df = "FROM a\nRUN --mount=type=ssh x\nRUN --mount=type=ssh,id=git --mount=type=ssh y\n";
        assert_eq!(ssh_ids(df), ["default", "git"]);
    }

    #[test]
    fn base_images_registries() {
        let df = "FROM busybox AS a\nFROM a\nFROM 127.0.0.1:5000/x/y:1\nFROM ${BASE}\n\
                  FROM scratch\nFROM docker.io/library/debian\n\
                  COPY --from=a /x /x\nCOPY --from=0 /y /y\nCOPY --from=ghcr.io/o/tool:1 /t /t\n\
                  RUN --mount=from=quay.io/q/data,target=/d true\n";
        assert_eq!(
            base_registries(df),
            [
                ("127.0.0.1:5000".to_string(), "127.0.0.1:5000".to_string()),
                ("docker.io".into(), "registry-1.docker.io".into()),
                ("ghcr.io".into(), "ghcr.io".into()),
                ("quay.io".into(), "quay.io".into())
            ]
        );
    }

    #[test]
    fn dockerignore_reads_as_buildkit_reads_it() {
        let text = "\u{feff}# comment\n\n  *.log  \n/secret.txt\n!keep.log\n./a/../b/\n!\n #not a comment\n";
        assert_eq!(
            dockerignore_patterns(text),
            [
                "*.log",
                "secret.txt",
                "!keep.log",
                "b",
                "!",
                "#not a comment"
            ]
        );
        let clean = berth_dockerfile::ignore::clean_path;
        assert_eq!(clean("a//b/./c/.."), "a/b");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean("/"), "/");
    }
}
