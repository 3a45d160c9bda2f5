//! `berth build`: tar the context (honouring `.dockerignore` with berth-dockerfile's matcher),
//! POST /build, stream the output, report the image ID.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_client::{body, Client};
use berth_dockerfile::ignore::Matcher;
use hyper::Method;
use serde_json::Value;

use super::Query;
use crate::cli::BuildArgs;
use crate::exit::Exit;
use crate::opts::kv_map;
use crate::progress::{self, Mode};

/// Relative paths of the context to send, sorted, after `.dockerignore`. The Dockerfile and
/// `.dockerignore` are always kept (the daemon needs them), like docker.
pub fn context_files(root: &Path, matcher: &Matcher, keep: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading build context {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let rs = r.to_string_lossy().into_owned();
            let ft = e.file_type()?;
            let excluded = matcher.is_excluded(&rs) && !keep.contains(&rs.as_str());
            if ft.is_dir() {
                if !excluded {
                    out.push(rs.clone());
                }
                if !excluded || matcher.must_walk(&rs) {
                    stack.push(r);
                }
            } else if !excluded {
                out.push(rs);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn tar_context(
    root: &Path,
    files: &[String],
    extra: Option<(&str, Vec<u8>)>,
) -> anyhow::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    for f in files {
        let p = root.join(f);
        let md = std::fs::symlink_metadata(&p)?;
        if md.is_dir() {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&md);
            h.set_size(0);
            b.append_data(&mut h, format!("{f}/"), std::io::empty())?;
        } else {
            b.append_path_with_name(&p, f)?;
        }
    }
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_slice())?;
    }
    Ok(b.into_inner()?)
}

