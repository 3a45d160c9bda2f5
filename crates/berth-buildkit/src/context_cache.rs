//! What berth keeps of a client's last synced directory (per session shared key and directory
//! name), so that a rebuild asks the client only for the files whose stat changed, as
//! BuildKit's incremental file sync does. Only regular files are kept, as flat blobs named by
//! the hash of their path beside an index of their stats: nothing under the cache directory
//! is ever a directory or a link a path could be led through.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::proto::fsutil::Stat;

/// How many synced directories are kept; the least recently used go first.
const KEEP: usize = 32;

/// The stat a kept file had when it was synced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    size: i64,
    mod_time: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Kept {
    fn of(st: &Stat) -> Kept {
        Kept {
            size: st.size,
            mod_time: st.mod_time,
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
        }
    }
}

/// One synced directory's kept files.
pub struct ContextCache {
    dir: PathBuf,
    index: HashMap<String, Kept>,
}

fn hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl ContextCache {
    /// The cache for directory `name` of the sessions sharing `shared_key`, under `root`
    /// (created 0700); an unreadable index starts it empty. Drops the least recently used
    /// caches beyond [`KEEP`].
    pub fn open(root: &Path, shared_key: &str, name: &str) -> std::io::Result<ContextCache> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let dir = root.join(&hash(&format!("{shared_key}\0{name}"))[..32]);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        let index = std::fs::read(dir.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        evict(root, &dir);
        Ok(ContextCache { dir, index })
    }

    /// Where file `path`'s bytes are kept.
    pub fn blob(&self, path: &str) -> PathBuf {
        self.dir.join(hash(path))
    }

    /// The kept copy of `st`'s file when its stat is unchanged and the copy is whole.
    pub fn unchanged(&self, st: &Stat) -> Option<PathBuf> {
        let kept = self.index.get(&st.path)?;
        if *kept != Kept::of(st) {
            return None;
        }
        let blob = self.blob(&st.path);
        let meta = std::fs::symlink_metadata(&blob).ok()?;
        (meta.is_file() && meta.len() as i64 == st.size).then_some(blob)
    }

    /// Where a changed file's new bytes are written before [`ContextCache::commit`].
    pub fn staging(&self, path: &str) -> PathBuf {
        self.dir.join(format!("{}.new", hash(path)))
    }

    /// The sync ended well: the walk's files (`files`, each unchanged or staged) become the
    /// cache; everything else in it goes.
    pub fn commit(mut self, files: &[Stat]) -> std::io::Result<()> {
        let mut index = HashMap::new();
        for st in files {
            let staged = self.staging(&st.path);
            if staged.exists() {
                std::fs::rename(&staged, self.blob(&st.path))?;
            }
            index.insert(st.path.clone(), Kept::of(st));
        }
        let keep: std::collections::HashSet<String> = index.keys().map(|p| hash(p)).collect();
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "index.json" && !keep.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        self.index = index;
        let tmp = self.dir.join("index.json.new");
        std::fs::write(&tmp, serde_json::to_vec(&self.index).unwrap_or_default())?;
        std::fs::rename(tmp, self.dir.join("index.json"))
    }
}

/// Remove the least recently used caches under `root` beyond [`KEEP`] (never `current`).
fn evict(root: &Path, current: &Path) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter(|e| e.path() != current)
        .map(|e| {
            let used = std::fs::metadata(e.path().join("index.json"))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (used, e.path())
        })
        .collect();
    if dirs.len() < KEEP {
        return;
    }
    dirs.sort();
    for (_, d) in &dirs[..dirs.len() + 1 - KEEP] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(path: &str, size: i64, t: i64) -> Stat {
        Stat {
            path: path.into(),
            mode: 0o644,
            size,
            mod_time: t,
            ..Default::default()
        }
    }

    #[test]
    fn only_files_with_the_same_stat_and_a_whole_copy_are_unchanged() {
        let root = tempfile::tempdir().unwrap();
        let c = ContextCache::open(root.path(), "key", "context").unwrap();
        let a = stat("a/b.txt", 3, 10);
        assert!(c.unchanged(&a).is_none());
        std::fs::write(c.staging("a/b.txt"), b"abc").unwrap();
        c.commit(std::slice::from_ref(&a)).unwrap();

        let c = ContextCache::open(root.path(), "key", "context").unwrap();
        let blob = c.unchanged(&a).expect("kept");
        assert_eq!(std::fs::read(blob).unwrap(), b"abc");
        assert!(c.unchanged(&stat("a/b.txt", 3, 11)).is_none(), "mtime");
        assert!(c.unchanged(&stat("a/b.txt", 4, 10)).is_none(), "size");
        // Another key or directory name has its own cache.
        let other = ContextCache::open(root.path(), "key", "dockerfile").unwrap();
        assert!(other.unchanged(&a).is_none());
        // A file gone from the walk is dropped with its blob.
        c.commit(&[]).unwrap();
        let c = ContextCache::open(root.path(), "key", "context").unwrap();
        assert!(c.unchanged(&a).is_none());
        assert_eq!(
            std::fs::read_dir(&c.dir).unwrap().count(),
            1,
            "only the index"
        );
    }

    #[test]
    fn old_caches_are_evicted() {
        let root = tempfile::tempdir().unwrap();
        for i in 0..KEEP + 3 {
            let c = ContextCache::open(root.path(), &format!("k{i}"), "context").unwrap();
            c.commit(&[]).unwrap();
        }
        assert!(std::fs::read_dir(root.path()).unwrap().count() <= KEEP);
    }
}
