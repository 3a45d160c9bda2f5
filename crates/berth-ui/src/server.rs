//! The dashboard's router. Every request but `/login` needs a live session cookie (else 401);
//! writes and websocket upgrades must come from the dashboard's own origin (else 403); every
//! answer carries a strict Content-Security-Policy. `/api/…` goes, minus the prefix and the
//! cookie, to the Engine API router the daemon serves on its socket.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

use crate::auth::Auth;

/// The session cookie's name.
pub const COOKIE: &str = "berth_ui_session";
/// The header every state-changing request from the dashboard carries (a cross-site form
/// cannot set it, and a cross-site script would need a CORS preflight nobody answers).
pub const CSRF_HEADER: &str = "x-berth-ui";

/// No inline or foreign script; fetches and websockets to this origin only. Inline *styles*
/// are allowed because xterm.js sizes and colours its terminal with `<style>` elements.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One dashboard: its sessions and where it is served.
pub struct Ui {
    pub auth: Auth,
    /// The address it listens on (the link `berth ui` prints).
    pub addr: SocketAddr,
    /// Served over TLS: `https` origin, `Secure` cookie.
    pub tls: bool,
}

impl Ui {
    pub fn new(addr: SocketAddr, tls: bool) -> Ui {
        Ui {
            auth: Auth::default(),
            addr,
            tls,
        }
    }

    /// Keep sessions in `file` across daemon restarts (see [`Auth::persisted`]).
    pub fn with_sessions_in(mut self, file: std::path::PathBuf) -> Ui {
        self.auth = self.auth.persisted(file);
        self
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// A one-time login link.
    pub fn login_url(&self) -> String {
        let host = match self.addr.ip() {
            ip if ip.is_unspecified() => "localhost".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!(
            "{}://{host}:{}/login?token={}",
            self.scheme(),
            self.addr.port(),
            self.auth.mint_token()
        )
    }
}

/// The dashboard's app: `api` is the Engine API router (as served on the daemon's socket).
pub fn router(ui: Arc<Ui>, api: Router) -> Router {
    Router::new().fallback(move |req: Request| {
        let (ui, api) = (ui.clone(), api.clone());
        async move {
            let mut res = handle(&ui, api, req).await;
            security_headers(res.headers_mut());
            res
        }
    })
}

/// The route on the daemon's own API listeners that mints a login link for `berth ui`
/// (whoever may use the socket controls the engine anyway); 404 with a hint when the daemon
/// serves no dashboard.
pub fn engine_routes(ui: Option<Arc<Ui>>) -> Router {
    Router::new().route(
        "/berth/ui/login",
        axum::routing::post(move || {
            let ui = ui.clone();
            async move {
                match ui {
                    Some(ui) => axum::Json(serde_json::json!({
                        "Url": ui.login_url(),
                        "ExpiresIn": crate::auth::TOKEN_TTL.as_secs(),
                    }))
                    .into_response(),
                    None => message(
                        StatusCode::NOT_FOUND,
                        "this daemon serves no dashboard: start it with --ui 127.0.0.1:PORT or set \"ui\" in daemon.json",
                    ),
                }
            }
        }),
    )
}

fn security_headers(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
}

async fn handle(ui: &Ui, api: Router, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/login" {
        return login(ui, req).await;
    }
    let Some(session) = cookie(req.headers()).filter(|s| ui.auth.check(s)) else {
        return unauthorized(&path);
    };
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
    let upgrade = req.headers().contains_key(header::UPGRADE);
    if writes || upgrade {
        if let Err(why) = same_origin(ui, req.headers(), writes) {
            tracing::warn!(%path, why, "dashboard refused a cross-site request");
            return message(
                StatusCode::FORBIDDEN,
                &format!("cross-site request refused: {why}"),
            );
        }
    }
    if path == "/logout" && req.method() == Method::POST {
        ui.auth.end(&session);
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(header::SET_COOKIE, clear_cookie(ui));
        return r;
    }
    if let Some(rest) = path.strip_prefix("/api/") {
        let rest = rest.to_string();
        return proxy(api, req, &rest).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let file = match path.as_str() {
        "/" => "index.html",
        // Browsers ask for it on every page they show (the login page and error answers too).
        "/favicon.ico" => "favicon.svg",
        p => p.trim_start_matches('/'),
    };
    match crate::assets::get(file) {
        Some((bytes, ctype)) => {
            ([(header::CONTENT_TYPE, ctype)], Body::from(bytes)).into_response()
        }
        None => message(StatusCode::NOT_FOUND, &format!("no such page: {path}")),
    }
}

/// Hand the request to the Engine API: `/api/containers/json?all=1` → `/containers/json?all=1`.
async fn proxy(api: Router, mut req: Request, rest: &str) -> Response {
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let uri = match format!("/{rest}{query}").parse() {
        Ok(u) => u,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("bad API path: {e}")),
    };
    *req.uri_mut() = uri;
    // The engine needs no dashboard secrets.
    req.headers_mut().remove(header::COOKIE);
    match api.oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    }
}

