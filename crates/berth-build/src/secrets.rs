//! `RUN --mount=type=secret`: which of the request's secrets a mount reads, where it goes and
//! with what owner and mode — as BuildKit's Dockerfile frontend decides.

use std::collections::BTreeMap;

use crate::backend::{MountSource, SecretValue};
use crate::error::{BuildError, ErrorKind, Result};

/// A `RUN --mount=type=secret` as BuildKit reads it: the ID (`source=`/`id=`, else the
/// target's base name) picks the secret; the file target defaults to `/run/secrets/<id>`
/// (none when only `env=` is asked). None when the secret is missing and not `required`.
pub(crate) fn secret_mount(
    secrets: &BTreeMap<String, SecretValue>,
    m: &berth_dockerfile::Mount,
    line: usize,
) -> Result<Option<(Option<String>, MountSource)>> {
    let id = m.secret_id().ok_or_else(|| BuildError::Step {
        line,
        kind: ErrorKind::Invalid,
        message: "RUN --mount=type=secret needs an id or a target".into(),
    })?;
    let target = match (&m.target, &m.env) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(_)) => None,
        _ => Some(format!(
            "/run/secrets/{}",
            id.rsplit('/').next().unwrap_or(&id)
        )),
    };
    let Some(data) = secrets.get(&id) else {
        if m.required {
            return Err(BuildError::Step {
                line,
                kind: ErrorKind::Invalid,
                message: format!(
                    "secret {id}: not found: pass it with --secret id={id} (compose: build.secrets)"
                ),
            });
        }
        return Ok(None);
    };
    let num = |v: &Option<String>, what: &str, radix: u32, default: u32| -> Result<u32> {
        match v {
            None => Ok(default),
            Some(s) => u32::from_str_radix(s, radix).map_err(|_| BuildError::Step {
                line,
                kind: ErrorKind::Invalid,
                message: format!("invalid secret {what} {s:?}"),
            }),
        }
    };
    Ok(Some((
        target,
        MountSource::Secret {
            data: data.clone(),
            mode: num(&m.mode, "mode", 8, 0o400)?,
            uid: num(&m.uid, "uid", 10, 0)?,
            gid: num(&m.gid, "gid", 10, 0)?,
        },
    )))
}
