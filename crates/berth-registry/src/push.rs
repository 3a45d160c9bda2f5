//! Push: for each blob HEAD-check, cross-repository mount, or upload (monolithic PUT for small
//! blobs, chunked PATCH + PUT for large ones); then PUT the manifest and return its digest.

use std::collections::HashMap;
use std::io::Read;

use berth_http::header::{
    HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION,
};
use berth_http::{Method, Response, StatusCode};
use berth_oci::{media_type, Descriptor, Digest, Index, Manifest, Reference};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::auth::Credentials;
use crate::blob::BlobSource;
use crate::client::{body_errors, Client, Session};
use crate::error::{RegistryError, Result};
use crate::progress::{Progress, ProgressSink};

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub credentials: Option<Credentials>,
    pub progress: ProgressSink,
    /// Blobs the daemon knows came from another repository of the same registry:
    /// digest → repository (`library/busybox`). Tried as a cross-repository mount first.
    pub mount_from: HashMap<Digest, String>,
}

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobPush {
    Exists,
    Mounted(String),
    Uploaded { chunked: bool },
}

/// The outcome of a push.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// Digest of the manifest as stored by the registry.
    pub digest: Digest,
    pub size: usize,
    /// Per blob (config and layers), what was done.
    pub blobs: Vec<(Digest, BlobPush)>,
}

