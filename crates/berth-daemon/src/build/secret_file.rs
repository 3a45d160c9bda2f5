//! A build secret as a file for one RUN step's read-only bind mount: written new under the
//! build's own directory with the owner and mode asked, removed when dropped.

use std::fs;
use std::path::PathBuf;

/// A build secret written for one RUN step's bind mount; removed on drop.
pub(crate) struct SecretFile(pub(crate) PathBuf);

impl SecretFile {
    /// Write `data` to `path` (0700 parent, the file created new, `mode`, owned by uid:gid).
    pub(crate) fn write(
        path: PathBuf,
        data: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> std::io::Result<Self> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let file = SecretFile(path);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.0)?;
        f.write_all(data)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        Ok(file)
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
