//! System routes' typed queries: `check?repair=`, `df?verbose=`, `events?since=&until=`.

use axum::body::Body;
use axum::http::StatusCode;

use super::{call, json, setup};

#[tokio::test]
async fn check_reads_repair_as_a_docker_boolean() {
    let (fake, app) = setup();
    for (uri, want) in [
        ("/berth/system/check", false),
        ("/berth/system/check?repair=1", true),
        ("/v1.45/berth/system/check?repair=True", true),
        ("/berth/system/check?repair=0&other=1", false),
    ] {
        let (s, _, body) = call(&app, "POST", uri, Body::empty()).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        assert_eq!(json(&body)["Clean"], want, "{uri}");
        assert_eq!(fake.checks.lock().unwrap().pop(), Some(want), "{uri}");
    }
    let (s, _, _) = call(&app, "GET", "/berth/system/check", Body::empty()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(fake.checks.lock().unwrap().is_empty());
}

#[tokio::test]
async fn events_refuse_a_window_that_ends_before_it_starts() {
    let (_, app) = setup();
    let (s, _, body) = call(&app, "GET", "/events?since=20&until=10", Body::empty()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(json(&body)["message"].as_str().unwrap().contains("since"));
    let (s, _, _) = call(&app, "GET", "/system/df?verbose=1", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
}
