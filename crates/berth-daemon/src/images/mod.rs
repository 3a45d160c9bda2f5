//! Images: the image service (`service`: pull, push, tag, remove, load, save, history) over a
//! narrow store port (`store`, implemented by `store_adapter` over berth-store), its pure views
//! (`plan`), `docker search` (`search`), and the two ways a container becomes an image:
//! `commit` and `--change` (`changes`).

pub mod changes;
pub mod commit;
pub mod plan;
pub mod search;
mod service;
pub mod store;
pub mod store_adapter;
