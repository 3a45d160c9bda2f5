//! Link the `berth` binary as a position-dependent executable on Linux/glibc.
//!
//! As a PIE, the dynamic loader applies ~69,000 relative relocations at every start, which
//! writes the whole 1.1 MiB `.data.rel.ro` (vtables, static string tables, tracing call
//! sites) and `.got` into private dirty pages of *every* process: each per-container shim
//! paid 1.2 MiB for data it never changes, and every CLI call, shim and daemon start paid the
//! time to read 1.6 MiB of `.rela.dyn` and touch those pages. Linked `-no-pie` the addresses
//! are fixed at link time, the section stays a clean file mapping shared by all of them, and
//! shim PSS falls from 1.7 to under 1 MiB (STATUS, issue 20). runc, containerd and
//! containerd-shim-runc-v2 ship the same way on Debian; the executable's own image loses
//! ASLR, libraries, heap, stacks and mmaps keep it. The code is still compiled
//! position-independent, so only the link changes.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=berth=-no-pie");
    }
}
