//! `RUN --mount=type=secret` and `type=ssh`: which of the request's secrets or forwarded SSH
//! agents a mount reads, where it goes and with what owner and mode — as BuildKit's Dockerfile
//! frontend decides.

use std::collections::{BTreeMap, BTreeSet};

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
    let num = numbers("secret", line);
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

/// A `RUN --mount=type=ssh` as BuildKit reads it: the agent `id=` (default `default`), the
/// socket at `target=` or `/run/buildkit/ssh_agent.<n>` (n counting the step's ssh mounts),
/// mode 0600 by default. None when the client forwards no such agent and it is not
/// `required`.
pub(crate) fn ssh_mount(
    agents: &BTreeSet<String>,
    m: &berth_dockerfile::Mount,
    n: usize,
    line: usize,
) -> Result<Option<(String, MountSource)>> {
    let id = m.ssh_id();
    if !agents.contains(&id) {
        if m.required {
            return Err(BuildError::Step {
                line,
                kind: ErrorKind::Invalid,
                message: format!(
                    "no SSH agent {id:?} forwarded by the client: pass --ssh {id} (compose: build.ssh)"
                ),
            });
        }
        return Ok(None);
    }
    let target = m
        .target
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{n}"));
    let num = numbers("ssh", line);
    Ok(Some((
        target,
        MountSource::Ssh {
            id,
            mode: num(&m.mode, "mode", 8, 0o600)?,
            uid: num(&m.uid, "uid", 10, 0)?,
            gid: num(&m.gid, "gid", 10, 0)?,
        },
    )))
}

/// A mount option's number (`mode` octal, `uid`/`gid` decimal), or its default.
fn numbers(
    what: &'static str,
    line: usize,
) -> impl Fn(&Option<String>, &str, u32, u32) -> Result<u32> {
    move |v, field, radix, default| match v {
        None => Ok(default),
        Some(s) => u32::from_str_radix(s, radix).map_err(|_| BuildError::Step {
            line,
            kind: ErrorKind::Invalid,
            message: format!("invalid {what} {field} {s:?}"),
        }),
    }
}
