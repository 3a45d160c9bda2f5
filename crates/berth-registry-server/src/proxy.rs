//! Pull-through cache mode: a manifest or blob the store lacks is fetched from the upstream
//! registry (through berth-http's port, anonymous or with Basic credentials), verified against
//! its digest, stored, then served; later pulls are served from the store even when the
//! upstream is gone. An upstream answering 401 with a Bearer challenge (Docker Hub does, even
//! anonymously) gets a token from its realm for `repository:<name>:pull` (with the Basic
//! credentials when configured), kept per scope until it expires. Pushes to a cache are
//! refused, as distribution's proxy mode refuses them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use berth_http::{Request, Response, Transport};
use berth_oci::Digest;
use berth_registry::auth::{parse_challenge, Challenge, TokenResponse};
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
    /// Bearer tokens by scope, with when to stop using them.
    tokens: Arc<Mutex<HashMap<String, (String, Instant)>>>,
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
    /// An upstream at `base` (`https://host[:port]`), `authorization` a `Basic …` value.
    pub fn new(
        base: String,
        transport: Arc<dyn Transport>,
        authorization: Option<String>,
    ) -> Upstream {
        Upstream {
            base,
            transport,
            authorization,
            tokens: Arc::default(),
        }
    }

    fn request(&self, url: &str, accept: Option<&'static str>, bearer: Option<&str>) -> Request {
        let mut r = Request::get(url);
        let auth = match bearer {
            Some(t) => Some(format!("Bearer {t}")),
            None => self.authorization.clone(),
        };
        if let Some(v) = auth.and_then(|a| HeaderValue::from_str(&a).ok()) {
            r = r.header(AUTHORIZATION, v);
        }
        if let Some(a) = accept {
            r = r.header(ACCEPT, HeaderValue::from_static(a));
        }
        r
    }

    /// GET `url` for repository `name`, answering a Bearer challenge once with a token for
    /// pulling `name`.
    async fn get(
        &self,
        name: &str,
        url: &str,
        accept: Option<&'static str>,
    ) -> Result<Response, ProxyError> {
        let scope = format!("repository:{name}:pull");
        let cached = {
            let now = Instant::now();
            let mut tokens = self.tokens.lock().expect("token lock");
            tokens.retain(|_, (_, until)| *until > now);
            tokens.get(&scope).map(|(t, _)| t.clone())
        };
        let resp = self
            .transport
            .send(self.request(url, accept, cached.as_deref()))
            .await
            .map_err(|e| self.fail(e.detail))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(Challenge::Bearer { realm, service, .. }) = challenge else {
            return Ok(resp);
        };
        let token = self.token(&realm, service.as_deref(), &scope).await?;
        self.transport
            .send(self.request(url, accept, Some(&token)))
            .await
            .map_err(|e| self.fail(e.detail))
    }

    /// A token for `scope` from the upstream's realm (remembered until shortly before it
    /// expires).
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, ProxyError> {
        let mut u =
            url::Url::parse(realm).map_err(|e| self.fail(format!("token realm {realm:?}: {e}")))?;
        {
            let mut q = u.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
        }
        let resp = self
            .transport
            .send(self.request(u.as_str(), None, None))
            .await
            .map_err(|e| self.fail(e.detail))?;
        if !resp.status().is_success() {
            return Err(self.fail(format!(
                "token realm {realm}: HTTP {} (check --proxy-username and BERTH_PROXY_PASSWORD)",
                resp.status()
            )));
        }
        let body = resp.bytes().await.map_err(|e| self.fail(e.detail))?;
        let tr: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| self.fail(format!("token realm {realm}: {e}")))?;
        let token = tr
            .bearer()
            .ok_or_else(|| self.fail(format!("token realm {realm}: no token in the answer")))?
            .to_string();
        // Stop using it a little before it expires, so it never dies mid-request.
        let ttl = tr.expires_in.unwrap_or(60).saturating_sub(5).max(1);
        self.tokens.lock().expect("token lock").insert(
            scope.to_string(),
            (token.clone(), Instant::now() + Duration::from_secs(ttl)),
        );
        Ok(token)
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
        let url = format!("{}/v2/{name}/manifests/{r}", self.base);
        let resp = self.get(name, &url, Some(MANIFEST_TYPES)).await?;
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
        let url = format!("{}/v2/{name}/blobs/{digest}", self.base);
        let resp = self.get(name, &url, None).await?;
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
        let body = resp.bytes_stream().map(|c| c.map_err(|e| e.detail));
        crate::server::write_body(store, name, &id, body)
            .await
            .map_err(|e| match e {
                crate::server::BodyError::Store(s) => ProxyError::Store(s),
                read => self.fail(read.to_string()),
            })?;
        let (s, n, d) = (store.clone(), name.to_string(), digest.clone());
        tokio::task::spawn_blocking(move || s.upload_finish(&n, &id, &d))
            .await
            .map_err(|e| self.fail(e.to_string()))??;
        Ok(())
    }
}
