//! Network routes reach their service method (NoNetworks answers every call with 501) and
//! nothing else does (404).

use axum::body::Body;
use axum::http::StatusCode;

use super::{call, setup};

#[tokio::test]
async fn connect_and_disconnect_are_routes_of_their_own() {
    let (_, app) = setup();
    for op in ["connect", "disconnect"] {
        let body = Body::from(r#"{"Container":"c1"}"#);
        let (s, _, out) = call(&app, "POST", &format!("/v1.45/networks/n1/{op}"), body).await;
        assert_eq!(
            s,
            StatusCode::NOT_IMPLEMENTED,
            "{op}: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(String::from_utf8_lossy(&out).contains("networks are not available"));
    }
    let (s, _, _) = call(&app, "POST", "/networks/n1/attach", Body::empty()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(&app, "GET", "/networks/n1/connect", Body::empty()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
