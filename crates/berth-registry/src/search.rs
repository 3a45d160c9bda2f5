//! `docker search`: a registry's v1 search endpoint (`GET /v1/search?q=&n=`), which Docker Hub
//! serves at index.docker.io and which distribution registries (the `registry:2` image,
//! Debian's docker-registry) do not have. Reached through the same per-host configuration as
//! pulls: certs.d, insecure registries (https, then http), and credentials.

use berth_http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use berth_http::{Request, StatusCode};
use serde::{Deserialize, Serialize};

use crate::auth::Credentials;
use crate::client::{body_detail, net_error, read_capped, Client};
use crate::config::{Candidate, Endpoint, DOCKER_HUB};
use crate::error::{RegistryError, Result};

/// The host serving Docker Hub's v1 search (moby's `IndexServer`).
pub const DOCKER_HUB_INDEX_HOST: &str = "index.docker.io";

/// Results when the caller gives no limit (moby's `DefaultSearchLimit`).
pub const DEFAULT_SEARCH_LIMIT: i64 = 25;

/// Largest search answer read.
const MAX_SEARCH_BODY: u64 = 8 << 20;

/// One repository found (moby's `registry.SearchResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_automated: bool,
    #[serde(default)]
    pub description: String,
}

/// A v1 search answer (moby's `registry.SearchResults`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub num_results: i64,
    #[serde(default)]
    pub results: Vec<SearchResult>,
}

/// Split a search term into (registry, remote term) as dockerd's `splitReposSearchTerm`:
/// `host/rest` when the first component looks like a host (has `.` or `:`, or is
/// `localhost`), else Docker Hub and the whole term.
pub fn split_search_term(term: &str) -> (String, String) {
    match term.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), term.to_string()),
    }
}

impl Client {
    /// Search `registry` (a name as [`split_search_term`] returns it) for `term`, at most
    /// `limit` results. Docker Hub is searched at index.docker.io, other registries at their
    /// own host: https first, then plain http for insecure ones.
    pub async fn search(
        &self,
        registry: &str,
        term: &str,
        limit: i64,
        creds: Option<&Credentials>,
    ) -> Result<SearchResults> {
        let ep = self.search_endpoint(registry)?;
        let official = registry == DOCKER_HUB;
        // As dockerd: Docker Hub's official images are searched without `library/`.
        let term = if official {
            term.strip_prefix("library/").unwrap_or(term)
        } else {
            term
        };
        let creds = self.credentials_for(&ep.host, creds)?;
        let mut headers = HeaderMap::new();
        headers.insert("X-Docker-Token", HeaderValue::from_static("true"));
        let auth = match &creds {
            Some(Credentials::RegistryToken(t)) => Some(format!("Bearer {t}")),
            Some(c) => c.basic_header(),
            None => None,
        };
        if let Some(a) = auth {
            if let Ok(mut v) = HeaderValue::from_str(&a) {
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
        }
        let what = "GET /v1/search";
        let mut last = None;
        for cand in &ep.candidates {
            let http = self.http(&ep.host, cand.verify_tls)?;
            let url = format!(
                "{}/v1/search?{}",
                cand.base,
                berth_http::form_urlencoded(&[("q", term), ("n", &limit.to_string())])
            );
            let resp = match http.send(Request::get(url).headers(headers.clone())).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(endpoint = %cand.base, error = %e, "search endpoint failed");
                    last = Some(net_error(registry, what, &e));
                    continue;
                }
            };
            let status = resp.status();
            return match status {
                StatusCode::OK => {
                    let body = read_capped(resp, MAX_SEARCH_BODY, registry, what)
                        .await?
                        .ok_or_else(|| RegistryError::Malformed {
                            what: "search results",
                            image: term.to_string(),
                            registry: registry.to_string(),
                            detail: "larger than 8 MiB".into(),
                        })?;
                    serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                        what: "search results",
                        image: term.to_string(),
                        registry: registry.to_string(),
                        detail: e.to_string(),
                    })
                }
                StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::NOT_IMPLEMENTED => Err(RegistryError::SearchUnsupported {
                    registry: registry.to_string(),
                    status: status.as_u16(),
                }),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Err(RegistryError::Unauthorized {
                        registry: registry.to_string(),
                        detail: format!("search: {}", body_detail(resp).await),
                    })
                }
                st => Err(RegistryError::UnexpectedStatus {
                    registry: registry.to_string(),
                    what: "search".into(),
                    status: st.as_u16(),
                    detail: body_detail(resp).await,
                }),
            };
        }
        Err(last.expect("an endpoint has at least one candidate"))
    }

    /// Where `registry`'s search lives: index.docker.io for Docker Hub (https only), else
    /// the registry's own upstream endpoint (mirrors serve no search).
    fn search_endpoint(&self, registry: &str) -> Result<Endpoint> {
        if registry == DOCKER_HUB {
            return Ok(Endpoint {
                host: DOCKER_HUB_INDEX_HOST.to_string(),
                candidates: vec![Candidate {
                    base: format!("https://{DOCKER_HUB_INDEX_HOST}"),
                    verify_tls: true,
                }],
                mirror: false,
            });
        }
        Ok(self
            .config()
            .endpoints(registry, true)?
            .pop()
            .expect("upstream endpoint"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_as_dockerd() {
        let s = |t: &str| split_search_term(t);
        assert_eq!(s("busybox"), ("docker.io".into(), "busybox".into()));
        assert_eq!(
            s("library/busybox"),
            ("docker.io".into(), "library/busybox".into())
        );
        assert_eq!(s("me/app"), ("docker.io".into(), "me/app".into()));
        assert_eq!(s("localhost/app"), ("localhost".into(), "app".into()));
        assert_eq!(
            s("127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000".into(), "team/app".into())
        );
        assert_eq!(s("quay.io/x"), ("quay.io".into(), "x".into()));
    }
}
