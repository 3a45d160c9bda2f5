//! A bundle's config.json, read and checked before anything is created: errors name the file
//! and the field, in runc's words where runc has them.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::{fail, R};

/// The bundle directory, made absolute.
pub fn resolve(bundle: &Path) -> R<PathBuf> {
    std::fs::canonicalize(bundle)
        .map_err(|e| super::CliError(format!("bundle {}: {e}", bundle.display())))
}

/// Parse and check `<bundle>/config.json`.
pub fn load(bundle: &Path) -> R<Spec> {
    let file = bundle.join("config.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(format!(
                "JSON specification file {} not found",
                file.display()
            ))
        }
        Err(e) => return fail(format!("read {}: {e}", file.display())),
    };
    let de = &mut serde_json::Deserializer::from_str(&text);
    let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            String::new()
        } else {
            format!(" field {path}:")
        };
        super::CliError(format!(
            "{}: invalid OCI spec:{field} {}",
            file.display(),
            e.inner()
        ))
    })?;
    validate(&spec, bundle).map_err(|m| super::CliError(format!("{}: {m}", file.display())))?;
    Ok(spec)
}

/// runc's checks of a spec (validateProcessSpec, the rootfs).
pub fn validate(spec: &Spec, bundle: &Path) -> Result<(), String> {
    let Some(p) = spec.process() else {
        return Err("process property must not be empty".into());
    };
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args must not be empty".into());
    }
    if !p.cwd().is_absolute() {
        return Err(format!(
            "process.cwd must be an absolute path, not {:?}",
            p.cwd()
        ));
    }
    let Some(root) = spec.root() else {
        return Err("root must be specified".into());
    };
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(format!("root.path: rootfs ({rootfs:?}) does not exist"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(config: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        std::fs::write(d.path().join("config.json"), config).unwrap();
        d
    }

    const GOOD: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#;

    #[test]
    fn a_good_bundle_loads() {
        let d = bundle(GOOD);
        assert!(load(d.path()).is_ok());
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let d = bundle(r#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":"sh"}}"#);
        let e = load(d.path()).unwrap_err().0;
        assert!(e.contains("config.json"), "{e}");
        assert!(e.contains("process.args"), "{e}");

        let d = bundle(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":[],"user":{"uid":0,"gid":0}}}"#,
        );
        let e = load(d.path()).unwrap_err().0;
        assert!(e.ends_with("process.args must not be empty"), "{e}");

        let d = bundle(&GOOD.replace("\"rootfs\"", "\"missing\""));
        let e = load(d.path()).unwrap_err().0;
        assert!(e.contains("does not exist"), "{e}");

        let d = bundle("{not json");
        assert!(load(d.path()).unwrap_err().0.contains("invalid OCI spec"));

        let d = tempfile::tempdir().unwrap();
        let e = load(d.path()).unwrap_err().0;
        assert!(e.starts_with("JSON specification file") && e.ends_with("not found"));
    }
}
