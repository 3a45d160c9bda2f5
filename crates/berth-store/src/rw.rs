//! Container read-write layers: `containers-rw/<id>/{upper,work,merged}`, the overlay mount over
//! the image's snapshots (planned as data, then applied by the store's [`StorageDriver`]), and
//! the upper dir exported as an OCI diff tar (overlay whiteouts → `.wh.` entries).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_oci::Digest;
use berth_rootfs::OverlayXattrs;
use rusqlite::{params, Connection, OptionalExtension};
use rustix::mount::{MountFlags, UnmountFlags};

use berth_rootfs::IdMapping;

use crate::driver::{Mounter, StorageDriver, FUSE_OVERLAYFS};
use crate::error::{DbCtx, IoCtx, Result, StoreError};
use crate::Store;

/// A container's read-write layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RwLayer {
    pub container_id: String,
    pub image_id: Option<Digest>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// The engine's init layer (mount points it needs, see berth-daemon's `init_layer`): a
    /// lower between the image and `upper` once it exists, so they never show as changes.
    pub init: PathBuf,
}

/// An overlay mount to perform (the plan; [`apply_overlay`] performs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayPlan {
    /// Top-most first, as overlayfs wants them.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
    /// Mount with overlayfs' `volatile` option (no sync on unmount; for throwaway layers;
    /// kernel overlayfs only).
    pub volatile: bool,
    /// Who mounts it, reading opaque dirs in which xattr namespace.
    pub driver: StorageDriver,
}

impl OverlayPlan {
    /// The `data` string for mount(2) (and fuse-overlayfs's `-o`).
    pub fn options(&self) -> String {
        let lower: Vec<String> = self
            .lower
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut o = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            self.upper.display(),
            self.work.display(),
        );
        if self.driver.mounter == Mounter::Kernel {
            if let Some(x) = self.driver.xattrs.mount_option() {
                o.push(',');
                o.push_str(x);
            }
            if self.volatile {
                o.push_str(",volatile");
            }
        } else {
            // FUSE serves only the mounting uid without it (fuse-overlayfs 1.10 run as root
            // adds it too); fuse-overlayfs always adds `default_permissions`, so the kernel
            // still checks modes for every other user.
            o.push_str(",allow_other");
        }
        o
    }
}

