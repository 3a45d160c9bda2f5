//! The sending side of fsutil's DiffCopy, for the `local` exporter: a filesystem berth holds as
//! a tar file is walked in the order fsutil's receiver checks (parents first, each directory's
//! entries sorted by name), sent as STAT packets, and each file the client asks for (REQ) is
//! read from its place in the tar and sent as DATA packets.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::diffcopy::PacketConn;
use crate::grpc::Status;
use crate::proto::fsutil::{mode, Packet, PacketType, Stat};

/// How much of a file one DATA packet carries.
const CHUNK: usize = 1 << 20;

/// One entry of the walk: its stat, and where a regular file's bytes are in the tar.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub stat: Stat,
    pub data: Option<(u64, u64)>,
}

/// A tar member's path as fsutil names it: relative, `/`-separated, no `.` or `..`
/// components; None for the root itself. A `..` is refused.
fn clean(path: &str) -> Result<Option<String>, Status> {
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Status::internal(format!(
                    "export: the image's filesystem has a path leaving its root: {path:?}"
                )))
            }
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The tar's entries in walk order (component-wise sorted: `a`, `a/b`, `a.txt`).
pub fn index(tar_file: &Path) -> Result<Vec<Entry>, Status> {
    let bad = |e: std::io::Error| Status::internal(format!("export: read the filesystem: {e}"));
    let f = std::fs::File::open(tar_file).map_err(bad)?;
    let mut a = tar::Archive::new(f);
    let mut by_path: HashMap<String, Entry> = HashMap::new();
    for e in a.entries().map_err(bad)? {
        let e = e.map_err(bad)?;
        let h = e.header();
        let raw = e.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some(path) = clean(&raw)? else {
            continue;
        };
        let perm = h.mode().map_err(bad)?;
        let mut m = perm & mode::PERM;
        for (unix, go) in [
            (0o4000, mode::SETUID),
            (0o2000, mode::SETGID),
            (0o1000, mode::STICKY),
        ] {
            if perm & unix != 0 {
                m |= go;
            }
        }
        let link = |e: &tar::Entry<'_, std::fs::File>| -> Result<String, Status> {
            Ok(e.link_name()
                .map_err(bad)?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let mut stat = Stat {
            path: path.clone(),
            uid: h.uid().map_err(bad)? as u32,
            gid: h.gid().map_err(bad)? as u32,
            mod_time: h.mtime().map_err(bad)? as i64 * 1_000_000_000,
            ..Default::default()
        };
        let mut data = None;
        match h.entry_type() {
            tar::EntryType::Directory => m |= mode::DIR,
            tar::EntryType::Symlink => {
                m |= mode::SYMLINK;
                stat.linkname = link(&e)?;
            }
            tar::EntryType::Link => {
                // fsutil: a hard link is a regular file's stat naming the file it links to.
                let target = link(&e)?;
                stat.linkname = clean(&target)?.unwrap_or_default();
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                m |= mode::DEVICE;
                if h.entry_type() == tar::EntryType::Char {
                    m |= mode::CHAR_DEVICE;
                }
                stat.devmajor = h.device_major().map_err(bad)?.unwrap_or(0) as i64;
                stat.devminor = h.device_minor().map_err(bad)?.unwrap_or(0) as i64;
            }
            tar::EntryType::Fifo => m |= mode::NAMED_PIPE,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = e.size();
                stat.size = size as i64;
                data = Some((e.raw_file_position(), size));
            }
            // Extended headers are folded into the entries they describe by the reader.
            _ => continue,
        }
        stat.mode = m;
        by_path.insert(path, Entry { stat, data });
    }
    let mut entries: Vec<Entry> = by_path.into_values().collect();
    entries.sort_by(|a, b| a.stat.path.split('/').cmp(b.stat.path.split('/')));
    relink(&mut entries);
    Ok(entries)
}

/// Hard links after sorting: the receiver links only to a file it already has, so in each
/// group (a file and the links to it) the member that now comes first carries the bytes and
/// the others link to it.
fn relink(entries: &mut [Entry]) {
    let data_of: HashMap<String, Option<(u64, u64)>> = entries
        .iter()
        .filter(|e| e.data.is_some())
        .map(|e| (e.stat.path.clone(), e.data))
        .collect();
    let size_of: HashMap<String, i64> = entries
        .iter()
        .map(|e| (e.stat.path.clone(), e.stat.size))
        .collect();
    // Group key: the path of the file holding the bytes in the tar.
    let mut first: HashMap<String, String> = HashMap::new();
    for e in entries.iter_mut() {
        let is_link = !e.stat.linkname.is_empty() && e.stat.mode & mode::TYPE == 0;
        let group = if is_link {
            e.stat.linkname.clone()
        } else if e.data.is_some() {
            e.stat.path.clone()
        } else {
            continue;
        };
        match first.get(&group) {
            None => {
                first.insert(group.clone(), e.stat.path.clone());
                if is_link {
                    // The first of its group: it holds the bytes now.
                    if let Some(d) = data_of.get(&group) {
                        e.data = *d;
                        e.stat.size = size_of.get(&group).copied().unwrap_or(0);
                        e.stat.linkname.clear();
                    }
                }
            }
            Some(holder) => {
                e.stat.linkname = holder.clone();
                e.data = None;
                e.stat.size = 0;
            }
        }
    }
}

