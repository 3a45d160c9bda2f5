//! Loopback HTTP servers written for the tests: a Bearer token service fronting a real
//! registry, and a fake registry serving broken manifests.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;

pub struct FrontState {
    user: String,
    pass: String,
    registry: String,
    pub addr: String,
    pub tokens: Mutex<HashSet<String>>,
    pub issued: AtomicUsize,
    pub scopes: Mutex<Vec<String>>,
    http: reqwest::Client,
}

/// Serves `/token` (Bearer tokens for `user:pass`) and proxies everything else to the registry,
/// demanding a token it issued: the Docker Hub auth flow, on loopback.
pub struct TokenFront {
    pub addr: String,
    pub state: Arc<FrontState>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenFront {
    pub async fn start(registry: &str, user: &str, pass: &str) -> TokenFront {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(FrontState {
            user: user.into(),
            pass: pass.into(),
            registry: registry.into(),
            addr: addr.clone(),
            tokens: Mutex::default(),
            issued: AtomicUsize::new(0),
            scopes: Mutex::default(),
            http: reqwest::Client::new(),
        });
        let app = Router::new()
            .route("/token", get(token).post(oauth_token))
            .fallback(proxy)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenFront { addr, state, task }
    }

    /// Forget every issued token, as an expiry would.
    pub fn revoke_all(&self) {
        self.state.tokens.lock().unwrap().clear();
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unauthorized(st: &FrontState, message: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        format!(r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"{message}"}}]}}"#),
    )
        .into_response();
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_str(&format!(
            r#"Bearer realm="http://{}/token",service="berth-test""#,
            st.addr
        ))
        .unwrap(),
    );
    r
}

async fn token(State(st): State<Arc<FrontState>>, req: Request) -> Response {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", st.user, st.pass))
    );
    let ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(want.as_str());
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#,
        )
            .into_response();
    }
    let query = req.uri().query().unwrap_or_default().to_string();
    for (k, v) in url_pairs(&query) {
        if k == "scope" {
            st.scopes.lock().unwrap().push(v);
        }
    }
    let n = st.issued.fetch_add(1, Ordering::SeqCst);
    let t = format!("tok-{n}");
    st.tokens.lock().unwrap().insert(t.clone());
    (
        StatusCode::OK,
        format!(r#"{{"token":"{t}","expires_in":300}}"#),
    )
        .into_response()
}

/// The OAuth2 refresh-token grant (identity tokens): `refresh-ok` is the one valid token.
async fn oauth_token(State(st): State<Arc<FrontState>>, body: String) -> Response {
    let form = url_pairs(&body);
    let get = |k: &str| form.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    if get("grant_type").as_deref() != Some("refresh_token")
        || get("refresh_token").as_deref() != Some("refresh-ok")
    {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid refresh token"}]}"#,
        )
            .into_response();
    }
    for scope in get("scope")
        .into_iter()
        .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
    {
        st.scopes.lock().unwrap().push(scope);
    }
    let n = st.issued.fetch_add(1, Ordering::SeqCst);
    let t = format!("oauth-{n}");
    st.tokens.lock().unwrap().insert(t.clone());
    (
        StatusCode::OK,
        format!(r#"{{"access_token":"{t}","expires_in":300}}"#),
    )
        .into_response()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

async fn proxy(State(st): State<Arc<FrontState>>, req: Request) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let valid = token.is_some_and(|t| st.tokens.lock().unwrap().contains(&t));
    if !valid {
        return unauthorized(&st, "authentication required");
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mut rb = st
        .http
        .request(parts.method.clone(), format!("http://{}{pq}", st.registry));
    for (k, v) in parts.headers.iter() {
        if !matches!(k.as_str(), "host" | "authorization" | "content-length") {
            rb = rb.header(k, v);
        }
    }
    let up = rb.body(body).send().await.unwrap();
    let status = up.status();
    let headers = up.headers().clone();
    let bytes = up.bytes().await.unwrap();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    for (k, v) in headers.iter() {
        if matches!(
            k.as_str(),
            "transfer-encoding" | "connection" | "content-length"
        ) {
            continue;
        }
        let v = if k == "location" {
            let s = v.to_str().unwrap().replace(&st.registry, &st.addr);
            HeaderValue::from_str(&s).unwrap()
        } else {
            v.clone()
        };
        r.headers_mut().append(k, v);
    }
    r
}

/// A fake registry with broken documents under `/v2/bad/x/manifests/{big,garbage,schema1}`.
pub struct FakeRegistry {
    pub addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl FakeRegistry {
    pub async fn start() -> FakeRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let oci = "application/vnd.oci.image.manifest.v1+json";
        let app = Router::new()
            .route("/v2/", get(|| async { "{}" }))
            .route(
                "/v2/bad/x/manifests/big",
                get(move || async move {
                    let mut m = br#"{"schemaVersion":2,"layers":[],"pad":""#.to_vec();
                    m.resize(5 << 20, b'a');
                    m.extend_from_slice(br#""}"#);
                    ([("content-type", oci)], m)
                }),
            )
            .route(
                "/v2/bad/x/manifests/garbage",
                get(move || async move { ([("content-type", oci)], "{this is not json") }),
            )
            .route(
                "/v2/bad/x/manifests/schema1",
                get(|| async {
                    (
                        [(
                            "content-type",
                            "application/vnd.docker.distribution.manifest.v1+prettyjws",
                        )],
                        r#"{"schemaVersion":1,"name":"bad/x","tag":"schema1","fsLayers":[]}"#,
                    )
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRegistry { addr, task }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}