/// Perform an overlay mount plan: mount(2), or fuse-overlayfs (which returns once the mount
/// is up and serves it from the background until it is unmounted).
pub fn apply_overlay(plan: &OverlayPlan) -> io::Result<()> {
    match plan.driver.mounter {
        Mounter::Kernel => {
            let data = CString::new(plan.options())?;
            rustix::mount::mount(
                "overlay",
                &plan.target,
                "overlay",
                MountFlags::empty(),
                data.as_c_str(),
            )?;
        }
        Mounter::Fuse => {
            let out = Command::new(FUSE_OVERLAYFS)
                .arg("-o")
                .arg(plan.options())
                .arg(&plan.target)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| io::Error::new(e.kind(), format!("run {FUSE_OVERLAYFS}: {e}")))?;
            if !out.status.success() || !is_mountpoint(&plan.target) {
                let msg = String::from_utf8_lossy(&out.stderr);
                let msg = msg
                    .lines()
                    .filter(|l| !l.starts_with("unknown argument ignored"))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(io::Error::other(format!(
                    "{FUSE_OVERLAYFS} ({}): {}",
                    out.status,
                    if msg.is_empty() {
                        "no mount made"
                    } else {
                        &msg
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Whether `p` is a mount point (its device differs from its parent's).
pub fn is_mountpoint(p: &Path) -> bool {
    let (Ok(m), Some(parent)) = (fs::symlink_metadata(p), p.parent()) else {
        return false;
    };
    match fs::symlink_metadata(parent) {
        Ok(pm) => m.dev() != pm.dev() || m.ino() == pm.ino(),
        Err(_) => false,
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Store {
    pub(crate) fn rw_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers-rw").join(id)
    }

    fn rw_row(&self, id: &str) -> Result<Option<Digest>> {
        if !valid_id(id) {
            return Err(StoreError::InvalidContainerId(id.to_string()));
        }
        let row: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT image_id FROM rw_layers WHERE container_id=?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .db("read rw layer")?;
        match row {
            None => Err(StoreError::RwLayerNotFound(id.to_string())),
            Some(img) => Ok(img.and_then(|s| s.parse().ok())),
        }
    }

    fn rw_layer_of(&self, id: &str, image_id: Option<Digest>) -> RwLayer {
        let d = self.rw_dir(id);
        RwLayer {
            container_id: id.to_string(),
            image_id,
            upper: d.join("upper"),
            work: d.join("work"),
            merged: d.join("merged"),
            init: d.join("init"),
        }
    }

    /// Create the rw layer dirs for a container based on `image_id` (None: empty rootfs).
    pub fn create_rw_layer(
        &self,
        container_id: &str,
        image_id: Option<&Digest>,
    ) -> Result<RwLayer> {
        self.create_rw_layer_with(container_id, image_id, true)
    }

    /// [`Store::create_rw_layer`]; without `durable` its row is committed without an fsync
    /// (an auto-removed container: see [`without_fsync`]). The layer's directories are not
    /// synced either way, so a power cut can already leave a row without its directory, which
    /// `repair` drops at the next open.
    pub fn create_rw_layer_with(
        &self,
        container_id: &str,
        image_id: Option<&Digest>,
        durable: bool,
    ) -> Result<RwLayer> {
        if !valid_id(container_id) {
            return Err(StoreError::InvalidContainerId(container_id.to_string()));
        }
        if let Some(i) = image_id {
            self.image_row(i)?;
        }
        let l = self.rw_layer_of(container_id, image_id.cloned());
        let dir = self.rw_dir(container_id);
        if dir.exists() {
            return Err(StoreError::RwLayerExists(container_id.to_string()));
        }
        // The layer's dir is private; `upper` keeps 0755: it gives the container's `/` its mode.
        crate::fsmode::private_dir(&dir).at(&dir)?;
        for d in [&l.upper, &l.work, &l.merged] {
            fs::create_dir_all(d).at(d)?;
        }
        if !self.ids.is_identity() {
            // The container's root owns its `/` (the upper dir) and reaches `merged`.
            let (uid, gid) = self.ids.root();
            for d in [&l.upper, &l.work, &l.merged] {
                std::os::unix::fs::lchown(d, Some(uid), Some(gid)).at(d)?;
            }
            crate::fsmode::group_traverse(&dir, gid).at(&dir)?;
        }
        let insert = |c: &Connection| {
            c.execute(
                "INSERT INTO rw_layers (container_id, image_id) VALUES (?1, ?2)",
                params![container_id, image_id.map(|d| d.to_string())],
            )
        };
        let conn = self.conn();
        let res = if durable {
            insert(&conn)
        } else {
            without_fsync(&conn, insert)?
        };
        drop(conn);
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&dir);
            return Err(e).db("insert rw layer");
        }
        Ok(l)
    }

    /// The rw layer of a container.
    pub fn rw_layer(&self, container_id: &str) -> Result<RwLayer> {
        let img = self.rw_row(container_id)?;
        Ok(self.rw_layer_of(container_id, img))
    }

    /// The overlay mount for a container, as data.
    pub fn plan_rw_mount(&self, container_id: &str) -> Result<OverlayPlan> {
        let l = self.rw_layer(container_id)?;
        let mut lower = match &l.image_id {
            Some(i) => self.image_layers(i)?,
            None => Vec::new(),
        };
        lower.reverse();
        if l.init.is_dir() {
            lower.insert(0, l.init.clone());
        }
        if lower.is_empty() {
            // overlayfs needs a lower dir: an empty one for an image without layers.
            let empty = self.rw_dir(container_id).join("empty");
            fs::create_dir_all(&empty).at(&empty)?;
            lower.push(empty);
        }
        Ok(OverlayPlan {
            lower,
            upper: l.upper,
            work: l.work,
            target: l.merged,
            volatile: false,
            driver: self.driver,
        })
    }

    /// Mount the overlay at `merged/` (idempotent) and return that path.
    pub fn mount_rw_layer(&self, container_id: &str) -> Result<PathBuf> {
        self.mount_rw(container_id, false)
    }

    /// [`Store::mount_rw_layer`] for a layer whose writes are thrown away when its container
    /// exits (`--rm`): overlayfs' `volatile` option (as podman uses for `--rm`) spares the
    /// unmount a sync of the whole filesystem holding the store (0.3–0.8 s under a parallel
    /// build). Kernels without it (before 5.10) get the ordinary mount.
    pub fn mount_rw_layer_volatile(&self, container_id: &str) -> Result<PathBuf> {
        self.mount_rw(container_id, true)
    }

    fn mount_rw(&self, container_id: &str, volatile: bool) -> Result<PathBuf> {
        let plan = self.plan_rw_mount(container_id)?;
        if is_mountpoint(&plan.target) {
            return Ok(plan.target);
        }
        // `work/` and `merged/` hold nothing of the container's: recreate them when a removal
        // cut short by a crash took them (the container's changes live in `upper/`).
        for d in [&plan.work, &plan.target] {
            if !d.is_dir() {
                fs::create_dir_all(d).at(d)?;
            }
        }
        // A volatile mount leaves `work/incompat/volatile` behind, and overlayfs refuses that
        // workdir until it is gone; the layer is not mounted now, so the marker can go.
        let marker = plan.work.join("work/incompat/volatile");
        if marker.exists() {
            let _ = fs::remove_dir_all(&marker);
        }
        if volatile && plan.driver.mounter == Mounter::Kernel {
            let mut v = plan.clone();
            v.volatile = true;
            match apply_overlay(&v) {
                Ok(()) => return Ok(plan.target),
                Err(e) => {
                    tracing::debug!(container = container_id, error = %e, "volatile overlay mount")
                }
            }
        }
        apply_overlay(&plan).map_err(|source| StoreError::Mount {
            id: container_id.to_string(),
            path: plan.target.clone(),
            source,
        })?;
        tracing::debug!(
            container = container_id,
            layers = plan.lower.len(),
            "overlay mounted"
        );
        Ok(plan.target)
    }

    /// Unmount `merged/` if mounted (lazily if busy).
    pub fn unmount_rw_layer(&self, container_id: &str) -> Result<()> {
        let l = self.rw_layer(container_id)?;
        unmount_if_mounted(container_id, &l.merged)
    }

    /// The ids of every rw layer (container or build step) on record.
    pub(crate) fn rw_layer_ids(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT container_id FROM rw_layers")
            .db("list rw layers")?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .db("list rw layers")?;
        rows.collect::<rusqlite::Result<_>>().db("list rw layers")
    }

    /// Unmount every rw layer's `merged/` (lazily where busy): at the stop of a daemon whose
    /// mounts are fuse-overlayfs processes, which would otherwise outlive it. Returns how many
    /// were mounted.
    pub fn unmount_all_rw_layers(&self) -> Result<usize> {
        let mut n = 0;
        for id in self.rw_layer_ids()? {
            let merged = self.rw_layer_of(&id, None).merged;
            if is_mountpoint(&merged) {
                unmount_if_mounted(&id, &merged)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Unmount and delete a container's rw layer.
    pub fn remove_rw_layer(&self, container_id: &str) -> Result<()> {
        let l = self.rw_layer(container_id)?;
        unmount_if_mounted(container_id, &l.merged)?;
        let dir = self.rw_dir(container_id);
        fs::remove_dir_all(&dir).at(&dir)?;
        // Without the fsync of a FULL commit (2-30 ms, most of `run --rm`'s removal): if the
        // machine goes down first, `repair` at the next open drops the row of the layer whose
        // directory is gone.
        without_fsync(&self.conn(), |c| {
            c.execute(
                "DELETE FROM rw_layers WHERE container_id=?1",
                [container_id],
            )
        })?
        .db("delete rw layer")?;
        Ok(())
    }

    /// Write the container's changes (its upper dir) as an uncompressed OCI layer tar:
    /// overlay whiteouts (char 0/0) become `.wh.<name>`, opaque dirs get `.wh..wh..opq`.
    pub fn rw_diff_tar(&self, container_id: &str, w: impl Write) -> Result<()> {
        let l = self.rw_layer(container_id)?;
        diff_tar(&l.upper, self.driver.xattrs, &self.ids, w)
    }
}

/// Run `f` on `conn` with `synchronous=NORMAL`, then back to FULL: in WAL mode its commit is
/// safe from a daemon crash but not fsynced; the next FULL commit makes it durable too.
fn without_fsync<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<rusqlite::Result<T>> {
    conn.pragma_update(None, "synchronous", "NORMAL")
        .db("set synchronous")?;
    let r = f(conn);
    conn.pragma_update(None, "synchronous", "FULL")
        .db("set synchronous")?;
    Ok(r)
}

fn unmount_if_mounted(id: &str, merged: &Path) -> Result<()> {
    while is_mountpoint(merged) {
        let res = rustix::mount::unmount(merged, UnmountFlags::empty()).or_else(|e| {
            if e == rustix::io::Errno::BUSY {
                rustix::mount::unmount(merged, UnmountFlags::DETACH)
            } else {
                Err(e)
            }
        });
        res.map_err(|e| StoreError::Mount {
            id: id.to_string(),
            path: merged.to_path_buf(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// The opaque-directory marker of an OCI layer (and the file fuse-overlayfs leaves in an
/// upper directory it made opaque, beside its xattr and a 0/0 device named `.wh..opq`).
const OPQ: &str = ".wh..wh..opq";

/// fuse-overlayfs's own markers of an opaque directory among its entries.
fn is_fuse_opaque_marker(name: &std::ffi::OsStr, m: &fs::Metadata) -> bool {
    let ft = m.file_type();
    (name == OPQ && ft.is_file()) || (name == ".wh..opq" && ft.is_char_device() && m.rdev() == 0)
}

/// Export a directory holding an overlay upper (or snapshot) as an OCI layer tar; opaque
/// directories are read in the `xattrs` namespace its overlay used, and owners are shifted
/// back by `ids` (host ids → container ids), so a layer committed under `--userns-remap`
/// stores the ids the container saw (an owner outside the mapping fails the export, naming
/// the file).
pub fn diff_tar(upper: &Path, xattrs: OverlayXattrs, ids: &IdMapping, w: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let mut walk = Walk {
        b: &mut b,
        xattrs,
        ids,
        links: HashMap::new(),
    };
    walk.dir(upper, Path::new(""))?;
    b.into_inner().and_then(|mut w| w.flush()).at(upper)?;
    Ok(())
}

fn header_for(m: &fs::Metadata, ids: &IdMapping, path: &Path) -> Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(m.mode() & 0o7777);
    let (uid, gid) = ids
        .to_container(m.uid(), m.gid())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        .at(path)?;
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    Ok(h)
}

/// One diff export's walk over an upper dir.
struct Walk<'a, W: Write> {
    b: &'a mut tar::Builder<W>,
    xattrs: OverlayXattrs,
    /// Host ids → container ids for every owner.
    ids: &'a IdMapping,
    /// First path of each hard-linked inode.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Walk<'_, W> {
    fn dir(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .at(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .at(dir)?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let relp = rel.join(&name);
            let m = fs::symlink_metadata(&path).at(&path)?;
            let ft = m.file_type();
            // Written once, with its directory, when that directory is opaque.
            if is_fuse_opaque_marker(&name, &m) {
                continue;
            }
            if ft.is_char_device() && m.rdev() == 0 {
                // A whiteout: overlayfs makes it with the mounter's (host root's) ids.
                let mut h = header_for(&m, &IdMapping::identity(), &path)?;
                h.set_uid(0);
                h.set_gid(0);
                let mut wh = name.as_bytes().to_vec();
                wh.splice(0..0, b".wh.".iter().copied());
                let whp = rel.join(std::ffi::OsStr::from_bytes(&wh));
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                self.b.append_data(&mut h, &whp, io::empty()).at(&path)?;
                continue;
            }
            let mut h = header_for(&m, self.ids, &path)?;
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                self.b.append_data(&mut h, &relp, io::empty()).at(&path)?;
                if self.xattrs.is_opaque(&path)
                    || fs::symlink_metadata(path.join(OPQ)).is_ok_and(|m| m.is_file())
                {
                    let mut oh = header_for(&m, self.ids, &path)?;
                    oh.set_entry_type(tar::EntryType::Regular);
                    oh.set_mode(0o644);
                    self.b
                        .append_data(&mut oh, relp.join(OPQ), io::empty())
                        .at(&path)?;
                }
                self.dir(&path, &relp)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path).at(&path)?;
                h.set_entry_type(tar::EntryType::Symlink);
                self.b.append_link(&mut h, &relp, &target).at(&path)?;
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                        h.set_entry_type(tar::EntryType::Link);
                        self.b.append_link(&mut h, &relp, first).at(&path)?;
                        continue;
                    }
                    self.links.insert((m.dev(), m.ino()), relp.clone());
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(m.len());
                let f = fs::File::open(&path).at(&path)?;
                self.b.append_data(&mut h, &relp, f).at(&path)?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                h.set_entry_type(if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Fifo
                });
                let rdev = m.rdev();
                h.set_device_major(rustix::fs::major(rdev)).at(&path)?;
                h.set_device_minor(rustix::fs::minor(rdev)).at(&path)?;
                self.b.append_data(&mut h, &relp, io::empty()).at(&path)?;
            } else {
                tracing::debug!(path = %path.display(), "skipping socket in diff");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer made or removed without an fsync is listed / gone at once like any other, and
    /// the connection is back at `synchronous=FULL` for everything after it.
    #[test]
    fn volatile_rw_rows_leave_the_connection_durable() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let full = |s: &Store| {
            s.conn()
                .pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
                .unwrap()
        };
        assert_eq!(full(&s), 2, "FULL");
        let id = "ab".repeat(32);
        s.create_rw_layer_with(&id, None, false).unwrap();
        assert_eq!(full(&s), 2);
        assert!(s.rw_layer(&id).is_ok());
        assert!(matches!(
            s.create_rw_layer_with(&id, None, false),
            Err(StoreError::RwLayerExists(_))
        ));
        s.remove_rw_layer(&id).unwrap();
        assert_eq!(full(&s), 2);
        assert!(matches!(
            s.rw_layer(&id),
            Err(StoreError::RwLayerNotFound(_))
        ));
    }
}