impl Client {
    /// Push `manifest` (exact bytes, of `media_type`) and its blobs from `source` to
    /// `reference` (its tag, else its digest, else `latest`). An index is PUT as is: push its
    /// platform manifests first (by digest).
    #[tracing::instrument(skip_all, fields(image = %reference))]
    pub async fn push(
        &self,
        reference: &Reference,
        manifest: &[u8],
        media_type: &str,
        source: &dyn BlobSource,
        opts: &PushOptions,
    ) -> Result<PushedImage> {
        let image = reference.familiar_name();
        let bad = |e: &dyn std::fmt::Display| RegistryError::InvalidInput {
            what: "manifest to push",
            detail: format!("{image}: {e}"),
        };
        let blobs: Vec<Descriptor> = if media_type::is_index(media_type) {
            Index::from_slice(manifest).map_err(|e| bad(&e))?;
            Vec::new()
        } else if media_type::is_manifest(media_type) {
            let m = Manifest::from_slice(manifest).map_err(|e| bad(&e))?;
            let mut v: Vec<Descriptor> = Vec::new();
            for d in m.layers.iter().chain(std::iter::once(&m.config)) {
                if !v.iter().any(|x| x.digest == d.digest) {
                    v.push(d.clone());
                }
            }
            v
        } else {
            return Err(bad(&format!("unsupported media type {media_type:?}")));
        };
        opts.progress.status(
            None,
            format!(
                "The push refers to repository [{}]",
                reference.familiar_name()
            ),
        );
        let ep = self
            .config()
            .endpoints(&reference.registry, true)?
            .pop()
            .expect("upstream endpoint");
        let mut scopes = vec![format!("repository:{}:pull,push", reference.repository)];
        let mut froms: Vec<&String> = opts
            .mount_from
            .values()
            .filter(|r| **r != reference.repository)
            .collect();
        froms.sort();
        froms.dedup();
        scopes.extend(froms.iter().map(|r| format!("repository:{r}:pull")));
        let s = self
            .session(
                &ep,
                &reference.registry,
                &reference.repository,
                opts.credentials.as_ref(),
                scopes,
            )
            .await?;
        let config_digest = Manifest::from_slice(manifest).ok().map(|m| m.config.digest);
        for b in &blobs {
            if Some(&b.digest) != config_digest.as_ref() {
                opts.progress.status(Some(b.digest.short()), "Preparing");
            }
        }
        let parallel = self.config().max_concurrent_uploads.max(1);
        let results: Vec<(Digest, BlobPush)> = {
            use futures::{StreamExt, TryStreamExt};
            // Futures built in a loop, not a closure over `&Descriptor`: keeps this future
            // Send (a closure there trips rustc's higher-ranked lifetime inference).
            let mut jobs = Vec::new();
            for d in &blobs {
                let quiet = Some(&d.digest) == config_digest.as_ref();
                let progress = if quiet {
                    ProgressSink::none()
                } else {
                    opts.progress.clone()
                };
                let from = opts
                    .mount_from
                    .get(&d.digest)
                    .filter(|r| **r != reference.repository)
                    .cloned();
                let s = &s;
                jobs.push(async move {
                    let r = self
                        .retrying("pushing blob", |_| {
                            self.push_blob(s, d, source, from.as_deref(), &progress)
                        })
                        .await?;
                    Ok::<_, RegistryError>((d.digest.clone(), r))
                });
            }
            futures::stream::iter(jobs)
                .buffer_unordered(parallel)
                .try_collect()
                .await?
        };

        let tag = reference
            .tag
            .clone()
            .or_else(|| reference.digest.as_ref().map(|d| d.to_string()))
            .unwrap_or_else(|| "latest".to_string());
        let digest = Digest::of(manifest);
        let url = s.url(&format!("{}/manifests/{tag}", s.repository));
        let body = Bytes::copy_from_slice(manifest);
        self.retrying("pushing manifest", |_| async {
            let mut h = HeaderMap::new();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_str(media_type).map_err(|e| bad(&e))?,
            );
            let resp = s
                .send(Method::PUT, &url, h, Some(body.clone()), "pushing manifest")
                .await?;
            if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
                return Err(push_status_error(&s, "pushing manifest", resp).await);
            }
            if let Some(h) = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Digest>().ok())
            {
                if h != digest {
                    return Err(RegistryError::DigestMismatch {
                        what: "pushed manifest".into(),
                        image: image.clone(),
                        registry: s.registry.clone(),
                        expected: digest.clone(),
                        actual: h.to_string(),
                    });
                }
            }
            Ok(())
        })
        .await?;
        opts.progress.status(
            None,
            format!("{tag}: digest: {digest} size: {}", manifest.len()),
        );
        Ok(PushedImage {
            digest,
            size: manifest.len(),
            blobs: results,
        })
    }

    /// One blob: exists? mount? upload.
    async fn push_blob(
        &self,
        s: &Session,
        d: &Descriptor,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
        progress: &ProgressSink,
    ) -> Result<BlobPush> {
        let id = d.digest.short();
        let head_url = s.url(&format!("{}/blobs/{}", s.repository, d.digest));
        let resp = s
            .send(
                Method::HEAD,
                &head_url,
                HeaderMap::new(),
                None,
                "checking blob",
            )
            .await?;
        match resp.status() {
            st if st.is_success() => {
                progress.status(Some(id), "Layer already exists");
                return Ok(BlobPush::Exists);
            }
            StatusCode::NOT_FOUND => {}
            _ => return Err(push_status_error(s, "checking blob", resp).await),
        }
        let uploads = s.url(&format!("{}/blobs/uploads/", s.repository));
        let mut resp = None;
        if let Some(from) = mount_from {
            let url = format!("{uploads}?mount={}&from={from}", d.digest);
            let r = s
                .send(
                    Method::POST,
                    &url,
                    content_len0(),
                    Some(Bytes::new()),
                    "mounting blob",
                )
                .await?;
            // No read access to the source repository: upload instead, as Docker does.
            if r.status() == StatusCode::UNAUTHORIZED || r.status() == StatusCode::FORBIDDEN {
                tracing::info!(digest = %d.digest, %from, "cross-repository mount refused; uploading");
            } else {
                resp = Some(r);
            }
        }
        let mount_from = mount_from.filter(|_| resp.is_some());
        let resp = match resp {
            Some(r) => r,
            None => {
                s.send(
                    Method::POST,
                    &uploads,
                    content_len0(),
                    Some(Bytes::new()),
                    "starting upload",
                )
                .await?
            }
        };
        match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => {
                let from = mount_from.unwrap_or_default();
                progress.status(Some(id), format!("Mounted from {from}"));
                return Ok(BlobPush::Mounted(from.to_string()));
            }
            StatusCode::ACCEPTED => {}
            _ => return Err(push_status_error(s, "starting upload", resp).await),
        }
        let mut location = location(s, &resp)?;
        let size = source.size(&d.digest).map_err(|e| blob_err(&d.digest, e))?;
        let reader = source.open(&d.digest).map_err(|e| blob_err(&d.digest, e))?;
        let chunk = self.config().chunk_size.max(1);
        let mut hasher = Sha256::new();
        let chunked = size > chunk as u64;
        let mut reader = Some(reader);
        if chunked {
            let mut sent = 0u64;
            while sent < size {
                let (r, buf) = read_chunk(reader.take().expect("reader"), chunk)
                    .await
                    .map_err(|e| blob_err(&d.digest, e))?;
                reader = Some(r);
                if buf.is_empty() {
                    break;
                }
                hasher.update(&buf);
                let end = sent + buf.len() as u64 - 1;
                let mut h = HeaderMap::new();
                h.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                h.insert(
                    CONTENT_RANGE,
                    HeaderValue::from_str(&format!("{sent}-{end}")).expect("ascii"),
                );
                let resp = s
                    .send(
                        Method::PATCH,
                        &location,
                        h,
                        Some(Bytes::from(buf)),
                        "uploading chunk",
                    )
                    .await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(push_status_error(s, "uploading chunk", resp).await);
                }
                location = location_or(s, &resp, location)?;
                sent = end + 1;
                progress.emit(Progress::new(Some(id), "Pushing").with_detail(sent, size));
            }
            check_local(&d.digest, hasher, sent, size)?;
            let url = with_digest(&location, &d.digest);
            let resp = s
                .send(
                    Method::PUT,
                    &url,
                    content_len0(),
                    Some(Bytes::new()),
                    "finishing upload",
                )
                .await?;
            if !resp.status().is_success() {
                return Err(push_status_error(s, "finishing upload", resp).await);
            }
        } else {
            let (_, buf) = read_chunk(reader.take().expect("reader"), size as usize + 1)
                .await
                .map_err(|e| blob_err(&d.digest, e))?;
            hasher.update(&buf);
            check_local(&d.digest, hasher, buf.len() as u64, size)?;
            progress.emit(Progress::new(Some(id), "Pushing").with_detail(0, size));
            let mut h = HeaderMap::new();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            let url = with_digest(&location, &d.digest);
            let resp = s
                .send(
                    Method::PUT,
                    &url,
                    h,
                    Some(Bytes::from(buf)),
                    "uploading blob",
                )
                .await?;
            if !resp.status().is_success() {
                return Err(push_status_error(s, "uploading blob", resp).await);
            }
            progress.emit(Progress::new(Some(id), "Pushing").with_detail(size, size));
        }
        progress.status(Some(id), "Pushed");
        Ok(BlobPush::Uploaded { chunked })
    }
}

