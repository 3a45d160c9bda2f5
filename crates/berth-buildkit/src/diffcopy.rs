//! The receiving side of fsutil's DiffCopy (how a client's session hands over a build context):
//! read the sender's walk of STAT packets, ask for each regular file with a REQ packet, take its
//! DATA packets, end with FIN — and write what arrives as a tar stream, the form berth's build
//! takes its context in. Nothing is written to disk here; every path is checked first (relative,
//! no `.`/`..`/empty components, no entry under a symlink or file, no duplicate, hard links only
//! to files already sent), so the tar holds nothing a confined extractor would have to refuse.

use std::collections::HashMap;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::context_cache::ContextCache;
use crate::grpc::{Code, Status};
use crate::proto::fsutil::{mode, Packet, PacketType, Stat};

/// Packets from the sender, and a way to answer it.
pub struct PacketConn {
    pub tx: mpsc::Sender<Packet>,
    pub rx: Pin<Box<dyn Stream<Item = Result<Packet, Status>> + Send>>,
}

impl PacketConn {
    /// The serving end of a packet stream (what a client's session does for DiffCopy or
    /// FileSend; for clients and tests written in Rust): the caller's packets, and the call's
    /// response carrying the answers sent on `tx` (status OK once `tx` is dropped).
    pub fn serve(
        req: hyper::Request<hyper::body::Incoming>,
    ) -> (PacketConn, hyper::Response<crate::grpc::Body>) {
        let (tx, answers) = mpsc::channel::<Packet>(64);
        let answers = futures::stream::unfold(answers, |mut rx| async move {
            rx.recv().await.map(|p| (Ok(p), rx))
        });
        let rx = packets_of(crate::grpc::Messages::new(req.into_body()));
        (PacketConn { tx, rx }, crate::grpc::streaming(answers))
    }
}

/// A call's messages as fsutil packets.
pub(crate) fn packets_of(
    msgs: crate::grpc::Messages,
) -> Pin<Box<dyn Stream<Item = Result<Packet, Status>> + Send>> {
    futures::stream::unfold(msgs, |mut m| async move {
        match m.next::<Packet>().await {
            Ok(Some(p)) => Some((Ok(p), m)),
            Ok(None) => None,
            Err(e) => Some((Err(e), m)),
        }
    })
    .boxed()
}

/// Bounds on what one sync may bring.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_bytes: 64 << 30,
        }
    }
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the client's file sync sent an unsafe path {path:?}: {why}")]
    UnsafePath { path: String, why: &'static str },
    #[error("the client's file sync broke the protocol: {0}")]
    Protocol(String),
    #[error("the client's file sync failed: {0}")]
    Sender(String),
    #[error("the client's file sync sent more than berth accepts ({0})")]
    TooLarge(String),
    #[error("the client's file sync stopped: {0}")]
    Transport(Status),
    #[error("the build stopped reading the synced context")]
    ReaderGone,
    #[error("berth's copy of the last synced context: {0}")]
    Cache(String),
}

impl From<SyncError> for Status {
    fn from(e: SyncError) -> Status {
        let code = match &e {
            SyncError::Transport(s) => s.code,
            SyncError::ReaderGone => Code::Cancelled,
            SyncError::TooLarge(_) => Code::ResourceExhausted,
            SyncError::Cache(_) => Code::Internal,
            _ => Code::InvalidArgument,
        };
        Status::new(code, e.to_string())
    }
}

/// What the sync brought.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub entries: usize,
    pub bytes: u64,
    /// Bytes the client sent (the rest came from what berth kept of the last sync).
    pub transferred: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
    /// Devices, pipes, sockets: not carried into a build context.
    Skip,
}

fn kind_of(st: &Stat) -> Kind {
    let m = st.mode;
    if m & mode::DIR != 0 {
        Kind::Dir
    } else if m & mode::SYMLINK != 0 {
        Kind::Symlink
    } else if m & mode::TYPE != 0 {
        Kind::Skip
    } else if !st.linkname.is_empty() {
        Kind::Hardlink
    } else {
        Kind::File
    }
}