/// Send `entries` (from [`index`] of `tar_file`) to a receiver over `conn`: the walk, then
/// every file it asks for, until it says FIN.
pub async fn send(mut conn: PacketConn, tar_file: &Path, entries: &[Entry]) -> Result<(), Status> {
    use futures::StreamExt;
    let gone = || Status::unavailable("the client stopped receiving the export");
    for e in entries {
        let p = Packet {
            r#type: PacketType::Stat as i32,
            stat: Some(e.stat.clone()),
            ..Default::default()
        };
        conn.tx.send(p).await.map_err(|_| gone())?;
    }
    conn.tx
        .send(Packet {
            r#type: PacketType::Stat as i32,
            ..Default::default()
        })
        .await
        .map_err(|_| gone())?;
    let mut file = std::fs::File::open(tar_file)
        .map_err(|e| Status::internal(format!("export: open the filesystem: {e}")))?;
    while let Some(p) = conn.rx.next().await {
        let p = p?;
        match p.kind() {
            Some(PacketType::Req) => {
                let (offset, size) =
                    entries
                        .get(p.id as usize)
                        .and_then(|e| e.data)
                        .ok_or_else(|| {
                            Status::invalid(format!(
                                "the client asked for entry {} of the export, which is no file",
                                p.id
                            ))
                        })?;
                file.seek(SeekFrom::Start(offset))
                    .map_err(|e| Status::internal(format!("export: {e}")))?;
                let mut left = size;
                let mut buf = vec![0u8; CHUNK];
                while left > 0 {
                    let n = (left as usize).min(CHUNK);
                    file.read_exact(&mut buf[..n])
                        .map_err(|e| Status::internal(format!("export: {e}")))?;
                    left -= n as u64;
                    let d = Packet {
                        r#type: PacketType::Data as i32,
                        id: p.id,
                        data: buf[..n].to_vec(),
                        ..Default::default()
                    };
                    conn.tx.send(d).await.map_err(|_| gone())?;
                }
                let end = Packet {
                    r#type: PacketType::Data as i32,
                    id: p.id,
                    ..Default::default()
                };
                conn.tx.send(end).await.map_err(|_| gone())?;
            }
            Some(PacketType::Fin) => {
                // Answer it, end our side, and wait for the call's status: dropping the
                // stream before the client read our FIN would reset it under the client.
                let _ = conn.tx.send(Packet::fin()).await;
                drop(conn.tx);
                while let Some(p) = conn.rx.next().await {
                    p?;
                }
                return Ok(());
            }
            Some(PacketType::Err) => {
                return Err(Status::new(
                    crate::grpc::Code::Unknown,
                    format!(
                        "the client could not take the export: {}",
                        String::from_utf8_lossy(&p.data)
                    ),
                ))
            }
            _ => {
                return Err(Status::invalid(format!(
                    "unexpected fsutil packet {:?} while sending the export",
                    p.kind()
                )))
            }
        }
    }
    Err(gone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(f.reopen().unwrap());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o755
            } else {
                0o4644
            });
            h.set_uid(7);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.finish().unwrap();
        f
    }

    #[test]
    fn the_walk_is_in_fsutil_order_with_go_modes() {
        use tar::EntryType as T;
        let f = tar_of(&[
            ("./a.txt", T::Regular, b"A", ""),
            ("./a/", T::Directory, b"", ""),
            ("./a/b", T::Regular, b"BB", ""),
            ("./ab", T::Symlink, b"", "a/b"),
            ("./a/c", T::Link, b"", "a/b"),
            ("./", T::Directory, b"", ""),
        ]);
        let e = index(f.path()).unwrap();
        let paths: Vec<&str> = e.iter().map(|e| e.stat.path.as_str()).collect();
        assert_eq!(paths, ["a", "a/b", "a/c", "a.txt", "ab"]);
        // A link that sorts before the file it links to carries the bytes instead.
        let g = tar_of(&[
            ("./z", T::Regular, b"ZZZ", ""),
            ("./y", T::Link, b"", "z"),
            ("./x", T::Link, b"", "z"),
        ]);
        let e2 = index(g.path()).unwrap();
        let got: Vec<(&str, &str, i64, bool)> = e2
            .iter()
            .map(|e| {
                (
                    e.stat.path.as_str(),
                    e.stat.linkname.as_str(),
                    e.stat.size,
                    e.data.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("x", "", 3, true),
                ("y", "x", 0, false),
                ("z", "x", 0, false)
            ]
        );
        assert_eq!(e[0].stat.mode, mode::DIR | 0o755);
        assert_eq!(e[1].stat.mode, mode::SETUID | 0o644);
        assert_eq!((e[1].stat.size, e[1].stat.uid), (2, 7));
        assert_eq!(e[1].stat.mod_time, 1_700_000_000 * 1_000_000_000);
        assert_eq!(e[2].stat.linkname, "a/b");
        assert_eq!(e[4].stat.mode & mode::SYMLINK, mode::SYMLINK);
        assert_eq!(e[4].stat.linkname, "a/b");
        // Where a file's bytes are.
        let (off, len) = e[1].data.unwrap();
        let all = std::fs::read(f.path()).unwrap();
        assert_eq!(&all[off as usize..(off + len) as usize], b"BB");
    }

    #[test]
    fn a_path_leaving_the_root_is_refused() {
        assert!(clean("a/../../etc").is_err());
        assert_eq!(clean("./x//y/").unwrap().as_deref(), Some("x/y"));
        assert_eq!(clean("./").unwrap(), None);
    }
}
