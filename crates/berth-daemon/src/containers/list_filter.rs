//! Docker's `/containers/json` filters, compiled once per list: keys and values are checked
//! (moby's `foldFilter`: a bad filter is a 400 before any container is looked at), name
//! patterns become regular expressions once, `before`/`since` are resolved to creation times
//! once; then [`ContainerFilter::matches`] tests each record without parsing anything.

use std::collections::{HashMap, HashSet};

use berth_api_types::Filters;

use crate::error::DaemonError;
use regex::Regex;

use super::{Record, Status};

/// The keys dockerd accepts on a container list.
const KEYS: &[&str] = &[
    "id",
    "name",
    "label",
    "status",
    "ancestor",
    "exited",
    "before",
    "since",
    "network",
    "volume",
    "health",
    "is-task",
    "expose",
    "publish",
    "isolation",
];

/// moby's `container.IsValidHealthString`.
const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// One `name` value: moby's `filters.Match` — the exact name, or a regular expression (RE2,
/// which the `regex` crate follows) tried with and without the leading `/`; a value that is
/// no valid expression matches only exactly.
#[derive(Debug)]
struct NamePattern {
    text: String,
    re: Option<Regex>,
}

impl NamePattern {
    fn new(text: &str) -> NamePattern {
        NamePattern {
            text: text.to_string(),
            re: Regex::new(text).ok(),
        }
    }

    fn matches(&self, name: &str) -> bool {
        let slashed = format!("/{name}");
        self.text == name
            || self.text == slashed
            || self
                .re
                .as_ref()
                .is_some_and(|re| re.is_match(name) || re.is_match(&slashed))
    }
}

/// A `label` value: `key` (present) or `key=value`.
#[derive(Debug)]
enum LabelPattern {
    Has(String),
    Is(String, String),
}

impl LabelPattern {
    fn matches(&self, labels: &HashMap<String, String>) -> bool {
        match self {
            LabelPattern::Has(k) => labels.contains_key(k),
            LabelPattern::Is(k, v) => labels.get(k).is_some_and(|x| x == v),
        }
    }
}

/// The filters of one container list, parsed and checked. An empty list of a kind means "no
/// filter of that kind"; otherwise any value of a kind may match, every kind must.
#[derive(Debug, Default)]
pub struct ContainerFilter {
    ids: Vec<String>,
    names: Vec<NamePattern>,
    statuses: Vec<Status>,
    /// Every one must match.
    labels: Vec<LabelPattern>,
    /// `ancestor=`: the IDs of the named images and of every image built on them (None: no
    /// such filter).
    ancestors: Option<HashSet<String>>,
    /// Set: only exited containers, with one of these codes (none given: any code).
    exited: Option<Vec<i64>>,
    /// Creation times of the `before` / `since` containers.
    before: Vec<String>,
    since: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
    health: Vec<String>,
    /// `is-task=true`: berth runs no swarm tasks, so nothing matches.
    tasks_only: bool,
    expose: Vec<String>,
    publish: Vec<String>,
    /// A `status` filter was given (a list then includes stopped containers).
    pub has_status: bool,
}

