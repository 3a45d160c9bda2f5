//! Sets up a container's init layer (Docker's `-init` layer): the plan and the writes are
//! berth-rootfs's [`berth_rootfs::init_layer`]; this finds the rw layer and its lower dirs in
//! the store.

use std::path::PathBuf;

use berth_rootfs::init_layer::{apply, plan, LowerView};

/// Plan and make the init layer of rw layer `id` over its image's layers.
pub fn set_up(store: &berth_store::Store, id: &str) -> crate::error::Result<()> {
    let rw = store.rw_layer(id)?;
    let plan_mount = store.plan_rw_mount(id)?;
    let lowers: Vec<PathBuf> = plan_mount
        .lower
        .into_iter()
        .filter(|l| *l != rw.init)
        .collect();
    let view = LowerView {
        lowers: &lowers,
        xattrs: store.overlay_xattrs(),
    };
    let ops = plan(|p| view.lookup(p));
    apply(&rw.init, &ops, store.ids().root())
        .map_err(|e| crate::error::DaemonError::io(format!("make init layer of {id}"), e))
}
