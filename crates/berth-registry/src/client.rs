//! The HTTP side: per-host clients from the injected [`Connector`] (certs.d, insecure),
//! endpoint pinging and scheme choice, the authenticated request loop (Basic / Bearer with per-scope token cache, refresh on
//! 401), retries, and `login`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_http::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use berth_http::{
    ClientOptions, ConnectError, Connector, Method, Pem, Request, Response, StatusCode, Transport,
};
use bytes::Bytes;
use futures::StreamExt;

use crate::auth::{self, parse_challenge, Challenge, Credentials, TokenResponse};
use crate::config::{Endpoint, RegistryConfig};
use crate::error::{parse_api_errors, RegistryError, Result};
use berth_oci::Digest;

/// A distribution client. Cheap to clone; caches connections, endpoint choices and tokens.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: RegistryConfig,
    /// Path used to find `docker-credential-*` helpers (None = the process PATH).
    helper_path: Option<std::ffi::OsString>,
    connector: Arc<dyn Connector>,
    http: Mutex<HashMap<(String, bool), Arc<dyn Transport>>>,
    resolved: Mutex<HashMap<String, Resolved>>,
    tokens: Mutex<HashMap<String, Token>>,
    /// One download per digest at a time across concurrent pulls sharing this client.
    inflight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Clone)]
struct Resolved {
    base: String,
    verify: bool,
    challenge: Option<Challenge>,
}

struct Token {
    value: String,
    expires: Instant,
}

/// An endpoint resolved for one repository and credential set: every request of a pull or
/// push goes through it.
pub(crate) struct Session {
    client: Client,
    /// Registry name as in the reference (for messages).
    pub registry: String,
    pub repository: String,
    /// `scheme://host[/prefix]`.
    pub base: String,
    pub mirror: bool,
    http: Arc<dyn Transport>,
    key: String,
    creds: Option<Credentials>,
    scopes: Vec<String>,
}

impl Client {
    /// A client whose HTTP connections come from `connector`.
    pub fn new(cfg: RegistryConfig, connector: Arc<dyn Connector>) -> Client {
        Client::build(cfg, None, connector)
    }

    /// Like [`Client::new`], looking up credential helpers on `path` instead of `$PATH`.
    pub fn with_helper_path(
        cfg: RegistryConfig,
        path: std::ffi::OsString,
        connector: Arc<dyn Connector>,
    ) -> Client {
        Client::build(cfg, Some(path), connector)
    }

