//! `--userns-remap` applied on the host: looks the user and group up, creates `dockremap`
//! (user + subordinate ranges) for `default` as dockerd does, reads `/etc/subuid` and
//! `/etc/subgid`, and returns the mapping planned by [`crate::remap`].

use std::process::Command;

use nix::unistd::{Gid, Group, Uid, User};

use crate::remap::{dockremap_plan, remap_mapping, IdMapping, Named, RemapTarget};

static ACTIVE: std::sync::OnceLock<Remap> = std::sync::OnceLock::new();

/// The remap this daemon process runs with (set once at start by [`activate`]).
pub fn active() -> Option<&'static Remap> {
    ACTIVE.get()
}

/// Record `remap` as this process's (a second call keeps the first).
pub fn activate(remap: &Remap) {
    let _ = ACTIVE.set(remap.clone());
}

/// A resolved remap: whom containers' root is, and the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remap {
    /// `user:group` as names (what `berth info` shows).
    pub name: String,
    pub ids: IdMapping,
}

fn read(path: &str) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("--userns-remap: cannot read {path}: {e}")),
    }
}

fn user(name: &str) -> Result<Named, String> {
    let found = match name.parse::<u32>() {
        Ok(id) => User::from_uid(Uid::from_raw(id)),
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(u)) => Ok(Named {
            name: u.name,
            id: u.uid.as_raw(),
        }),
        Ok(None) => Err(format!(
            "--userns-remap: no user {name:?} (create it, or use --userns-remap default)"
        )),
        Err(e) => Err(format!("--userns-remap: look up user {name:?}: {e}")),
    }
}

fn group(name: &str) -> Result<Option<Named>, String> {
    let found = match name.parse::<u32>() {
        Ok(id) => Group::from_gid(Gid::from_raw(id)),
        Err(_) => Group::from_name(name),
    };
    found
        .map(|g| {
            g.map(|g| Named {
                name: g.name,
                id: g.gid.as_raw(),
            })
        })
        .map_err(|e| format!("--userns-remap: look up group {name:?}: {e}"))
}

/// Create what `default` needs (one log line saying so), then resolve `arg` into a mapping.
pub fn resolve(arg: &str) -> Result<Remap, String> {
    let target = RemapTarget::parse(arg)?;
    if target.is_default() {
        let exists = matches!(User::from_name(&target.user), Ok(Some(_)));
        let cmds = dockremap_plan(exists, &read("/etc/subuid")?, &read("/etc/subgid")?);
        if !cmds.is_empty() {
            let shown: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
            tracing::info!(
                "--userns-remap default: creating the dockremap user and its subordinate ranges as dockerd does: {}",
                shown.join("; ")
            );
        }
        for c in &cmds {
            run(c)?;
        }
    }
    let u = user(&target.user)?;
    // No group given: the group named as the user (dockerd), else the user's primary group.
    let g = match &target.group {
        Some(g) => group(g)?.ok_or_else(|| format!("--userns-remap: no group {g:?}"))?,
        None => match group(&u.name)? {
            Some(g) => g,
            None => {
                let gid = User::from_uid(Uid::from_raw(u.id))
                    .ok()
                    .flatten()
                    .map(|p| p.gid.as_raw())
                    .unwrap_or(u.id);
                group(&gid.to_string())?.unwrap_or(Named {
                    name: String::new(),
                    id: gid,
                })
            }
        },
    };
    let ids = remap_mapping(&u, &g, &read("/etc/subuid")?, &read("/etc/subgid")?)?;
    Ok(Remap {
        name: format!("{}:{}", u.name, g.name),
        ids,
    })
}

fn run(cmd: &[String]) -> Result<(), String> {
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("--userns-remap default: run {}: {e}", cmd[0]))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "--userns-remap default: `{}` failed: {}",
        cmd.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
