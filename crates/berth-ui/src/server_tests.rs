//! The router against a stand-in Engine API: who gets in, what crosses sites, what is proxied.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

const ORIGIN: &str = "http://127.0.0.1:8080";

/// A fake engine that echoes the method, path and whether a cookie reached it.
fn engine() -> Router {
    Router::new().fallback(|req: Request| async move {
        format!(
            "{} {} cookie={}",
            req.method(),
            req.uri(),
            req.headers().contains_key(header::COOKIE)
        )
    })
}

fn app() -> (Arc<Ui>, Router) {
    let ui = Arc::new(Ui::new("127.0.0.1:8080".parse().unwrap(), false));
    (ui.clone(), router(ui, engine()))
}

fn req(method: Method, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:8080");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

async fn send(app: &Router, r: Request) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = app.clone().oneshot(r).await.unwrap();
    let (p, b) = res.into_parts();
    let body = b.collect().await.unwrap().to_bytes();
    (
        p.status,
        p.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Log in with a fresh token: the cookie header to send.
async fn login(ui: &Ui, app: &Router) -> String {
    let url = ui.login_url();
    let path = url.split_once("8080").unwrap().1;
    let (st, h, _) = send(app, req(Method::GET, path, &[])).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let c = h[header::SET_COOKIE].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(c.contains(attr), "{c}");
    }
    c.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn every_route_needs_a_session() {
    let (_, app) = app();
    for (m, p) in [
        (Method::GET, "/"),
        (Method::GET, "/app.js"),
        (Method::GET, "/nope"),
        (Method::GET, "/api/containers/json"),
        (Method::POST, "/api/containers/create"),
        (Method::DELETE, "/api/images/x"),
        (Method::OPTIONS, "/api/_ping"),
        (Method::POST, "/logout"),
        (Method::GET, "/login"),
        (Method::GET, "/login?token=bogus"),
    ] {
        let (st, h, body) = send(&app, req(m.clone(), p, &[])).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {p}: {body}");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        assert!(!body.contains("cookie="), "{m} {p} reached the engine");
    }
    // A forged cookie is no session.
    let (st, _, _) = send(
        &app,
        req(
            Method::GET,
            "/api/info",
            &[("cookie", "berth_ui_session=00")],
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_works_once_and_the_session_reaches_the_engine() {
    let (ui, app) = app();
    let url = ui.login_url();
    let path = url.split_once("8080").unwrap().1.to_string();
    let cookie = {
        let (st, h, _) = send(&app, req(Method::GET, &path, &[])).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        h[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let (st, _, body) = send(&app, req(Method::GET, &path, &[])).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body.contains("already used"), "{body}");
    let (st, _, body) = send(
        &app,
        req(
            Method::GET,
            "/api/containers/json?all=1",
            &[("cookie", &cookie)],
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    // Prefix and cookie stripped; the query kept.
    assert_eq!(body, "GET /containers/json?all=1 cookie=false");
    let (st, h, _) = send(&app, req(Method::GET, "/", &[("cookie", &cookie)])).await;
    if crate::assets::built() {
        assert_eq!(st, StatusCode::OK);
        assert!(h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
}

#[tokio::test]
async fn writes_must_come_from_the_dashboard() {
    let (ui, app) = app();
    let cookie = login(&ui, &app).await;
    let c = ("cookie", cookie.as_str());
    let post = |h: &[(&str, &str)]| req(Method::POST, "/api/containers/x/stop", h);
    for (h, why) in [
        (vec![c], "no Origin"),
        (vec![c, ("origin", ORIGIN)], "X-Berth-UI"),
        (
            vec![c, ("origin", "http://evil.example"), ("x-berth-ui", "1")],
            "Origin",
        ),
        (
            vec![
                c,
                ("origin", ORIGIN),
                ("x-berth-ui", "1"),
                ("sec-fetch-site", "cross-site"),
            ],
            "another site",
        ),
    ] {
        let (st, _, body) = send(&app, post(&h)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{h:?}: {body}");
        assert!(body.contains(why), "{body}");
    }
    let (st, _, body) = send(
        &app,
        post(&[
            c,
            ("origin", ORIGIN),
            ("x-berth-ui", "1"),
            ("sec-fetch-site", "same-origin"),
        ]),
    )
    .await;
    assert_eq!(
        (st, body.as_str()),
        (StatusCode::OK, "POST /containers/x/stop cookie=false")
    );
    // A websocket upgrade from another origin is refused too (browsers send cookies along).
    let (st, _, _) = send(
        &app,
        req(
            Method::GET,
            "/api/berth/exec/x/ws",
            &[
                c,
                ("origin", "http://127.0.0.1:9999"),
                ("upgrade", "websocket"),
            ],
        ),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // A cross-site login form is refused; logout ends the session.
    let (st, _, _) = send(
        &app,
        req(Method::POST, "/login", &[("origin", "http://evil.example")]),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, h, _) = send(
        &app,
        req(
            Method::POST,
            "/logout",
            &[c, ("origin", ORIGIN), ("x-berth-ui", "1")],
        ),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(h[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (st, _, _) = send(&app, req(Method::GET, "/api/info", &[c])).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_login_form_posts_a_token() {
    let (ui, app) = app();
    let url = ui.login_url();
    let token = url.split("token=").nth(1).unwrap();
    let r = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("host", "127.0.0.1:8080")
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}")))
        .unwrap();
    let (st, h, _) = send(&app, r).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h.contains_key(header::SET_COOKIE));
}

#[test]
fn form_values_are_decoded() {
    assert_eq!(
        form_value("a=1&token=x%41+y", "token").as_deref(),
        Some("xA y")
    );
    assert_eq!(form_value("token=%zz%", "token").as_deref(), Some("%zz%"));
    assert_eq!(form_value("a=1", "token"), None);
}
