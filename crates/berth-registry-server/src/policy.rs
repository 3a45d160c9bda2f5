//! The token issuer's access policy, a YAML file given to `--token-policy`:
//!
//! ```yaml
//! anonymous:            # everyone, logged in or not
//!   "public/*": [pull]
//! authenticated:        # any user of the htpasswd file
//!   "shared/*": [pull]
//! users:
//!   alice:
//!     "team/*": [pull, push, delete]
//!     "_catalog": ["*"]  # GET /v2/_catalog (scope registry:catalog:*)
//! ```
//!
//! Keys are repository globs (`*` any run of characters, `/` included; `?` one character);
//! actions are `pull`, `push`, `delete` or `*` (all). A user gets the union of the matching
//! entries of their own, `authenticated` and `anonymous`; unknown keys and actions are refused.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Glob → actions.
type Rules = BTreeMap<String, Vec<String>>;

/// Who may do what.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    anonymous: Rules,
    #[serde(default)]
    authenticated: Rules,
    #[serde(default)]
    users: BTreeMap<String, Rules>,
}

/// The key granting the catalog.
const CATALOG: &str = "_catalog";
const ACTIONS: [&str; 3] = ["pull", "push", "delete"];

/// Whether `name` matches `glob` (`*`: any run, `?`: one character).
pub fn glob_match(glob: &str, name: &str) -> bool {
    let (g, n) = (glob.as_bytes(), name.as_bytes());
    let (mut gi, mut ni) = (0, 0);
    // Where the last `*` was and what it has swallowed so far, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if gi < g.len() && (g[gi] == b'?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == b'*' {
            star = Some((gi, ni));
            gi += 1;
        } else if let Some((sg, sn)) = star {
            gi = sg + 1;
            ni = sn + 1;
            star = Some((sg, sn + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == b'*')
}

impl Policy {
    /// Parse and check a policy file's text.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let p: Policy = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let sections = std::iter::once(("anonymous".to_string(), &p.anonymous))
            .chain(std::iter::once((
                "authenticated".to_string(),
                &p.authenticated,
            )))
            .chain(p.users.iter().map(|(u, r)| (format!("users.{u}"), r)));
        for (who, rules) in sections {
            for (glob, actions) in rules {
                let ok_glob = glob == CATALOG
                    || (!glob.is_empty()
                        && glob.bytes().all(|c| {
                            c.is_ascii_lowercase()
                                || c.is_ascii_digit()
                                || matches!(c, b'.' | b'_' | b'-' | b'/' | b'*' | b'?')
                        }));
                if !ok_glob {
                    return Err(format!(
                        "{who}: {glob:?} is not a repository glob (lowercase name characters, * and ?) nor {CATALOG:?}"
                    ));
                }
                for a in actions {
                    if a != "*" && !ACTIONS.contains(&a.as_str()) {
                        return Err(format!(
                            "{who}.{glob}: unknown action {a:?} (pull, push, delete or *)"
                        ));
                    }
                }
            }
        }
        Ok(p)
    }

    /// Of `requested` actions on `kind:name`, those `user` (None: anonymous) may have.
    pub fn grant(
        &self,
        user: Option<&str>,
        kind: &str,
        name: &str,
        requested: &[String],
    ) -> Vec<String> {
        let mut sets: Vec<&Rules> = vec![&self.anonymous];
        if let Some(u) = user {
            sets.push(&self.authenticated);
            if let Some(r) = self.users.get(u) {
                sets.push(r);
            }
        }
        let allowed: Vec<&String> = sets
            .iter()
            .flat_map(|rules| rules.iter())
            .filter(|(glob, _)| match kind {
                "repository" => glob.as_str() != CATALOG && glob_match(glob, name),
                "registry" => glob.as_str() == CATALOG && name == "catalog",
                _ => false,
            })
            .flat_map(|(_, actions)| actions)
            .collect();
        let mut out: Vec<String> = Vec::new();
        for r in requested {
            let ok = allowed.iter().any(|a| *a == "*" || *a == r);
            if ok && !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globs() {
        assert!(glob_match("team/*", "team/app"));
        assert!(glob_match("team/*", "team/a/b"));
        assert!(!glob_match("team/*", "teams/app"));
        assert!(!glob_match("team/*", "team"));
        assert!(glob_match("*", "anything/at/all"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "abbc"));
        assert!(glob_match("*/app*", "x/y/app-1"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exact2"));
    }

    #[test]
    fn grants_are_the_union_of_matching_rules_cut_to_the_request() {
        let p = Policy::parse(
            "anonymous:\n  \"public/*\": [pull]\nauthenticated:\n  \"shared/*\": [pull]\nusers:\n  alice:\n    \"team/*\": [pull, push]\n    \"_catalog\": [\"*\"]\n  root:\n    \"*\": [\"*\"]\n",
        )
        .unwrap();
        let all = v(&["pull", "push", "delete"]);
        assert_eq!(
            p.grant(Some("alice"), "repository", "team/app", &all),
            v(&["pull", "push"])
        );
        assert_eq!(
            p.grant(Some("alice"), "repository", "public/x", &all),
            v(&["pull"])
        );
        assert_eq!(
            p.grant(Some("alice"), "repository", "shared/x", &all),
            v(&["pull"])
        );
        assert!(p.grant(None, "repository", "shared/x", &all).is_empty());
        assert_eq!(p.grant(None, "repository", "public/x", &all), v(&["pull"]));
        assert!(p
            .grant(Some("bob"), "repository", "team/app", &all)
            .is_empty());
        assert_eq!(p.grant(Some("root"), "repository", "a/b", &all), all);
        assert_eq!(
            p.grant(Some("alice"), "registry", "catalog", &v(&["*"])),
            v(&["*"])
        );
        assert!(p
            .grant(Some("bob"), "registry", "catalog", &v(&["*"]))
            .is_empty());
        // The catalog key is no repository glob, and other types get nothing.
        assert!(p
            .grant(Some("alice"), "repository", "_catalog", &all)
            .is_empty());
        assert!(p.grant(Some("root"), "plugin", "x", &all).is_empty());
    }

    #[test]
    fn bad_files_are_refused_naming_the_place() {
        let e = Policy::parse("users:\n  alice:\n    \"team/*\": [pull, write]\n").unwrap_err();
        assert!(
            e.contains("users.alice.team/*") && e.contains("\"write\""),
            "{e}"
        );
        let e = Policy::parse("anonymous:\n  \"Team/*\": [pull]\n").unwrap_err();
        assert!(e.contains("anonymous") && e.contains("Team/*"), "{e}");
        let e = Policy::parse("admins:\n  x: [pull]\n").unwrap_err();
        assert!(e.contains("admins"), "{e}");
    }
}
