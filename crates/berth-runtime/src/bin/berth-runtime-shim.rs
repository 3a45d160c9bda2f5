//! Test/bench driver: `berth-runtime-shim shim <dir>` runs the shim like `berth shim <dir>`.

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("BERTH_SHIM_LOG"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
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
