//! `docker search` as dockerd's `SearchRegistryForImages`: the filters checked (with moby's
//! `Invalid filter` texts), the term split into registry and remote name, the registry's v1
//! search through berth-registry (its per-host config: insecure registries, certs.d,
//! credentials), then the results filtered.

use berth_api_types::models::ImageSearchResponseItem;
use berth_api_types::{Filters, SearchOptions};
use berth_registry::{split_search_term, Credentials, SearchResult, DEFAULT_SEARCH_LIMIT};

use crate::engine::Engine;
use crate::error::{DaemonError, Result};

/// The filters `docker search` takes.
const KEYS: &[&str] = &["is-automated", "is-official", "stars"];

/// Checked search filters: None = no filter of that kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SearchFilter {
    is_automated: Option<bool>,
    is_official: Option<bool>,
    /// The largest `stars=` given.
    min_stars: Option<i64>,
}

/// moby's `UniqueExactMatch` on "true"/"false": one value, exactly one of those.
fn boolean(f: &Filters, key: &str) -> Result<Option<bool>> {
    let vals = f.get(key);
    match vals.as_slice() {
        [] => Ok(None),
        ["true"] => Ok(Some(true)),
        ["false"] => Ok(Some(false)),
        _ => Err(DaemonError::InvalidFilter(format!(
            "{key}=[{}]",
            vals.join(" ")
        ))),
    }
}

impl SearchFilter {
    pub fn parse(f: &Filters) -> Result<SearchFilter> {
        f.validate(KEYS)?;
        let mut min_stars = None;
        for s in f.get("stars") {
            let n: i64 = s
                .parse()
                .map_err(|_| DaemonError::InvalidFilter(format!("stars={s}")))?;
            min_stars = Some(min_stars.map_or(n, |m: i64| m.max(n)));
        }
        Ok(SearchFilter {
            is_automated: boolean(f, "is-automated")?,
            is_official: boolean(f, "is-official")?,
            min_stars: min_stars.map(|m| m.max(0)),
        })
    }

    pub fn keeps(&self, r: &SearchResult) -> bool {
        self.is_automated.is_none_or(|a| a == r.is_automated)
            && self.is_official.is_none_or(|o| o == r.is_official)
            && self.min_stars.is_none_or(|m| r.star_count >= m)
    }
}

/// The registry to search and the term to send it, checked as dockerd's registry service.
pub fn target(term: &str) -> Result<(String, String)> {
    if term.contains("://") {
        return Err(DaemonError::invalid(
            "Invalid repository name (ex: \"registry.domain.tld/myrepos\")",
        ));
    }
    let (index, remote) = split_search_term(term);
    let index = if index == "index.docker.io" {
        "docker.io".to_string()
    } else {
        index
    };
    if index.starts_with('-') || index.ends_with('-') {
        return Err(DaemonError::invalid(format!(
            "invalid index name ({index}). Cannot begin or end with a hyphen"
        )));
    }
    Ok((index, remote))
}

impl Engine {
    pub(crate) async fn search_images(
        &self,
        opts: SearchOptions,
    ) -> Result<Vec<ImageSearchResponseItem>> {
        let filter = SearchFilter::parse(&opts.filters)?;
        let (registry, remote) = target(&opts.term)?;
        let limit = opts.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
        if !(1..=100).contains(&limit) {
            return Err(DaemonError::invalid(format!(
                "Limit {limit} is outside the range of [1, 100]"
            )));
        }
        // As dockerd: an auth header that does not decode is no credentials, not an error.
        let creds = opts
            .registry_auth
            .as_deref()
            .and_then(|h| Credentials::from_x_registry_auth(h).ok().flatten());
        let found = self
            .inner
            .registry
            .client
            .search(&registry, &remote, limit, creds.as_ref())
            .await?;
        Ok(found
            .results
            .into_iter()
            .filter(|r| filter.keeps(r))
            .map(|r| ImageSearchResponseItem {
                star_count: Some(r.star_count),
                is_official: Some(r.is_official),
                name: Some(r.name),
                is_automated: Some(r.is_automated),
                description: Some(r.description),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(json: &str) -> Result<SearchFilter> {
        SearchFilter::parse(&Filters::parse(json).unwrap())
    }

    #[test]
    fn filters_checked_with_moby_texts() {
        let err = |j: &str| f(j).unwrap_err().to_string();
        assert_eq!(err(r#"{"bogus":["1"]}"#), "Invalid filter 'bogus'");
        assert_eq!(
            err(r#"{"is-official":["maybe"]}"#),
            "Invalid filter 'is-official=[maybe]'"
        );
        assert_eq!(
            err(r#"{"is-automated":["true","false"]}"#),
            "Invalid filter 'is-automated=[false true]'"
        );
        assert_eq!(err(r#"{"stars":["many"]}"#), "Invalid filter 'stars=many'");
        let ok = f(r#"{"is-official":["true"],"stars":["3","10"]}"#).unwrap();
        let r = |stars, official| SearchResult {
            star_count: stars,
            is_official: official,
            ..Default::default()
        };
        assert!(ok.keeps(&r(10, true)));
        assert!(!ok.keeps(&r(9, true)));
        assert!(!ok.keeps(&r(50, false)));
        assert!(f("").unwrap().keeps(&r(0, false)));
    }

    #[test]
    fn terms_name_their_registry() {
        assert_eq!(
            target("busybox").unwrap(),
            ("docker.io".into(), "busybox".into())
        );
        assert_eq!(
            target("index.docker.io/library/busybox").unwrap(),
            ("docker.io".into(), "library/busybox".into())
        );
        assert_eq!(
            target("127.0.0.1:5000/app").unwrap(),
            ("127.0.0.1:5000".into(), "app".into())
        );
        assert!(target("http://x/y")
            .unwrap_err()
            .to_string()
            .starts_with("Invalid repository name"));
        assert!(target("-bad.io/x").is_err());
    }
}