fn content_len0() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    h
}

fn blob_err(d: &Digest, e: std::io::Error) -> RegistryError {
    RegistryError::Blob {
        digest: d.clone(),
        source: e,
    }
}

/// The local blob must be what its digest says before it goes out.
fn check_local(d: &Digest, hasher: Sha256, len: u64, size: u64) -> Result<()> {
    let got = hex::encode(hasher.finalize());
    if got != d.hex() || len != size {
        return Err(blob_err(
            d,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("local content is sha256:{got} ({len} bytes), expected {d} ({size} bytes); the local store is corrupt"),
            ),
        ));
    }
    Ok(())
}

fn with_digest(location: &str, d: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={d}")
}

fn location(s: &Session, resp: &Response) -> Result<String> {
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| s.url(l))
        .ok_or_else(|| RegistryError::Malformed {
            what: "upload response",
            image: s.repository.clone(),
            registry: s.registry.clone(),
            detail: "no Location header".into(),
        })
}

fn location_or(s: &Session, resp: &Response, old: String) -> Result<String> {
    if resp.headers().contains_key(LOCATION) {
        location(s, resp)
    } else {
        Ok(old)
    }
}

/// Read up to `n` bytes off the async threads.
async fn read_chunk(
    mut r: Box<dyn Read + Send>,
    n: usize,
) -> std::io::Result<(Box<dyn Read + Send>, Vec<u8>)> {
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(n.min(64 << 20));
        (&mut r).take(n as u64).read_to_end(&mut buf)?;
        Ok((r, buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn push_status_error(s: &Session, what: &str, resp: Response) -> RegistryError {
    let status = resp.status();
    let (code, cause) = body_errors(resp).await;
    match (status, code.as_deref()) {
        (_, Some("NAME_UNKNOWN")) => RegistryError::RepositoryUnknown {
            image: format!("{}/{}", s.registry, s.repository),
            cause,
        },
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) | (_, Some("DENIED")) => {
            s.unauthorized(&cause)
        }
        _ => RegistryError::UnexpectedStatus {
            registry: s.registry.clone(),
            what: format!("{what} to {}", s.repository),
            status: status.as_u16(),
            detail: cause,
        },
    }
}