/// Whether `head` (the first bytes of stdin) starts an archive, as docker's CLI decides for
/// `build -`: compressed (gzip, bzip2, xz, zstd) or a valid tar header.
fn is_archive(head: &[u8]) -> bool {
    let magic: [&[u8]; 4] = [
        &[0x1f, 0x8b, 0x08],
        b"BZh",
        &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    magic.iter().any(|m| head.starts_with(m))
        || berth_rootfs::apply::is_tar_header(&head[..head.len().min(512)])
}

/// `build -`: stdin is the context archive, or (docker's CLI too) a Dockerfile alone, sent
/// as a context holding just `Dockerfile`.
fn stdin_context(
    input: Vec<u8>,
    file: Option<String>,
) -> anyhow::Result<(berth_client::Body, Option<String>)> {
    if is_archive(&input) {
        return Ok((body::bytes(input), file));
    }
    if file.as_deref() == Some("-") {
        return Err(Exit::msg(1, "build context is not an archive"));
    }
    let tarball = tar_context(Path::new("/"), &[], Some(("Dockerfile", input)))?;
    Ok((body::bytes(tarball), Some("Dockerfile".into())))
}

pub async fn build(c: &Client, a: BuildArgs) -> anyhow::Result<()> {
    let (body, dockerfile) = if a.context == "-" {
        let mut input = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut input).await?;
        stdin_context(input, a.file.clone())?
    } else {
        let root = PathBuf::from(&a.context);
        if !root.is_dir() {
            return Err(Exit::msg(
                1,
                format!("unable to prepare context: path {:?} not found", a.context),
            ));
        }
        let file = a.file.clone();
        let (tarball, df_name) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<u8>, String)> {
                let ignore =
                    std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
                let matcher = Matcher::from_dockerignore(&ignore)
                    .map_err(|e| Exit::msg(1, format!("parsing .dockerignore: {e}")))?;
                // The Dockerfile: inside the context → its relative path; outside or `-` → embed.
                let (df_rel, extra) = match file.as_deref() {
                    Some("-") => {
                        let mut s = Vec::new();
                        std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)?;
                        (".berth-dockerfile".to_string(), Some(s))
                    }
                    Some(f) => {
                        let p = Path::new(f);
                        let abs = if p.is_absolute() {
                            p.to_path_buf()
                        } else {
                            std::env::current_dir()?.join(p)
                        };
                        let abs = abs
                            .canonicalize()
                            .with_context(|| format!("Dockerfile {f}"))?;
                        match abs.strip_prefix(root.canonicalize()?) {
                            Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                            Err(_) => (".berth-dockerfile".to_string(), Some(std::fs::read(&abs)?)),
                        }
                    }
                    None => ("Dockerfile".to_string(), None),
                };
                let files = context_files(&root, &matcher, &[df_rel.as_str(), ".dockerignore"])?;
                let extra = extra.map(|d| (df_rel.as_str(), d));
                Ok((tar_context(&root, &files, extra)?, df_rel.clone()))
            })
            .await??;
        (body::bytes(tarball), Some(df_name))
    };
    let mut q = Query::new();
    for t in &a.tag {
        q = q.add("t", t);
    }
    let build_args: std::collections::HashMap<String, String> = a
        .build_arg
        .iter()
        .filter_map(|s| match s.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(s).ok().map(|v| (s.clone(), v)),
        })
        .collect();
    q = q
        .opt("dockerfile", dockerfile.as_deref())
        .add("buildargs", serde_json::to_string(&build_args)?)
        .add("labels", serde_json::to_string(&kv_map(&a.label))?)
        .opt("target", a.target.as_deref())
        .flag("nocache", a.no_cache)
        .flag("pull", a.pull)
        .flag("q", a.quiet)
        .opt("networkmode", a.network.as_deref())
        .opt("platform", a.platform.as_deref())
        .add("rm", if a.rm.unwrap_or(true) { "1" } else { "0" });
    for h in &a.add_host {
        q = q.add("extrahosts", h);
    }
    if !a.cache_from.is_empty() {
        q = q.add("cachefrom", serde_json::to_string(&a.cache_from)?);
    }
    let s = c
        .stream(
            Method::POST,
            &q.on("/build"),
            body,
            &[("Content-Type", "application/x-tar")],
        )
        .await?;
    let out = progress::show(s, if a.quiet { Mode::Quiet } else { Mode::Lines }).await?;
    let id = out
        .aux
        .iter()
        .rev()
        .find_map(|v: &Value| v["ID"].as_str().map(String::from))
        .or_else(|| {
            // quiet legacy builds send the ID as the only stream text
            out.streams
                .iter()
                .rev()
                .map(|s| s.trim())
                .find(|s| s.starts_with("sha256:"))
                .map(String::from)
        });
    if let Some(id) = &id {
        if a.quiet {
            println!("{id}");
        }
        if let Some(f) = &a.iidfile {
            std::fs::write(f, id)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_filters_context() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::write(r.join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(
            r.join(".dockerignore"),
            "*.log\nsecret/\n!secret/keep\nDockerfile\n",
        )
        .unwrap();
        std::fs::write(r.join("a.log"), "x").unwrap();
        std::fs::write(r.join("app.txt"), "x").unwrap();
        std::fs::create_dir(r.join("secret")).unwrap();
        std::fs::write(r.join("secret/key"), "x").unwrap();
        std::fs::write(r.join("secret/keep"), "x").unwrap();
        let m =
            Matcher::from_dockerignore(&std::fs::read_to_string(r.join(".dockerignore")).unwrap())
                .unwrap();
        let files = context_files(r, &m, &["Dockerfile", ".dockerignore"]).unwrap();
        assert_eq!(
            files,
            vec![".dockerignore", "Dockerfile", "app.txt", "secret/keep"]
        );
        let t = tar_context(r, &files, None).unwrap();
        assert!(is_archive(&t), "a context tar is an archive");
        assert!(
            !is_archive(b"FROM busybox\nRUN true\n"),
            "a Dockerfile is not"
        );
        let names: Vec<String> = tar::Archive::new(t.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"secret/keep".to_string()));
    }
}