fn unsafe_path(path: &str, why: &'static str) -> SyncError {
    SyncError::UnsafePath {
        path: path.to_string(),
        why,
    }
}

/// `path` as a clean relative path, or why it is not one.
pub fn check_path(path: &str) -> Result<(), SyncError> {
    if path.is_empty() {
        return Err(unsafe_path(path, "empty path"));
    }
    if path.contains('\0') {
        return Err(unsafe_path(path, "NUL in path"));
    }
    if path.starts_with('/') {
        return Err(unsafe_path(path, "absolute path"));
    }
    for c in path.split('/') {
        match c {
            "" => return Err(unsafe_path(path, "empty path component")),
            "." | ".." => return Err(unsafe_path(path, "`.` or `..` component")),
            _ => {}
        }
    }
    Ok(())
}

/// The walk, checked: each entry's ID (its index in the walk) and stat.
struct Walk {
    entries: Vec<(u32, Kind, Stat)>,
    seen: HashMap<String, Kind>,
}

impl Walk {
    fn add(&mut self, id: u32, st: Stat) -> Result<(), SyncError> {
        check_path(&st.path)?;
        let mut end = 0;
        while let Some(i) = st.path[end..].find('/') {
            end += i;
            match self.seen.get(&st.path[..end]) {
                None | Some(Kind::Dir) => {}
                Some(_) => {
                    return Err(unsafe_path(
                        &st.path,
                        "entry under a symlink or file sent before it",
                    ))
                }
            }
            end += 1;
        }
        let kind = kind_of(&st);
        if kind == Kind::Hardlink {
            check_path(&st.linkname)?;
            if self.seen.get(&st.linkname) != Some(&Kind::File) {
                return Err(unsafe_path(
                    &st.path,
                    "hard link to a path that is not a file sent before it",
                ));
            }
        }
        if self.seen.insert(st.path.clone(), kind).is_some() {
            return Err(unsafe_path(&st.path, "sent twice"));
        }
        self.entries.push((id, kind, st));
        Ok(())
    }
}

fn header_for(st: &Stat, kind: Kind) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let mut perm = st.mode & mode::PERM;
    if st.mode & mode::SETUID != 0 {
        perm |= 0o4000;
    }
    if st.mode & mode::SETGID != 0 {
        perm |= 0o2000;
    }
    if st.mode & mode::STICKY != 0 {
        perm |= 0o1000;
    }
    h.set_mode(perm);
    h.set_uid(u64::from(st.uid));
    h.set_gid(u64::from(st.gid));
    h.set_mtime(st.mod_time.max(0) as u64 / 1_000_000_000);
    h.set_size(0);
    h.set_entry_type(match kind {
        Kind::Dir => tar::EntryType::Directory,
        Kind::Symlink => tar::EntryType::Symlink,
        Kind::Hardlink => tar::EntryType::Link,
        _ => tar::EntryType::Regular,
    });
    h
}

async fn next_packet(conn: &mut PacketConn) -> Result<Option<Packet>, SyncError> {
    match conn.rx.next().await {
        None => Ok(None),
        Some(Err(s)) => Err(SyncError::Transport(s)),
        Some(Ok(p)) => {
            if p.kind() == Some(PacketType::Err) {
                return Err(SyncError::Sender(
                    String::from_utf8_lossy(&p.data).into_owned(),
                ));
            }
            Ok(Some(p))
        }
    }
}

async fn send(tx: &mpsc::Sender<Packet>, p: Packet) -> Result<(), SyncError> {
    tx.send(p).await.map_err(|_| {
        SyncError::Transport(Status::new(
            Code::Unavailable,
            "the session's stream closed",
        ))
    })
}

