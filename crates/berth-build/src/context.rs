//! COPY/ADD sources: resolving paths inside a root (the build context or another stage's
//! rootfs) without ever leaving it, `.dockerignore` filtering, wildcards, and the content hash
//! (path + mode + bytes, never mtimes) that goes into a step's cache key.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_dockerfile::ignore::{Matcher, Pattern};
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};

/// What one entry of a source is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symlink, copied as a link (never followed below the top of a source).
    Symlink(String),
}

/// One file, dir or link to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// Where to read it on the host (already resolved inside the root).
    pub host: PathBuf,
    /// Path below the source's top (`""` for the top itself), `/`-separated.
    pub rel: String,
    pub kind: EntryKind,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// `(dev, ino)` for files with more than one link, to keep hardlinks.
    pub link_id: Option<(u64, u64)>,
    /// Modification time to set (seconds since the epoch); None keeps the time of writing.
    pub mtime: Option<i64>,
}

/// One matched source (`COPY a b/ c* /dst/` has at least three).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Base name of the matched path (the name a file gets inside a directory destination).
    pub name: String,
    /// The top first (a file, or the directory whose *contents* are copied), then children.
    pub entries: Vec<SourceEntry>,
    /// `ADD <url>`: where it was downloaded from (never extracted, even if it is a tar).
    pub url: Option<String>,
}

impl Source {
    /// Whether the source is a directory (its contents are copied, not itself).
    pub fn is_dir(&self) -> bool {
        self.entries
            .first()
            .is_some_and(|e| e.kind == EntryKind::Dir)
    }
}

/// How to read sources from a root.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions<'a> {
    /// `.dockerignore` of the build context (None for stages and images).
    pub ignore: Option<&'a Matcher>,
    /// True for the build context: `..` or a symlink leading out of the root is an error.
    /// False for a rootfs: such paths are clamped to the root, as a chroot would.
    pub strict: bool,
    /// What to call the root in messages ("build context", "stage build").
    pub what: &'a str,
    /// `--exclude` patterns of COPY/ADD.
    pub excludes: &'a [String],
}

fn ctx_err(path: &str, message: String) -> BuildError {
    BuildError::Context {
        path: path.to_string(),
        message,
    }
}

/// Lexically clean a source path relative to the root; `Err` if it climbs out (strict).
pub fn clean_source(src: &str, strict: bool) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in src.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() && strict {
                    return Err(ctx_err(
                        src,
                        format!("forbidden path outside the build context: {src}: COPY only reads files inside the context directory"),
                    ));
                }
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// Resolve `parts` inside `root`, following symlinks (the last one only if `follow_last`)
/// as if `root` were `/`. In strict mode a link that points out of the root is an error.
pub fn resolve_in_root(
    root: &Path,
    parts: &[String],
    follow_last: bool,
    strict: bool,
    what: &str,
) -> Result<PathBuf> {
    let mut todo: Vec<String> = parts.iter().rev().cloned().collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    let shown = parts.join("/");
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                if cur.pop().is_none() && strict {
                    return Err(ctx_err(&shown, format!("{shown}: a symlink points outside the {what}: COPY never follows links out of it")));
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
        let host = root.join(cur.join("/"));
        let Ok(md) = fs::symlink_metadata(&host) else {
            continue; // missing: the caller reports it
        };
        if md.file_type().is_symlink() && (!todo.is_empty() || follow_last) {
            hops += 1;
            if hops > 40 {
                return Err(ctx_err(
                    &shown,
                    format!("{shown}: too many levels of symbolic links"),
                ));
            }
            let target = fs::read_link(&host)
                .map_err(|e| ctx_err(&shown, format!("read link {shown}: {e}")))?;
            let t = target.to_string_lossy().into_owned();
            cur.pop();
            if t.starts_with('/') {
                if strict {
                    return Err(ctx_err(&shown, format!("{shown}: a symlink points outside the {what} (to {t}): COPY never follows links out of it")));
                }
                cur.clear();
            }
            for p in t.split('/').rev() {
                todo.push(p.to_string());
            }
        }
    }
    Ok(root.join(cur.join("/")))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn entry(host: PathBuf, rel: String, md: &fs::Metadata) -> Result<SourceEntry> {
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        let t = fs::read_link(&host)
            .map_err(|e| ctx_err(&rel, format!("read link {}: {e}", host.display())))?;
        EntryKind::Symlink(t.to_string_lossy().into_owned())
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else {
        return Err(ctx_err(
            &rel,
            format!("{}: cannot copy a device, socket or fifo", host.display()),
        ));
    };
    Ok(SourceEntry {
        link_id: (kind == EntryKind::File && md.nlink() > 1).then(|| (md.dev(), md.ino())),
        host,
        rel,
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        size: md.len(),
        mtime: None,
    })
}

fn excluded(opts: &SourceOptions, ctx_rel: &str, excludes: &Option<Matcher>) -> bool {
    opts.ignore.is_some_and(|m| m.is_excluded(ctx_rel))
        || excludes.as_ref().is_some_and(|m| m.is_excluded(ctx_rel))
}

fn must_walk(opts: &SourceOptions, ctx_rel: &str) -> bool {
    opts.ignore.is_some_and(|m| m.must_walk(ctx_rel))
}

fn walk(
    dir: &Path,
    rel: &str,
    ctx_rel: &str,
    opts: &SourceOptions,
    excludes: &Option<Matcher>,
    out: &mut Vec<SourceEntry>,
) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| ctx_err(rel, format!("read {}: {e}", dir.display())))?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let host = dir.join(&n);
        let r = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let cr = if ctx_rel.is_empty() {
            n.clone()
        } else {
            format!("{ctx_rel}/{n}")
        };
        let md = fs::symlink_metadata(&host)
            .map_err(|e| ctx_err(&r, format!("stat {}: {e}", host.display())))?;
        let skip = excluded(opts, &cr, excludes);
        if md.is_dir() {
            if skip {
                if must_walk(opts, &cr) {
                    let mut inner = Vec::new();
                    walk(&host, &r, &cr, opts, excludes, &mut inner)?;
                    if !inner.is_empty() {
                        out.push(entry(host.clone(), r.clone(), &md)?);
                        out.extend(inner);
                    }
                }
                continue;
            }
            out.push(entry(host.clone(), r.clone(), &md)?);
            walk(&host, &r, &cr, opts, excludes, out)?;
        } else if !skip {
            out.push(entry(host, r, &md)?);
        }
    }
    Ok(())
}

