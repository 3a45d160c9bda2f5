//! The network service trait (`/networks/*`) and the pure filter logic `GET /networks` and
//! `POST /networks/prune` apply to Docker's network JSON.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::filters::{glob_match, Filters};

/// Filters `GET /networks` accepts (Docker's set).
pub const NETWORK_LIST_FILTERS: &[&str] =
    &["name", "id", "label", "driver", "type", "dangling", "scope"];
/// Filters `POST /networks/prune` accepts.
pub const NETWORK_PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// Names of Docker's predefined networks (`type=builtin`).
pub const BUILTIN_NETWORKS: &[&str] = &["bridge", "host", "none"];

/// What `POST /networks/create` returns.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreated {
    pub id: String,
    pub warning: String,
}

/// Networks as the engine exposes them. Networks are rendered as Docker's inspect JSON
/// (`Name`, `Id`, `Driver`, `Labels`, `Containers`, ...), the shape `ls` and `inspect` share.
#[async_trait]
pub trait NetworkService: Send + Sync + 'static {
    async fn network_create(&self, req: NetworkCreateRequest) -> ApiResult<NetworkCreated>;
    /// Every network, as inspect JSON.
    async fn network_list(&self) -> ApiResult<Vec<Value>>;
    /// One network by name, ID or unique ID prefix.
    async fn network_inspect(&self, id: &str) -> ApiResult<Value>;
    async fn network_remove(&self, id: &str) -> ApiResult<()>;
    async fn network_connect(&self, id: &str, req: NetworkConnectRequest) -> ApiResult<()>;
    async fn network_disconnect(&self, id: &str, req: NetworkDisconnectRequest) -> ApiResult<()>;
    /// Remove unused user networks matching `filters`; returns their names.
    async fn network_prune(&self, filters: &Filters) -> ApiResult<Vec<String>>;
}

/// A service for engines without networking: every call is `501`.
pub struct NoNetworks;

fn none<T>() -> ApiResult<T> {
    Err(ApiError::new(
        crate::ErrorKind::NotImplemented,
        "networks are not available in this engine",
    ))
}

#[async_trait]
impl NetworkService for NoNetworks {
    async fn network_create(&self, _: NetworkCreateRequest) -> ApiResult<NetworkCreated> {
        none()
    }
    async fn network_list(&self) -> ApiResult<Vec<Value>> {
        Ok(vec![])
    }
    async fn network_inspect(&self, id: &str) -> ApiResult<Value> {
        Err(ApiError::not_found(format!("network {id} not found")))
    }
    async fn network_remove(&self, id: &str) -> ApiResult<()> {
        Err(ApiError::not_found(format!("network {id} not found")))
    }
    async fn network_connect(&self, _: &str, _: NetworkConnectRequest) -> ApiResult<()> {
        none()
    }
    async fn network_disconnect(&self, _: &str, _: NetworkDisconnectRequest) -> ApiResult<()> {
        none()
    }
    async fn network_prune(&self, _: &Filters) -> ApiResult<Vec<String>> {
        Ok(vec![])
    }
}

fn labels_of(n: &Value) -> HashMap<String, String> {
    n.get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(n: &'a Value, k: &str) -> &'a str {
    n.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Does the network JSON `n` pass the `GET /networks` filters? (name: substring, id: prefix,
/// as Docker; type: custom/builtin; dangling: no containers attached.)
pub fn network_matches(f: &Filters, n: &Value) -> ApiResult<bool> {
    let name = str_of(n, "Name");
    let id = str_of(n, "Id");
    let builtin = BUILTIN_NETWORKS.contains(&name);
    let names = f.get("name");
    if !names.is_empty()
        && !names
            .iter()
            .any(|p| name.contains(p) || glob_match(p, name))
    {
        return Ok(false);
    }
    let ids = f.get("id");
    if !ids.is_empty() && !ids.iter().any(|p| id.starts_with(p)) {
        return Ok(false);
    }
    let drivers = f.get("driver");
    if !drivers.is_empty() && !drivers.contains(&str_of(n, "Driver")) {
        return Ok(false);
    }
    for t in f.get("type") {
        match t {
            "custom" if builtin => return Ok(false),
            "builtin" if !builtin => return Ok(false),
            "custom" | "builtin" => {}
            _ => return Err(ApiError::invalid(format!("invalid filter: 'type'='{t}'"))),
        }
    }
    let scopes = f.get("scope");
    if !scopes.is_empty() && !scopes.contains(&"local") {
        return Ok(false);
    }
    if !f.labels_match("label", &labels_of(n)) {
        return Ok(false);
    }
    if let Some(d) = f.bool_value("dangling")? {
        let used = builtin
            || n.get("Containers")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty());
        if d == used {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Do a network's labels pass prune's `label` / `label!` filters?
pub fn prune_labels_match(f: &Filters, labels: &HashMap<String, String>) -> bool {
    f.labels_match("label", labels)
        && f.get("label!").iter().all(|x| match x.split_once('=') {
            Some((k, v)) => labels.get(k).is_none_or(|y| y != v),
            None => !labels.contains_key(*x),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> Filters {
        Filters::parse(s).unwrap()
    }

    #[test]
    fn list_filters() {
        let user = json!({"Name": "front-net", "Id": "abc123", "Driver": "bridge",
            "Labels": {"env": "prod"}, "Containers": {}});
        let bridge = json!({"Name": "bridge", "Id": "fff", "Driver": "bridge",
            "Labels": {}, "Containers": {}});
        assert!(network_matches(&f(r#"{"name":["front"]}"#), &user).unwrap());
        assert!(!network_matches(&f(r#"{"name":["back"]}"#), &user).unwrap());
        assert!(network_matches(&f(r#"{"id":["abc"]}"#), &user).unwrap());
        assert!(!network_matches(&f(r#"{"id":["bc"]}"#), &user).unwrap());
        assert!(network_matches(&f(r#"{"type":["custom"]}"#), &user).unwrap());
        assert!(!network_matches(&f(r#"{"type":["custom"]}"#), &bridge).unwrap());
        assert!(network_matches(&f(r#"{"type":["builtin"]}"#), &bridge).unwrap());
        assert!(network_matches(&f(r#"{"label":["env=prod"]}"#), &user).unwrap());
        assert!(!network_matches(&f(r#"{"label":["env=dev"]}"#), &user).unwrap());
        assert!(network_matches(&f(r#"{"dangling":["true"]}"#), &user).unwrap());
        assert!(!network_matches(&f(r#"{"dangling":["true"]}"#), &bridge).unwrap());
        assert!(network_matches(&f(r#"{"driver":["bridge"]}"#), &user).unwrap());
        assert!(network_matches(&f(r#"{"type":["nope"]}"#), &user).is_err());
    }

    #[test]
    fn prune_label_filters() {
        let mut l = HashMap::new();
        l.insert("keep".to_string(), "1".to_string());
        assert!(!prune_labels_match(&f(r#"{"label!":["keep"]}"#), &l));
        assert!(prune_labels_match(&f(r#"{"label!":["keep=2"]}"#), &l));
        assert!(prune_labels_match(&f(r#"{"label":["keep"]}"#), &l));
    }
}
