//! The user namespace's id mapping, as data: container root is the user, ids 1..=65536 are
//! the user's subordinate range (`newuidmap`'s arguments); a single id (root = the user) when
//! none are configured. Pure: the caller reads `/etc/subuid`, `/etc/subgid` and the user.

use crate::subid::{ranges_for, SubRange};

/// How many ids above root a container gets when subordinate ids exist (as rootlesskit and
/// podman: uid/gid 1..=65535 plus nobody at 65534 fit).
pub const SUBORDINATE_IDS: u32 = 65536;

/// One line of `/proc/PID/uid_map`: `count` ids from `inside` in the namespace are `outside`
/// on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The user running the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name (empty when the uid has no passwd entry).
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The maps to write for the daemon's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// Root = the user, then the subordinate ranges: written by the setuid `newuidmap` and
    /// `newgidmap` (only they may map ids the user does not own).
    Subordinate { uids: Vec<IdMap>, gids: Vec<IdMap> },
    /// Root = the user, nothing else: the user writes it itself (after `setgroups` deny).
    Single { uid: u32, gid: u32 },
}

impl Mapping {
    /// The uid map (the gid map for `gids`) as lines for `/proc/PID/{uid,gid}_map`.
    pub fn maps(&self, gids: bool) -> Vec<IdMap> {
        match self {
            Mapping::Subordinate { uids, gids: g } => if gids { g } else { uids }.clone(),
            Mapping::Single { uid, gid } => vec![IdMap {
                inside: 0,
                outside: if gids { *gid } else { *uid },
                count: 1,
            }],
        }
    }

    /// Whether ids other than root exist in the namespace.
    pub fn is_single(&self) -> bool {
        matches!(self, Mapping::Single { .. })
    }
}

/// `newuidmap PID` (or `newgidmap PID`) arguments after the pid: `inside outside count` each.
pub fn map_args(maps: &[IdMap]) -> Vec<String> {
    maps.iter()
        .flat_map(|m| [m.inside, m.outside, m.count])
        .map(|n| n.to_string())
        .collect()
}

/// The text written to `/proc/PID/uid_map` or `gid_map`.
pub fn map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
        .collect()
}

/// The plan for `user`: the mapping and, for a single-id mapping, the one warning line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mapping: Mapping,
    pub warning: Option<String>,
}

/// The `usermod` command that gives `user` a subordinate range (shown when none exist).
pub fn usermod_hint(user: &User) -> String {
    format!(
        "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}",
        user.display()
    )
}

impl User {
    /// The login name, else the uid.
    pub fn display(&self) -> String {
        if self.name.is_empty() {
            self.uid.to_string()
        } else {
            self.name.clone()
        }
    }
}

/// Root = the user; 1.. = the first [`SUBORDINATE_IDS`] ids of the user's ranges in
/// `subuid`/`subgid` (the files' text). Without ranges in either file: a single-id mapping.
pub fn plan(user: &User, subuid: &str, subgid: &str) -> Plan {
    let u = ranges_for(subuid, &user.name, user.uid);
    // subgid lines name the user (or its uid), not a group, as shadow-utils looks them up.
    let g = ranges_for(subgid, &user.name, user.uid);
    if u.is_empty() || g.is_empty() {
        let missing = match (u.is_empty(), g.is_empty()) {
            (true, true) => "/etc/subuid and /etc/subgid",
            (true, false) => "/etc/subuid",
            _ => "/etc/subgid",
        };
        let who = user.display();
        return Plan {
            mapping: Mapping::Single {
                uid: user.uid,
                gid: user.gid,
            },
            warning: Some(format!(
                "no subordinate ids for {who} in {missing}: containers get a single id \
                 (root = {who}) and images with files of other owners cannot be unpacked; \
                 to add a range: {}",
                usermod_hint(user)
            )),
        };
    }
    Plan {
        mapping: Mapping::Subordinate {
            uids: chain(user.uid, &u),
            gids: chain(user.gid, &g),
        },
        warning: None,
    }
}

/// `0 → own`, then ranges filling `1..=SUBORDINATE_IDS` in order (a short first range is
/// continued from the next one), skipping any range containing `own` itself.
fn chain(own: u32, ranges: &[SubRange]) -> Vec<IdMap> {
    let mut out = vec![IdMap {
        inside: 0,
        outside: own,
        count: 1,
    }];
    out.extend(fill(ranges, 1, SUBORDINATE_IDS, Some(own)));
    out
}

/// Map `want` container ids from `first` onwards onto `ranges` in order (a short range is
/// continued from the next one), skipping any range that contains `skip`.
pub(crate) fn fill(ranges: &[SubRange], first: u32, want: u32, skip: Option<u32>) -> Vec<IdMap> {
    let mut out = Vec::new();
    let (mut next, end) = (first, first.saturating_add(want));
    for r in ranges {
        let left = end - next;
        if left == 0 {
            break;
        }
        if skip.is_some_and(|own| (r.start..=r.start + (r.count - 1)).contains(&own)) {
            continue;
        }
        let count = r.count.min(left);
        out.push(IdMap {
            inside: next,
            outside: r.start,
            count,
        });
        next += count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User {
            name: "alice".into(),
            uid: 1000,
            gid: 1001,
        }
    }

    #[test]
    fn root_is_the_user_and_the_range_follows() {
        let p = plan(&alice(), "alice:100000:65536\n", "alice:200000:70000\n");
        assert_eq!(p.warning, None);
        assert_eq!(
            map_args(&p.mapping.maps(false)),
            ["0", "1000", "1", "1", "100000", "65536"]
        );
        // A longer range is cut at 65536 ids; gids map the user's primary group to root.
        assert_eq!(
            map_text(&p.mapping.maps(true)),
            "0 1001 1\n1 200000 65536\n"
        );
    }

    #[test]
    fn short_ranges_are_chained_and_ones_holding_the_user_skipped() {
        let p = plan(
            &alice(),
            "alice:500:1000\nalice:100000:10\n1000:300000:100000\n",
            "alice:100000:65536\n",
        );
        assert_eq!(
            p.mapping.maps(false),
            vec![
                IdMap {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                IdMap {
                    inside: 1,
                    outside: 100000,
                    count: 10
                },
                IdMap {
                    inside: 11,
                    outside: 300000,
                    count: 65526
                },
            ]
        );
    }

    #[test]
    fn no_ranges_is_a_single_id_mapping_with_the_usermod_line() {
        let p = plan(&alice(), "bob:100000:65536\n", "alice:100000:65536\n");
        assert_eq!(
            p.mapping,
            Mapping::Single {
                uid: 1000,
                gid: 1001
            }
        );
        assert!(p.mapping.is_single());
        assert_eq!(map_text(&p.mapping.maps(true)), "0 1001 1\n");
        let w = p.warning.unwrap();
        assert!(w.contains("alice in /etc/subuid:"), "{w}");
        assert!(
            w.contains("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"),
            "{w}"
        );
        assert!(!w.contains('\n'));
        let p = plan(&alice(), "", "");
        assert!(p.warning.unwrap().contains("/etc/subuid and /etc/subgid"));
    }
}
