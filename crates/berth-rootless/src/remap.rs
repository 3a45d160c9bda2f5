//! `--userns-remap` for the rootful daemon, as data: which user's subordinate ranges a
//! container's ids map onto ([`remap_mapping`]), the [`IdMapping`] every file owner and
//! process crosses (layers unpacked shifted, diffs and archives shifted back), and the
//! `dockremap` user dockerd creates for `default` ([`dockremap_plan`]). Pure: `remap_host`
//! reads the files and runs the commands.

use crate::plan::{fill, IdMap, SUBORDINATE_IDS};
use crate::subid::{ranges_for, SubRange};

/// The user `--userns-remap default` names (as dockerd).
pub const DEFAULT_USER: &str = "dockremap";

/// Container ids ↔ host ids. Empty maps are the identity (no remapping).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMapping {
    pub uids: Vec<IdMap>,
    pub gids: Vec<IdMap>,
}

/// An owner with no id on the other side of an [`IdMapping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{side} owner {uid}:{gid} is outside the --userns-remap range (container ids 0-{last})")]
pub struct Unmapped {
    pub uid: u32,
    pub gid: u32,
    /// `"container"` (a layer's or archive's owner) or `"host"` (a file's owner on disk).
    pub side: &'static str,
    /// The highest container id mapped.
    pub last: u32,
}

fn lookup(maps: &[IdMap], id: u32, to_host: bool) -> Option<u32> {
    maps.iter().find_map(|m| {
        let (from, to) = if to_host {
            (m.inside, m.outside)
        } else {
            (m.outside, m.inside)
        };
        let off = id.checked_sub(from)?;
        (off < m.count).then(|| to + off)
    })
}

impl IdMapping {
    /// No remapping.
    pub fn identity() -> IdMapping {
        IdMapping::default()
    }

    /// `count` ids from container 0: uids from host `uid`, gids from host `gid`.
    pub fn range(uid: u32, gid: u32, count: u32) -> IdMapping {
        let one = |outside| {
            vec![IdMap {
                inside: 0,
                outside,
                count,
            }]
        };
        IdMapping {
            uids: one(uid),
            gids: one(gid),
        }
    }

    pub fn is_identity(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }

    fn map(&self, uid: u32, gid: u32, to_host: bool) -> Result<(u32, u32), Unmapped> {
        if self.is_identity() {
            return Ok((uid, gid));
        }
        match (
            lookup(&self.uids, uid, to_host),
            lookup(&self.gids, gid, to_host),
        ) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => Err(Unmapped {
                uid,
                gid,
                side: if to_host { "container" } else { "host" },
                last: self.last(),
            }),
        }
    }

    /// A container-side owner (a layer's, an archive's, `--chown`'s) as the host stores it.
    pub fn to_host(&self, uid: u32, gid: u32) -> Result<(u32, u32), Unmapped> {
        self.map(uid, gid, true)
    }

    /// A host owner (a file in a snapshot or upper dir) as the container sees it.
    pub fn to_container(&self, uid: u32, gid: u32) -> Result<(u32, u32), Unmapped> {
        self.map(uid, gid, false)
    }

    /// The host uid and gid of the container's root (0:0 without remapping).
    pub fn root(&self) -> (u32, u32) {
        self.to_host(0, 0).unwrap_or((0, 0))
    }

    fn last(&self) -> u32 {
        let end = |m: &[IdMap]| m.iter().map(|m| m.inside + (m.count - 1)).max();
        end(&self.uids).min(end(&self.gids)).unwrap_or(0)
    }
}

/// `--userns-remap`'s value: `default`, or `USER[:GROUP]` (names or ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemapTarget {
    pub user: String,
    /// None: the user's name (dockerd looks the group up by the user's name).
    pub group: Option<String>,
}

