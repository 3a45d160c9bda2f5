//! Pull: resolve a manifest (tag or digest, index → platform), then fetch config and layers in
//! parallel into a `BlobTarget`, resuming partial blobs with `Range`, verifying digests; tag
//! listing for `--all-tags`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use berth_http::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use berth_http::{Method, Response, StatusCode};
use berth_oci::{
    media_type, Descriptor, Digest, ImageConfig, Index, Manifest, Platform, Reference,
};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};

use crate::auth::Credentials;
use crate::blob::{BlobTarget, BlobWriter};
use crate::client::{blocking, body_errors, net_error, read_capped, Client, Session};
use crate::error::{ErrorKind, RegistryError, Result};
use crate::progress::{Progress, ProgressSink, PROGRESS_STEP};

/// Manifests and indexes larger than this are refused.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Image configs larger than this are refused.
const MAX_CONFIG_SIZE: u64 = 32 << 20;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Platform to pick from an index (`--platform`); the host's when None.
    pub platform: Option<Platform>,
    /// Credentials (from the API's X-Registry-Auth); else the configured config.json.
    pub credentials: Option<Credentials>,
    pub progress: ProgressSink,
}

/// What a pull produced; blobs are in the target, the documents are here for registration.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The reference pulled (tag defaulted to `latest`).
    pub reference: Reference,
    /// Digest of what the tag points to (the index for multi-platform images): the repo digest.
    pub digest: Digest,
    /// The index / manifest list bytes when the reference named one.
    pub index: Option<Vec<u8>>,
    /// The selected image manifest, exact bytes, its digest and media type.
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    /// The image config bytes.
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Descriptor>,
    /// Blobs actually downloaded (0 when everything was present) and their bytes.
    pub fetched_blobs: usize,
    pub fetched_bytes: u64,
    /// The endpoint it came from (`https://host[/prefix]`) and whether that is a mirror.
    pub source: String,
    pub from_mirror: bool,
}

#[derive(Default)]
struct Stats {
    blobs: AtomicUsize,
    bytes: AtomicU64,
}

