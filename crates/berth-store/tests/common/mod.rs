//! Helpers shared by berth-store's integration tests: berth-rootfs's hostile-input suite (raw
//! tar building with hostile names allowed, and a sentinel directory beside the apply root
//! that must never change).
#![allow(dead_code, unused_imports)]

pub use berth_rootfs::testsuite::{tar_of, tree, Sandbox, E};
