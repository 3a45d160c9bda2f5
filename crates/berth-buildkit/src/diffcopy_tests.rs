//! The receiver against a fake fsutil sender (the walk, REQ → DATA…, FIN → FIN), honest and
//! hostile.

use super::*;
use crate::proto::fsutil::{mode, Packet, PacketType, Stat};

fn stat(path: &str, m: u32, size: i64, link: &str) -> Stat {
    Stat {
        path: path.into(),
        mode: m,
        size,
        linkname: link.into(),
        mod_time: 1_700_000_000_000_000_000,
        ..Default::default()
    }
}

fn dir(p: &str) -> (Stat, Vec<u8>) {
    (stat(p, mode::DIR | 0o755, 0, ""), vec![])
}
fn file(p: &str, data: &[u8]) -> (Stat, Vec<u8>) {
    (stat(p, 0o644, data.len() as i64, ""), data.to_vec())
}
fn symlink(p: &str, target: &str) -> (Stat, Vec<u8>) {
    (stat(p, mode::SYMLINK | 0o777, 0, target), vec![])
}

/// Plays fsutil's sender: the walk, then DATA for each REQ (in 3-byte chunks, then an empty
/// one), FIN for FIN. `tamper` rewrites what it would send for a request.
fn sender(
    tree: Vec<(Stat, Vec<u8>)>,
    tamper: fn(u32, Vec<Packet>) -> Vec<Packet>,
) -> (PacketConn, tokio::task::JoinHandle<Vec<u32>>) {
    let (to_recv, from_send) = mpsc::channel::<Result<Packet, Status>>(64);
    let (to_send, mut from_recv) = mpsc::channel::<Packet>(64);
    let task = tokio::spawn(async move {
        for (st, _) in &tree {
            let p = Packet {
                r#type: PacketType::Stat as i32,
                stat: Some(st.clone()),
                ..Default::default()
            };
            if to_recv.send(Ok(p)).await.is_err() {
                return vec![];
            }
        }
        let _ = to_recv.send(Ok(Packet::default())).await;
        let mut asked = vec![];
        while let Some(p) = from_recv.recv().await {
            match p.kind() {
                Some(PacketType::Req) => {
                    asked.push(p.id);
                    let data = &tree[p.id as usize].1;
                    let mut out: Vec<Packet> = data
                        .chunks(3)
                        .map(|c| Packet {
                            r#type: PacketType::Data as i32,
                            id: p.id,
                            data: c.to_vec(),
                            ..Default::default()
                        })
                        .collect();
                    out.push(Packet {
                        r#type: PacketType::Data as i32,
                        id: p.id,
                        ..Default::default()
                    });
                    for q in tamper(p.id, out) {
                        if to_recv.send(Ok(q)).await.is_err() {
                            return asked;
                        }
                    }
                }
                Some(PacketType::Fin) => {
                    let _ = to_recv.send(Ok(Packet::fin())).await;
                    break;
                }
                _ => {}
            }
        }
        asked
    });
    let rx = futures::stream::unfold(
        from_send,
        |mut r| async move { r.recv().await.map(|p| (p, r)) },
    );
    (
        PacketConn {
            tx: to_send,
            rx: Box::pin(rx),
        },
        task,
    )
}

fn honest(_: u32, p: Vec<Packet>) -> Vec<Packet> {
    p
}

async fn run(tree: Vec<(Stat, Vec<u8>)>) -> Result<Vec<u8>, SyncError> {
    let (conn, _task) = sender(tree, honest);
    receive_to_vec(conn, Limits::default()).await
}

/// `(path, type, size, link, contents)` of each tar entry.
fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, u64, String, Vec<u8>)> {
    use std::io::Read;
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (t, size) = (e.header().entry_type(), e.header().size().unwrap());
            let mut data = vec![];
            e.read_to_end(&mut data).unwrap();
            (path, t, size, link, data)
        })
        .collect()
}

#[tokio::test]
async fn a_tree_arrives_as_a_tar_in_walk_order() {
    let long = format!("d/{}", "x".repeat(150));
    let tree = vec![
        dir("d"),
        file("d/a.txt", b"hello world"),
        file("d/empty", b""),
        symlink("d/link", "../../../etc"),
        (stat("d/hard", 0o644, 0, "d/a.txt"), vec![]),
        file(&long, b"long name"),
        (stat("d/fifo", mode::NAMED_PIPE | 0o644, 0, ""), vec![]),
        file("top", &[7u8; 1000]),
    ];
    let (conn, task) = sender(tree, honest);
    let tar = receive_to_vec(conn, Limits::default()).await.unwrap();
    // Only regular files are asked for (by their index in the walk), each once.
    assert_eq!(task.await.unwrap(), vec![1, 2, 5, 7]);
    let e = entries(&tar);
    let names: Vec<_> = e.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "d",
            "d/a.txt",
            "d/empty",
            "d/link",
            "d/hard",
            long.as_str(),
            "top"
        ]
    );
    assert_eq!(e[1].4, b"hello world");
    assert_eq!(e[1].1, tar::EntryType::Regular);
    // A symlink is carried as a symlink, never followed: where it points is the extractor's
    // (confined) business, and nothing may be sent under it.
    assert_eq!(e[3].1, tar::EntryType::Symlink);
    assert_eq!(e[3].3, "../../../etc");
    assert_eq!(e[4].1, tar::EntryType::Link);
    assert_eq!(e[4].3, "d/a.txt");
    assert_eq!(e[5].4, b"long name");
    assert_eq!(e[6].4, vec![7u8; 1000]);
}

