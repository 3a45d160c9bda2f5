//! Pull-through cache mode: a manifest or blob the store lacks is fetched from the upstream
//! registry (through berth-http's port, anonymous or with Basic credentials), verified against
//! its digest, stored, then served; later pulls are served from the store even when the
//! upstream is gone. Pushes to a cache are refused, as distribution's proxy mode refuses them.

use std::sync::Arc;

use berth_http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use berth_http::{Request, Transport};
use berth_oci::Digest;
use futures::StreamExt;

use crate::route::Reference;
use crate::store::{Store, StoreError};

/// The media types asked for when fetching a manifest.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The upstream registry of a cache.
#[derive(Clone)]
pub struct Upstream {
    /// `https://registry.example[:port]` (no trailing slash).
    pub base: String,
    pub transport: Arc<dyn Transport>,
    /// `Basic …` for the upstream, when it needs a login.
    pub authorization: Option<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why the upstream could not fill a miss.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("not in the upstream registry")]
    NotFound,
    #[error("upstream {base}: {detail}")]
    Upstream { base: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Upstream {
    fn request(&self, url: String) -> Request {
        let mut r = Request::get(url);
        if let Some(a) = &self.authorization {
            if let Ok(v) = HeaderValue::from_str(a) {
                r = r.header(AUTHORIZATION, v);
            }
        }
        r
    }

    fn fail(&self, detail: impl Into<String>) -> ProxyError {
        ProxyError::Upstream {
            base: self.base.clone(),
            detail: detail.into(),
        }
    }

    /// Fetch manifest `reference` of `name` into the store: its digest.
    pub async fn manifest(
        &self,
        store: &Store,
        name: &str,
        reference: &Reference,
    ) -> Result<Digest, ProxyError> {
        let r = match reference {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(d) => d.to_string(),
        };
        let req = self
            .request(format!("{}/v2/{name}/manifests/{r}", self.base))
            .header(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES));
        let resp = self
            .transport
            .send(req)
            .await
            .map_err(|e| self.fail(e.detail))?;
        if resp.status().as_u16() == 404 {
            return Err(ProxyError::NotFound);
        }
        if !resp.status().is_success() {
            return Err(self.fail(format!("GET manifest {name}:{r}: HTTP {}", resp.status())));
        }
        let media = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string();
        let bytes = resp.bytes().await.map_err(|e| self.fail(e.detail))?;
        if bytes.len() > crate::server::MAX_MANIFEST {
            return Err(self.fail("the upstream manifest is larger than 4 MiB"));
        }
        if let Reference::Digest(d) = reference {
            if &Digest::of(&bytes) != d {
                return Err(self.fail(format!("the upstream manifest does not hash to {d}")));
            }
        }
        let tag = match reference {
            Reference::Tag(t) => Some(t.clone()),
            Reference::Digest(_) => None,
        };
        let (store, name) = (store.clone(), name.to_string());
        let d = tokio::task::spawn_blocking(move || {
            store.put_manifest(&name, tag.as_deref(), &bytes, &media, None)
        })
        .await
        .map_err(|e| self.fail(e.to_string()))??;
        Ok(d)
    }

    /// Fetch blob `digest` of `name` into the store (verified while it streams).
    pub async fn blob(&self, store: &Store, name: &str, digest: &Digest) -> Result<(), ProxyError> {
        let req = self.request(format!("{}/v2/{name}/blobs/{digest}", self.base));
        let resp = self
            .transport
            .send(req)
            .await
            .map_err(|e| self.fail(e.detail))?;
        if resp.status().as_u16() == 404 {
            return Err(ProxyError::NotFound);
        }
        if !resp.status().is_success() {
            return Err(self.fail(format!("GET blob {digest}: HTTP {}", resp.status())));
        }
        let (s, n) = (store.clone(), name.to_string());
        let id = tokio::task::spawn_blocking(move || s.upload_start(&n))
            .await
            .map_err(|e| self.fail(e.to_string()))??;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.fail(e.detail))?;
            let (s, n, i) = (store.clone(), name.to_string(), id.clone());
            tokio::task::spawn_blocking(move || s.upload_append(&n, &i, &chunk))
                .await
                .map_err(|e| self.fail(e.to_string()))??;
        }
        let (s, n, d) = (store.clone(), name.to_string(), digest.clone());
        tokio::task::spawn_blocking(move || s.upload_finish(&n, &id, &d))
            .await
            .map_err(|e| self.fail(e.to_string()))??;
        Ok(())
    }
}