impl Client {
    /// Pull `reference` into `target`: mirrors first, then the upstream registry.
    #[tracing::instrument(skip_all, fields(image = %reference))]
    pub async fn pull(
        &self,
        reference: &Reference,
        target: &dyn BlobTarget,
        opts: &PullOptions,
    ) -> Result<PulledImage> {
        let reference = reference.clone().with_default_tag();
        let id = reference
            .tag
            .clone()
            .unwrap_or_else(|| reference.manifest_ref());
        opts.progress.status(
            Some(&id),
            format!("Pulling from {}", familiar_path(&reference)),
        );
        let endpoints = self.config().endpoints(&reference.registry, false)?;
        let scopes = vec![format!("repository:{}:pull", reference.repository)];
        let mut last = None;
        for ep in &endpoints {
            let attempt = async {
                let s = self
                    .session(
                        ep,
                        &reference.registry,
                        &reference.repository,
                        opts.credentials.as_ref(),
                        scopes.clone(),
                    )
                    .await?;
                self.pull_from(&s, &reference, target, opts).await
            };
            match attempt.await {
                Ok(p) => {
                    opts.progress.status(None, format!("Digest: {}", p.digest));
                    return Ok(p);
                }
                Err(e) if ep.mirror && e.kind() != ErrorKind::Internal => {
                    tracing::warn!(mirror = %ep.host, error = %e, "mirror failed, trying next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least the upstream endpoint"))
    }

    async fn pull_from(
        &self,
        s: &Session,
        reference: &Reference,
        target: &dyn BlobTarget,
        opts: &PullOptions,
    ) -> Result<PulledImage> {
        let image = reference.familiar();
        let (top, top_type, top_digest) = self
            .fetch_manifest(
                s,
                reference,
                &reference.manifest_ref(),
                reference.digest.as_ref(),
            )
            .await?;
        let mut index = None;
        let (mut bytes, mut mt, mut digest) = (top.clone(), top_type, top_digest.clone());
        // An index may (rarely) point at another index: follow at most two levels.
        for _ in 0..2 {
            if !media_type::is_index(&mt) {
                break;
            }
            let idx = Index::from_slice(&bytes).map_err(|e| malformed(s, &image, "index", e))?;
            let want = opts.platform.clone().unwrap_or_else(Platform::host);
            let desc = idx
                .select(&want)
                .ok_or_else(|| RegistryError::NoMatchingPlatform {
                    image: image.clone(),
                    platform: want.to_string(),
                })?
                .clone();
            if index.is_none() {
                index = Some(bytes.clone());
            }
            (bytes, mt, digest) = self
                .fetch_manifest(s, reference, &desc.digest.to_string(), Some(&desc.digest))
                .await?;
        }
        if !media_type::is_manifest(&mt) {
            return Err(malformed(
                s,
                &image,
                "manifest",
                format!("unsupported media type {mt:?}"),
            ));
        }
        let manifest =
            Manifest::from_slice(&bytes).map_err(|e| malformed(s, &image, "manifest", e))?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if d.size < 0 {
                return Err(malformed(s, &image, "manifest", "negative blob size"));
            }
        }

        let stats = Stats::default();
        let config = self
            .fetch_config(s, &image, &manifest, target, &stats)
            .await?;
        let mut layers: Vec<&Descriptor> = Vec::new();
        for l in &manifest.layers {
            if !layers.iter().any(|x| x.digest == l.digest) {
                layers.push(l);
            }
        }
        let mut todo = Vec::new();
        for l in layers {
            let present = target
                .has_blob(&l.digest)
                .map_err(|e| RegistryError::Blob {
                    digest: l.digest.clone(),
                    source: e,
                })?;
            if present {
                opts.progress
                    .status(Some(l.digest.short()), "Already exists");
            } else {
                opts.progress
                    .status(Some(l.digest.short()), "Pulling fs layer");
                todo.push(l);
            }
        }
        let parallel = self.config().max_concurrent_downloads.max(1);
        for l in todo.iter().skip(parallel) {
            opts.progress.status(Some(l.digest.short()), "Waiting");
        }
        futures::stream::iter(todo.into_iter().map(Ok))
            .try_for_each_concurrent(parallel, |l| {
                let stats = &stats;
                let image = &image;
                async move {
                    self.download_blob(s, image, l, target, &opts.progress, stats)
                        .await?;
                    opts.progress
                        .status(Some(l.digest.short()), "Pull complete");
                    Ok(())
                }
            })
            .await?;

        Ok(PulledImage {
            reference: reference.clone(),
            digest: top_digest,
            index,
            manifest: bytes,
            manifest_digest: digest,
            manifest_media_type: mt,
            config,
            config_digest: manifest.config.digest.clone(),
            layers: manifest.layers.clone(),
            fetched_blobs: stats.blobs.load(Ordering::Relaxed),
            fetched_bytes: stats.bytes.load(Ordering::Relaxed),
            source: s.base.clone(),
            from_mirror: s.mirror,
        })
    }

    /// GET a manifest or index (≤ 4 MiB); verify its digest when one is expected.
    async fn fetch_manifest(
        &self,
        s: &Session,
        reference: &Reference,
        reference_str: &str,
        expect: Option<&Digest>,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let image = reference.familiar();
        let url = s.url(&format!("{}/manifests/{reference_str}", s.repository));
        let (bytes, ct, header_digest) = self
            .retrying("fetching manifest", |_| async {
                let mut h = HeaderMap::new();
                h.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
                let resp = s
                    .send(Method::GET, &url, h, None, "fetching manifest")
                    .await?;
                if !resp.status().is_success() {
                    return Err(manifest_status_error(s, reference, resp).await);
                }
                let ct = header_str(&resp, CONTENT_TYPE.as_str());
                let hd = header_str(&resp, "docker-content-digest");
                let size = resp.content_length();
                let body = read_capped(resp, MAX_MANIFEST_SIZE, &s.registry, "fetching manifest")
                    .await?
                    .ok_or_else(|| RegistryError::ManifestTooLarge {
                        image: image.clone(),
                        registry: s.registry.clone(),
                        size: size.unwrap_or(MAX_MANIFEST_SIZE + 1),
                    })?;
                Ok((body, ct, hd))
            })
            .await?;
        let digest = Digest::of(&bytes);
        if let Some(want) = expect {
            if *want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: "manifest".into(),
                    image,
                    registry: s.registry.clone(),
                    expected: want.clone(),
                    actual: digest.to_string(),
                });
            }
        } else if let Some(h) = header_digest.and_then(|h| h.parse::<Digest>().ok()) {
            if h != digest {
                return Err(RegistryError::DigestMismatch {
                    what: "manifest (Docker-Content-Digest)".into(),
                    image,
                    registry: s.registry.clone(),
                    expected: h,
                    actual: digest.to_string(),
                });
            }
        }
        let ct = ct.unwrap_or_default();
        let ct = ct.split(';').next().unwrap_or_default().trim().to_string();
        if ct.starts_with("application/vnd.docker.distribution.manifest.v1")
            || serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("schemaVersion").and_then(|x| x.as_u64()))
                == Some(1)
        {
            return Err(malformed(
                s,
                &image,
                "manifest",
                "schema 1 manifests are not supported; re-push the image with a current client",
            ));
        }
        let mt = if media_type::is_index(&ct) || media_type::is_manifest(&ct) {
            ct
        } else {
            berth_oci::sniff_media_type(&bytes)
                .ok_or_else(|| malformed(s, &image, "manifest", "not a JSON manifest or index"))?
        };
        Ok((bytes, mt, digest))
    }

    /// The config blob: from the target when present, else fetched (verified) and stored.
    async fn fetch_config(
        &self,
        s: &Session,
        image: &str,
        manifest: &Manifest,
        target: &dyn BlobTarget,
        stats: &Stats,
    ) -> Result<Vec<u8>> {
        let d = &manifest.config;
        let blob_err = |e| RegistryError::Blob {
            digest: d.digest.clone(),
            source: e,
        };
        let _slot = self.blob_lock(&d.digest).await;
        let bytes = if target.has_blob(&d.digest).map_err(blob_err)? {
            target.read_blob(&d.digest).map_err(blob_err)?
        } else {
            let url = s.url(&format!("{}/blobs/{}", s.repository, d.digest));
            let bytes = self
                .retrying("fetching config", |_| async {
                    let resp = s
                        .send(Method::GET, &url, HeaderMap::new(), None, "fetching config")
                        .await?;
                    if !resp.status().is_success() {
                        return Err(blob_status_error(s, image, &d.digest, resp).await);
                    }
                    read_capped(resp, MAX_CONFIG_SIZE, &s.registry, "fetching config")
                        .await?
                        .ok_or_else(|| malformed(s, image, "config", "larger than 32 MiB"))
                })
                .await?;
            let got = Digest::of(&bytes);
            if got != d.digest {
                return Err(RegistryError::DigestMismatch {
                    what: "config".into(),
                    image: image.to_string(),
                    registry: s.registry.clone(),
                    expected: d.digest.clone(),
                    actual: got.to_string(),
                });
            }
            let mut w = target.begin(&d.digest).map_err(blob_err)?;
            if w.offset() != 0 {
                w.abort().map_err(blob_err)?;
                w = target.begin(&d.digest).map_err(blob_err)?;
            }
            w.write_all(&bytes).map_err(blob_err)?;
            blocking(|| w.commit()).map_err(blob_err)?;
            stats.blobs.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            bytes
        };
        if d.media_type == media_type::OCI_CONFIG || d.media_type == media_type::DOCKER_CONFIG {
            let cfg =
                ImageConfig::from_slice(&bytes).map_err(|e| malformed(s, image, "config", e))?;
            if cfg.rootfs.diff_ids.len() != manifest.layers.len() {
                return Err(malformed(
                    s,
                    image,
                    "config",
                    format!(
                        "{} diff_ids for {} layers",
                        cfg.rootfs.diff_ids.len(),
                        manifest.layers.len()
                    ),
                ));
            }
        }
        Ok(bytes)
    }

    /// Fetch one blob into the target, resuming a partial, with retries.
    async fn download_blob(
        &self,
        s: &Session,
        image: &str,
        desc: &Descriptor,
        target: &dyn BlobTarget,
        progress: &ProgressSink,
        stats: &Stats,
    ) -> Result<()> {
        let _slot = self.blob_lock(&desc.digest).await;
        let present = target
            .has_blob(&desc.digest)
            .map_err(|e| RegistryError::Blob {
                digest: desc.digest.clone(),
                source: e,
            })?;
        if present {
            // Another pull stored it while this one waited.
            progress.status(Some(desc.digest.short()), "Already exists");
            return Ok(());
        }
        let url = s.url(&format!("{}/blobs/{}", s.repository, desc.digest));
        self.retrying("fetching blob", |_| {
            self.download_once(s, image, &url, desc, target, progress, stats)
        })
        .await?;
        progress.status(Some(desc.digest.short()), "Download complete");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn download_once(
        &self,
        s: &Session,
        image: &str,
        url: &str,
        desc: &Descriptor,
        target: &dyn BlobTarget,
        progress: &ProgressSink,
        stats: &Stats,
    ) -> Result<()> {
        let digest = &desc.digest;
        let id = digest.short();
        let total = desc.size as u64;
        let blob_err = |e| RegistryError::Blob {
            digest: digest.clone(),
            source: e,
        };
        let mut w = blocking(|| target.begin_layer(digest)).map_err(blob_err)?;
        if w.offset() > total || (w.offset() == total && total > 0) {
            // Complete or overlong partial: let commit judge a complete one, else start over.
            if w.offset() == total {
                return self.finish(s, image, desc, w, None);
            }
            w.abort().map_err(blob_err)?;
            w = blocking(|| target.begin_layer(digest)).map_err(blob_err)?;
        }
        let mut offset = w.offset();
        let mut h = HeaderMap::new();
        if offset > 0 {
            tracing::info!(%digest, offset, "resuming blob download");
            h.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ascii"),
            );
        }
        let resp = s.send(Method::GET, url, h, None, "fetching blob").await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = header_str(&resp, CONTENT_RANGE.as_str())
                    .and_then(|v| parse_content_range_start(&v));
                if start != Some(offset) {
                    // Not the range we asked for: start over cleanly on the next attempt.
                    w.abort().map_err(blob_err)?;
                    return Err(RegistryError::Unavailable {
                        registry: s.registry.clone(),
                        what: format!("fetching blob {digest}"),
                        detail: "registry answered a different byte range".into(),
                    });
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    tracing::info!(%digest, "registry ignored Range; downloading the whole blob");
                    w.abort().map_err(blob_err)?;
                    w = blocking(|| target.begin_layer(digest)).map_err(blob_err)?;
                    offset = w.offset();
                    if offset != 0 {
                        return Err(blob_err(std::io::Error::other(
                            "blob target kept data after abort",
                        )));
                    }
                }
            }
            _ => return Err(blob_status_error(s, image, digest, resp).await),
        }
        let mut hasher = (offset == 0).then(Sha256::new);
        let mut done = offset;
        let mut next_report = offset;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    // Keep the partial for the next attempt to resume.
                    w.flush().map_err(blob_err)?;
                    return Err(net_error(
                        &s.registry,
                        &format!("fetching blob {digest}"),
                        &e,
                    ));
                }
            };
            if done + chunk.len() as u64 > total {
                w.abort().map_err(blob_err)?;
                return Err(malformed(
                    s,
                    image,
                    "blob",
                    format!("{digest} is longer than its declared {total} bytes"),
                ));
            }
            w.write_all(&chunk).map_err(blob_err)?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            done += chunk.len() as u64;
            stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if done >= next_report || done == total {
                progress.emit(Progress::new(Some(id), "Downloading").with_detail(done, total));
                next_report = done + PROGRESS_STEP;
            }
        }
        if done < total {
            w.flush().map_err(blob_err)?;
            return Err(RegistryError::Unavailable {
                registry: s.registry.clone(),
                what: format!("fetching blob {digest}"),
                detail: format!("connection closed after {done} of {total} bytes"),
            });
        }
        progress.status(Some(id), "Verifying Checksum");
        let actual = hasher.map(|h| hex::encode(h.finalize()));
        match self.finish(s, image, desc, w, actual) {
            // A resumed blob whose old prefix was bad: it is gone now, start over.
            Err(RegistryError::DigestMismatch { actual, .. }) if offset > 0 => {
                return Err(RegistryError::Unavailable {
                    registry: s.registry.clone(),
                    what: format!("fetching blob {digest}"),
                    detail: format!("resumed download did not verify ({actual}); restarting"),
                });
            }
            r => r?,
        }
        stats.blobs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Check our own hash (when we saw every byte) and commit; nothing is kept on mismatch.
    fn finish(
        &self,
        s: &Session,
        image: &str,
        desc: &Descriptor,
        w: Box<dyn BlobWriter + '_>,
        actual_hex: Option<String>,
    ) -> Result<()> {
        let digest = &desc.digest;
        let mismatch = |actual: String| RegistryError::DigestMismatch {
            what: format!("layer {}", digest.short()),
            image: image.to_string(),
            registry: s.registry.clone(),
            expected: digest.clone(),
            actual,
        };
        if let Some(hex) = actual_hex {
            if hex != digest.hex() {
                w.abort().map_err(|e| RegistryError::Blob {
                    digest: digest.clone(),
                    source: e,
                })?;
                return Err(mismatch(format!("sha256:{hex}")));
            }
        }
        blocking(|| w.commit()).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                mismatch(e.to_string())
            } else {
                RegistryError::Blob {
                    digest: digest.clone(),
                    source: e,
                }
            }
        })
    }

    /// All tags of `reference`'s repository (`/tags/list`, following `Link` pagination).
    pub async fn list_tags(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
    ) -> Result<Vec<String>> {
        self.list_tags_paged(reference, credentials, None).await
    }

    /// [`Client::list_tags`] asking for pages of `page_size` (`?n=`).
    pub async fn list_tags_paged(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
        page_size: Option<usize>,
    ) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let ep = self
            .config()
            .endpoints(&reference.registry, true)?
            .pop()
            .expect("upstream endpoint");
        let scopes = vec![format!("repository:{}:pull", reference.repository)];
        let s = self
            .session(
                &ep,
                &reference.registry,
                &reference.repository,
                credentials,
                scopes,
            )
            .await?;
        let image = reference.familiar_name();
        let mut url = s.url(&format!("{}/tags/list", s.repository));
        if let Some(n) = page_size {
            url = format!("{url}?n={n}");
        }
        let mut out = Vec::new();
        // Bounded so a server whose Link points back at itself can't loop forever.
        for _ in 0..10_000 {
            let resp = self
                .retrying("listing tags", |_| async {
                    let resp = s
                        .send(Method::GET, &url, HeaderMap::new(), None, "listing tags")
                        .await?;
                    if resp.status().is_success() {
                        Ok(resp)
                    } else {
                        let r =
                            Reference::parse(&image).map_err(|e| RegistryError::InvalidInput {
                                what: "reference",
                                detail: e.to_string(),
                            })?;
                        Err(manifest_status_error(&s, &r, resp).await)
                    }
                })
                .await?;
            let next = header_str(&resp, "link").and_then(|l| parse_next_link(&l));
            let body = read_capped(resp, 64 << 20, &s.registry, "listing tags")
                .await?
                .ok_or_else(|| malformed(&s, &image, "tag list", "larger than 64 MiB"))?;
            let list: TagList =
                serde_json::from_slice(&body).map_err(|e| malformed(&s, &image, "tag list", e))?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = s.url(&n),
                None => return Ok(out),
            }
        }
        Err(malformed(&s, &image, "tag list", "too many pages"))
    }
}

