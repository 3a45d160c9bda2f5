//! Entry points wired to other crates: `berth daemon` (berth-daemon) and the hidden
//! `berth shim` (berth-runtime, run before any tokio runtime exists).

use crate::cli::Cli;

/// `berth shim <dir>`: never returns.
pub fn shim(args: impl Iterator<Item = String>) -> ! {
    #[cfg(feature = "runtime")]
    {
        let mut args = args;
        match berth_runtime::ShimArgs::from_args(&mut args) {
            Some(a) => berth_runtime::shim_main(a),
            None => {
                eprintln!("usage: berth shim <container-dir>");
                std::process::exit(125)
            }
        }
    }
    #[cfg(not(feature = "runtime"))]
    {
        drop(args);
        // TODO(berth-runtime): build with `--features runtime` to link the shim.
        eprintln!("berth shim: this binary was built without the runtime (feature \"runtime\")");
        std::process::exit(125)
    }
}

/// `berth daemon`: returns the exit status.
pub fn daemon(cli: &Cli) -> i32 {
    // TODO(berth-daemon): call berth_daemon::run(DaemonConfig{root, socket, debug, config_file})
    // on a tokio runtime created here, once berth-daemon exports it.
    let _ = cli;
    eprintln!(
        "berth daemon: not available in this build yet (TODO: wire berth_daemon::run); \
         use -H to point berth at a running Engine API daemon"
    );
    125
}
