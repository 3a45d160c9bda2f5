//! `POST /build`: the classic (non-BuildKit) build endpoint. Parses the query into
//! [`BuildOptions`], hands the context tar to [`crate::ImageService::build`] and streams its
//! Docker JSON messages back.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::response::Response;

use super::{body_stream, json_lines, QueryPairs};
use crate::{ApiError, ApiResult, BuildOptions, HttpResult, Services};

fn json_map(q: &QueryPairs, key: &str) -> ApiResult<BTreeMap<String, String>> {
    let Some(raw) = q.get(key).filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    // `null` is what Go's client sends for a nil map (no build args, no labels).
    let m: Option<BTreeMap<String, Option<String>>> = serde_json::from_str(raw).map_err(|e| {
        ApiError::invalid(format!(
            "invalid {key} (want a JSON object of strings): {e}"
        ))
    })?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// `extrahosts=name:ip` pairs (repeated, or comma-separated as older clients send them).
fn extra_hosts(q: &QueryPairs) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for v in q.all("extrahosts") {
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, ip) = item
                .split_once(':')
                .or_else(|| item.split_once('='))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "invalid extra host {item:?}: want name:ip, e.g. db:10.0.0.5"
                    ))
                })?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(ApiError::invalid(format!(
                    "invalid extra host {item:?}: {ip:?} is not an IP address (host-gateway is not supported in builds)"
                )));
            }
            out.push((name.to_string(), ip.to_string()));
        }
    }
    Ok(out)
}

/// The [`BuildOptions`] a `POST /build` query asks for.
pub(crate) fn build_options(q: &QueryPairs) -> ApiResult<BuildOptions> {
    Ok(BuildOptions {
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: q
            .get("dockerfile")
            .filter(|d| !d.is_empty())
            .unwrap_or("Dockerfile")
            .to_string(),
        build_args: json_map(q, "buildargs")?,
        labels: json_map(q, "labels")?,
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.flag("nocache"),
        pull: q.flag("pull"),
        quiet: q.flag("q"),
        network: q.get("networkmode").unwrap_or("").to_string(),
        platform: q.get("platform").unwrap_or("").to_string(),
        extra_hosts: extra_hosts(q)?,
        cache_from: match q.get("cachefrom").filter(|v| !v.is_empty()) {
            None => None,
            // `null` (Go's nil slice) is as good as absent.
            Some(raw) => serde_json::from_str(raw).map_err(|e| {
                ApiError::invalid(format!(
                    "invalid cachefrom (want a JSON array of image names): {e}"
                ))
            })?,
        },
        dockerfile_inline: None,
        dockerignore_inline: None,
        secrets: Default::default(),
        registry_auth: Default::default(),
        named_contexts: Default::default(),
        ssh: Default::default(),
    })
}

pub(super) async fn build(State(s): State<Services>, req: Request) -> HttpResult<Response> {
    let checked = QueryPairs::from_uri(req.uri()).and_then(|q| {
        if q.get("version") == Some("2") {
            return Err(ApiError::invalid(
                "BuildKit (version=2) is not supported: set DOCKER_BUILDKIT=0 to use the classic builder",
            ));
        }
        build_options(&q)
    });
    let body = body_stream(req.into_body());
    let opts = match checked {
        Ok(o) => o,
        Err(e) => {
            // Answer after the upload: refusing mid-upload makes the client see a broken pipe.
            crate::drain(body).await;
            return Err(e.into());
        }
    };
    let stream = s.images.build(body, opts).await?;
    Ok(json_lines(stream))
}

/// `POST /build/prune`: what `docker builder prune` and `docker system prune` call.
pub(super) async fn prune(State(s): State<Services>) -> HttpResult<axum::Json<serde_json::Value>> {
    let (deleted, bytes) = s.images.build_prune().await?;
    Ok(axum::Json(serde_json::json!({
        "CachesDeleted": deleted,
        "SpaceReclaimed": bytes,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_dockerfile_wins_and_extra_hosts_parse() {
        let uri: axum::http::Uri =
            "/build?dockerfile=.dockerfile.1&dockerfile=FROM&extrahosts=a:1.2.3.4&extrahosts=b:%3A%3A1"
                .parse()
                .unwrap();
        let o = build_options(&QueryPairs::from_uri(&uri).unwrap()).unwrap();
        assert_eq!(
            o.dockerfile, ".dockerfile.1",
            "the first value wins, as in Go"
        );
        assert_eq!(
            o.extra_hosts,
            [("a".into(), "1.2.3.4".into()), ("b".into(), "::1".into())]
        );
        assert_eq!(o.cache_from, None);
        let uri: axum::http::Uri = "/build?cachefrom=%5B%22a%3A1%22%5D".parse().unwrap();
        let o = build_options(&QueryPairs::from_uri(&uri).unwrap()).unwrap();
        assert_eq!(o.cache_from, Some(vec!["a:1".to_string()]));
        let uri: axum::http::Uri = "/build?extrahosts=nohost".parse().unwrap();
        assert!(build_options(&QueryPairs::from_uri(&uri).unwrap()).is_err());
    }

    #[test]
    fn parses_docker_cli_query() {
        let uri: axum::http::Uri = "/build?t=a%3A1&t=b&dockerfile=sub%2FDf&buildargs=%7B%22X%22%3A%221%22%2C%22N%22%3Anull%7D&nocache=1&q=true&target=t&networkmode=host"
            .parse()
            .unwrap();
        let o = build_options(&QueryPairs::from_uri(&uri).unwrap()).unwrap();
        assert_eq!(o.tags, ["a:1", "b"]);
        assert_eq!(o.dockerfile, "sub/Df");
        assert_eq!(o.build_args.len(), 1);
        assert_eq!(o.build_args["X"], "1");
        assert!(o.no_cache && o.quiet && !o.pull);
        assert_eq!(o.target.as_deref(), Some("t"));
        assert_eq!(o.network, "host");
        let uri: axum::http::Uri = "/build?buildargs=nope".parse().unwrap();
        assert!(build_options(&QueryPairs::from_uri(&uri).unwrap()).is_err());
    }

    #[test]
    fn null_json_params_are_absent_as_go_sends_them() {
        let uri: axum::http::Uri =
            "/build?buildargs=null&labels=null&cachefrom=null&ulimits=null&t=x"
                .parse()
                .unwrap();
        let o = build_options(&QueryPairs::from_uri(&uri).unwrap()).unwrap();
        assert!(o.build_args.is_empty() && o.labels.is_empty());
        assert_eq!(o.cache_from, None);
        assert_eq!(o.tags, ["x"]);
        let uri: axum::http::Uri = "/build?labels=%5B%5D".parse().unwrap();
        assert!(build_options(&QueryPairs::from_uri(&uri).unwrap()).is_err());
    }
}
