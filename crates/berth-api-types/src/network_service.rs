//! The network service trait (`/networks/*`) and the pure filter logic `GET /networks` and
//! `POST /networks/prune` apply to Docker's network JSON.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::filters::{glob_match, Filters, LabelFilter};

/// Filters `GET /networks` accepts (Docker's set).
pub const NETWORK_LIST_FILTERS: &[&str] =
    &["name", "id", "label", "driver", "type", "dangling", "scope"];
/// Filters `POST /networks/prune` accepts.
pub const NETWORK_PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// Names of Docker's predefined networks (`type=builtin`).
pub const BUILTIN_NETWORKS: &[&str] = &["bridge", "host", "none"];

/// What `POST /networks/create` returns (its body: `Warning` is sent even when empty).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreated {
    pub id: String,
    pub warning: String,
}

/// `GET /networks/{id}` (and each item of `GET /networks`): Docker's network inspect JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NetworkView {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339 with nanoseconds.
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: NetworkIpam,
    #[serde(rename = "Internal")]
    pub internal: bool,
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigFrom,
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    /// Attached containers by container ID.
    #[serde(rename = "Containers")]
    pub containers: BTreeMap<String, NetworkContainer>,
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

/// `IPAM` of a network inspect.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NetworkIpam {
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "Config")]
    pub config: Vec<NetworkIpamConfig>,
}

/// One subnet of a network's `IPAM.Config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NetworkIpamConfig {
    #[serde(rename = "Subnet")]
    pub subnet: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(rename = "AuxiliaryAddresses", skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// `ConfigFrom` of a network inspect.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConfigFrom {
    #[serde(rename = "Network")]
    pub network: String,
}

/// A container attached to a network, as the network's `Containers` lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NetworkContainer {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// `10.0.0.2/24`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// Empty without IPv6.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// Networks as the engine exposes them. Networks are rendered as Docker's inspect JSON
/// (`Name`, `Id`, `Driver`, `Labels`, `Containers`, ...), the shape `ls` and `inspect` share.
#[async_trait]
pub trait NetworkService: Send + Sync + 'static {
    async fn network_create(&self, req: NetworkCreateRequest) -> ApiResult<NetworkCreated>;
    /// Every network, as inspect JSON.
    async fn network_list(&self) -> ApiResult<Vec<NetworkView>>;
    /// One network by name, ID or unique ID prefix.
    async fn network_inspect(&self, id: &str) -> ApiResult<NetworkView>;
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
    async fn network_list(&self) -> ApiResult<Vec<NetworkView>> {
        Ok(vec![])
    }
    async fn network_inspect(&self, id: &str) -> ApiResult<NetworkView> {
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

/// `GET /networks` filters, checked and parsed once per list. (name: substring or glob, id:
/// prefix, as Docker; type: custom/builtin; dangling: no containers attached.)
#[derive(Debug, Default)]
pub struct NetworkFilter {
    names: Vec<String>,
    ids: Vec<String>,
    drivers: Vec<String>,
    /// `type=builtin` (true) / `type=custom` (false); both given: every network fails one.
    types: Vec<bool>,
    scopes: Vec<String>,
    labels: LabelFilter,
    dangling: Option<bool>,
}

impl NetworkFilter {
    pub fn compile(f: &Filters) -> ApiResult<NetworkFilter> {
        f.validate(NETWORK_LIST_FILTERS)?;
        let owned = |k: &str| f.get(k).into_iter().map(str::to_string).collect();
        let types = f
            .get("type")
            .into_iter()
            .map(|t| match t {
                "builtin" => Ok(true),
                "custom" => Ok(false),
                _ => Err(ApiError::invalid(format!("invalid filter: 'type'='{t}'"))),
            })
            .collect::<ApiResult<_>>()?;
        Ok(NetworkFilter {
            names: owned("name"),
            ids: owned("id"),
            drivers: owned("driver"),
            types,
            scopes: owned("scope"),
            labels: LabelFilter::new(f, "label"),
            // moby's network filter has its own words for a bad `dangling` value.
            dangling: f.bool_value("dangling").map_err(|_| {
                ApiError::invalid(
                    r#"invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")"#,
                )
            })?,
        })
    }

    pub fn matches(&self, n: &NetworkView) -> bool {
        let name = n.name.as_str();
        let builtin = BUILTIN_NETWORKS.contains(&name);
        let labels: HashMap<String, String> = n.labels.clone().into_iter().collect();
        (self.names.is_empty()
            || self
                .names
                .iter()
                .any(|p| name.contains(p.as_str()) || glob_match(p, name)))
            && (self.ids.is_empty() || self.ids.iter().any(|p| n.id.starts_with(p.as_str())))
            && (self.drivers.is_empty() || self.drivers.contains(&n.driver))
            && self.types.iter().all(|t| *t == builtin)
            && (self.scopes.is_empty() || self.scopes.iter().any(|s| s == "local"))
            && self.labels.matches(&labels)
            && self
                .dangling
                .is_none_or(|d| d != (builtin || !n.containers.is_empty()))
    }
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

    fn f(s: &str) -> Filters {
        Filters::parse(s).unwrap()
    }

    #[test]
    fn list_filters() {
        let nf = |q: &str| NetworkFilter::compile(&f(q)).unwrap();
        let net = |name: &str, id: &str, labels: &[(&str, &str)]| NetworkView {
            name: name.into(),
            id: id.into(),
            driver: "bridge".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let user = net("front-net", "abc123", &[("env", "prod")]);
        let bridge = net("bridge", "fff", &[]);
        assert!(nf(r#"{"name":["front"]}"#).matches(&user));
        assert!(!nf(r#"{"name":["back"]}"#).matches(&user));
        assert!(nf(r#"{"id":["abc"]}"#).matches(&user));
        assert!(!nf(r#"{"id":["bc"]}"#).matches(&user));
        assert!(nf(r#"{"type":["custom"]}"#).matches(&user));
        assert!(!nf(r#"{"type":["custom"]}"#).matches(&bridge));
        assert!(nf(r#"{"type":["builtin"]}"#).matches(&bridge));
        assert!(nf(r#"{"label":["env=prod"]}"#).matches(&user));
        assert!(!nf(r#"{"label":["env=dev"]}"#).matches(&user));
        assert!(nf(r#"{"dangling":["true"]}"#).matches(&user));
        assert!(!nf(r#"{"dangling":["true"]}"#).matches(&bridge));
        assert!(nf(r#"{"driver":["bridge"]}"#).matches(&user));
        let mut used = user.clone();
        used.containers
            .insert("c1".into(), NetworkContainer::default());
        assert!(!nf(r#"{"dangling":["true"]}"#).matches(&used));
        assert!(nf(r#"{"dangling":["false"]}"#).matches(&used));
    }

    /// A bad key or value fails when the filter is compiled, before any network is looked at.
    #[test]
    fn bad_list_filters_fail_when_compiled() {
        for (q, want) in [
            (r#"{"type":["nope"]}"#, "invalid filter: 'type'='nope'"),
            (
                r#"{"dangling":["maybe"]}"#,
                r#"invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")"#,
            ),
            (r#"{"bogus":["1"]}"#, "Invalid filter 'bogus'"),
        ] {
            let e = NetworkFilter::compile(&f(q)).unwrap_err();
            assert_eq!(e.to_string(), want, "{q}");
        }
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
