//! The pull pipeline: a layer unpacked while its blob downloads. A [`Stager`] rides on the
//! blob's [`Ingest`](crate::Ingest): a thread follows the partial file as the download appends
//! to it, decompresses, hashes and applies it into `staging/<hex>-<pid>-<n>/fs`. When the snapshot for
//! that blob is made, [`Store::take_staged`] hands over the result and the directory is renamed
//! into `snapshots/<n>` if its diff id is the one the image config names; anything else
//! (a failed, cancelled or mismatching unpack) is removed and the blob unpacked the usual way.
//! Nothing here is trusted more than the usual path: the same applier, the same diff-id check,
//! and the blob itself is verified by the ingest before the result is ever used.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use berth_oci::Digest;

use crate::error::{IoCtx, Result};
use crate::Store;

/// Staged unpacks by blob digest (one per blob at a time).
pub(crate) type StagedMap = Mutex<HashMap<Digest, Arc<Slot>>>;

/// How far the download is, as the follower thread sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// More bytes may come.
    Open,
    /// The blob is complete and verified.
    Done,
    /// The download was abandoned (abort, mismatch, drop): stop and clean up.
    Cancelled,
}

#[derive(Debug)]
struct Feed {
    state: Mutex<(u64, End)>,
    cv: Condvar,
}

impl Feed {
    fn set(&self, f: impl FnOnce(&mut (u64, End))) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
        self.cv.notify_all();
    }
}

/// What a staged unpack produced.
#[derive(Debug)]
pub(crate) struct Staged {
    /// `staging/<hex>-<pid>-<n>`, holding `fs/`.
    pub dir: PathBuf,
    pub diff_id: Digest,
    pub bytes: u64,
}

/// Where the follower thread leaves its result.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    result: Mutex<Option<std::result::Result<Staged, String>>>,
    cv: Condvar,
}

impl Slot {
    fn put(&self, r: std::result::Result<Staged, String>) {
        *self.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        self.cv.notify_all();
    }

    /// Wait for the thread's result.
    pub(crate) fn wait(&self) -> std::result::Result<Staged, String> {
        let mut g = self.result.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The download's side of a staged unpack: tells the follower how much is written and how it
/// ended. Dropped without [`Stager::done`], it cancels.
#[derive(Debug)]
pub struct Stager {
    feed: Arc<Feed>,
}

impl Stager {
    /// `n` more bytes are in the partial file.
    pub(crate) fn advance(&self, n: u64) {
        self.feed.set(|s| s.0 += n);
    }

    /// The blob verified and committed: the follower reads to the end.
    pub(crate) fn done(&self) {
        self.feed.set(|s| s.1 = End::Done);
    }

    fn cancel(&self) {
        self.feed.set(|s| {
            if s.1 == End::Open {
                s.1 = End::Cancelled
            }
        });
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Reads the partial file as the download grows it, waiting at its end until more is written
/// or the download ends.
struct Follow {
    file: File,
    pos: u64,
    feed: Arc<Feed>,
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                self.pos += n as u64;
                return Ok(n);
            }
            let mut g = self.feed.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                match *g {
                    (_, End::Cancelled) => {
                        return Err(io::Error::other("the download was abandoned"))
                    }
                    (written, _) if written > self.pos => break,
                    (_, End::Done) => return Ok(0),
                    _ => g = self.feed.cv.wait(g).unwrap_or_else(|p| p.into_inner()),
                }
            }
        }
    }
}

impl Store {
    pub(crate) fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// Start unpacking the layer blob `blob` from its partial download at `partial` (which may
    /// already hold `present` bytes of an earlier attempt) while it is written. None when it
    /// cannot be staged (one is running for this blob, no thread): the snapshot is then made
    /// from the blob as before.
    pub(crate) fn stage_layer(
        &self,
        blob: &Digest,
        partial: &Path,
        present: u64,
    ) -> Option<Stager> {
        let file = File::open(partial).ok()?;
        let slot = Arc::new(Slot::default());
        {
            let mut m = self.staged.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(old) = m.get(blob) {
                // Still running (another pull of this blob): leave it be.
                let finished = old.result.lock().unwrap_or_else(|p| p.into_inner()).take();
                match finished {
                    None => return None,
                    Some(Ok(st)) => discard(&st),
                    Some(Err(_)) => {}
                }
            }
            m.insert(blob.clone(), slot.clone());
        }
        let feed = Arc::new(Feed {
            state: Mutex::new((present, End::Open)),
            cv: Condvar::new(),
        });
        // A new name each time: ext4 picks a spread directory's block group from a hash of
        // its name, and the last unpack of this blob may have just been deleted there.
        let dir = self
            .staging_dir()
            .join(crate::blobs::unique_name(blob.hex()));
        let follow = Follow {
            file,
            pos: 0,
            feed: feed.clone(),
        };
        let unpack = self.unpacker(blob);
        let spawned = std::thread::Builder::new()
            .name("berth-stage".into())
            .spawn(move || {
                let r = unpack_staged(&unpack, &dir, follow);
                if r.is_err() {
                    let _ = fs::remove_dir_all(&dir);
                }
                slot.put(r);
            });
        if spawned.is_err() {
            self.staged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(blob);
            return None;
        }
        Some(Stager { feed })
    }

    /// The staged unpack of `blob`, if one was started: waits for it to finish. The caller
    /// owns the directory in an `Ok` (adopt it or [`discard`]).
    pub(crate) fn take_staged(&self, blob: &Digest) -> Option<std::result::Result<Staged, String>> {
        let slot = self
            .staged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(blob)?;
        Some(slot.wait())
    }

    /// Drop the staged unpacks of these blobs that no snapshot took (a pull that failed, or
    /// whose layers were already unpacked).
    pub fn discard_staged(&self, blobs: &[Digest]) {
        for b in blobs {
            if let Some(Ok(s)) = self.take_staged(b) {
                discard(&s);
            }
        }
    }
}

/// Remove a staged directory nobody adopted.
pub(crate) fn discard(s: &Staged) {
    if let Err(e) = fs::remove_dir_all(&s.dir) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(dir = %s.dir.display(), error = %e, "cannot remove a staged layer");
        }
    }
}

fn unpack_staged(
    unpack: &crate::snapshots::Unpacker,
    dir: &Path,
    follow: Follow,
) -> std::result::Result<Staged, String> {
    let run = || -> Result<Staged> {
        if dir.exists() {
            fs::remove_dir_all(dir).at(dir)?;
        }
        crate::fsmode::private_dir(dir).at(dir)?;
        let fsdir = dir.join("fs");
        fs::create_dir_all(&fsdir).at(&fsdir)?;
        let (diff_id, bytes) =
            unpack.apply(&fsdir, BufReader::with_capacity(256 * 1024, follow), dir)?;
        Ok(Staged {
            dir: dir.to_path_buf(),
            diff_id,
            bytes,
        })
    };
    run().map_err(|e| e.to_string())
}