#[tokio::test]
async fn hostile_paths_are_refused_before_anything_is_asked() {
    for bad in [
        "../evil",
        "/etc/passwd",
        "a/../../b",
        "a//b",
        "./a",
        "a/.",
        "",
        "a\0b",
    ] {
        let (conn, task) = sender(vec![dir("a"), file(bad, b"x")], honest);
        let err = receive_to_vec(conn, Limits::default()).await.unwrap_err();
        assert!(
            matches!(err, SyncError::UnsafePath { .. }),
            "{bad:?}: {err}"
        );
        task.abort();
    }
}

#[tokio::test]
async fn nothing_may_be_sent_under_a_symlink_or_a_file() {
    for tree in [
        vec![symlink("link", "/etc"), file("link/passwd", b"root::0:0")],
        vec![symlink("link", "/"), dir("link/etc")],
        vec![file("f", b"x"), file("f/g", b"y")],
    ] {
        let err = run(tree).await.unwrap_err();
        assert!(
            matches!(err, SyncError::UnsafePath { why, .. } if why.contains("under a symlink")),
            "{err}"
        );
    }
}

#[tokio::test]
async fn hard_links_only_to_files_already_sent_and_no_duplicates() {
    for tree in [
        vec![(stat("h", 0o644, 0, "/etc/shadow"), vec![])],
        vec![(stat("h", 0o644, 0, "later"), vec![]), file("later", b"x")],
        vec![dir("d"), (stat("h", 0o644, 0, "d"), vec![])],
        vec![file("a", b"1"), file("a", b"2")],
    ] {
        assert!(matches!(
            run(tree).await.unwrap_err(),
            SyncError::UnsafePath { .. }
        ));
    }
}

#[tokio::test]
async fn a_sender_that_lies_about_sizes_or_ids_is_refused() {
    fn extra(_: u32, mut p: Vec<Packet>) -> Vec<Packet> {
        let end = p.pop().unwrap();
        p.push(Packet {
            r#type: PacketType::Data as i32,
            id: end.id,
            data: b"more".to_vec(),
            ..Default::default()
        });
        p.push(end);
        p
    }
    fn short(_: u32, p: Vec<Packet>) -> Vec<Packet> {
        p[1..].to_vec()
    }
    fn other_id(_: u32, p: Vec<Packet>) -> Vec<Packet> {
        p.into_iter()
            .map(|mut q| {
                q.id += 1;
                q
            })
            .collect()
    }
    for tamper in [
        extra as fn(u32, Vec<Packet>) -> Vec<Packet>,
        short,
        other_id,
    ] {
        let (conn, _t) = sender(vec![file("a", b"abcdef"), file("b", b"x")], tamper);
        let err = receive_to_vec(conn, Limits::default()).await.unwrap_err();
        assert!(matches!(err, SyncError::Protocol(_)), "{err}");
    }
}

#[tokio::test]
async fn the_senders_error_and_limits_are_reported() {
    let (tx, _rx) = mpsc::channel(1);
    let conn = PacketConn {
        tx,
        rx: Box::pin(futures::stream::iter([Ok(Packet::err(
            "failed to walk /ctx: permission denied",
        ))])),
    };
    let err = receive_to_vec(conn, Limits::default()).await.unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let status: Status = err.into();
    assert_eq!(status.code, Code::InvalidArgument);

    let (conn, _t) = sender(vec![file("a", b"x"), file("b", b"y")], honest);
    let limits = Limits {
        max_entries: 1,
        max_bytes: 10,
    };
    assert!(matches!(
        receive_to_vec(conn, limits).await.unwrap_err(),
        SyncError::TooLarge(_)
    ));
    let (conn, _t) = sender(vec![file("a", &[0; 11])], honest);
    assert!(matches!(
        receive_to_vec(conn, limits).await.unwrap_err(),
        SyncError::TooLarge(_)
    ));
}

