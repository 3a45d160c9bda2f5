//! Entry points wired to other crates: `berth daemon` (its flags; served by [`crate::serve`])
//! the hidden `berth shim` and `berth runtime` (berth-runtime, run before any tokio runtime
//! exists).

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

/// `berth runtime …` / `berth-runc …` (args[0] is the program name): never returns.
pub fn runtime(args: Vec<String>) -> ! {
    #[cfg(feature = "runtime")]
    {
        std::process::exit(berth_runtime::oci_cli::main(args))
    }
    #[cfg(not(feature = "runtime"))]
    {
        drop(args);
        eprintln!("berth runtime: this binary was built without the runtime (feature \"runtime\")");
        std::process::exit(1)
    }
}

/// The daemon configuration from `berth [-H ..] [--root ..] daemon [-H ..] [--root ..] ...`:
/// flags after `daemon` win; the exec root defaults to the socket's directory (so a custom
/// socket never touches /run/berth), `/run/berth` for the default socket.
/// For an ordinary user (`rootless`) state, socket, exec root and daemon.json default to the
/// XDG paths; without `XDG_RUNTIME_DIR`, `--exec-root` or `-H unix://…` must say where.
#[cfg(feature = "daemon")]
pub fn daemon_config(cli: &Cli) -> anyhow::Result<berth_daemon::DaemonConfig> {
    daemon_config_as(
        cli,
        crate::defaults::rootless(),
        &berth_rootless::paths::process_env,
    )
}

#[cfg(feature = "daemon")]
fn daemon_config_as(
    cli: &Cli,
    rootless: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<berth_daemon::DaemonConfig> {
    use std::path::PathBuf;
    let crate::cli::Command::Daemon(d) = &cli.cmd else {
        anyhow::bail!("not a daemon command");
    };
    let root = match d.root.as_ref().or(cli.root.as_ref()) {
        Some(r) => PathBuf::from(r),
        None => crate::defaults::state_root(rootless, env)?,
    };
    let mut cfg = berth_daemon::DaemonConfig {
        root,
        debug: cli.debug || d.debug,
        rootless,
        ..Default::default()
    };
    if rootless {
        cfg.socket = match &d.exec_root {
            Some(e) => PathBuf::from(e).join("berth.sock"),
            // Refused only when no -H names a socket (checked after the hosts below).
            None => berth_rootless::paths::socket(env).unwrap_or_default(),
        };
        cfg.config_file = berth_rootless::paths::config_file(env)
            .ok()
            .filter(|f| f.exists());
    }
    let mut hosts: Vec<String> = d.host.clone();
    if hosts.is_empty() {
        hosts.extend(cli.host.clone().filter(|h| !h.is_empty()));
    }
    // Only the hosts given: `-H tcp://…` alone does not also bind the default socket.
    cfg.listen_unix = hosts.is_empty();
    let (mut unix, mut tcp) = (0, 0);
    for h in &hosts {
        match berth_client::Host::parse(h)? {
            berth_client::Host::Unix(p) => {
                unix += 1;
                cfg.socket = p;
                cfg.listen_unix = true;
            }
            berth_client::Host::Tcp(a) => {
                tcp += 1;
                cfg.tcp = Some(
                    a.parse()
                        .map_err(|e| anyhow::anyhow!("tcp host {a:?} must be ip:port: {e}"))?,
                )
            }
            berth_client::Host::Ssh(_) => anyhow::bail!(
                "berth daemon cannot listen on {h}: ssh:// is for clients (serve unix:// there)"
            ),
        }
    }
    if unix > 1 || tcp > 1 {
        anyhow::bail!(
            "berth daemon serves one unix socket and one tcp address: give -H at most once for each"
        );
    }
    if cfg.listen_unix && cfg.socket.as_os_str().is_empty() {
        return Err(berth_rootless::RootlessError::NoRuntimeDir.into());
    }
    cfg.exec_root = match &d.exec_root {
        Some(e) => PathBuf::from(e),
        None if cfg.socket == std::path::Path::new(berth_client::DEFAULT_SOCKET) => {
            PathBuf::from("/run/berth")
        }
        None if cfg.socket.as_os_str().is_empty() => {
            return Err(berth_rootless::RootlessError::NoRuntimeDir.into())
        }
        None => cfg
            .socket
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/berth")),
    };
    if let Some(f) = &d.config_file {
        cfg.config_file = Some(PathBuf::from(f));
    }
    cfg.tls = daemon_tls(&d.tls, &cli.tls, &berth_client::tls::cert_dir());
    cfg.insecure_tcp = d.insecure_tcp;
    cfg.group = d.group.clone();
    cfg.ui = d.ui.clone();
    cfg.network.bridge = d.bridge.clone();
    cfg.network.bip = d.bip.clone();
    cfg.network.nft_table = d.nft_table.clone();
    cfg.network.iptables = d.iptables;
    if let Some(name) = &d.storage_driver {
        berth_daemon::config::check_storage_driver(name)?;
    }
    cfg.storage_driver = d.storage_driver.clone();
    cfg.pid_file = d.pidfile.as_ref().map(PathBuf::from);
    cfg.userns_remap = d.userns_remap.clone();
    if d.live_restore == Some(false) {
        anyhow::bail!(
            "--live-restore=false is not supported: berth always keeps containers running \
             across daemon restarts"
        );
    }
    Ok(cfg)
}

/// The daemon's TLS files from `berth daemon --tls…` (else the same flags before `daemon`), as
/// dockerd: `--tlsverify` implies `--tls` and adds client verification against the CA; files
/// default to ca.pem, cert.pem and key.pem in `dir`.
#[cfg(feature = "daemon")]
fn daemon_tls(
    d: &crate::cli::TlsArgs,
    global: &crate::cli::TlsArgs,
    dir: &std::path::Path,
) -> Option<berth_daemon::config::TlsConfig> {
    let verify = d.tlsverify || global.tlsverify;
    if !(verify || d.tls || global.tls) {
        return None;
    }
    let file = |a: &Option<String>, b: &Option<String>, name: &str| {
        a.as_ref()
            .or(b.as_ref())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| dir.join(name))
    };
    Some(berth_daemon::config::TlsConfig {
        cert: file(&d.tlscert, &global.tlscert, "cert.pem"),
        key: file(&d.tlskey, &global.tlskey, "key.pem"),
        client_ca: verify.then(|| file(&d.tlscacert, &global.tlscacert, "ca.pem")),
    })
}

