//! Pure path planning for docker cp: which root (the rootfs or a mount's source) holds a
//! container path, symlink resolution across mounts, mounts below a directory, and routing of
//! the entries of a copied-in tar to the root they land in. No filesystem access here: symlinks
//! are read through a callback, so every rule is unit-tested without root.

use std::collections::VecDeque;
use std::io;

/// Most symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Clean a container path lexically into components (`..` stops at `/`).
pub(crate) fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

/// Mount destinations as cleaned components, in the caller's mount order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MountTable {
    dests: Vec<Vec<String>>,
}

/// Where a container path lives: `mount` None = the rootfs, else the index of the mount;
/// `rel` the components below that root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    pub mount: Option<usize>,
    pub rel: Vec<String>,
}

/// Where one entry of a copied-in tar goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Into root `mount` (None: rootfs) under the name `rel` (relative, `/`-joined).
    To { mount: Option<usize>, rel: String },
    /// The entry *is* a mount point (a directory entry there is dropped: the mount's root
    /// keeps its own owner and mode, as a mounted volume does).
    MountPoint(usize),
}

impl MountTable {
    /// `destinations` are absolute container paths; `/` itself is ignored (never a mount).
    pub fn new<'a>(destinations: impl IntoIterator<Item = &'a str>) -> MountTable {
        MountTable {
            dests: destinations.into_iter().map(components).collect(),
        }
    }

    /// The mount holding `comps` (longest destination prefix wins; the later one on a tie,
    /// as the later mount covers the earlier) and the rest of the path below it.
    pub fn locate(&self, comps: &[String]) -> Located {
        let mut best: Option<(usize, usize)> = None;
        for (i, d) in self.dests.iter().enumerate() {
            if !d.is_empty()
                && comps.len() >= d.len()
                && comps[..d.len()] == d[..]
                && best.is_none_or(|(_, l)| d.len() >= l)
            {
                best = Some((i, d.len()));
            }
        }
        match best {
            Some((i, l)) => Located {
                mount: Some(i),
                rel: comps[l..].to_vec(),
            },
            None => Located {
                mount: None,
                rel: comps.to_vec(),
            },
        }
    }

    /// Is `comps` exactly some mount's destination? (the mount whose root it is)
    pub fn mount_at(&self, comps: &[String]) -> Option<usize> {
        let l = self.locate(comps);
        l.mount.filter(|_| l.rel.is_empty())
    }

    /// Names of the mount points directly inside directory `dir` (sorted, deduplicated).
    pub fn children_of(&self, dir: &[String]) -> Vec<String> {
        let mut out: Vec<String> = self
            .dests
            .iter()
            .filter(|d| d.len() == dir.len() + 1 && d[..dir.len()] == dir[..])
            .map(|d| d[dir.len()].clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Resolve the symlinks of container path `path` the way the container sees it: each
    /// component is looked up in the root that holds it (`readlink(mount, rel)` returns the
    /// target of a symlink, `None` for anything else or a missing file), absolute targets
    /// restart at the container's `/`, `..` never climbs above `/`. The last component is
    /// followed only when `follow_last` (or the path ends in `/` or `/.`). Mount points
    /// themselves are never read (a mounted root is a directory).
    pub fn resolve(
        &self,
        path: &str,
        follow_last: bool,
        mut readlink: impl FnMut(Option<usize>, &[String]) -> Option<String>,
    ) -> io::Result<Vec<String>> {
        let follow_last = follow_last || path.ends_with('/') || path.ends_with("/.");
        let mut todo: VecDeque<String> = raw_components(path).into();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            if todo.is_empty() && !follow_last {
                break;
            }
            let loc = self.locate(&done);
            if loc.mount.is_some() && loc.rel.is_empty() {
                continue;
            }
            let Some(target) = readlink(loc.mount, &loc.rel) else {
                continue;
            };
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::other(format!(
                    "too many levels of symbolic links in {path}"
                )));
            }
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            for t in raw_components(&target).into_iter().rev() {
                todo.push_front(t);
            }
        }
        Ok(done)
    }

    /// Route tar entry `name` extracted into directory `dest` (resolved components, held by
    /// root `dest_mount`): entries reaching into a mount below `dest` go to that mount's root.
    /// Names with `..` stay with the destination's root, whose applier rejects them.
    pub fn route(&self, dest: &[String], name: &str) -> Route {
        let raw = raw_components(name);
        let fallback = || {
            let l = self.locate(dest);
            let mut rel = l.rel;
            rel.extend(raw.iter().cloned());
            Route::To {
                mount: l.mount,
                rel: rel.join("/"),
            }
        };
        if raw.iter().any(|c| c == "..") {
            return fallback();
        }
        let mut full = dest.to_vec();
        full.extend(raw.iter().cloned());
        let l = self.locate(&full);
        match l.mount {
            Some(i) if l.rel.is_empty() && full.len() > dest.len() => Route::MountPoint(i),
            _ => Route::To {
                mount: l.mount,
                rel: l.rel.join("/"),
            },
        }
    }
}