/// Files asked for ahead of the one being written: at most this many…
const WINDOW: usize = 64;
/// …and this many bytes of them (the sender interleaves their chunks, which wait in memory).
const AHEAD_BYTES: u64 = 32 << 20;

/// Asks for files ahead of the one being written (one round trip per file is slow), within
/// [`WINDOW`] and [`AHEAD_BYTES`], and keeps their chunks until their turn; each file is
/// held to its stated size. `WINDOW` stays within the request channel's capacity, so asking
/// never waits on a sender that waits on us.
struct Pipeline {
    /// Regular files in walk order: (id, size).
    files: Vec<(u32, u64)>,
    next: usize,
    asked_bytes: u64,
    /// Per asked file: chunks received before its turn, bytes so far, whether it ended.
    pending: HashMap<u32, (Vec<Vec<u8>>, u64, bool)>,
    sizes: HashMap<u32, u64>,
}

impl Pipeline {
    fn new(files: Vec<(u32, u64)>) -> Self {
        let sizes = files.iter().copied().collect();
        Pipeline {
            files,
            next: 0,
            asked_bytes: 0,
            pending: HashMap::new(),
            sizes,
        }
    }

    async fn top_up(&mut self, tx: &mpsc::Sender<Packet>) -> Result<(), SyncError> {
        while let Some(&(id, size)) = self.files.get(self.next) {
            let room = self.pending.is_empty()
                || (self.pending.len() < WINDOW && self.asked_bytes + size <= AHEAD_BYTES);
            if !room {
                break;
            }
            send(tx, Packet::req(id)).await?;
            self.pending.insert(id, (Vec::new(), 0, false));
            self.asked_bytes += size;
            self.next += 1;
        }
        Ok(())
    }

    /// Record one DATA packet for an asked file; the chunk back when it is `current`'s.
    fn accept(&mut self, p: Packet, current: u32) -> Result<Option<Vec<u8>>, SyncError> {
        let size = self.sizes.get(&p.id).copied();
        let Some((chunks, got, ended)) = self.pending.get_mut(&p.id) else {
            return Err(SyncError::Protocol(format!(
                "{:?} packet for entry {}, which was not asked for",
                p.kind(),
                p.id
            )));
        };
        if p.kind() != Some(PacketType::Data) || *ended {
            return Err(SyncError::Protocol(format!(
                "{:?} packet for entry {} after its end or out of turn",
                p.kind(),
                p.id
            )));
        }
        if p.data.is_empty() {
            *ended = true;
            return Ok(None);
        }
        *got += p.data.len() as u64;
        if Some(*got) > size {
            return Err(SyncError::Protocol(format!(
                "entry {} grew past its size {} while being sent",
                p.id,
                size.unwrap_or(0)
            )));
        }
        if p.id == current {
            return Ok(Some(p.data));
        }
        chunks.push(p.data);
        Ok(None)
    }

    /// Write file `id`'s contents to `out`: what came early, then what comes.
    async fn take(
        &mut self,
        conn: &mut PacketConn,
        id: u32,
        path: &str,
        out: &mpsc::Sender<Bytes>,
        mut tee: Option<&mut tokio::fs::File>,
    ) -> Result<(), SyncError> {
        let early = self
            .pending
            .get_mut(&id)
            .map(|(c, _, _)| std::mem::take(c))
            .unwrap_or_default();
        for c in early {
            pass(Bytes::from(c), out, tee.as_deref_mut()).await?;
        }
        while !self.pending.get(&id).is_some_and(|(_, _, ended)| *ended) {
            let p = next_packet(conn)
                .await?
                .ok_or_else(|| SyncError::Protocol(format!("the stream ended inside {path}")))?;
            if let Some(chunk) = self.accept(p, id)? {
                pass(Bytes::from(chunk), out, tee.as_deref_mut()).await?;
            }
        }
        let (_, got, _) = self.pending.remove(&id).unwrap_or_default();
        let size = self.sizes.get(&id).copied().unwrap_or(0);
        self.asked_bytes -= size;
        if got != size {
            return Err(SyncError::Protocol(format!(
                "{path} sent {got} of its {size} bytes"
            )));
        }
        Ok(())
    }
}

