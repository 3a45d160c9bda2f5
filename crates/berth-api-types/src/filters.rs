//! Docker's `filters` query parameter (`{"key":{"value":true}}` or the legacy
//! `{"key":["value"]}`) and the pure filtering of image lists and events with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard_stubs::models::ImageSummary;

use crate::error::ApiError;

/// Parsed filters: key → set of values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, BTreeSet<String>>);

impl Filters {
    /// Parse the JSON of a `filters` query parameter; empty string means no filters.
    pub fn parse(json: &str) -> Result<Filters, ApiError> {
        if json.trim().is_empty() {
            return Ok(Filters::default());
        }
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::invalid("invalid filter: expected a JSON object"))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let set: BTreeSet<String> = match vals {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(false))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                _ => return Err(ApiError::invalid(format!("invalid filter value for {k:?}"))),
            };
            out.insert(k.clone(), set);
        }
        Ok(Filters(out))
    }

    pub fn get(&self, key: &str) -> Vec<&str> {
        self.0
            .get(key)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|s| !s.is_empty())
    }

    /// Reject keys outside `allowed`, with Docker's message (moby `filters.Validate`).
    pub fn validate(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!("Invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// A boolean filter such as `dangling=true`; errors on values other than true/false.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let vals = self.get(key);
        if vals.is_empty() {
            return Ok(None);
        }
        let mut any_true = false;
        for v in &vals {
            match v.to_ascii_lowercase().as_str() {
                "true" | "1" => any_true = true,
                "false" | "0" => {}
                // moby's invalidFilter{key, values}: Go prints the values as `[a b]`.
                _ => {
                    return Err(ApiError::invalid(format!(
                        "Invalid filter '{key}=[{}]'",
                        vals.join(" ")
                    )))
                }
            }
        }
        Ok(Some(any_true))
    }

    /// Every `label` filter (`key` or `key=value`) matches `labels`.
    pub fn labels_match(&self, key: &str, labels: &HashMap<String, String>) -> bool {
        LabelFilter::new(self, key).matches(labels)
    }
}

/// The values of a `label` filter parsed once: `key` (the label is set) or `key=value`; a
/// set of labels passes when every one matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelFilter(Vec<(String, Option<String>)>);

impl LabelFilter {
    /// The values of filter `key` (`label`, or prune's `label!`) of `f`.
    pub fn new(f: &Filters, key: &str) -> LabelFilter {
        LabelFilter(
            f.get(key)
                .into_iter()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (l.to_string(), None),
                })
                .collect(),
        )
    }

    /// No values given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        self.0.iter().all(|(k, v)| match v {
            Some(v) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(k),
        })
    }
}

/// Docker's query booleans: `1`, `true`, `True` are true; absent, `0`, `false` are false.
pub fn query_bool(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.to_ascii_lowercase()).as_deref(),
        Some("1") | Some("true") | Some("yes")
    )
}

/// Go `path.Match`-style glob: `*` matches any run of non-`/` characters, `?` one character.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn rec(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| rec(&p[1..], &s[i..])),
            Some('?') => !s.is_empty() && s[0] != '/' && rec(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && rec(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    rec(&p, &s)
}

/// Docker's `reference` filter against one familiar tag (`busybox:latest`): the pattern matches
/// the whole `name:tag`, or — when the pattern has no tag — the name alone.
pub fn reference_matches(pattern: &str, familiar_tag: &str) -> bool {
    if glob_match(pattern, familiar_tag) {
        return true;
    }
    let name = match familiar_tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => n,
        _ => familiar_tag,
    };
    glob_match(pattern, name)
}

/// Find an image in `list` by ID (full, `sha256:`-less, or 12+ hex prefix) or familiar tag.
fn find_image<'a>(list: &'a [ImageSummary], name: &str) -> Option<&'a ImageSummary> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let with_tag = if name.contains(':') && !name.starts_with("sha256:") {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    list.iter().find(|i| {
        i.repo_tags.iter().any(|t| t == name || *t == with_tag)
            || (hex.len() >= 12 && i.id.trim_start_matches("sha256:").starts_with(hex))
    })
}

