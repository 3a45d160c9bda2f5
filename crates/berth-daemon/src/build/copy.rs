//! COPY/ADD of build sources into a step's rootfs: walks berth-build's [`Source`] entries and
//! writes each through berth-rootfs's confined [`berth_rootfs::writer::RootWriter`], keeping
//! hard links between copied files.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use berth_build::{EntryKind, Source};
use berth_rootfs::writer::io_ctx;

pub use berth_rootfs::writer::{is_archive, Owner};

/// A rootfs opened for confined writes, remembering hard-linked sources already copied.
pub struct RootWriter {
    w: berth_rootfs::writer::RootWriter,
    /// First destination written for each hardlinked source inode.
    links: HashMap<(u64, u64), String>,
}

impl Deref for RootWriter {
    type Target = berth_rootfs::writer::RootWriter;
    fn deref(&self) -> &Self::Target {
        &self.w
    }
}

impl DerefMut for RootWriter {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.w
    }
}

impl RootWriter {
    pub fn open(root: &Path) -> io::Result<RootWriter> {
        Ok(RootWriter {
            w: berth_rootfs::writer::RootWriter::open(root)?,
            links: HashMap::new(),
        })
    }

    /// [`RootWriter::open`] writing owners shifted by `ids` (`--userns-remap`).
    pub fn open_mapped(root: &Path, ids: &berth_rootfs::IdMapping) -> io::Result<RootWriter> {
        Ok(RootWriter {
            w: berth_rootfs::writer::RootWriter::open(root)?.mapped(ids.clone()),
            links: HashMap::new(),
        })
    }

    /// Copy one source to `dest` (a path relative to the root). Directory sources copy their
    /// contents into `dest`; a file goes to `dest` itself. `chown`/`chmod` override the
    /// source's owner (default root) and modes.
    pub fn copy_source(
        &mut self,
        src: &Source,
        dest: &str,
        owner: Owner,
        chmod: Option<u32>,
    ) -> io::Result<u64> {
        let mut n = 0;
        for e in &src.entries {
            let rel = if e.rel.is_empty() {
                dest.trim_end_matches('/').to_string()
            } else {
                format!("{}/{}", dest.trim_end_matches('/'), e.rel)
            };
            let mode = chmod.unwrap_or(e.mode);
            match &e.kind {
                EntryKind::Dir => {
                    if e.rel.is_empty() && self.is_dir(&rel) {
                        continue; // an existing destination dir keeps its metadata
                    }
                    self.dir(&rel, mode, owner)?
                }
                EntryKind::Symlink(t) => self.symlink(&rel, t, owner)?,
                EntryKind::File => {
                    if let Some(id) = e.link_id {
                        if let Some(first) = self.links.get(&id).cloned() {
                            self.hardlink(&rel, &first)?;
                            continue;
                        }
                        self.links.insert(id, rel.clone());
                    }
                    let mut f =
                        File::open(&e.host).map_err(|err| io_ctx("read source for", &rel, err))?;
                    self.write_file(&rel, &mut f, mode, owner)?;
                    if let Some(t) = e.mtime {
                        self.set_mtime(&rel, t)?;
                    }
                }
            }
            n += 1;
        }
        Ok(n)
    }
}