/// A chunk of a file to the tar stream, and to the cache's copy when one is being made.
async fn pass(
    chunk: Bytes,
    out: &mpsc::Sender<Bytes>,
    tee: Option<&mut tokio::fs::File>,
) -> Result<(), SyncError> {
    use tokio::io::AsyncWriteExt;
    if let Some(f) = tee {
        f.write_all(&chunk)
            .await
            .map_err(|e| SyncError::Cache(e.to_string()))?;
    }
    out.send(chunk).await.map_err(|_| SyncError::ReaderGone)
}

/// Take one directory from the sender as a tar stream on `out`.
pub async fn receive_tar(
    conn: PacketConn,
    out: mpsc::Sender<Bytes>,
    limits: Limits,
) -> Result<Summary, SyncError> {
    receive_tar_cached(conn, out, limits, None).await
}

/// [`receive_tar`], asking only for the files whose stat differs from what `cache` kept of
/// the last sync of this directory (the rest is read from it), and keeping this sync's.
pub async fn receive_tar_cached(
    mut conn: PacketConn,
    out: mpsc::Sender<Bytes>,
    limits: Limits,
    cache: Option<ContextCache>,
) -> Result<Summary, SyncError> {
    let mut walk = Walk {
        entries: Vec::new(),
        seen: HashMap::new(),
    };
    let mut id: u32 = 0;
    loop {
        let p = next_packet(&mut conn)
            .await?
            .ok_or_else(|| SyncError::Protocol("the stream ended inside the walk".into()))?;
        match p.kind() {
            Some(PacketType::Stat) => match p.stat {
                None => break,
                Some(st) => {
                    walk.add(id, st)?;
                    id = id
                        .checked_add(1)
                        .ok_or_else(|| SyncError::TooLarge("entries".into()))?;
                    if walk.entries.len() > limits.max_entries {
                        return Err(SyncError::TooLarge(format!(
                            "over {} entries",
                            limits.max_entries
                        )));
                    }
                }
            },
            other => {
                return Err(SyncError::Protocol(format!(
                    "{other:?} packet inside the walk"
                )))
            }
        }
    }
    let total: u64 = walk
        .entries
        .iter()
        .filter(|(_, k, _)| *k == Kind::File)
        .map(|(_, _, st)| st.size.max(0) as u64)
        .sum();
    if total > limits.max_bytes {
        return Err(SyncError::TooLarge(format!(
            "{total} bytes, over {}",
            limits.max_bytes
        )));
    }
    let kept: HashMap<u32, std::path::PathBuf> = match &cache {
        None => HashMap::new(),
        Some(c) => walk
            .entries
            .iter()
            .filter(|(_, k, _)| *k == Kind::File)
            .filter_map(|(id, _, st)| c.unchanged(st).map(|b| (*id, b)))
            .collect(),
    };
    let files: Vec<(u32, u64)> = walk
        .entries
        .iter()
        .filter(|(id, k, _)| *k == Kind::File && !kept.contains_key(id))
        .map(|(id, _, st)| (*id, st.size.max(0) as u64))
        .collect();
    let synced_files: Vec<Stat> = walk
        .entries
        .iter()
        .filter(|(_, k, _)| *k == Kind::File)
        .map(|(_, _, st)| st.clone())
        .collect();
    let transferred = files.iter().map(|(_, size)| size).sum();
    let mut pipe = Pipeline::new(files);
    let mut tar = tar::Builder::new(Vec::new());
    let mut summary = Summary {
        entries: 0,
        bytes: total,
        transferred,
    };
    let flush = |tar: &mut tar::Builder<Vec<u8>>| Bytes::from(std::mem::take(tar.get_mut()));
    for (fid, kind, st) in walk.entries {
        summary.entries += 1;
        let mut h = header_for(&st, kind);
        let io = |e: std::io::Error| SyncError::Protocol(format!("{}: {e}", st.path));
        match kind {
            Kind::Skip => continue,
            Kind::Dir => tar
                .append_data(&mut h, &st.path, std::io::empty())
                .map_err(io)?,
            Kind::Symlink | Kind::Hardlink => tar
                .append_link(&mut h, &st.path, &st.linkname)
                .map_err(io)?,
            Kind::File => {
                let size = st.size.max(0) as u64;
                h.set_size(size);
                tar.append_data(&mut h, &st.path, std::io::empty())
                    .map_err(io)?;
                out.send(flush(&mut tar))
                    .await
                    .map_err(|_| SyncError::ReaderGone)?;
                if let Some(blob) = kept.get(&fid) {
                    copy_kept(blob, size, &out).await?;
                } else {
                    pipe.top_up(&conn.tx).await?;
                    let mut copy = match &cache {
                        Some(c) => Some(
                            tokio::fs::File::create(c.staging(&st.path))
                                .await
                                .map_err(|e| SyncError::Cache(e.to_string()))?,
                        ),
                        None => None,
                    };
                    pipe.take(&mut conn, fid, &st.path, &out, copy.as_mut())
                        .await?;
                }
                let pad = (512 - size % 512) % 512;
                if pad > 0 {
                    out.send(Bytes::from(vec![0u8; pad as usize]))
                        .await
                        .map_err(|_| SyncError::ReaderGone)?;
                }
                continue;
            }
        }
        out.send(flush(&mut tar))
            .await
            .map_err(|_| SyncError::ReaderGone)?;
    }
    send(&conn.tx, Packet::fin()).await?;
    // The sender answers FIN with FIN (older ones just close).
    while let Some(p) = next_packet(&mut conn).await? {
        if p.kind() == Some(PacketType::Fin) {
            break;
        }
    }
    if let Some(c) = cache {
        tokio::task::spawn_blocking(move || c.commit(&synced_files))
            .await
            .map_err(|e| SyncError::Cache(e.to_string()))?
            .map_err(|e| SyncError::Cache(e.to_string()))?;
    }
    let end = tar
        .into_inner()
        .map_err(|e| SyncError::Protocol(e.to_string()))?;
    out.send(Bytes::from(end))
        .await
        .map_err(|_| SyncError::ReaderGone)?;
    Ok(summary)
}

