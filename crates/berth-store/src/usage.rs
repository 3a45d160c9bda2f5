//! Size walks over directory trees: allocated bytes (what `du` reports, for disk accounting and
//! prune reports) and content bytes (what `docker ps -s` reports as a container's size).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What [`tree_size`] adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Allocated blocks of every inode (files, directories, symlinks), like `du -s`.
    Allocated,
    /// Length of regular files only (Docker's `SizeRw`/`SizeRootFs`).
    Content,
}

/// Size of the tree at `root` by `measure`. Symlinks are not followed, a hard-linked inode counts
/// once, and other filesystems mounted below `root` are not entered (a container's `merged`
/// mount, a volume bound inside). Unreadable entries are skipped: this is accounting, not a check.
/// Iterative, so a hostile deep tree cannot overflow the stack.
pub fn tree_size(root: &Path, measure: Measure) -> u64 {
    let Ok(top) = fs::symlink_metadata(root) else {
        return 0;
    };
    let dev = top.dev();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.dev() != dev || !seen.insert(m.ino()) {
            continue;
        }
        total += match measure {
            Measure::Allocated => m.blocks() * 512,
            Measure::Content if m.is_file() => m.len(),
            Measure::Content => 0,
        };
        if m.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_counts_file_bytes_once_per_inode() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("a")).unwrap();
        fs::write(d.path().join("a/f"), vec![0u8; 1000]).unwrap();
        fs::hard_link(d.path().join("a/f"), d.path().join("g")).unwrap();
        fs::write(d.path().join("h"), b"xyz").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("s")).unwrap();
        assert_eq!(tree_size(d.path(), Measure::Content), 1003);
    }

    #[test]
    fn allocated_includes_directories_and_is_at_least_content() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), vec![1u8; 10_000]).unwrap();
        let alloc = tree_size(d.path(), Measure::Allocated);
        assert!(alloc >= 10_000, "allocated {alloc} < content");
        assert_eq!(tree_size(&d.path().join("missing"), Measure::Allocated), 0);
    }
}
