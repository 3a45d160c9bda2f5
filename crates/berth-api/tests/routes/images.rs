//! Image routes with fixed names and with slash-holding image names: which service call each
//! request reaches, with its typed arguments.

use axum::body::Body;
use axum::http::StatusCode;

use super::{call, json, setup};

#[tokio::test]
async fn delete_reads_booleans_and_takes_fixed_route_names_as_images() {
    let (fake, app) = setup();
    for (uri, want) in [
        (
            "/images/busybox?force=1&noprune=true",
            ("busybox", true, true),
        ),
        ("/v1.41/images/a/b:1?force=0", ("a/b:1", false, false)),
        ("/images/json?noprune=True", ("json", false, true)),
        ("/images/get", ("get", false, false)),
        ("/images/load", ("load", false, false)),
        ("/images/create", ("create", false, false)),
        ("/images/prune?force=yes", ("prune", true, false)),
    ] {
        fake.removed.lock().unwrap().clear();
        let (s, _, body) = call(&app, "DELETE", uri, Body::empty()).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        let got = fake.removed.lock().unwrap().clone();
        assert_eq!(got, vec![(want.0.to_string(), want.1, want.2)], "{uri}");
    }
}

#[tokio::test]
async fn fixed_routes_answer_only_their_methods() {
    let (fake, app) = setup();
    for (method, uri) in [
        ("POST", "/images/json"),
        ("GET", "/images/load"),
        ("GET", "/images/prune"),
        ("GET", "/images/busybox/tag"),
        ("POST", "/images/busybox/json"),
        ("GET", "/images/busybox"),
    ] {
        let (s, _, body) = call(&app, method, uri, Body::empty()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {uri}");
        assert!(json(&body)["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("page not found")));
    }
    assert!(fake.removed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn list_reads_typed_flags() {
    let (_, app) = setup();
    let (s, _, body) = call(&app, "GET", "/images/json?shared-size=1&x=y", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    let v = json(&body);
    assert!(v[0]["SharedSize"].as_i64().unwrap() >= 0, "{v}");
    let (_, _, body) = call(&app, "GET", "/images/json", Body::empty()).await;
    assert_eq!(json(&body)[0]["SharedSize"], -1);
}

/// moby sends each listed image's `VirtualSize` (= `Size`) to clients before API 1.44, as it
/// does for inspect.
#[tokio::test]
async fn list_shows_virtual_size_before_1_44() {
    let (_, app) = setup();
    let (_, _, body) = call(&app, "GET", "/v1.43/images/json", Body::empty()).await;
    let v = json(&body);
    assert_eq!(v[0]["VirtualSize"], v[0]["Size"], "{v}");
    assert_eq!(v[0]["Size"], 100);
    let (_, _, body) = call(&app, "GET", "/v1.44/images/json", Body::empty()).await;
    assert!(json(&body)[0].get("VirtualSize").is_none());
}

#[tokio::test]
async fn inspect_shows_legacy_fields_by_api_version() {
    let (_, app) = setup();
    let get = |uri: &'static str| {
        let app = app.clone();
        async move {
            let (s, _, body) = call(&app, "GET", uri, Body::empty()).await;
            assert_eq!(s, StatusCode::OK, "{uri}");
            json(&body)
        }
    };
    // docker-compose 1.29 negotiates the newest version and reads ContainerConfig.Volumes on
    // every recreate: the legacy fields stay at every version (dockerd ≥ 25 drops them at 1.45
    // and compose 1.29 crashes against it).
    for uri in [
        "/v1.38/images/busybox:latest/json",
        "/v1.45/images/busybox:latest/json",
        "/images/busybox:latest/json",
    ] {
        let v = get(uri).await;
        assert_eq!(
            v["ContainerConfig"]["Volumes"],
            serde_json::Value::Null,
            "{uri}"
        );
        assert_eq!(v["ContainerConfig"]["Hostname"], "", "{uri}");
        assert_eq!(v["Container"], "c0ffee", "{uri}");
        assert_eq!(v["DockerVersion"], "", "{uri}");
        assert_eq!(v["Size"], 100);
    }
    assert_eq!(
        get("/v1.43/images/busybox:latest/json").await["VirtualSize"],
        100
    );
    let v144 = get("/v1.44/images/busybox:latest/json").await;
    assert!(v144.get("VirtualSize").is_none(), "{v144}");
}

/// `GET /images/search` is a route of its own (it was taken for an image named `search` and
/// answered 404): term, limit, filters and `X-Registry-Auth` reach the service typed; a
/// limit that is not a number is moby's strconv error; `DELETE /images/search` still removes
/// an image of that name.
#[tokio::test]
async fn search_reaches_the_service_with_typed_arguments() {
    let (fake, app) = setup();
    let req = axum::http::Request::builder()
        .method("GET")
        .uri("/v1.41/images/search?term=127.0.0.1:5000/app&limit=5&filters=%7B%22is-official%22%3A%5B%22true%22%5D%7D")
        .header("X-Registry-Auth", "e30=")
        .body(Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        json(&body),
        serde_json::json!([{"name": "127.0.0.1:5000/app", "description": "", "star_count": 3,
                            "is_official": false, "is_automated": false}])
    );
    let (s, _, _) = call(&app, "GET", "/images/search?term=busybox", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        *fake.searches.lock().unwrap(),
        [
            r#"search(127.0.0.1:5000/app, Some(5), {"is-official": {"true"}}, Some("e30="))"#,
            "search(busybox, None, {}, None)",
        ]
    );
    let (s, _, body) = call(
        &app,
        "GET",
        "/images/search?term=x&limit=ten",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&body)["message"],
        r#"strconv.Atoi: parsing "ten": invalid syntax"#
    );
    let (s, _, _) = call(
        &app,
        "GET",
        "/images/search?term=x&filters=nope",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(fake.searches.lock().unwrap().len(), 2);
    let (s, _, _) = call(&app, "DELETE", "/images/search", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        *fake.removed.lock().unwrap(),
        [("search".to_string(), false, false)]
    );
}
