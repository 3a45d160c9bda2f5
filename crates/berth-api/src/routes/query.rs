//! Typed query strings: one struct per route, read as dockerd reads a form (the first value of
//! a repeated key wins, unknown keys are ignored, booleans are lenient: `1`/`true`/`True`/`yes`
//! are true, anything else false).

use std::collections::HashSet;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::value::{Error as ValueError, MapDeserializer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::QueryPairs;
use crate::{ApiError, ApiResult, HttpError};

/// Extracts a query struct `T`; a malformed query answers 400 with Docker's JSON error.
pub(crate) struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        Ok(Q(parse(&QueryPairs::from_uri(&parts.uri)?)?))
    }
}

/// `T` from query pairs: every value is a string; the first of a repeated key wins.
pub(crate) fn parse<T: DeserializeOwned>(q: &QueryPairs) -> ApiResult<T> {
    let mut seen = HashSet::new();
    let first: Vec<(String, String)> =
        q.0.iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .cloned()
            .collect();
    T::deserialize(MapDeserializer::<_, ValueError>::new(first.into_iter()))
        .map_err(|e| ApiError::invalid(format!("invalid query string: {e}")))
}

/// Docker's lenient boolean (`#[serde(default, deserialize_with = "flag")]`).
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    Ok(crate::filters::query_bool(Some(&s)))
}

/// A key that may be absent (`None`) or present, even empty (`#[serde(default, deserialize_with = "present")]`).
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// A non-empty value, else `None`.
pub(crate) fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct T {
        #[serde(default, deserialize_with = "flag")]
        force: bool,
        #[serde(default)]
        name: String,
        #[serde(default, deserialize_with = "present")]
        keys: Option<String>,
    }

    fn q(s: &str) -> ApiResult<T> {
        parse(&QueryPairs::from_uri(&format!("/x?{s}").parse().unwrap()).unwrap())
    }

    #[test]
    fn bools_are_lenient_and_unknown_keys_ignored() {
        for yes in ["1", "true", "True", "TRUE", "yes"] {
            assert!(q(&format!("force={yes}&other=z")).unwrap().force, "{yes}");
        }
        for no in ["0", "false", "False", "", "nope"] {
            assert!(!q(&format!("force={no}")).unwrap().force, "{no}");
        }
        assert!(!q("").unwrap().force);
    }

    #[test]
    fn first_value_wins_and_presence_is_kept() {
        let t = q("name=a&name=b&keys=").unwrap();
        assert_eq!(t.name, "a");
        assert_eq!(t.keys.as_deref(), Some(""));
        assert_eq!(q("name=%2Fx").unwrap().keys, None);
        assert_eq!(q("name=%2Fx").unwrap().name, "/x");
    }
}

/// `filters` alone (the prune routes, `GET /volumes`): Docker's JSON filter map.
#[derive(Deserialize)]
pub(crate) struct FiltersQuery {
    #[serde(default)]
    filters: String,
}

impl FiltersQuery {
    /// The parsed filters; a malformed map is a 400 naming it.
    pub(crate) fn parse(&self) -> ApiResult<crate::Filters> {
        crate::Filters::parse(&self.filters)
    }
}