    fn build(
        cfg: RegistryConfig,
        helper_path: Option<std::ffi::OsString>,
        connector: Arc<dyn Connector>,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                cfg,
                helper_path,
                connector,
                http: Mutex::default(),
                resolved: Mutex::default(),
                tokens: Mutex::default(),
                inflight: Mutex::default(),
            }),
        }
    }

    /// Hold the download slot for `d`: a second pull of the same blob waits, then finds it
    /// stored instead of writing the same partial file concurrently.
    pub(crate) async fn blob_lock(&self, d: &Digest) -> BlobLock {
        let lock = self
            .inner
            .inflight
            .lock()
            .expect("inflight lock")
            .entry(d.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        BlobLock {
            client: self.clone(),
            digest: d.clone(),
            lock,
            _guard: Some(guard),
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.cfg
    }

    /// Credentials for `host`: explicit ones win, else the configured docker config.json.
    pub fn credentials_for(
        &self,
        host: &str,
        explicit: Option<&Credentials>,
    ) -> Result<Option<Credentials>> {
        if let Some(c) = explicit {
            return Ok(Some(c.clone()));
        }
        match &self.inner.cfg.docker_config {
            Some(p) => auth::lookup_docker_config(p, host, self.inner.helper_path.as_deref()),
            None => Ok(None),
        }
    }

    /// The HTTP client for `host` (`verify` = check certificates), built once with the
    /// host's certs.d CAs and client certificate.
    pub(crate) fn http(&self, host: &str, verify: bool) -> Result<Arc<dyn Transport>> {
        let key = (host.to_string(), verify);
        if let Some(c) = self.inner.http.lock().expect("http lock").get(&key) {
            return Ok(c.clone());
        }
        let cfg = &self.inner.cfg;
        let mut opts = ClientOptions {
            verify_tls: verify,
            connect_timeout: Some(cfg.connect_timeout),
            read_timeout: Some(cfg.read_timeout),
            ..ClientOptions::default()
        };
        if let Some(dir) = &cfg.certs_dir {
            certs_d(&mut opts, &dir.join(host))?;
        }
        let c = self.inner.connector.client(&opts).map_err(|e| match e {
            ConnectError::Certificate { path, detail } => {
                RegistryError::Certificate { path, detail }
            }
            ConnectError::Other(detail) => RegistryError::Unavailable {
                registry: host.to_string(),
                what: "building the HTTP client".into(),
                detail,
            },
        })?;
        self.inner
            .http
            .lock()
            .expect("http lock")
            .insert(key, c.clone());
        Ok(c)
    }

    /// Find a working base URL for `ep` (GET /v2/ on each candidate; first HTTP answer wins),
    /// remembering the auth challenge it gave.
    async fn resolve(&self, ep: &Endpoint) -> Result<Resolved> {
        let key = ep.candidates[0].base.clone();
        if let Some(r) = self.inner.resolved.lock().expect("lock").get(&key) {
            return Ok(r.clone());
        }
        let mut last = None;
        for cand in &ep.candidates {
            let http = self.http(&ep.host, cand.verify_tls)?;
            let url = format!("{}/v2/", cand.base);
            match http.send(Request::get(url)).await {
                Ok(resp) => {
                    let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                        resp.headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_challenge)
                    } else {
                        None
                    };
                    tracing::debug!(endpoint = %cand.base, status = %resp.status(), "pinged registry");
                    let r = Resolved {
                        base: cand.base.clone(),
                        verify: cand.verify_tls,
                        challenge,
                    };
                    self.inner
                        .resolved
                        .lock()
                        .expect("lock")
                        .insert(key, r.clone());
                    return Ok(r);
                }
                Err(e) => {
                    tracing::debug!(endpoint = %cand.base, error = %e, "ping failed");
                    last = Some(net_error(&ep.host, "GET /v2/", &e));
                }
            }
        }
        Err(last.expect("an endpoint has at least one candidate"))
    }

    fn set_challenge(&self, key: &str, ch: Challenge) {
        if let Some(r) = self.inner.resolved.lock().expect("lock").get_mut(key) {
            r.challenge = Some(ch);
        }
    }

    /// Open a session on `ep` for `repository` with the given token scopes.
    pub(crate) async fn session(
        &self,
        ep: &Endpoint,
        registry: &str,
        repository: &str,
        creds: Option<&Credentials>,
        scopes: Vec<String>,
    ) -> Result<Session> {
        let r = self.resolve(ep).await?;
        // Explicit credentials are for the upstream; mirrors get their own from config.json.
        let creds = if ep.mirror {
            self.credentials_for(&ep.host, None)?
        } else {
            self.credentials_for(&ep.host, creds)?
        };
        Ok(Session {
            client: self.clone(),
            registry: registry.to_string(),
            repository: repository.to_string(),
            http: self.http(&ep.host, r.verify)?,
            base: r.base,
            mirror: ep.mirror,
            key: ep.candidates[0].base.clone(),
            creds,
            scopes,
        })
    }

    /// Run `f` again after transient failures (up to `retries` extra attempts).
    pub(crate) async fn retrying<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match f(attempt).await {
                Err(e) if e.is_transient() && attempt < self.inner.cfg.retries => {
                    attempt += 1;
                    tracing::warn!(%what, attempt, error = %e, "transient registry error, retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                r => return r,
            }
        }
    }

    /// `docker login`: check the credentials against `registry`'s `/v2/` (doing its challenge).
    /// Returns Docker's "Login Succeeded".
    pub async fn login(&self, registry: &str, creds: &Credentials) -> Result<String> {
        let ep = self
            .inner
            .cfg
            .endpoints(registry, true)?
            .pop()
            .expect("upstream endpoint");
        let s = self
            .session(&ep, registry, "", Some(creds), Vec::new())
            .await?;
        let resp = s
            .send(Method::GET, &s.url(""), HeaderMap::new(), None, "login")
            .await?;
        match resp.status() {
            s2 if s2.is_success() => Ok("Login Succeeded".to_string()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                detail: format!("login failed: {}", body_detail(resp).await),
            }),
            st => Err(RegistryError::UnexpectedStatus {
                registry: registry.to_string(),
                what: "login".into(),
                status: st.as_u16(),
                detail: body_detail(resp).await,
            }),
        }
    }
}