/// Like fsutil's 4 workers: chunks of the asked files interleaved (here in reverse order of
/// asking, round-robin), each file ended by its empty chunk.
#[tokio::test]
async fn interleaved_chunks_of_files_asked_ahead_land_in_walk_order() {
    let tree = [
        file("a", b"aaaaaaaaa"),
        dir("d"),
        file("d/b", b"bbbbbbb"),
        file("d/c", b"c"),
        file("e", b""),
    ];
    let files: Vec<(u32, Vec<u8>)> = tree
        .iter()
        .enumerate()
        .filter(|(_, (st, _))| st.mode & mode::DIR == 0)
        .map(|(i, (_, d))| (i as u32, d.clone()))
        .collect();
    let (to_recv, from_send) = mpsc::channel::<Result<Packet, Status>>(256);
    let (to_send, mut from_recv) = mpsc::channel::<Packet>(64);
    let stats: Vec<Stat> = tree.iter().map(|(s, _)| s.clone()).collect();
    tokio::spawn(async move {
        for st in stats {
            let p = Packet {
                r#type: PacketType::Stat as i32,
                stat: Some(st),
                ..Default::default()
            };
            to_recv.send(Ok(p)).await.unwrap();
        }
        to_recv.send(Ok(Packet::default())).await.unwrap();
        let mut asked = vec![];
        while asked.len() < files.len() {
            let p = from_recv.recv().await.unwrap();
            assert_eq!(p.kind(), Some(PacketType::Req));
            asked.push(p.id);
        }
        let data = |id: u32| files.iter().find(|(i, _)| *i == id).unwrap().1.clone();
        let chunks: Vec<Vec<Vec<u8>>> = asked
            .iter()
            .rev()
            .map(|id| data(*id).chunks(2).map(<[u8]>::to_vec).collect())
            .collect();
        let longest = chunks.iter().map(Vec::len).max().unwrap_or(0);
        for n in 0..=longest {
            for (k, id) in asked.iter().rev().enumerate() {
                let d = match chunks[k].get(n) {
                    Some(c) => c.clone(),
                    None if n == chunks[k].len() => vec![],
                    None => continue,
                };
                let p = Packet {
                    r#type: PacketType::Data as i32,
                    id: *id,
                    data: d,
                    ..Default::default()
                };
                to_recv.send(Ok(p)).await.unwrap();
            }
        }
        if from_recv.recv().await.map(|p| p.kind()) == Some(Some(PacketType::Fin)) {
            let _ = to_recv.send(Ok(Packet::fin())).await;
        }
    });
    let rx = futures::stream::unfold(
        from_send,
        |mut r| async move { r.recv().await.map(|p| (p, r)) },
    );
    let conn = PacketConn {
        tx: to_send,
        rx: Box::pin(rx),
    };
    let tar = receive_to_vec(conn, Limits::default()).await.unwrap();
    let e = entries(&tar);
    let got: Vec<(&str, &[u8])> = e.iter().map(|x| (x.0.as_str(), x.4.as_slice())).collect();
    assert_eq!(
        got,
        [
            ("a", &b"aaaaaaaaa"[..]),
            ("d", &b""[..]),
            ("d/b", &b"bbbbbbb"[..]),
            ("d/c", &b"c"[..]),
            ("e", &b""[..])
        ]
    );
}

/// Receive `tree` with the cache for `key` under `root`: the tar, and the IDs asked for.
async fn run_cached(
    root: &std::path::Path,
    key: &str,
    tree: Vec<(Stat, Vec<u8>)>,
) -> (Vec<u8>, Vec<u32>) {
    let (conn, task) = sender(tree, honest);
    let cache = ContextCache::open(root, key, "context").unwrap();
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let collect = async move {
        let mut v = Vec::new();
        while let Some(b) = rx.recv().await {
            v.extend_from_slice(&b);
        }
        v
    };
    let (r, tar) = tokio::join!(
        receive_tar_cached(conn, tx, Limits::default(), Some(cache)),
        collect
    );
    r.unwrap();
    (tar, task.await.unwrap())
}

#[tokio::test]
async fn a_resync_asks_only_for_what_changed_and_the_tar_is_whole() {
    let root = tempfile::tempdir().unwrap();
    let tree = |b: &[u8]| {
        vec![
            dir("d"),
            file("d/same.txt", b"unchanged bytes"),
            file("d/edit.txt", b),
            file("top", &[7u8; 5000]),
        ]
    };
    let (first, asked) = run_cached(root.path(), "k", tree(b"v1")).await;
    assert_eq!(asked, [1, 2, 3]);
    // Same stats: nothing asked, the same tar built from what was kept.
    let (again, asked) = run_cached(root.path(), "k", tree(b"v1")).await;
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(entries(&again), entries(&first));
    // A file whose size changed is asked for again, and only it.
    let (edited, asked) = run_cached(root.path(), "k", tree(b"v2!")).await;
    assert_eq!(asked, [2]);
    let e = entries(&edited);
    assert_eq!(e[2].4, b"v2!");
    assert_eq!(e[1].4, b"unchanged bytes");
    // Another shared key keeps its own copy; a file gone from the walk is forgotten.
    let (_, asked) = run_cached(root.path(), "other", tree(b"v2!")).await;
    assert_eq!(asked, [1, 2, 3]);
    let (_, asked) = run_cached(root.path(), "k", vec![dir("d"), file("top", &[7u8; 5000])]).await;
    assert!(asked.is_empty());
    let (_, asked) = run_cached(root.path(), "k", tree(b"v2!")).await;
    assert_eq!(
        asked,
        [1, 2],
        "d/same.txt and d/edit.txt were dropped with the walk"
    );
}