/// `library/busybox` as Docker shows it after "Pulling from".
fn familiar_path(r: &Reference) -> String {
    r.repository.clone()
}

fn header_str(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn malformed(s: &Session, image: &str, what: &'static str, e: impl ToString) -> RegistryError {
    RegistryError::Malformed {
        what,
        image: image.to_string(),
        registry: s.registry.clone(),
        detail: e.to_string(),
    }
}

/// Word a failed manifest request as Docker does.
async fn manifest_status_error(s: &Session, r: &Reference, resp: Response) -> RegistryError {
    let status = resp.status();
    let (code, cause) = body_errors(resp).await;
    match (status, code.as_deref()) {
        (_, Some("NAME_UNKNOWN")) => RegistryError::RepositoryUnknown {
            image: r.familiar_name(),
            cause,
        },
        (_, Some("MANIFEST_UNKNOWN")) | (StatusCode::NOT_FOUND, _) => {
            RegistryError::ManifestUnknown {
                image: r.familiar(),
                cause: if code.is_some() {
                    cause
                } else {
                    "manifest unknown".into()
                },
            }
        }
        (_, Some("DENIED")) | (StatusCode::FORBIDDEN, _) => RegistryError::AccessDenied {
            image: r.familiar_name(),
            cause,
        },
        (StatusCode::UNAUTHORIZED, _) if !s.has_credentials() => RegistryError::AccessDenied {
            image: r.familiar_name(),
            cause,
        },
        (StatusCode::UNAUTHORIZED, _) => s.unauthorized(&cause),
        _ => RegistryError::UnexpectedStatus {
            registry: s.registry.clone(),
            what: format!("fetching manifest of {}", r.familiar()),
            status: status.as_u16(),
            detail: cause,
        },
    }
}

async fn blob_status_error(s: &Session, image: &str, d: &Digest, resp: Response) -> RegistryError {
    let status = resp.status();
    let (_, cause) = body_errors(resp).await;
    match status {
        StatusCode::NOT_FOUND => RegistryError::BlobUnknown {
            image: image.to_string(),
            registry: s.registry.clone(),
            digest: d.clone(),
            cause,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => s.unauthorized(&cause),
        _ => RegistryError::UnexpectedStatus {
            registry: s.registry.clone(),
            what: format!("fetching blob {d}"),
            status: status.as_u16(),
            detail: cause,
        },
    }
}

/// `bytes 100-999/1000` → 100.
fn parse_content_range_start(v: &str) -> Option<u64> {
    let v = v.trim().strip_prefix("bytes")?.trim_start();
    v.split('-').next()?.trim().parse().ok()
}

/// `</v2/x/tags/list?last=a&n=2>; rel="next"` → the URL.
pub(crate) fn parse_next_link(v: &str) -> Option<String> {
    v.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_links() {
        assert_eq!(parse_content_range_start("bytes 100-999/1000"), Some(100));
        assert_eq!(parse_content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(parse_content_range_start("items 1-2"), None);
        assert_eq!(
            parse_next_link(r#"</v2/library/busybox/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/library/busybox/tags/list?last=b&n=2".into())
        );
        assert_eq!(parse_next_link(r#"<http://x/a>; rel="prev""#), None);
    }
}