/// `berth daemon`: returns the exit status.
pub fn daemon(cli: &Cli) -> i32 {
    #[cfg(feature = "daemon")]
    {
        let cfg = match daemon_config(cli) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e:#}");
                return 125;
            }
        };
        match berth_rootless::stage() {
            // An ordinary user: this process stays on the host and runs the daemon (this same
            // command line) in its own namespaces.
            berth_rootless::Stage::User => {
                let mut slirp = berth_rootless::slirp::Slirp::find(&cfg.exec_root);
                let beside: &mut dyn berth_rootless::spawn::Beside = match &mut slirp {
                    Some(s) => s,
                    None => &mut berth_rootless::spawn::Nothing,
                };
                return match berth_rootless::run_parent(beside) {
                    Ok(code) => code,
                    Err(e) => {
                        eprintln!("berth daemon: {e}");
                        125
                    }
                };
            }
            berth_rootless::Stage::Inner { single } => {
                if let Err(e) = berth_rootless::inner::enter(single) {
                    eprintln!("berth daemon: rootless: {e}");
                    return 125;
                }
            }
            berth_rootless::Stage::Root => {}
        }
        crate::app::init_tracing(if cfg.debug { "debug" } else { "info" });
        let Some(rt) = crate::app::runtime(None) else {
            return 125;
        };
        match rt.block_on(crate::serve::run(cfg)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("berth daemon: {e:#}");
                1
            }
        }
    }
    #[cfg(not(feature = "daemon"))]
    {
        let _ = cli;
        eprintln!(
            "berth daemon: this binary was built without the daemon (feature \"daemon\"); \
             use -H to point berth at a running Engine API daemon"
        );
        125
    }
}