/// A kept file's bytes into the tar stream (exactly `size` of them: the cache held a whole
/// copy when it was chosen).
async fn copy_kept(
    blob: &std::path::Path,
    size: u64,
    out: &mpsc::Sender<Bytes>,
) -> Result<(), SyncError> {
    use tokio::io::AsyncReadExt;
    let cache_err = |e: std::io::Error| SyncError::Cache(format!("{}: {e}", blob.display()));
    let mut f = tokio::fs::File::open(blob).await.map_err(cache_err)?;
    let mut left = size;
    while left > 0 {
        let mut buf = vec![0u8; left.min(256 << 10) as usize];
        f.read_exact(&mut buf).await.map_err(cache_err)?;
        left -= buf.len() as u64;
        out.send(Bytes::from(buf))
            .await
            .map_err(|_| SyncError::ReaderGone)?;
    }
    Ok(())
}

/// Take one (small) directory from the sender into memory, as a tar.
pub async fn receive_to_vec(conn: PacketConn, limits: Limits) -> Result<Vec<u8>, SyncError> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let collect = async move {
        let mut v = Vec::new();
        while let Some(b) = rx.recv().await {
            v.extend_from_slice(&b);
        }
        v
    };
    let (r, v) = tokio::join!(receive_tar(conn, tx, limits), collect);
    r.map(|_| v)
}

#[cfg(test)]
#[path = "diffcopy_tests.rs"]
mod tests;
