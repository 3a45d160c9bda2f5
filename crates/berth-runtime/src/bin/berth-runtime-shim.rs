//! Test/bench driver: `berth-runtime-shim shim <dir>` runs the shim like `berth shim <dir>`.

fn main() {
    // No subscriber here: the shim installs its own (`BERTH_SHIM_LOG` to shim.log, and the
    // error log it explains libcontainer failures with), as under `berth shim`.
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("shim") => match berth_runtime::ShimArgs::from_args(args) {
            Some(a) => berth_runtime::shim_main(a),
            None => {
                eprintln!("usage: berth-runtime-shim shim <dir>");
                std::process::exit(2)
            }
        },
        _ => {
            eprintln!("usage: berth-runtime-shim shim <dir>");
            std::process::exit(2)
        }
    }
}