impl RemapTarget {
    pub fn parse(arg: &str) -> Result<RemapTarget, String> {
        let arg = arg.trim();
        if arg == "default" {
            return Ok(RemapTarget {
                user: DEFAULT_USER.into(),
                group: Some(DEFAULT_USER.into()),
            });
        }
        let (user, group) = match arg.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (arg, None),
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c))
        };
        if !ok(user) || group.is_some_and(|g| !ok(g)) {
            return Err(format!(
                "invalid --userns-remap {arg:?}: give default, USER, USER:GROUP or uid:gid"
            ));
        }
        Ok(RemapTarget {
            user: user.into(),
            group: group.map(str::to_string),
        })
    }

    pub fn is_default(&self) -> bool {
        self.user == DEFAULT_USER
    }
}

/// A resolved user or group: its name (empty without an entry) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub id: u32,
}

/// The `usermod` command that gives `user` subordinate ranges.
pub fn usermod_line(user: &str) -> String {
    format!("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}")
}

/// The mapping for `user` and `group`: container 0.. = the first ids of their ranges in
/// `subuid` and `subgid` (files' text; subgid looked up by the group's name or id), up to
/// 65536 ids or as many as the ranges hold. No range: one line naming the usermod command.
pub fn remap_mapping(
    user: &Named,
    group: &Named,
    subuid: &str,
    subgid: &str,
) -> Result<IdMapping, String> {
    let u = ranges_for(subuid, &user.name, user.id);
    let g = ranges_for(subgid, &group.name, group.id);
    let who = if user.name.is_empty() {
        user.id.to_string()
    } else {
        user.name.clone()
    };
    if u.is_empty() || g.is_empty() {
        let (file, whose) = if u.is_empty() {
            ("/etc/subuid", who.clone())
        } else {
            ("/etc/subgid", group.name.clone())
        };
        return Err(format!(
            "--userns-remap: no subordinate ids for {whose} in {file}; add a range: {}",
            usermod_line(&who)
        ));
    }
    Ok(IdMapping {
        uids: fill(&u, 0, SUBORDINATE_IDS, None),
        gids: fill(&g, 0, SUBORDINATE_IDS, None),
    })
}

