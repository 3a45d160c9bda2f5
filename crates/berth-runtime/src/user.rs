//! Resolve Docker's `--user user[:group]` against a rootfs's /etc/passwd and /etc/group text.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The resolved identity the container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd (for HOME), if known.
    #[serde(default)]
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || l.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

/// Resolve `spec` ("", "name", "uid", "name:group", "uid:gid") like Docker does. `passwd`/`group`
/// are the file contents (empty when the image has none); numeric ids need no entry.
/// `extra_groups` are `--group-add` values (names or numbers).
pub fn resolve(spec: &str, passwd: &str, group: &str, extra_groups: &[String]) -> Result<User> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let numeric_uid = user_part.parse::<u32>().ok();
    let entry = passwd_entries(passwd).find(|e| match numeric_uid {
        Some(uid) => e.uid == uid,
        None => e.name == user_part,
    });
    let (uid, mut gid, name, home) = match (entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(e.home.to_string())),
        (None, Some(uid)) => (uid, 0, None, None),
        (None, None) => {
            return Err(Error::UserNotFound {
                user: user_part.to_string(),
            })
        }
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = lookup_group(g, group)?;
    }
    // moby's getUser: the primary gid first (so it stays after setgroups), then /etc/group
    // membership, only when no explicit group was given, then --group-add.
    let mut additional_gids = vec![gid];
    if group_part.is_none() {
        if let Some(n) = name {
            for g in group_entries(group).filter(|g| g.members.contains(&n)) {
                if !additional_gids.contains(&g.gid) {
                    additional_gids.push(g.gid);
                }
            }
        }
    }
    for g in extra_groups {
        let id = lookup_group(g, group)?;
        if !additional_gids.contains(&id) {
            additional_gids.push(id);
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
        home: home.filter(|h| !h.is_empty()),
    })
}

fn lookup_group(g: &str, group: &str) -> Result<u32> {
    if let Ok(id) = g.parse::<u32>() {
        return Ok(id);
    }
    group_entries(group)
        .find(|e| e.name == g)
        .map(|e| e.gid)
        .ok_or_else(|| Error::GroupNotFound {
            group: g.to_string(),
        })
}

/// Read passwd/group from `rootfs` (missing files count as empty) and [`resolve`].
pub fn resolve_in_rootfs(rootfs: &Path, spec: &str, extra_groups: &[String]) -> Result<User> {
    let read = |rel: &str| {
        let p = crate::pathutil::resolve_in_root(rootfs, rel);
        p.and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    resolve(
        spec,
        &read("/etc/passwd"),
        &read("/etc/group"),
        extra_groups,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:root,alice\nalice:x:1000:\nstaff:x:50:alice\nnogroup:x:65534:\n";

    #[test]
    fn default_is_root() {
        let u = resolve("", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(u.additional_gids, vec![0, 10]);
        assert_eq!(u.home.as_deref(), Some("/root"));
    }

    #[test]
    fn names_and_groups() {
        let u = resolve("alice", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![1000, 10, 50]);
        let u = resolve("alice:staff", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(u.additional_gids, vec![50]);
        let u = resolve("1234:4321", PASSWD, GROUP, &["wheel".into(), "7".into()]).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids),
            (1234, 4321, vec![4321, 10, 7])
        );
        let u = resolve("65534", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
    }

    #[test]
    fn docker_error_text() {
        let e = resolve("foo", PASSWD, GROUP, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user foo: no matching entries in passwd file"
        );
        let e = resolve("alice:nope", PASSWD, GROUP, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group nope: no matching entries in group file"
        );
    }
}