impl Session {
    /// Absolute URL for: an absolute URL (as is); an origin-relative `/…` path, as
    /// `Location` and `Link` headers carry; or an API path relative to `<base>/v2/`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        if path.starts_with('/') {
            let origin_end = self
                .base
                .find("://")
                .and_then(|i| self.base[i + 3..].find('/').map(|j| i + 3 + j))
                .unwrap_or(self.base.len());
            return format!("{}{path}", &self.base[..origin_end]);
        }
        format!("{}/v2/{path}", self.base)
    }

    fn scope_key(&self) -> String {
        let who = self
            .creds
            .as_ref()
            .map(Credentials::principal)
            .unwrap_or_default();
        format!("{}|{who}|{}", self.key, self.scopes.join(" "))
    }

    /// The Authorization header for the current challenge, fetching a token when needed.
    async fn authorization(&self, fresh: bool) -> Result<Option<String>> {
        let challenge = self
            .client
            .inner
            .resolved
            .lock()
            .expect("lock")
            .get(&self.key)
            .and_then(|r| r.challenge.clone());
        if let Some(Credentials::RegistryToken(t)) = &self.creds {
            return Ok(Some(format!("Bearer {t}")));
        }
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic { .. }) => {
                Ok(self.creds.as_ref().and_then(Credentials::basic_header))
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
                ..
            }) => {
                let key = self.scope_key();
                if !fresh {
                    if let Some(t) = self.client.inner.tokens.lock().expect("lock").get(&key) {
                        if t.expires > Instant::now() {
                            return Ok(Some(format!("Bearer {}", t.value)));
                        }
                    }
                }
                let mut scopes = self.scopes.clone();
                if scopes.is_empty() {
                    scopes.extend(scope);
                }
                let (value, ttl) = self
                    .fetch_token(&realm, service.as_deref(), &scopes)
                    .await?;
                // Refresh a little early so a token never expires mid-request.
                let ttl = ttl.max(10) - 5;
                let mut tokens = self.client.inner.tokens.lock().expect("lock");
                let now = Instant::now();
                tokens.retain(|_, t| t.expires > now);
                tokens.insert(
                    key,
                    Token {
                        value: value.clone(),
                        expires: Instant::now() + Duration::from_secs(ttl),
                    },
                );
                Ok(Some(format!("Bearer {value}")))
            }
        }
    }

    /// Ask the token realm for a bearer token for `scopes`.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, u64)> {
        let mut realm_url = url::Url::parse(realm).map_err(|e| RegistryError::Malformed {
            what: "auth challenge",
            image: self.repository.clone(),
            registry: self.registry.clone(),
            detail: format!("realm {realm:?}: {e}"),
        })?;
        let realm_host = match realm_url.port() {
            Some(p) => format!("{}:{p}", realm_url.host_str().unwrap_or_default()),
            None => realm_url.host_str().unwrap_or_default().to_string(),
        };
        let verify = !self.client.inner.cfg.is_insecure(&realm_host);
        let http = self.client.http(&realm_host, verify)?;
        let what = "fetching a bearer token";
        let req = match &self.creds {
            Some(Credentials::IdentityToken(refresh)) => {
                let joined = scopes.join(" ");
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", "berth"),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                if !scopes.is_empty() {
                    form.push(("scope", &joined));
                }
                Request::new(Method::POST, realm_url.as_str()).form(&form)
            }
            other => {
                if service.is_some() || !scopes.is_empty() {
                    let mut q = realm_url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                let mut req = Request::get(realm_url.as_str());
                if let Some(h) = other.as_ref().and_then(Credentials::basic_header) {
                    let v = HeaderValue::from_str(&h).map_err(|_| RegistryError::Malformed {
                        what: "credentials",
                        image: self.repository.clone(),
                        registry: self.registry.clone(),
                        detail: "the basic credentials are not a valid header value".into(),
                    })?;
                    req = req.header(AUTHORIZATION, v);
                }
                req
            }
        };
        let resp = http
            .send(req)
            .await
            .map_err(|e| net_error(&self.registry, what, &e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = body_detail(resp).await;
            return Err(self.unauthorized(&detail));
        }
        if !status.is_success() {
            return Err(RegistryError::UnexpectedStatus {
                registry: self.registry.clone(),
                what: what.into(),
                status: status.as_u16(),
                detail: body_detail(resp).await,
            });
        }
        let body = read_capped(resp, 1 << 20, &self.registry, what)
            .await?
            .ok_or_else(|| RegistryError::Malformed {
                what: "token response",
                image: self.repository.clone(),
                registry: self.registry.clone(),
                detail: "larger than 1 MiB".into(),
            })?;
        let tr: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                what: "token response",
                image: self.repository.clone(),
                registry: self.registry.clone(),
                detail: e.to_string(),
            })?;
        let token = tr.bearer().ok_or_else(|| RegistryError::Malformed {
            what: "token response",
            image: self.repository.clone(),
            registry: self.registry.clone(),
            detail: "no token in the answer".into(),
        })?;
        Ok((token.to_string(), tr.expires_in.unwrap_or(60)))
    }

    pub(crate) fn unauthorized(&self, detail: &str) -> RegistryError {
        let detail = if detail.is_empty() {
            if self.creds.is_some() {
                "incorrect username or password".to_string()
            } else {
                "authentication required".to_string()
            }
        } else {
            detail.to_string()
        };
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            detail,
        }
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// Send a request with authentication; on a 401 take the new challenge, get fresh
    /// credentials/token once and resend. A final 401 is returned for the caller to word.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        what: &str,
    ) -> Result<Response> {
        let mut fresh = false;
        loop {
            let auth = self.authorization(fresh).await?;
            let mut rb = Request::new(method.clone(), url).headers(headers.clone());
            if let Some(a) = auth {
                let mut v = HeaderValue::from_str(&a).map_err(|_| RegistryError::Malformed {
                    what: "token response",
                    image: self.repository.clone(),
                    registry: self.registry.clone(),
                    detail: "token is not a valid header value".into(),
                })?;
                v.set_sensitive(true);
                rb = rb.header(AUTHORIZATION, v);
            }
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = self
                .http
                .send(rb)
                .await
                .map_err(|e| net_error(&self.registry, what, &e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && !fresh {
                let ch = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(ch) = ch {
                    let retry = matches!(ch, Challenge::Bearer { .. }) || self.creds.is_some();
                    self.client.set_challenge(&self.key, ch);
                    if retry {
                        fresh = true;
                        continue;
                    }
                }
            }
            return Ok(resp);
        }
    }
}

/// See [`Client::blob_lock`]; forgets the digest's slot when nobody else waits for it.
pub(crate) struct BlobLock {
    client: Client,
    digest: Digest,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for BlobLock {
    fn drop(&mut self) {
        self._guard = None;
        let mut map = self.client.inner.inflight.lock().expect("inflight lock");
        // Ours and the map's: no waiter holds a clone.
        if Arc::strong_count(&self.lock) <= 2 {
            map.remove(&self.digest);
        }
    }
}

/// Run blocking filesystem work (hashing a partial, fsync) without stalling other tasks on a
/// multi-threaded runtime.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Add `*.crt` CAs and a `client.cert`/`client.key` pair from a certs.d host directory to
/// `opts` (a missing directory adds nothing). Files are read here; the connector parses them.
fn certs_d(opts: &mut ClientOptions, dir: &std::path::Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return Ok(()),
    };
    let cert_err = |path: &std::path::Path, detail: String| RegistryError::Certificate {
        path: path.to_path_buf(),
        detail,
    };
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for p in &names {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".crt") {
            let pem = std::fs::read(p).map_err(|e| cert_err(p, e.to_string()))?;
            opts.extra_roots.push(Pem {
                path: p.clone(),
                pem,
            });
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = dir.join(format!("{stem}.key"));
            let mut pem = std::fs::read(p).map_err(|e| cert_err(p, e.to_string()))?;
            let k = std::fs::read(&key).map_err(|e| {
                cert_err(
                    &key,
                    format!("{e} (a client .cert needs its .key beside it)"),
                )
            })?;
            pem.extend_from_slice(b"\n");
            pem.extend_from_slice(&k);
            opts.identity = Some(Pem {
                path: p.clone(),
                pem,
            });
        }
    }
    Ok(())
}