/// What `--userns-remap default` has to create first, as commands (`useradd`, `usermod`).
pub fn dockremap_plan(user_exists: bool, subuid: &str, subgid: &str) -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    if !user_exists {
        cmds.push(
            [
                "useradd",
                "--system",
                "--user-group",
                "--shell",
                "/bin/false",
                "--no-create-home",
                DEFAULT_USER,
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    let has = |text: &str| !ranges_for(text, DEFAULT_USER, u32::MAX).is_empty();
    if !(user_exists && has(subuid) && has(subgid)) {
        let start = free_range(&[subuid, subgid], SUBORDINATE_IDS);
        let range = format!("{start}-{}", start + (SUBORDINATE_IDS - 1));
        cmds.push(
            [
                "usermod",
                "--add-subuids",
                &range,
                "--add-subgids",
                &range,
                DEFAULT_USER,
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    cmds
}

/// The first start ≥ 100000 of `count` ids no line of `files` uses (dockerd's choice).
pub fn free_range(files: &[&str], count: u32) -> u32 {
    let mut used: Vec<SubRange> = files
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (_, s, c) = (f.next()?, f.next()?, f.next()?);
            Some(SubRange {
                start: s.parse().ok()?,
                count: c.parse().ok()?,
            })
        })
        .collect();
    used.sort_by_key(|r| r.start);
    let mut start = 100_000u32;
    for r in used {
        let end = r.start.saturating_add(r.count);
        if r.start < start.saturating_add(count) && end > start {
            start = end;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, id: u32) -> Named {
        Named {
            name: name.into(),
            id,
        }
    }

    fn m(inside: u32, outside: u32, count: u32) -> IdMap {
        IdMap {
            inside,
            outside,
            count,
        }
    }

    #[test]
    fn shifts_and_unshifts_inside_the_range_only() {
        let ids = IdMapping {
            uids: vec![m(0, 100000, 10), m(10, 300000, 65526)],
            gids: vec![m(0, 200000, 65536)],
        };
        assert_eq!(ids.to_host(0, 0), Ok((100000, 200000)));
        assert_eq!(ids.to_host(12, 5), Ok((300002, 200005)));
        assert_eq!(ids.to_container(300002, 200005), Ok((12, 5)));
        assert_eq!(ids.root(), (100000, 200000));
        let e = ids.to_host(65536, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "container owner 65536:0 is outside the --userns-remap range (container ids 0-65535)"
        );
        // Host root (or anything else outside) has no container id.
        let e = ids.to_container(0, 200000).unwrap_err();
        assert!(e.to_string().starts_with("host owner 0:200000"), "{e}");
        let id = IdMapping::identity();
        assert!(id.is_identity());
        assert_eq!(id.to_host(7, 8), Ok((7, 8)));
        assert_eq!(id.to_container(7, 8), Ok((7, 8)));
        assert_eq!(id.root(), (0, 0));
    }

    #[test]
    fn root_maps_to_the_ranges_first_id() {
        let ids = remap_mapping(
            &named("alice", 1000),
            &named("staff", 50),
            "alice:100000:65536\n",
            "staff:231072:70000\nalice:900000:65536\n",
        )
        .unwrap();
        assert_eq!(ids.uids, vec![m(0, 100000, 65536)]);
        // subgid is looked up by the group, cut at 65536 ids.
        assert_eq!(ids.gids, vec![m(0, 231072, 65536)]);
        // A short range gives what it holds; by uid works too.
        let ids = remap_mapping(
            &named("", 1000),
            &named("", 1000),
            "1000:5000:10\n",
            "1000:6000:20\n",
        )
        .unwrap();
        assert_eq!(ids.uids, vec![m(0, 5000, 10)]);
        assert_eq!(ids.last(), 9);
    }

    #[test]
    fn no_range_names_the_usermod_command() {
        let e =
            remap_mapping(&named("bob", 1001), &named("bob", 1001), "alice:1:2\n", "").unwrap_err();
        assert_eq!(
            e,
            "--userns-remap: no subordinate ids for bob in /etc/subuid; add a range: \
             usermod --add-subuids 100000-165535 --add-subgids 100000-165535 bob"
        );
        let e =
            remap_mapping(&named("bob", 1001), &named("bob", 1001), "bob:1:2\n", "").unwrap_err();
        assert!(e.contains("/etc/subgid"), "{e}");
    }

    #[test]
    fn parses_the_flag() {
        let d = RemapTarget::parse("default").unwrap();
        assert!(d.is_default());
        assert_eq!(d.group.as_deref(), Some("dockremap"));
        let u = RemapTarget::parse("alice:staff").unwrap();
        assert_eq!(
            (u.user.as_str(), u.group.as_deref()),
            ("alice", Some("staff"))
        );
        assert_eq!(RemapTarget::parse("1000").unwrap().group, None);
        for bad in ["", ":x", "a:", "a b", "a/b"] {
            assert!(RemapTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dockremap_plan_creates_what_is_missing() {
        let cmds = dockremap_plan(false, "alice:100000:65536\n", "");
        assert_eq!(cmds[0][0], "useradd");
        assert!(cmds[0].contains(&"--system".to_string()));
        assert_eq!(
            cmds[1],
            [
                "usermod",
                "--add-subuids",
                "165536-231071",
                "--add-subgids",
                "165536-231071",
                "dockremap"
            ]
        );
        let ranged = "dockremap:300000:65536\n";
        assert!(dockremap_plan(true, ranged, ranged).is_empty());
        assert_eq!(dockremap_plan(true, ranged, "").len(), 1);
    }

    #[test]
    fn free_range_finds_the_first_gap() {
        assert_eq!(free_range(&[""], 65536), 100000);
        assert_eq!(
            free_range(&["a:100000:65536\nb:300000:10\n"], 65536),
            165536
        );
        assert_eq!(
            free_range(&["a:100000:65536\n", "b:165536:65536\n"], 65536),
            231072
        );
        // A gap too small is skipped; ranges below 100000 do not matter.
        assert_eq!(free_range(&["a:10:5\nb:120000:10\n"], 65536), 120010);
    }
}
