//! The `dockerfile.v0` frontend on berth's builder: the frontend attributes as berth's
//! [`BuildOptions`], the Dockerfile and `.dockerignore` read through the client's session, the
//! context synced with the ignore patterns applied *by the client* (ignored files never reach
//! berth) and streamed as a tar into the same build path `POST /build` takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api_types::{BuildOptions, ByteStream};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::control::{BuildKit, Job, RENDEZVOUS};
use crate::diffcopy::{receive_tar, receive_to_vec, Limits};
use crate::grpc::{Code, Status};
use crate::progress::Translator;

/// Where the frontend reads its inputs: the session's directory names and the Dockerfile's.
#[derive(Debug, PartialEq, Eq)]
pub struct Inputs {
    pub filename: String,
    pub dockerfile_key: String,
    pub context_key: String,
}

/// The build options the frontend attributes ask for.
pub fn build_options(attrs: &HashMap<String, String>) -> Result<(BuildOptions, Inputs), Status> {
    let get = |k: &str| attrs.get(k).map(String::as_str).filter(|v| !v.is_empty());
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
            return Err(Status::unimplemented(format!(
                "named build context {name:?} (additional_contexts, --build-context) is not supported by berth yet"
            )));
        }
    }
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
    };
    Ok((o, inputs))
}

/// A `.dockerignore` as the exclude patterns BuildKit's frontend sends (moby's
/// `ignorefile.ReadAll`): comments and blank lines dropped, paths cleaned, leading `/` removed.
pub fn dockerignore_patterns(text: &str) -> Vec<String> {
    berth_dockerfile::ignore::read_patterns(text)
}

/// The IDs of the secrets a Dockerfile's `RUN --mount=type=secret` read (a Dockerfile that
/// does not parse has none: the build reports why).
pub fn secret_ids(dockerfile: &str) -> Vec<String> {
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
        .filter(|m| m.kind == berth_dockerfile::MountType::Secret)
        .filter_map(|m| m.secret_id())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The registries of a Dockerfile's base images (`FROM`s that name an image, not a stage,
/// `scratch` or a variable): registry as berth names it, host as BuildKit asks the client.
pub fn base_registries(dockerfile: &str) -> Vec<(String, String)> {
    let Ok(df) = berth_dockerfile::parse(dockerfile) else {
        return vec![];
    };
    let stages: Vec<String> = df.stages.iter().filter_map(|s| s.name.clone()).collect();
    let mut out: Vec<(String, String)> = df
        .stages
        .iter()
        .map(|s| s.base.as_str())
        .filter(|b| !b.contains('$') && *b != "scratch" && !stages.iter().any(|n| n == b))
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

/// Limits for the Dockerfile and `.dockerignore` reads (they are held in memory).
const SMALL: Limits = Limits {
    max_entries: 64,
    max_bytes: 16 << 20,
};

impl BuildKit {
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
        // Logins for the base images' registries, shared by the client for this build (used
        // only if the builder has to pull).
        for (registry, host) in base_registries(&text) {
            if let Some(auth) = session.registry_auth(&host).await? {
                opts.registry_auth
                    .insert(registry, berth_api_types::SecretBytes(auth.into_bytes()));
            }
        }

        job.log
            .push(progress.start("[internal] load .dockerignore".into()));
        let ignore = match files.get(&own_ignore) {
            Some(t) => Some(t.clone()),
            None => {
                let conn = ctx_session
                    .diff_copy(&inputs.context_key, &[".dockerignore".into()], &[])
                    .await?;
                tar_files(&receive_to_vec(conn, SMALL).await?)?.remove(".dockerignore")
            }
        };
        let ignore = ignore.map(|t| String::from_utf8_lossy(&t).into_owned());
        let excludes = ignore
            .as_deref()
            .map(dockerignore_patterns)
            .unwrap_or_default();
        opts.dockerignore_inline = Some(ignore.unwrap_or_default());

        job.log
            .push(progress.start("[internal] load build context".into()));
        let conn = ctx_session
            .diff_copy(&inputs.context_key, &[], &excludes)
            .await?;
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let keep = tx.clone();
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
        let sync = async {
            let r = receive_tar(conn, tx, Limits::default()).await;
            if let Err(e) = &r {
                if let Ok(mut f) = failed.lock() {
                    *f = Some(e.to_string());
                }
            }
            drop(keep);
            r
        };
        let (synced, built) = tokio::join!(sync, self.images.build(body, opts));
        let summary = synced?;
        job.log.push(progress.start(format!(
            "[internal] context: {} entries, {} bytes",
            summary.entries, summary.bytes
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
                context_key: "context".into()
            }
        );
        let (o, _) = build_options(&HashMap::new()).unwrap();
        assert_eq!(o.dockerfile, "Dockerfile");
        assert!(!o.no_cache);
    }

    #[test]
    fn what_berth_cannot_do_is_named() {
        for (k, v, code, needle) in [
            (
                "context:base",
                "docker-image://x",
                Code::Unimplemented,
                "base",
            ),
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
    }

    #[test]
    fn base_images_registries() {
        let df = "FROM busybox AS a\nFROM a\nFROM 127.0.0.1:5000/x/y:1\nFROM ${BASE}\n\
                  FROM scratch\nFROM docker.io/library/debian\n";
        assert_eq!(
            base_registries(df),
            [
                ("127.0.0.1:5000".to_string(), "127.0.0.1:5000".to_string()),
                ("docker.io".into(), "registry-1.docker.io".into())
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