/// Resolve one COPY/ADD source (may be a wildcard) inside `root` into its matches.
pub fn collect(root: &Path, src: &str, opts: &SourceOptions) -> Result<Vec<Source>> {
    let parts = clean_source(src, opts.strict)?;
    let excludes = if opts.excludes.is_empty() {
        None
    } else {
        Some(Matcher::new(opts.excludes).map_err(BuildError::from)?)
    };
    let not_found = || {
        ctx_err(
            src,
            format!(
                "failed to compute cache key: \"/{}\": not found in the {} (or excluded by .dockerignore)",
                parts.join("/"),
                opts.what
            ),
        )
    };
    // Expand a wildcard in the last component only (the common case: `COPY *.txt /d/`).
    let candidates: Vec<Vec<String>> = match parts.last() {
        Some(last) if has_glob(last) => {
            let parent = &parts[..parts.len() - 1];
            let dir = resolve_in_root(root, parent, true, opts.strict, opts.what)?;
            let pat = Pattern::new(last).map_err(BuildError::from)?;
            let mut names: Vec<String> = fs::read_dir(&dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| pat.matches(n))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
                .into_iter()
                .map(|n| {
                    let mut p = parent.to_vec();
                    p.push(n);
                    p
                })
                .collect()
        }
        _ => vec![parts.clone()],
    };
    let mut out = Vec::new();
    for cand in candidates {
        let ctx_rel = cand.join("/");
        if !ctx_rel.is_empty() && excluded(opts, &ctx_rel, &excludes) && !must_walk(opts, &ctx_rel)
        {
            continue;
        }
        let host = resolve_in_root(root, &cand, true, opts.strict, opts.what)?;
        let Ok(md) = fs::metadata(&host) else {
            continue;
        };
        let name = cand.last().cloned().unwrap_or_default();
        let mut entries = vec![entry(host.clone(), String::new(), &md)?];
        if md.is_dir() {
            walk(&host, "", &ctx_rel, opts, &excludes, &mut entries)?;
        } else if !ctx_rel.is_empty() && excluded(opts, &ctx_rel, &excludes) {
            continue;
        }
        out.push(Source {
            name,
            entries,
            url: None,
        });
    }
    if out.is_empty() {
        return Err(not_found());
    }
    Ok(out)
}