/// A failed exchange as Timeout / Unavailable.
pub(crate) fn net_error(registry: &str, what: &str, e: &berth_http::Error) -> RegistryError {
    if e.is_timeout() {
        RegistryError::Timeout {
            registry: registry.to_string(),
            what: what.to_string(),
        }
    } else {
        RegistryError::Unavailable {
            registry: registry.to_string(),
            what: what.to_string(),
            detail: e.detail.clone(),
        }
    }
}

/// Read a body; None when it exceeds `cap` bytes.
pub(crate) async fn read_capped(
    resp: Response,
    cap: u64,
    registry: &str,
    what: &str,
) -> Result<Option<Vec<u8>>> {
    if resp.content_length().is_some_and(|n| n > cap) {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| net_error(registry, what, &e))?;
        if out.len() as u64 + chunk.len() as u64 > cap {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// The registry's error codes from a failed response, as Docker prints them.
pub(crate) async fn body_detail(resp: Response) -> String {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let body = &body[..body.len().min(64 << 10)];
    let errs = parse_api_errors(body);
    if errs.is_empty() {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() || text.len() > 200 {
            status.to_string()
        } else {
            text.to_string()
        }
    } else {
        errs.iter()
            .map(|e| e.describe())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The first error code of a failed response and its description.
pub(crate) async fn body_errors(resp: Response) -> (Option<String>, String) {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let errs = parse_api_errors(&body[..body.len().min(64 << 10)]);
    match errs.first() {
        Some(e) => (Some(e.code.clone()), e.describe()),
        None => (None, status.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URL tests never send: a transport that refuses everything.
    struct NoNetwork;

    impl Transport for NoNetwork {
        fn send(
            &self,
            _: Request,
        ) -> futures::future::BoxFuture<'static, std::result::Result<Response, berth_http::Error>>
        {
            Box::pin(async {
                Err(berth_http::Error::new(
                    berth_http::ErrorKind::Transport,
                    "no network in unit tests",
                ))
            })
        }
    }

    impl Connector for NoNetwork {
        fn client(
            &self,
            _: &ClientOptions,
        ) -> std::result::Result<Arc<dyn Transport>, ConnectError> {
            Ok(Arc::new(NoNetwork))
        }
    }

    fn session(base: &str) -> Session {
        Session {
            client: Client::new(RegistryConfig::default(), Arc::new(NoNetwork)),
            registry: "r".into(),
            repository: "library/busybox".into(),
            base: base.into(),
            mirror: true,
            http: Arc::new(NoNetwork),
            key: base.into(),
            creds: None,
            scopes: Vec::new(),
        }
    }

    #[test]
    fn urls_under_a_mirror_prefix() {
        let s = session("https://m.example/cache");
        assert_eq!(
            s.url("library/busybox/manifests/latest"),
            "https://m.example/cache/v2/library/busybox/manifests/latest"
        );
        // Location / Link headers are origin-relative and already carry the prefix.
        assert_eq!(
            s.url("/cache/v2/library/busybox/blobs/uploads/u?_state=x"),
            "https://m.example/cache/v2/library/busybox/blobs/uploads/u?_state=x"
        );
        assert_eq!(s.url("http://other/x"), "http://other/x");
        assert_eq!(
            session("http://127.0.0.1:5000").url(""),
            "http://127.0.0.1:5000/v2/"
        );
    }
}
