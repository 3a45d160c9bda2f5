//! berth-rootfs: every filesystem operation that must stay inside a directory it does not
//! trust (an image layer, a container's rootfs, a build step's rootfs), over one root handle
//! ([`Root`]: a directory fd opened once, every lookup `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` relative to it), plus the one crash-safe file write ([`atomic`]) and
//! the modes of berth's state ([`fsmode`]).
//!
//! A leaf crate (no berth crate but `berth-errors` below it), so the store, runtime, network,
//! daemon and CLI can all use its writes without a cycle.

pub mod apply;
pub mod archive;
pub mod atomic;
pub mod diff;
mod error;
pub mod fsmode;
pub mod init_layer;
pub mod overlay;
mod root;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod writer;

pub use apply::{
    apply_layer, apply_layer_in, apply_layer_in_mapped, apply_layer_mapped, apply_overlay_layer,
    apply_overlay_layer_mapped, decompressed, ApplyStats,
};
pub use atomic::write_atomic;
pub use berth_errors::ErrorKind;
pub use berth_rootless::{IdMap, IdMapping};
pub use error::{Result, RootfsError, UNMAPPED};
pub use overlay::OverlayXattrs;
pub use root::{in_root, Root};
