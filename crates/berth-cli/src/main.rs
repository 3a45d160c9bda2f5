//! The `berth` binary: shim and OCI runtime dispatch before any runtime exists, then clap +
//! tokio.

fn main() {
    // The rootless daemon's first stage waits here for its id maps, then re-executes as root
    // of its user namespace (berth-rootless); any other process returns at once.
    berth_rootless::resume_child();
    // The shim must run in a single-threaded process: dispatch before tokio or anything else.
    let mut args: Vec<String> = std::env::args().collect();
    let prog = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    // Installed (linked) as `berth-runc`, or `berth runtime …`: runc's command line, which
    // runs libcontainer and so must stay single-threaded.
    if prog.as_deref() == Some("berth-runc") {
        berth_cli::entry::runtime(args);
    }
    if args.get(1).map(String::as_str) == Some("runtime") {
        args.remove(1);
        args[0] = "berth runtime".into();
        berth_cli::entry::runtime(args);
    }
    // Installed (linked) as `dockerd`: the daemon, taking dockerd's command line.
    if args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        == Some("dockerd".as_ref())
    {
        args.insert(1, "daemon".into());
    }
    if args.get(1).map(String::as_str) == Some("shim") {
        berth_cli::entry::shim(args.into_iter().skip(2));
    }
    std::process::exit(berth_cli::app::main(args));
}