/// Components without lexical `..` processing (`..` must apply after symlinks resolve).
fn raw_components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn table() -> MountTable {
        MountTable::new(["/vol1", "/data", "/data/sub/deep", "/", "/a/b"])
    }

    #[test]
    fn locate_picks_longest_prefix_and_ignores_root() {
        let t = table();
        let l = |p: &str| t.locate(&components(p));
        assert_eq!(l("/etc/passwd").mount, None);
        assert_eq!(l("/vol1").mount, Some(0));
        assert_eq!(l("/vol1").rel, Vec::<String>::new());
        assert_eq!(l("/vol1/x/y").rel, s(&["x", "y"]));
        assert_eq!(
            l("/vol10/x").mount,
            None,
            "prefix of a name is not a prefix"
        );
        assert_eq!(l("/data/sub/deep/f").mount, Some(2));
        assert_eq!(l("/data/sub/deep/f").rel, s(&["f"]));
        assert_eq!(l("/data/sub/f").mount, Some(1));
        assert_eq!(l("/data/../vol1/z").mount, Some(0));
        assert_eq!(t.mount_at(&components("/a/b")), Some(4));
        assert_eq!(t.mount_at(&components("/a/b/c")), None);
        // The later of two mounts at one destination wins (it is on top).
        let t2 = MountTable::new(["/m", "/m/"]);
        assert_eq!(t2.locate(&components("/m/x")).mount, Some(1));
    }

    #[test]
    fn children_of_a_directory() {
        let t = table();
        assert_eq!(t.children_of(&[]), s(&["data", "vol1"]));
        assert_eq!(t.children_of(&s(&["a"])), s(&["b"]));
        assert_eq!(t.children_of(&s(&["data"])), Vec::<String>::new());
    }

    /// A fake filesystem: symlinks per (root, rel path).
    fn links(v: &[(Option<usize>, &str, &str)]) -> HashMap<(Option<usize>, String), String> {
        v.iter()
            .map(|(m, p, t)| ((*m, p.to_string()), t.to_string()))
            .collect()
    }

    fn resolve(
        t: &MountTable,
        l: &HashMap<(Option<usize>, String), String>,
        p: &str,
        follow: bool,
    ) -> String {
        let r = t
            .resolve(p, follow, |m, rel| l.get(&(m, rel.join("/"))).cloned())
            .unwrap();
        format!("/{}", r.join("/"))
    }

    #[test]
    fn symlinks_resolve_across_mounts_and_stay_inside() {
        let t = table();
        let l = links(&[
            (None, "link", "/vol1"),
            (None, "rel", "vol1/sub"),
            (Some(0), "up", "../../../../etc"),
            (Some(0), "abs", "/data/sub/deep"),
            (None, "etc/last", "/etc/shadow"),
            (None, "loop", "/loop"),
            // Mount points are never read, even if the rootfs under them has a symlink.
            (None, "vol1", "/etc"),
        ]);
        assert_eq!(resolve(&t, &l, "/link/data.txt", false), "/vol1/data.txt");
        assert_eq!(resolve(&t, &l, "/rel/f", false), "/vol1/sub/f");
        assert_eq!(resolve(&t, &l, "/vol1/up/passwd", false), "/etc/passwd");
        assert_eq!(resolve(&t, &l, "/vol1/abs/x", false), "/data/sub/deep/x");
        assert_eq!(resolve(&t, &l, "/../../link/../vol1/f", false), "/vol1/f");
        // The last component is not followed unless asked (or with a trailing `/` or `/.`).
        assert_eq!(resolve(&t, &l, "/etc/last", false), "/etc/last");
        assert_eq!(resolve(&t, &l, "/etc/last", true), "/etc/shadow");
        assert_eq!(resolve(&t, &l, "/link", false), "/link");
        assert_eq!(resolve(&t, &l, "/link/.", false), "/vol1");
        assert_eq!(resolve(&t, &l, "/link/", false), "/vol1");
        assert_eq!(resolve(&t, &l, "/vol1", true), "/vol1");
        assert!(t
            .resolve("/loop/x", false, |m, r| l.get(&(m, r.join("/"))).cloned())
            .is_err());
    }

    #[test]
    fn tar_entries_route_to_the_mount_they_reach() {
        let t = table();
        let to = |m: Option<usize>, r: &str| Route::To {
            mount: m,
            rel: r.into(),
        };
        // Extracting into `/`: entries under /vol1 go to the volume.
        assert_eq!(t.route(&[], "etc/x"), to(None, "etc/x"));
        assert_eq!(t.route(&[], "vol1"), Route::MountPoint(0));
        assert_eq!(t.route(&[], "./vol1/"), Route::MountPoint(0));
        assert_eq!(t.route(&[], "vol1/a/b"), to(Some(0), "a/b"));
        assert_eq!(t.route(&[], "data/sub/deep/z"), to(Some(2), "z"));
        // Extracting into a mount's root: names relative to it.
        assert_eq!(t.route(&s(&["vol1"]), "f"), to(Some(0), "f"));
        assert_eq!(t.route(&s(&["vol1"]), "."), to(Some(0), ""));
        assert_eq!(t.route(&s(&["data", "sub"]), "q"), to(Some(1), "sub/q"));
        // `..` is left to the destination root's applier (which refuses it).
        assert_eq!(t.route(&s(&["a"]), "../vol1/x"), to(None, "a/../vol1/x"));
    }
}
