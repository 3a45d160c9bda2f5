//! Which extended-attribute namespace carries overlay metadata (opaque directories) in the
//! layers berth unpacks and the upper dirs it reads back: chosen once per store and passed
//! down to the applier, the diff and the init layer's lower view.
//!
//! Real root uses `trusted.overlay.*`. In a user namespace `trusted.*` cannot be set, so a
//! rootless daemon writes `user.overlay.*`, which kernel overlayfs reads when mounted with
//! `userxattr` (Linux 5.11+) and fuse-overlayfs reads as well. fuse-overlayfs marks the
//! directories it makes opaque with `user.fuseoverlayfs.opaque` (plus a `.wh..wh..opq` file),
//! so an upper dir is read for that too.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::XattrFlags;

/// The overlay xattr namespace of one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlayXattrs {
    /// `trusted.overlay.*`: overlayfs mounted by real root.
    #[default]
    Trusted,
    /// `user.overlay.*`: overlayfs with `userxattr`, or fuse-overlayfs, in a user namespace.
    User,
}

/// The xattr fuse-overlayfs sets on a directory it makes opaque when `trusted.*` is refused.
const FUSE_OPAQUE: &str = "user.fuseoverlayfs.opaque";

impl OverlayXattrs {
    /// The xattr that marks a directory opaque (value `y`).
    pub fn opaque(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.opaque",
            OverlayXattrs::User => "user.overlay.opaque",
        }
    }

    /// Every xattr that marks a directory of an upper or layer dir opaque in this namespace.
    fn opaque_markers(self) -> &'static [&'static str] {
        match self {
            OverlayXattrs::Trusted => &["trusted.overlay.opaque"],
            OverlayXattrs::User => &["user.overlay.opaque", FUSE_OPAQUE],
        }
    }

    /// Mark the open directory `dir` opaque.
    pub fn set_opaque(self, dir: impl AsFd) -> io::Result<()> {
        rustix::fs::fsetxattr(dir, self.opaque(), b"y", XattrFlags::empty())?;
        Ok(())
    }

    /// Whether directory `p` (not followed if a symlink) is marked opaque.
    pub fn is_opaque(self, p: &Path) -> bool {
        self.opaque_markers().iter().any(|name| {
            let mut buf = [0u8; 4];
            matches!(rustix::fs::lgetxattr(p, *name, &mut buf[..]), Ok(1) if buf[0] == b'y')
        })
    }

    /// The mount option kernel overlayfs needs to read this namespace (`userxattr`), if any.
    pub fn mount_option(self) -> Option<&'static str> {
        match self {
            OverlayXattrs::Trusted => None,
            OverlayXattrs::User => Some("userxattr"),
        }
    }
}

/// Whether xattr `name` is overlay metadata in any namespace: a layer's PAX records may not
/// carry it (only the applier marks opaque directories, from `.wh..wh..opq`).
pub fn is_overlay_metadata(name: &str) -> bool {
    ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."]
        .iter()
        .any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_namespace_names_its_own_opaque_xattr_and_mount_option() {
        assert_eq!(OverlayXattrs::default(), OverlayXattrs::Trusted);
        assert_eq!(OverlayXattrs::Trusted.opaque(), "trusted.overlay.opaque");
        assert_eq!(OverlayXattrs::User.opaque(), "user.overlay.opaque");
        assert_eq!(OverlayXattrs::Trusted.mount_option(), None);
        assert_eq!(OverlayXattrs::User.mount_option(), Some("userxattr"));
    }

    #[test]
    fn overlay_metadata_of_every_namespace_is_recognised() {
        for n in [
            "trusted.overlay.opaque",
            "trusted.overlay.redirect",
            "user.overlay.opaque",
            "user.overlay.metacopy",
            "user.fuseoverlayfs.opaque",
        ] {
            assert!(is_overlay_metadata(n), "{n}");
        }
        for n in ["user.mime_type", "security.capability", "trusted.other"] {
            assert!(!is_overlay_metadata(n), "{n}");
        }
    }

    /// `user.*` xattrs need no privilege on a directory one owns (if the filesystem has them).
    #[test]
    fn user_namespace_marks_and_reads_opaque_dirs_without_root() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        let x = OverlayXattrs::User;
        assert!(!x.is_opaque(&d));
        match x.set_opaque(std::fs::File::open(&d).unwrap()) {
            Err(e) if e.raw_os_error() == Some(libc_enotsup()) => return,
            r => r.unwrap(),
        }
        assert!(x.is_opaque(&d));
        // The other namespace does not read it.
        assert!(!OverlayXattrs::Trusted.is_opaque(&d));
        // fuse-overlayfs's own marker counts in the user namespace.
        let f = t.path().join("f");
        std::fs::create_dir(&f).unwrap();
        rustix::fs::setxattr(&f, FUSE_OPAQUE, b"y", XattrFlags::empty()).unwrap();
        assert!(x.is_opaque(&f));
        // A value other than `y` is not opaque.
        let n = t.path().join("n");
        std::fs::create_dir(&n).unwrap();
        rustix::fs::setxattr(&n, x.opaque(), b"n", XattrFlags::empty()).unwrap();
        assert!(!x.is_opaque(&n));
    }

    fn libc_enotsup() -> i32 {
        rustix::io::Errno::NOTSUP.raw_os_error()
    }
}
