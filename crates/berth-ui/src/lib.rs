//! berth-ui: the dashboard. Its browser side lives in `web/` (built by `scripts/ui-build.sh`
//! into `web/dist/`, embedded by `build.rs`: [`assets`]); its server side is small glue:
//! one-time login tokens and session cookies ([`auth`]), who may serve it where ([`policy`]),
//! and the router ([`server`]) that answers every request only for a logged-in browser, refuses
//! cross-site writes, sets a strict Content-Security-Policy and hands `/api/…` to the very
//! Engine API router the daemon serves on its socket (in process: one implementation).

pub mod assets;
pub mod auth;
pub mod policy;
pub mod server;

pub use auth::Auth;
pub use policy::{check_addr, UiError};
pub use server::{engine_routes, router, Ui};
