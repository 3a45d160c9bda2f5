//! `berth cp`: copy between a container and the local filesystem via the archive endpoints
//! (tar streams; `-` reads/writes the tar on stdin/stdout).

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use berth_client::{body, Client, ErrorKind};
use hyper::Method;
use tokio::io::AsyncWriteExt;

use super::{path_name, Query};
use crate::cli::CpArgs;
use crate::exit::Exit;

/// `container:path` → Some((container, path)); local paths → None.
pub fn split_container_path(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    let (c, p) = s.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

pub async fn cp(c: &Client, a: CpArgs) -> anyhow::Result<()> {
    match (split_container_path(&a.src), split_container_path(&a.dst)) {
        (Some((ct, p)), None) => from_container(c, ct, p, &a.dst).await,
        (None, Some((ct, p))) => to_container(c, &a.src, ct, p).await,
        (Some(_), Some(_)) => Err(Exit::msg(1, "copying between containers is not supported")),
        (None, None) => Err(Exit::msg(
            1,
            "must specify at least one container source\nSee 'berth cp --help'.",
        )),
    }
}

async fn from_container(c: &Client, ct: &str, src: &str, dst: &str) -> anyhow::Result<()> {
    let q = Query::new().add("path", src);
    let mut s = c
        .stream(
            Method::GET,
            &q.on(&format!("/containers/{}/archive", path_name(ct))),
            body::empty(),
            &[],
        )
        .await?;
    if dst == "-" {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = s.next_chunk().await? {
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        return Ok(());
    }
    // Streamed through a pipe into the extractor: memory stays bounded whatever the size.
    let (mut tx, rx) = tokio::io::duplex(PIPE);
    let dst = PathBuf::from(dst);
    let extract = tokio::task::spawn_blocking(move || {
        extract_to(
            std::io::BufReader::with_capacity(256 << 10, tokio_util::io::SyncIoBridge::new(rx)),
            &dst,
        )
    });
    let feed = async move {
        while let Some(chunk) = s.next_chunk().await? {
            if tx.write_all(&chunk).await.is_err() {
                break;
            }
        }
        anyhow::Ok(())
    };
    let (fed, extracted) = tokio::join!(feed, extract);
    extracted??;
    fed
}

/// How much of a copy waits between the network and the filesystem.
const PIPE: usize = 1 << 20;

/// Unpack a tar whose single top-level entry is the copied item, at `dst` (into it when it is
/// an existing directory, else renamed to it).
pub fn extract_to(data: impl std::io::Read, dst: &Path) -> anyhow::Result<()> {
    if dst.is_dir() {
        tar::Archive::new(data)
            .unpack(dst)
            .with_context(|| format!("extracting into {}", dst.display()))?;
        return Ok(());
    }
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Exit::msg(
            1,
            format!("destination directory {} does not exist", parent.display()),
        ));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".berth-cp")
        .tempdir_in(&parent)?;
    tar::Archive::new(data).unpack(tmp.path())?;
    let top = std::fs::read_dir(tmp.path())?
        .next()
        .ok_or_else(|| Exit::msg(1, "empty archive from the container"))??;
    std::fs::rename(top.path(), dst).with_context(|| format!("moving into {}", dst.display()))?;
    Ok(())
}

/// Is `mode` (Go's os.FileMode bits from the path-stat header) a directory?
fn stat_is_dir(header: &str) -> Option<bool> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(header))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let mode = v["mode"].as_u64()?;
    Some(mode & (1 << 31) != 0)
}

async fn to_container(c: &Client, src: &str, ct: &str, dst: &str) -> anyhow::Result<()> {
    let put = |path: String, b| async move {
        let q = Query::new().add("path", path);
        c.stream(
            Method::PUT,
            &q.on(&format!("/containers/{}/archive", path_name(ct))),
            b,
            &[("Content-Type", "application/x-tar")],
        )
        .await
    };
    if src == "-" {
        put(dst.to_string(), body::reader(tokio::io::stdin())).await?;
        return Ok(());
    }
    let q = Query::new().add("path", dst);
    let dst_is_dir = match c
        .request(
            Method::HEAD,
            &q.on(&format!("/containers/{}/archive", path_name(ct))),
            body::empty(),
            &[],
        )
        .await
    {
        Ok(r) => r
            .headers()
            .get("X-Docker-Container-Path-Stat")
            .and_then(|h| h.to_str().ok())
            .and_then(stat_is_dir)
            .unwrap_or(false),
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(e.into()),
    };
    let src_path = PathBuf::from(src);
    if !src_path.exists() {
        return Err(Exit::msg(
            1,
            format!("stat {src}: no such file or directory"),
        ));
    }
    let (target_dir, name) = if dst_is_dir || dst.ends_with('/') {
        let base = src_path
            .canonicalize()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into());
        (dst.to_string(), base)
    } else {
        let d = Path::new(dst);
        let parent = d
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or("/".into());
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (parent, name)
    };
    // The archive is made as it is sent, through a pipe: memory stays bounded.
    let (tx, rx) = tokio::io::duplex(PIPE);
    let archive = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        // Batched: each write through the bridge is a hop onto the runtime.
        let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(
            256 << 10,
            tokio_util::io::SyncIoBridge::new(tx),
        ));
        b.follow_symlinks(false);
        if src_path.is_dir() {
            b.append_dir_all(&name, &src_path)?;
        } else {
            b.append_path_with_name(&src_path, &name)?;
        }
        b.into_inner()?
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?
            .shutdown()?;
        Ok(())
    });
    let (archived, sent) = tokio::join!(archive, put(target_dir, body::reader(rx)));
    match (archived?, sent) {
        (Ok(()), Ok(_)) => Ok(()),
        (Ok(()), Err(e)) => Err(e.into()),
        // The daemon's refusal closes the pipe under the archiver: its answer says why.
        (Err(a), Err(e)) if is_broken_pipe(&a) => Err(e.into()),
        // A local read error explains a truncated upload better than the daemon's answer.
        (Err(a), _) => Err(a),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(
            split_container_path("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(split_container_path("/tmp/a:b"), None);
        assert_eq!(split_container_path("./x:y"), None);
        assert_eq!(split_container_path("file"), None);
    }

    #[test]
    fn extract_renames_single_entry() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "hosts", &b"hi"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        extract_to(&data[..], &dir.path().join("copy")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("copy")).unwrap(), b"hi");
        extract_to(&data[..], dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("hosts")).unwrap(), b"hi");
    }
}
