//! `docker diff`: the changes an overlay upper dir records against its lower dirs (added,
//! modified, deleted by whiteout), as `GET /containers/{id}/changes` lists them.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{DaemonError, Result};

/// One entry of `GET /containers/{id}/changes`: kind 0 modified, 1 added, 2 deleted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Changes recorded in an overlay upper dir against its lower dirs (top-most first).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_changes(upper, lowers, "", &mut out)
        .map_err(|e| DaemonError::io(format!("changes in {}", upper.display()), e))?;
    out.sort();
    Ok(out)
}

fn in_lower(lowers: &[PathBuf], rel: &str) -> bool {
    lowers
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk_changes(
    upper: &Path,
    lowers: &[PathBuf],
    rel: &str,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let dir = if rel.is_empty() {
        upper.to_path_buf()
    } else {
        upper.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type()?;
        let md = e.metadata()?;
        let cpath = format!("/{r}");
        if ft.is_char_device() && {
            use std::os::unix::fs::MetadataExt;
            md.rdev() == 0
        } {
            out.push(Change {
                path: cpath,
                kind: 2,
            });
            continue;
        }
        let existed = in_lower(lowers, &r);
        out.push(Change {
            path: cpath,
            kind: if existed { 0 } else { 1 },
        });
        if ft.is_dir() {
            walk_changes(upper, lowers, &r, out)?;
        }
    }
    Ok(())
}