/// Apply `GET /images/json` filters (dangling, label, before, since, reference, until is not
/// supported) to a full list. Pure: the route calls this over what the service returned.
pub fn filter_images(
    list: Vec<ImageSummary>,
    filters: &Filters,
) -> Result<Vec<ImageSummary>, ApiError> {
    filters.validate(&["dangling", "label", "before", "since", "reference"])?;
    let dangling = filters.bool_value("dangling")?;
    let mut before = None;
    for b in filters.get("before") {
        let img = find_image(&list, b)
            .ok_or_else(|| ApiError::not_found(format!("No such image: {b}")))?;
        before = Some(img.created);
    }
    let mut since = None;
    for s in filters.get("since") {
        let img = find_image(&list, s)
            .ok_or_else(|| ApiError::not_found(format!("No such image: {s}")))?;
        since = Some(img.created);
    }
    let refs = filters.get("reference");
    let labels = LabelFilter::new(filters, "label");
    let out = list
        .into_iter()
        .filter(|i| match dangling {
            Some(true) => i.repo_tags.is_empty(),
            Some(false) => !i.repo_tags.is_empty(),
            None => true,
        })
        .filter(|i| labels.matches(&i.labels))
        .filter(|i| before.is_none_or(|b| i.created < b))
        .filter(|i| since.is_none_or(|s| i.created > s))
        .filter_map(|mut i| {
            if refs.is_empty() {
                return Some(i);
            }
            // Like moby, only the matching references are listed.
            let keep = |t: &String| {
                let name = t.split('@').next().unwrap_or(t);
                refs.iter()
                    .any(|p| reference_matches(p, t) || reference_matches(p, name))
            };
            i.repo_tags.retain(keep);
            i.repo_digests.retain(keep);
            (!i.repo_tags.is_empty()).then_some(i)
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str, tags: &[&str], created: i64, labels: &[(&str, &str)]) -> ImageSummary {
        ImageSummary {
            id: id.into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            created,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn sample() -> Vec<ImageSummary> {
        vec![
            img(
                &format!("sha256:{}", "a".repeat(64)),
                &["busybox:latest"],
                10,
                &[],
            ),
            img(
                &format!("sha256:{}", "b".repeat(64)),
                &["debian:bookworm", "example.com/x/debian:1"],
                20,
                &[("team", "core")],
            ),
            img(
                &format!("sha256:{}", "c".repeat(64)),
                &[],
                30,
                &[("team", "x")],
            ),
        ]
    }

    fn ids(v: &[ImageSummary]) -> Vec<char> {
        v.iter().map(|i| i.id.chars().nth(7).unwrap()).collect()
    }

    #[test]
    fn parses_both_filter_forms() {
        let a = Filters::parse(r#"{"dangling":{"true":true}}"#).unwrap();
        let b = Filters::parse(r#"{"dangling":["true"]}"#).unwrap();
        assert_eq!(a, b);
        assert!(Filters::parse("[1]").is_err());
        assert_eq!(Filters::parse("").unwrap(), Filters::default());
    }

    #[test]
    fn image_filters() {
        let f = |j: &str| filter_images(sample(), &Filters::parse(j).unwrap());
        assert_eq!(ids(&f(r#"{"dangling":["true"]}"#).unwrap()), vec!['c']);
        assert_eq!(
            ids(&f(r#"{"dangling":["false"]}"#).unwrap()),
            vec!['a', 'b']
        );
        assert_eq!(ids(&f(r#"{"label":["team"]}"#).unwrap()), vec!['b', 'c']);
        assert_eq!(ids(&f(r#"{"label":["team=core"]}"#).unwrap()), vec!['b']);
        assert_eq!(
            ids(&f(r#"{"before":["debian:bookworm"]}"#).unwrap()),
            vec!['a']
        );
        assert_eq!(ids(&f(r#"{"since":["busybox"]}"#).unwrap()), vec!['b', 'c']);
        assert_eq!(ids(&f(r#"{"reference":["busybox"]}"#).unwrap()), vec!['a']);
        assert_eq!(
            ids(&f(r#"{"reference":["*:bookworm"]}"#).unwrap()),
            vec!['b']
        );
        assert_eq!(
            ids(&f(r#"{"reference":["example.com/*/debian"]}"#).unwrap()),
            vec!['b']
        );
        assert_eq!(
            f(r#"{"before":["nope"]}"#).unwrap_err().kind,
            crate::ErrorKind::NotFound
        );
        assert_eq!(
            f(r#"{"bogus":["1"]}"#).unwrap_err().message,
            "Invalid filter 'bogus'"
        );
        assert!(f(r#"{"dangling":["maybe"]}"#).is_err());
    }

    #[test]
    fn glob_does_not_cross_slashes() {
        assert!(glob_match("bus*", "busybox"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("a/?", "a/b"));
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(!reference_matches("busy", "busybox:latest"));
    }

    #[test]
    fn query_bools() {
        assert!(query_bool(Some("1")) && query_bool(Some("True")));
        assert!(!query_bool(Some("0")) && !query_bool(None));
    }
}