/// Content hash of sources: for every entry its path, kind, mode, link target and bytes.
/// Owners and mtimes are left out (COPY sets the owner; mtimes change on every checkout).
pub fn content_hash(sources: &[Source]) -> Result<String> {
    let mut h = Sha256::new();
    for s in sources {
        h.update(b"source\0");
        h.update(s.name.as_bytes());
        for e in &s.entries {
            h.update(b"\0entry\0");
            h.update(e.rel.as_bytes());
            h.update(format!("\0{:o}\0", e.mode).as_bytes());
            match &e.kind {
                EntryKind::Dir => h.update(b"d"),
                EntryKind::Symlink(t) => {
                    h.update(b"l");
                    h.update(t.as_bytes());
                }
                EntryKind::File => {
                    h.update(b"f");
                    let mut f = fs::File::open(&e.host).map_err(|err| {
                        ctx_err(&e.rel, format!("read {}: {err}", e.host.display()))
                    })?;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = f.read(&mut buf).map_err(|err| {
                            ctx_err(&e.rel, format!("read {}: {err}", e.host.display()))
                        })?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                }
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn opts<'a>(ignore: Option<&'a Matcher>) -> SourceOptions<'a> {
        SourceOptions {
            ignore,
            strict: true,
            what: "build context",
            excludes: &[],
        }
    }

    #[test]
    fn collects_dirs_with_dockerignore_and_exceptions() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("app/logs/deep")).unwrap();
        fs::write(r.join("app/a.txt"), "a").unwrap();
        fs::write(r.join("app/logs/x.log"), "x").unwrap();
        fs::write(r.join("app/logs/deep/keep.log"), "k").unwrap();
        fs::write(r.join("app/b.tmp"), "b").unwrap();
        let m = Matcher::from_dockerignore("**/*.log\n!**/keep.log\n*/b.tmp\n").unwrap();
        let s = collect(r, "app", &opts(Some(&m))).unwrap();
        let rels: Vec<&str> = s[0].entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(
            rels,
            ["", "a.txt", "logs", "logs/deep", "logs/deep/keep.log"]
        );
        assert!(collect(r, "app/b.tmp", &opts(Some(&m))).is_err());
    }

    #[test]
    fn refuses_to_leave_the_context() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("ctx");
        fs::create_dir_all(&r).unwrap();
        fs::write(d.path().join("outside"), "secret").unwrap();
        symlink("../outside", r.join("up")).unwrap();
        symlink("/etc/passwd", r.join("abs")).unwrap();
        let e = collect(&r, "../outside", &opts(None)).unwrap_err();
        assert!(e.to_string().contains("outside the build context"), "{e}");
        let e = collect(&r, "up", &opts(None)).unwrap_err();
        assert!(
            e.to_string().contains("points outside the build context"),
            "{e}"
        );
        let e = collect(&r, "abs", &opts(None)).unwrap_err();
        assert!(e.to_string().contains("points outside"), "{e}");
        // A rootfs clamps instead.
        let mut o = opts(None);
        o.strict = false;
        assert!(collect(&r, "../../up", &o).is_err()); // clamped to /outside: not there
    }

    #[test]
    fn hash_ignores_mtime_but_not_mode_or_bytes() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::write(r.join("f"), "one").unwrap();
        let h1 = content_hash(&collect(r, "f", &opts(None)).unwrap()).unwrap();
        let f = fs::File::options().write(true).open(r.join("f")).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let h2 = content_hash(&collect(r, "f", &opts(None)).unwrap()).unwrap();
        assert_eq!(h1, h2);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(r.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
        let h3 = content_hash(&collect(r, "f", &opts(None)).unwrap()).unwrap();
        assert_ne!(h1, h3);
        fs::write(r.join("f"), "two").unwrap();
        fs::set_permissions(r.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        let h4 = content_hash(&collect(r, "f", &opts(None)).unwrap()).unwrap();
        assert_ne!(h1, h4);
    }

    #[test]
    fn wildcards_match_last_component() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir(r.join("s")).unwrap();
        for n in ["a.txt", "b.txt", "c.md"] {
            fs::write(r.join("s").join(n), n).unwrap();
        }
        let s = collect(r, "s/*.txt", &opts(None)).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "b.txt"]);
        assert!(collect(r, "s/*.rs", &opts(None)).is_err());
    }
}