impl ContainerFilter {
    /// Check `f` and compile it; `all` are the containers `before`/`since` may name.
    /// `ancestry` is what `ancestor=` values resolve to: image IDs, each named image's and
    /// its descendants' (moby's `populateImageFilterByParents`); the caller looks them up.
    pub fn compile(
        f: &Filters,
        all: &[Record],
        ancestry: Option<HashSet<String>>,
    ) -> crate::error::Result<ContainerFilter> {
        f.validate(KEYS)?;
        let owned = |k: &str| f.get(k).into_iter().map(str::to_string).collect::<Vec<_>>();
        let mut statuses = Vec::new();
        for s in f.get("status") {
            statuses.push(
                Status::from_docker(s)
                    .ok_or_else(|| DaemonError::invalid(format!("Invalid filter 'status={s}'")))?,
            );
        }
        let exited = if f.contains("exited") {
            let mut codes = Vec::new();
            for x in f.get("exited") {
                codes.push(x.parse::<i64>().map_err(|_| {
                    DaemonError::invalid(format!("strconv.Atoi: parsing {x:?}: invalid syntax"))
                })?);
            }
            Some(codes)
        } else {
            None
        };
        for h in f.get("health") {
            if !HEALTH.contains(&h) {
                return Err(DaemonError::invalid(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        let tasks_only = match f.get("is-task").as_slice() {
            [] | ["false"] => false,
            ["true"] => true,
            v => {
                return Err(DaemonError::invalid(format!(
                    "Invalid filter 'is-task={}'",
                    v.join(",")
                )))
            }
        };
        for key in ["publish", "expose"] {
            if let Some(v) = f.get(key).into_iter().find(|v| v.contains(':')) {
                return Err(DaemonError::invalid(format!(
                    "filter for '{key}' should not contain ':': {v}"
                )));
            }
        }
        let created_of = |key: &str| -> crate::error::Result<String> {
            all.iter()
                .find(|o| o.id.starts_with(key) || o.name == key.trim_start_matches('/'))
                .map(|o| o.created.clone())
                .ok_or_else(|| DaemonError::NoSuchContainer(key.to_string()))
        };
        Ok(ContainerFilter {
            ids: owned("id"),
            names: f.get("name").into_iter().map(NamePattern::new).collect(),
            has_status: !statuses.is_empty(),
            statuses,
            labels: f
                .get("label")
                .into_iter()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => LabelPattern::Is(k.into(), v.into()),
                    None => LabelPattern::Has(l.into()),
                })
                .collect(),
            ancestors: ancestry,
            exited,
            before: f
                .get("before")
                .into_iter()
                .map(created_of)
                .collect::<crate::error::Result<_>>()?,
            since: f
                .get("since")
                .into_iter()
                .map(created_of)
                .collect::<crate::error::Result<_>>()?,
            networks: owned("network"),
            volumes: owned("volume"),
            health: owned("health"),
            tasks_only,
            expose: owned("expose"),
            publish: owned("publish"),
        })
    }

    /// Does `r` pass every filter?
    pub fn matches(&self, r: &Record) -> bool {
        fn any<T>(v: &[T], pred: impl Fn(&T) -> bool) -> bool {
            v.is_empty() || v.iter().any(pred)
        }
        let labels = r.config.labels.clone().unwrap_or_default();
        !self.tasks_only
            && any(&self.ids, |x| r.id.starts_with(x.as_str()))
            && any(&self.names, |p| p.matches(&r.name))
            && any(&self.statuses, |s| *s == r.state.status)
            && self.labels.iter().all(|l| l.matches(&labels))
            && self
                .ancestors
                .as_ref()
                .is_none_or(|ids| ids.contains(&r.image_id))
            && self.exited.as_ref().is_none_or(|codes| {
                r.state.status == Status::Exited && any(codes, |c| *c == r.state.exit_code)
            })
            && self.before.iter().all(|c| r.created < *c)
            && self.since.iter().all(|c| r.created > *c)
            && any(&self.networks, |x| network_matches(r, x))
            && any(&self.volumes, |x| {
                r.host_config
                    .binds
                    .iter()
                    .flatten()
                    .any(|b| b.split(':').take(2).any(|p| p == x))
            })
            && any(&self.health, |x| health_of(r) == x)
            && any(&self.expose, |x| {
                r.config
                    .exposed_ports
                    .iter()
                    .flatten()
                    .any(|p| p == x || p.split('/').next() == Some(x.as_str()))
            })
            && any(&self.publish, |x| {
                r.ports.iter().any(|p| {
                    *x == p.host_port.to_string() || *x == format!("{}/{}", p.host_port, p.proto)
                })
            })
    }
}

fn network_matches(r: &Record, x: &str) -> bool {
    let mode = r.host_config.network_mode.as_deref().unwrap_or("");
    let mode = if mode.is_empty() || mode == "default" {
        "bridge"
    } else {
        mode
    };
    mode == x
        || r.endpoints
            .iter()
            .any(|e| e.network == x || e.network_id.starts_with(x))
}

fn health_of(r: &Record) -> &str {
    r.health
        .as_ref()
        .and_then(|h| h.get("Status"))
        .and_then(|s| s.as_str())
        .unwrap_or("none")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Filters {
        Filters::parse(s).unwrap()
    }

    fn exited_web() -> Record {
        let mut r = Record {
            id: "abc".into(),
            name: "web".into(),
            created: "2026-01-02T00:00:02Z".into(),
            ..Default::default()
        };
        r.state.status = Status::Exited;
        r.state.exit_code = 3;
        r.config.labels = Some([("a".to_string(), "1".to_string())].into());
        r
    }

    fn matches(q: &str, r: &Record, all: &[Record]) -> bool {
        ContainerFilter::compile(&f(q), all, None)
            .unwrap()
            .matches(r)
    }

    #[test]
    fn filters_by_status_label_exited() {
        let r = exited_web();
        let all = vec![r.clone()];
        assert!(matches(r#"{"status":{"exited":true}}"#, &r, &all));
        assert!(!matches(r#"{"status":{"running":true}}"#, &r, &all));
        assert!(matches(r#"{"exited":{"3":true}}"#, &r, &all));
        assert!(!matches(r#"{"exited":{"0":true}}"#, &r, &all));
        assert!(matches(r#"{"label":{"a=1":true}}"#, &r, &all));
        assert!(matches(r#"{"label":{"a":true}}"#, &r, &all));
        assert!(!matches(r#"{"label":{"a=2":true}}"#, &r, &all));
        assert!(!matches(r#"{"label":{"a":true,"b":true}}"#, &r, &all));
        assert!(matches(r#"{"name":{"we":true}}"#, &r, &all));
        assert!(matches(r#"{"is-task":{"false":true}}"#, &r, &all));
        assert!(!matches(r#"{"is-task":{"true":true}}"#, &r, &all));
        assert!(matches(r#"{"health":{"none":true}}"#, &r, &all));
        assert!(!matches(r#"{"health":{"healthy":true}}"#, &r, &all));
        // Regular expressions, with and without the leading slash, as moby matches them.
        for (pattern, want) in [
            ("^web", true),
            ("^/web", true),
            ("b$", true),
            ("^eb", false),
            ("w.b", true),
            ("[", false),
            ("web", true),
        ] {
            let q = serde_json::json!({ "name": { pattern: true } }).to_string();
            assert_eq!(matches(&q, &r, &all), want, "{pattern}");
        }
    }

    #[test]
    fn before_and_since_resolve_once_against_the_list() {
        let old = Record {
            id: "0ld".into(),
            name: "old".into(),
            created: "2026-01-02T00:00:01Z".into(),
            ..Default::default()
        };
        let r = exited_web();
        let all = vec![old.clone(), r.clone()];
        assert!(matches(r#"{"since":{"old":true}}"#, &r, &all));
        assert!(!matches(r#"{"since":{"old":true}}"#, &old, &all));
        assert!(matches(r#"{"before":{"/web":true}}"#, &old, &all));
        assert!(matches(r#"{"before":{"ab":true}}"#, &old, &all));
        let e = ContainerFilter::compile(&f(r#"{"since":{"gone":true}}"#), &all, None).unwrap_err();
        assert_eq!(e.to_string(), "No such container: gone");
    }

    /// Bad keys and values fail when compiled, with dockerd's words: before any record is
    /// looked at, so an empty list fails the same way.
    #[test]
    fn bad_filters_fail_before_any_record() {
        for (q, want) in [
            (r#"{"bogus":{"1":true}}"#, "Invalid filter 'bogus'"),
            (
                r#"{"status":{"bogus":true}}"#,
                "Invalid filter 'status=bogus'",
            ),
            (
                r#"{"health":{"ok":true}}"#,
                "Unrecognised filter value for health: ok",
            ),
            (
                r#"{"is-task":{"maybe":true}}"#,
                "Invalid filter 'is-task=maybe'",
            ),
            (
                r#"{"exited":{"x":true}}"#,
                "strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                r#"{"publish":{"80:80":true}}"#,
                "filter for 'publish' should not contain ':': 80:80",
            ),
            (
                r#"{"expose":{"1:2":true}}"#,
                "filter for 'expose' should not contain ':': 1:2",
            ),
        ] {
            let e = ContainerFilter::compile(&f(q), &[], None).unwrap_err();
            assert_eq!(e.to_string(), want, "{q}");
            assert_eq!(e.kind(), berth_api_types::ErrorKind::Invalid, "{q}");
        }
    }
}
