//! Named build contexts (BuildKit's `context:NAME`, Compose's `additional_contexts`): a name
//! that `FROM` or `--from=` use stands for an image or a directory instead of what it would
//! otherwise mean — also when the Dockerfile has a stage of that name, which it then replaces.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_dockerfile::Dockerfile;

/// What a named context stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// An image reference (`docker-image://REF`).
    Image(String),
    /// A directory: its files are the stage's filesystem (`FROM name`) or what `--from=name`
    /// reads.
    Dir(PathBuf),
}

/// The key a name is looked up by, as BuildKit's dockerfile frontend does: an image reference
/// in its familiar form without `:latest` (`docker.io/library/alpine:latest` → `alpine`);
/// anything else (a stage name) lowercased as written.
pub fn named_context_key(name: &str) -> String {
    match berth_oci::Reference::parse(name) {
        Ok(r) => {
            let f = r.familiar();
            f.strip_suffix(":latest").map(str::to_string).unwrap_or(f)
        }
        Err(_) => name.to_lowercase(),
    }
}

/// The named contexts by lookup key.
pub(crate) fn by_key(named: &BTreeMap<String, NamedContext>) -> BTreeMap<String, NamedContext> {
    named
        .iter()
        .map(|(k, v)| (named_context_key(k), v.clone()))
        .collect()
}

/// Stages whose name a named context takes: each becomes `FROM <name>` with no instructions,
/// so building it resolves the named context and `--from=<name>` finds that.
pub(crate) fn override_stages(df: &mut Dockerfile, named: &BTreeMap<String, NamedContext>) {
    for s in &mut df.stages {
        let Some(name) = s.name.clone() else { continue };
        if named.contains_key(&named_context_key(&name)) {
            s.base = name;
            s.platform = None;
            s.instructions.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_familiar_references_without_latest() {
        for (name, key) in [
            ("alpine", "alpine"),
            ("alpine:latest", "alpine"),
            ("docker.io/library/alpine:latest", "alpine"),
            ("alpine:3.19", "alpine:3.19"),
            ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app"),
            ("Base", "Base".to_lowercase().as_str()),
        ] {
            assert_eq!(named_context_key(name), key, "{name}");
        }
    }

    #[test]
    fn a_named_context_replaces_the_stage_of_its_name() {
        let mut df = berth_dockerfile::parse(
            "FROM busybox AS deps\nRUN make\nFROM busybox\nCOPY --from=deps /a /a\n",
        )
        .unwrap();
        let named = BTreeMap::from([("deps".to_string(), NamedContext::Image("x".into()))]);
        override_stages(&mut df, &named);
        assert_eq!(df.stages[0].base, "deps");
        assert!(df.stages[0].instructions.is_empty());
        assert_eq!(df.stages[1].instructions.len(), 1);
        // FROM deps in stage 0 refers to no earlier stage: an image name, the named context.
        assert_eq!(
            df.base_of(0, &Vec::<(String, String)>::new()).unwrap(),
            berth_dockerfile::Dependency::Image("deps".into())
        );
    }
}