#[cfg(all(test, feature = "daemon"))]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(args: &[&str]) -> berth_daemon::DaemonConfig {
        daemon_config(&Cli::try_parse_from(args).unwrap()).unwrap()
    }

    #[test]
    fn tcp_alone_binds_no_unix_socket() {
        assert!(cfg(&["berth", "daemon"]).listen_unix);
        let c = cfg(&["berth", "daemon", "-H", "tcp://127.0.0.1:2376"]);
        assert!(!c.listen_unix);
        assert_eq!(c.tcp, Some("127.0.0.1:2376".parse().unwrap()));
        // Two of a kind would silently drop one.
        let two = [
            "berth",
            "daemon",
            "-H",
            "tcp://127.0.0.1:1",
            "-H",
            "tcp://127.0.0.1:2",
        ];
        assert!(daemon_config(&Cli::try_parse_from(two).unwrap()).is_err());
    }

    #[test]
    fn daemon_tls_flags() {
        let c = cfg(&["berth", "daemon", "-G", "berthg", "--insecure-tcp"]);
        assert_eq!(
            (c.tls, c.group.as_deref(), c.insecure_tcp),
            (None, Some("berthg"), true)
        );
        let c = cfg(&[
            "berth",
            "daemon",
            "--tlsverify",
            "--tlscacert",
            "/c/ca.pem",
            "--tlscert",
            "/c/s.pem",
            "--tlskey",
            "/c/s.key",
        ]);
        let t = c.tls.unwrap();
        assert_eq!(
            t.client_ca.as_deref(),
            Some(std::path::Path::new("/c/ca.pem"))
        );
        assert_eq!(
            (t.cert.to_str(), t.key.to_str()),
            (Some("/c/s.pem"), Some("/c/s.key"))
        );
        // --tls alone: no client verification; files default to the cert dir.
        let cli = Cli::try_parse_from(["berth", "daemon", "--tls"]).unwrap();
        let crate::cli::Command::Daemon(d) = &cli.cmd else {
            unreachable!()
        };
        let t = daemon_tls(&d.tls, &cli.tls, std::path::Path::new("/certs")).unwrap();
        assert_eq!(t.client_ca, None);
        assert_eq!(t.cert, std::path::Path::new("/certs/cert.pem"));
        assert_eq!(t.key, std::path::Path::new("/certs/key.pem"));
    }

    #[test]
    fn daemon_network_flags() {
        let c = cfg(&["berth", "daemon"]);
        assert_eq!(c.network, Default::default());
        let c = cfg(&[
            "berth",
            "daemon",
            "--bridge",
            "br7",
            "--bip",
            "10.7.0.1/24",
            "--nft-table",
            "t7",
        ]);
        assert_eq!(c.network.bridge.as_deref(), Some("br7"));
        assert_eq!(c.network.bip.as_deref(), Some("10.7.0.1/24"));
        assert_eq!(c.network.nft_table.as_deref(), Some("t7"));
    }

    #[test]
    fn an_ordinary_users_daemon_uses_the_xdg_paths() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/a".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/7".to_string()),
            _ => None,
        };
        let cli = Cli::try_parse_from(["berth", "daemon"]).unwrap();
        let c = daemon_config_as(&cli, true, &env).unwrap();
        assert!(c.rootless);
        assert_eq!(c.root, std::path::Path::new("/home/a/.local/share/berth"));
        assert_eq!(
            c.socket,
            std::path::Path::new("/run/user/7/berth/berth.sock")
        );
        assert_eq!(c.exec_root, std::path::Path::new("/run/user/7/berth"));
        // No runtime dir: refused by name, unless --exec-root or -H says where.
        let no_run = |k: &str| (k == "HOME").then(|| "/home/a".to_string());
        let e = daemon_config_as(&cli, true, &no_run)
            .unwrap_err()
            .to_string();
        assert!(e.contains("XDG_RUNTIME_DIR is not set"), "{e}");
        let cli = Cli::try_parse_from(["berth", "daemon", "--exec-root", "/e"]).unwrap();
        let c = daemon_config_as(&cli, true, &no_run).unwrap();
        assert_eq!(
            (c.socket.to_str(), c.exec_root.to_str()),
            (Some("/e/berth.sock"), Some("/e"))
        );
        let cli = Cli::try_parse_from(["berth", "daemon", "-H", "unix:///s/b.sock"]).unwrap();
        let c = daemon_config_as(&cli, true, &no_run).unwrap();
        assert_eq!(c.exec_root, std::path::Path::new("/s"));
    }

    #[test]
    fn daemon_flags_map_to_config() {
        let c = cfg(&["berth", "daemon"]);
        assert_eq!(c.socket, std::path::Path::new("/run/berth/berth.sock"));
        assert_eq!(c.exec_root, std::path::Path::new("/run/berth"));
        assert_eq!(c.root, std::path::Path::new("/var/lib/berth"));
        let c = cfg(&[
            "berth",
            "daemon",
            "--root",
            "/x/root",
            "-H",
            "unix:///x/run/b.sock",
            "-H",
            "tcp://127.0.0.1:2375",
            "--debug",
        ]);
        assert_eq!(c.root, std::path::Path::new("/x/root"));
        assert_eq!(c.socket, std::path::Path::new("/x/run/b.sock"));
        assert_eq!(c.exec_root, std::path::Path::new("/x/run"));
        assert_eq!(c.tcp, Some("127.0.0.1:2375".parse().unwrap()));
        assert!(c.listen_unix);
        assert!(c.debug);
        // global flags before `daemon` (what autostart and BERTH_HOST users pass) apply too
        let c = cfg(&[
            "berth",
            "-H",
            "unix:///y/s.sock",
            "--root",
            "/y/r",
            "daemon",
            "--exec-root",
            "/y/e",
        ]);
        assert_eq!(
            (c.socket.to_str(), c.root.to_str(), c.exec_root.to_str()),
            (Some("/y/s.sock"), Some("/y/r"), Some("/y/e"))
        );
    }
}
