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

/// Answers create and prune; every other call is NoNetworks' 501.
struct Nets(Vec<String>);

#[async_trait::async_trait]
impl berth_api::NetworkService for Nets {
    async fn network_create(
        &self,
        req: berth_api::models::NetworkCreateRequest,
    ) -> berth_api::ApiResult<berth_api::NetworkCreated> {
        Ok(berth_api::NetworkCreated {
            id: format!("id-of-{}", req.name),
            warning: String::new(),
        })
    }
    async fn network_list(&self) -> berth_api::ApiResult<Vec<berth_api::NetworkView>> {
        berth_api::NoNetworks.network_list().await
    }
    async fn network_inspect(&self, id: &str) -> berth_api::ApiResult<berth_api::NetworkView> {
        berth_api::NoNetworks.network_inspect(id).await
    }
    async fn network_remove(&self, id: &str) -> berth_api::ApiResult<()> {
        berth_api::NoNetworks.network_remove(id).await
    }
    async fn network_connect(
        &self,
        id: &str,
        req: berth_api::models::NetworkConnectRequest,
    ) -> berth_api::ApiResult<()> {
        berth_api::NoNetworks.network_connect(id, req).await
    }
    async fn network_disconnect(
        &self,
        id: &str,
        req: berth_api::models::NetworkDisconnectRequest,
    ) -> berth_api::ApiResult<()> {
        berth_api::NoNetworks.network_disconnect(id, req).await
    }
    async fn network_prune(&self, _: &berth_api::Filters) -> berth_api::ApiResult<Vec<String>> {
        Ok(self.0.clone())
    }
}

fn nets_app(pruned: &[&str]) -> axum::Router {
    berth_api::app(berth_api::Services {
        images: std::sync::Arc::new(super::Fake::default()),
        system: std::sync::Arc::new(super::Fake::default()),
        volumes: std::sync::Arc::new(berth_api::NoVolumes),
        container_fs: std::sync::Arc::new(berth_api::NoContainerFs),
        containers: std::sync::Arc::new(berth_api::NoContainers),
        networks: std::sync::Arc::new(Nets(pruned.iter().map(|s| s.to_string()).collect())),
    })
}

/// Create answers 201 `{Id, Warning}` (an empty warning is sent); prune lists the names, `[]`
/// when none.
#[tokio::test]
async fn create_and_prune_bodies_are_dockers() {
    let app = nets_app(&["old"]);
    let (s, _, body) = call(
        &app,
        "POST",
        "/networks/create",
        Body::from(r#"{"Name":"n1"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        super::json(&body),
        serde_json::json!({"Id": "id-of-n1", "Warning": ""})
    );
    let (s, _, body) = call(&app, "POST", "/networks/prune", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        super::json(&body),
        serde_json::json!({"NetworksDeleted": ["old"]})
    );
    let (_, _, body) = call(&nets_app(&[]), "POST", "/networks/prune", Body::empty()).await;
    assert_eq!(
        super::json(&body),
        serde_json::json!({"NetworksDeleted": []})
    );
}