/// `GET /login?token=…` (the link `berth ui` prints) or `POST /login` (the form): a good token
/// becomes a session cookie and a redirect to the dashboard; anything else is 401 with the form.
async fn login(ui: &Ui, req: Request) -> Response {
    let token = match *req.method() {
        Method::GET | Method::HEAD => form_value(req.uri().query().unwrap_or(""), "token"),
        Method::POST => {
            if let Err(why) = same_origin(ui, req.headers(), false) {
                return message(
                    StatusCode::FORBIDDEN,
                    &format!("cross-site login refused: {why}"),
                );
            }
            let body = match axum::body::to_bytes(req.into_body(), 4096).await {
                Ok(b) => b,
                Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "login form too large"),
            };
            form_value(&String::from_utf8_lossy(&body), "token")
        }
        _ => return message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return login_page(
            StatusCode::UNAUTHORIZED,
            "Run `berth ui` on the daemon's host for a login link.",
        );
    };
    match ui.auth.exchange(&token) {
        Ok(session) => {
            let mut r = Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, "/")
                .body(Body::empty())
                .unwrap_or_default();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/{}",
                if ui.tls { "; Secure" } else { "" }
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            tracing::info!(error = %e, "dashboard login refused");
            login_page(StatusCode::UNAUTHORIZED, &e.to_string())
        }
    }
}

fn clear_cookie(ui: &Ui) -> HeaderValue {
    let secure = if ui.tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Does this request come from the dashboard's own pages? The browser's `Sec-Fetch-Site` (when
/// sent) and `Origin` must say so; with `needs_header`, so must [`CSRF_HEADER`] (writes from
/// the dashboard's scripts; the login form and websockets cannot set headers).
fn same_origin(ui: &Ui, h: &HeaderMap, needs_header: bool) -> Result<(), &'static str> {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return Err("the browser says it comes from another site");
        }
    }
    let host = get("host").ok_or("no Host header")?;
    let origin = get("origin").ok_or("no Origin header")?;
    if origin != format!("{}://{host}", ui.scheme()) {
        return Err("its Origin is not the dashboard's");
    }
    if needs_header && get(CSRF_HEADER) != Some("1") {
        return Err("it lacks the dashboard's X-Berth-UI header");
    }
    Ok(())
}

/// The session cookie's value, if any.
fn cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_string())
        })
}

/// The first value of `key` in an urlencoded `form`.
fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 401: the login page for a page request, a JSON message for the API.
fn unauthorized(path: &str) -> Response {
    if path.starts_with("/api/") {
        return message(
            StatusCode::UNAUTHORIZED,
            "not logged in to the dashboard: run `berth ui` for a login link",
        );
    }
    login_page(
        StatusCode::UNAUTHORIZED,
        "Run `berth ui` on the daemon's host for a login link.",
    )
}

/// The Engine API's error shape (`{"message": …}`), so the dashboard shows every error alike.
fn message(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "message": msg }))).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The login page: no script, no style beyond the browser's own (light or dark).
fn login_page(status: StatusCode, note: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><link rel=\"icon\" href=\"data:,\"><title>berth — log in</title></head>\
         <body><main><h1>berth dashboard</h1><p id=\"login-note\" role=\"alert\">{}</p>\
         <form method=\"post\" action=\"/login\"><label for=\"token\">Login token</label> \
         <input id=\"token\" name=\"token\" autocomplete=\"off\" required> \
         <button type=\"submit\">Log in</button></form></main></body></html>",
        html_escape(note)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
