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

#[tokio::test]
async fn plugins_are_an_empty_list_and_their_bodies_are_checked_first() {
    let (_, app) = setup();
    let (s, _, body) = call(&app, "GET", "/plugins", Body::empty()).await;
    assert_eq!((s, json(&body)), (StatusCode::OK, serde_json::json!([])));
    // set: Go's JSON texts before the plugin lookup (was 404 for both), then 404.
    for (body, want) in [
        (
            "{invalid json",
            "invalid character 'i' looking for beginning of object key string",
        ),
        ("", "got EOF while reading request body"),
    ] {
        let (s, _, b) = call(&app, "POST", "/plugins/foobar/set", Body::from(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(json(&b)["message"], want);
    }
    let (s, _, b) = call(&app, "POST", "/plugins/foobar/set", Body::from("[\"a=1\"]")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(json(&b)["message"], "plugin \"foobar\" not found");
    for (m, uri) in [
        ("GET", "/plugins/foobar/json"),
        ("DELETE", "/plugins/foobar"),
        ("POST", "/plugins/foobar/enable"),
        ("POST", "/plugins/foobar/disable"),
    ] {
        let (s, _, _) = call(&app, m, uri, Body::empty()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {uri}");
    }
    // Installing is refused plainly, not "page not found".
    let (s, _, b) = call(&app, "POST", "/plugins/pull?remote=x", Body::empty()).await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert!(json(&b)["message"]
        .as_str()
        .unwrap()
        .contains("managed plugins"));
}

/// `/system/df`'s body, key by key: the 1.52 usage summaries (no `Items` unless verbose) and
/// the legacy lists, all present even when empty.
#[tokio::test]
async fn df_has_the_usage_summaries_and_the_legacy_lists() {
    let (_, app) = setup();
    let (s, _, body) = call(&app, "GET", "/system/df", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    let mut v = json(&body);
    let images = v.as_object_mut().unwrap().remove("Images").unwrap();
    assert_eq!(images.as_array().unwrap().len(), 2);
    let zero = |total: usize| serde_json::json!({"ActiveCount": 0, "TotalCount": total, "Reclaimable": 0, "TotalSize": 0});
    assert_eq!(
        v,
        serde_json::json!({
            // Two images of 100 bytes, 40 shared, used by no container.
            "ImageUsage": {"ActiveCount": 0, "TotalCount": 2, "Reclaimable": 120, "TotalSize": 200},
            "ContainerUsage": zero(0),
            "VolumeUsage": zero(0),
            "BuildCacheUsage": zero(0),
            "LayersSize": 100,
            "Containers": [],
            "Volumes": [],
            "BuildCache": [],
        })
    );
    let (_, _, body) = call(&app, "GET", "/system/df?verbose=1", Body::empty()).await;
    let v = json(&body);
    assert_eq!(v["ImageUsage"]["Items"], images);
}
