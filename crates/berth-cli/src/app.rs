//! Argument parsing with docker's usage errors, runtime setup and command dispatch.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use berth_client::{Client, Host};

use crate::cli::{
    Cli, Command, ComposeCmd, ContainerCmd, ContextCmd, ImageCmd, NetworkCmd, RegistryCmd,
    SystemCmd, VolumeCmd,
};
use crate::cmd;
use crate::exit;

const MGMT: &[&str] = &["image", "container", "system", "network", "volume"];

/// The command path for "See 'berth <path> --help'." from raw argv.
pub fn command_path(args: &[String]) -> String {
    let mut words = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if matches!(
            a.as_str(),
            "-H" | "--host"
                | "-c"
                | "--context"
                | "--root"
                | "--tlscacert"
                | "--tlscert"
                | "--tlskey"
        ) {
            it.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        words.push(a.clone());
        if words.len() == 2 || !MGMT.contains(&words[0].as_str()) {
            break;
        }
    }
    if words.is_empty() {
        "berth".into()
    } else {
        format!("berth {}", words.join(" "))
    }
}

/// Docker's message for a clap error (without the trailing hint); unknown commands are
/// [`unknown_command_message`]'s.
pub fn usage_message(e: &clap::Error) -> String {
    let ctx = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let a = ctx(ContextKind::InvalidArg).unwrap_or_default();
            let flag = a.split('=').next().unwrap_or(&a).to_string();
            if let Some(short) = flag.strip_prefix('-').filter(|s| !s.starts_with('-')) {
                format!(
                    "unknown shorthand flag: '{}' in {flag}",
                    short.chars().next().unwrap_or('?')
                )
            } else {
                format!("unknown flag: {flag}")
            }
        }
        _ => {
            let s = e.to_string();
            let first = s.lines().next().unwrap_or("").trim();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    }
}

/// What docker 20.10 prints for an unknown command (stderr, exit 1): at the top level
/// "docker: 'foo' is not a docker command.\nSee 'docker --help'"; under a management command
/// (`docker image foo`) a blank line and that command's usage.
pub fn unknown_command_message(args: &[String]) -> String {
    let path = command_path(args);
    let words: Vec<&str> = path.split(' ').skip(1).collect();
    match words.as_slice() {
        [group, _] if MGMT.contains(group) => {
            use clap::CommandFactory;
            let mut root = Cli::command();
            root.build();
            match root.find_subcommand_mut(group) {
                Some(sub) => format!("\n{}", sub.render_help().to_string().trim_end()),
                None => String::new(),
            }
        }
        _ => {
            let word = words.first().copied().unwrap_or_default();
            format!("berth: '{word}' is not a berth command.\nSee 'berth --help'")
        }
    }
}

/// Log to stderr at `level` unless BERTH_LOG says otherwise; in colour only on a terminal
/// (a log file or the journal gets plain text) and never with NO_COLOR set.
pub fn init_tracing(level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The tokio runtime for client commands and the daemon (reports its own failure).
pub fn runtime(workers: Option<usize>) -> Option<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    match b.enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            None
        }
    }
}

/// Run the CLI; returns the process exit status.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return 0;
            }
            if e.kind() == ErrorKind::InvalidSubcommand {
                eprintln!("{}", unknown_command_message(&args));
                return 1;
            }
            eprintln!("{}", usage_message(&e));
            eprintln!("See '{} --help'.", command_path(&args));
            return 125;
        }
    };
    if cli.debug || std::env::var_os("BERTH_LOG").is_some() {
        init_tracing(if cli.debug { "debug" } else { "info" });
    }
    let engine_code = match &cli.cmd {
        Command::C(c) | Command::Container { cmd: c } => match c {
            ContainerCmd::Run(_) | ContainerCmd::Create(_) | ContainerCmd::Start(_) => 125,
            _ => 1,
        },
        _ => 1,
    };
    if let Command::Daemon(_) = &cli.cmd {
        return crate::entry::daemon(&cli);
    }
    let Some(rt) = runtime(Some(2)) else {
        return 125;
    };
    let r = rt.block_on(dispatch(cli));
    // Don't wait for blocked stdin readers.
    rt.shutdown_background();
    match r {
        Ok(()) => 0,
        Err(e) => {
            let (msg, code) = exit::report(&e, engine_code);
            if let Some(m) = msg {
                eprintln!("{m}");
            }
            code
        }
    }
}

/// Build a client for the selected host, auto-starting the daemon when allowed.
pub async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    let mut c = client(cli).await?;
    if let Ok(v) = std::env::var("BERTH_API_VERSION") {
        c.set_api_version(Some(v));
    } else {
        c.negotiate().await?;
    }
    Ok(c)
}

/// The client for the selected host (daemon auto-started when allowed), API version not yet
/// negotiated.
async fn client(cli: &Cli) -> anyhow::Result<Client> {
    // -H / BERTH_HOST, DOCKER_HOST, the selected context, else the default socket (the
    // rootless one for an ordinary user)
    let target = crate::context::resolve_host(cli.host.as_deref(), cli.context.as_deref())?;
    let host = match &target {
        Some(t) => Host::parse(&t.host)?,
        None => crate::defaults::client_host(),
    };
    let no_auto = cli.no_autostart
        || std::env::var("BERTH_NO_AUTOSTART").is_ok_and(|v| v == "1" || v == "true");
    if let Host::Unix(sock) = &host {
        if !sock.exists() && !no_auto {
            let root = match &cli.root {
                Some(r) => std::path::PathBuf::from(r),
                None => crate::defaults::state_root(
                    crate::defaults::rootless(),
                    &berth_rootless::paths::process_env,
                )?,
            };
            crate::autostart::start_daemon(sock, &root).await?;
        }
    }
    let mut c = Client::new(host);
    let t = &cli.tls;
    let verify = t.tlsverify || berth_client::tls::env_tls_verify();
    if verify || t.tls {
        let opts = berth_client::TlsOptions {
            verify,
            ca: t.tlscacert.as_ref().map(Into::into),
            cert: t.tlscert.as_ref().map(Into::into),
            key: t.tlskey.as_ref().map(Into::into),
        };
        c = c.with_tls(&opts, &berth_client::tls::cert_dir())?;
    } else if let Some(tls) = target.and_then(|t| t.tls) {
        // The context's own TLS files (docker's contexts/tls store).
        c = c.with_tls(&tls.options(), &berth_client::tls::cert_dir())?;
    }
    Ok(c)
}

/// `berth context …`: the docker CLI's context store, no daemon involved.
fn context_cmd(cmd: &ContextCmd, flag: Option<&str>) -> anyhow::Result<()> {
    use crate::context as ctx;
    let cfg = ctx::config_dir();
    match cmd {
        ContextCmd::Ls(a) => {
            let cur = ctx::selected(&cfg, flag)?;
            let all = ctx::list(&cfg)?;
            if a.quiet {
                all.iter().for_each(|c| println!("{}", c.name));
                return Ok(());
            }
            let rows: Vec<serde_json::Value> = all
                .into_iter()
                .map(|c| {
                    serde_json::json!({
                        "Name": c.name,
                        "Description": c.description,
                        "DockerEndpoint": c.host.unwrap_or_else(|| crate::defaults::client_host().to_string()),
                        "Current": c.name == cur,
                        "Error": "",
                    })
                })
                .collect();
            crate::format::Lister {
                default_table: "{{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}",
                headers: &[("DockerEndpoint", "DOCKER ENDPOINT")],
            }
            .print(a.format.as_deref(), &rows)
            .map_err(|e| crate::exit::Exit::msg(1, e.to_string()))
        }
        ContextCmd::Inspect(a) => {
            let names = if a.names.is_empty() {
                vec![ctx::selected(&cfg, flag)?]
            } else {
                a.names.clone()
            };
            let v = ctx::inspect(&cfg, &names)?;
            crate::cmd::image::print_inspect(
                v.as_array().map(Vec::as_slice).unwrap_or(&[]),
                a.format.as_deref(),
            )
        }
        ContextCmd::Show => {
            println!("{}", ctx::selected(&cfg, flag)?);
            Ok(())
        }
        ContextCmd::Update(a) => {
            let ep = a
                .docker
                .as_deref()
                .map(ctx::EndpointSpec::parse)
                .transpose()?;
            ctx::update(&cfg, &a.name, a.description.as_deref(), ep.as_ref())?;
            println!("{}", a.name);
            eprintln!("Successfully updated context \"{}\"", a.name);
            Ok(())
        }
        ContextCmd::Export(a) => {
            let file = a
                .file
                .clone()
                .unwrap_or_else(|| format!("{}.dockercontext", a.name));
            if file == "-" {
                ctx::export(&cfg, &a.name, std::io::stdout().lock())
            } else {
                // Written beside, renamed when whole: a failed export leaves no partial file.
                let tmp = format!("{file}.partial");
                let f = std::fs::File::create(&tmp)
                    .map_err(|e| crate::exit::Exit::msg(1, format!("cannot write {tmp}: {e}")))?;
                let r = ctx::export(&cfg, &a.name, std::io::BufWriter::new(f));
                if r.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                    return r;
                }
                std::fs::rename(&tmp, &file)?;
                eprintln!("Written file \"{file}\"");
                Ok(())
            }
        }
        ContextCmd::Import(a) => {
            if a.file == "-" {
                ctx::import(&cfg, &a.name, std::io::stdin().lock())?;
            } else {
                let f = std::fs::File::open(&a.file).map_err(|e| {
                    crate::exit::Exit::msg(1, format!("cannot read {}: {e}", a.file))
                })?;
                ctx::import(&cfg, &a.name, std::io::BufReader::new(f))?;
            }
            println!("{}", a.name);
            eprintln!("Successfully imported context \"{}\"", a.name);
            Ok(())
        }
        ContextCmd::Use(a) => {
            ctx::use_context(&cfg, &a.name)?;
            println!("{}", a.name);
            if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty()) {
                eprintln!("Warning: DOCKER_HOST environment variable overrides the active context. To use \"{}\", either set the global --context flag, or unset DOCKER_HOST environment variable.", a.name);
            }
            Ok(())
        }
        ContextCmd::Create(a) => {
            let ep = ctx::EndpointSpec::parse(&a.docker)?;
            ctx::create(&cfg, &a.name, &ep, &a.description)?;
            println!("{}", a.name);
            eprintln!("Successfully created context \"{}\"", a.name);
            Ok(())
        }
        ContextCmd::Rm(a) => {
            for n in &a.names {
                ctx::remove(&cfg, n)?;
                println!("{n}");
            }
            Ok(())
        }
    }
}

/// Flag errors that need no daemon are reported before connecting, so a typo neither waits on
/// nor auto-starts a daemon (docker validates flags before dialing too).
fn precheck(cmd: &Command) -> anyhow::Result<()> {
    if let Command::C(cc) | Command::Container { cmd: cc } = cmd {
        match cc {
            ContainerCmd::Run(a) => drop(cmd::run::plan_from(a, "run")?),
            ContainerCmd::Create(a) => drop(cmd::run::plan_from(a, "create")?),
            ContainerCmd::Update(a) => drop(cmd::update::update_body(a)?),
            _ => {}
        }
    }
    Ok(())
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    precheck(&cli.cmd)?;
    if let Command::Compose(a) = &cli.cmd {
        if let ComposeCmd::Config(c) = &a.cmd {
            return cmd::compose::config(a, c);
        }
    }
    if let Command::Registry { cmd } = &cli.cmd {
        #[cfg(feature = "daemon")]
        return match cmd {
            RegistryCmd::Serve(a) => cmd::registry_serve::serve(a).await,
            RegistryCmd::Gc(a) => cmd::registry_serve::gc(a),
        };
        #[cfg(not(feature = "daemon"))]
        {
            let _: &RegistryCmd = cmd;
            return Err(crate::exit::Exit::msg(
                1,
                "this berth was built without the daemon feature, which the registry needs",
            ));
        }
    }
    if let Command::Kube(a) = &cli.cmd {
        if cmd::kube::offline(a) {
            return cmd::kube::generate_offline(a);
        }
    }
    if let Command::Context { cmd } = &cli.cmd {
        return context_cmd(cmd, cli.context.as_deref());
    }
    if let Command::System {
        cmd: SystemCmd::DialStdio,
    } = &cli.cmd
    {
        // bytes only: no ping, so an ssh client's own requests are the first the daemon sees
        let c = client(&cli).await?;
        return Ok(c
            .dial_stdio(tokio::io::stdin(), tokio::io::stdout())
            .await?);
    }
    let c = connect(&cli).await?;
    match cli.cmd {
        Command::Daemon(_) | Command::Shim(_) | Command::Runtime(_) => {
            unreachable!("handled before the runtime")
        }
        Command::Version(a) => cmd::system::version(&c, a).await,
        Command::Info(a) => cmd::system::info(&c, a).await,
        Command::Events(a) => cmd::system::events(&c, a).await,
        Command::Images(a) => cmd::image::images(&c, a).await,
        Command::Load(a) => cmd::image::load(&c, a).await,
        Command::Save(a) => cmd::image::save(&c, a).await,
        Command::Import(a) => cmd::image::import(&c, a).await,
        Command::Tag(a) => cmd::image::tag(&c, a).await,
        Command::Rmi(a) => cmd::image::rmi(&c, a).await,
        Command::Inspect(a) => cmd::image::inspect(&c, a).await,
        Command::History(a) => cmd::image::history(&c, a).await,
        Command::Pull(a) => cmd::registry::pull(&c, a).await,
        Command::Push(a) => cmd::registry::push(&c, a).await,
        Command::Login(a) => cmd::registry::login(&c, a).await,
        Command::Logout(a) => cmd::registry::logout(a).await,
        Command::Search(a) => cmd::registry::search(&c, a).await,
        Command::Build(a) => cmd::build::build(&c, a).await,
        Command::Image { cmd: ic } => match ic {
            ImageCmd::Ls(a) => cmd::image::images(&c, a).await,
            ImageCmd::Rm(a) => cmd::image::rmi(&c, a).await,
            ImageCmd::Inspect(a) => cmd::image::inspect_typed(&c, "image", a.format, a.names).await,
            ImageCmd::Prune(a) => cmd::image::prune(&c, a).await,
            ImageCmd::Load(a) => cmd::image::load(&c, a).await,
            ImageCmd::Save(a) => cmd::image::save(&c, a).await,
            ImageCmd::Import(a) => cmd::image::import(&c, a).await,
            ImageCmd::Tag(a) => cmd::image::tag(&c, a).await,
            ImageCmd::History(a) => cmd::image::history(&c, a).await,
            ImageCmd::Pull(a) => cmd::registry::pull(&c, a).await,
            ImageCmd::Push(a) => cmd::registry::push(&c, a).await,
            ImageCmd::Build(a) => cmd::build::build(&c, a).await,
        },
        Command::Ui(a) => cmd::ui::ui(&c, a).await,
        Command::Context { .. } => unreachable!("handled before connecting"),
        Command::System { cmd: sc } => match sc {
            SystemCmd::Df(a) => cmd::system::df(&c, a).await,
            SystemCmd::Prune(a) => cmd::system::prune(&c, a).await,
            SystemCmd::Info(a) => cmd::system::info(&c, a).await,
            SystemCmd::Events(a) => cmd::system::events(&c, a).await,
            SystemCmd::Check(a) => cmd::system::check(&c, a).await,
            SystemCmd::DialStdio => unreachable!("handled before connecting"),
        },
        Command::Network { cmd: nc } => match nc {
            NetworkCmd::Create(a) => cmd::netvol::network_create(&c, a).await,
            NetworkCmd::Ls(a) => cmd::netvol::network_ls(&c, a).await,
            NetworkCmd::Inspect(a) => {
                cmd::image::inspect_typed(&c, "network", a.format, a.names).await
            }
            NetworkCmd::Rm(a) => cmd::netvol::remove(&c, "networks", a).await,
            NetworkCmd::Prune(a) => cmd::netvol::prune(&c, "networks", a).await,
            NetworkCmd::Connect(a) => cmd::netvol::connect(&c, a).await,
            NetworkCmd::Disconnect(a) => cmd::netvol::disconnect(&c, a).await,
        },
        Command::Compose(a) => cmd::compose::run(&c, &a).await,
        Command::Kube(a) => cmd::kube::run(&c, &a).await,
        Command::Pod { cmd: pc } => cmd::pod::run(&c, &pc).await,
        Command::Registry { .. } => unreachable!("served before connecting"),
        Command::Volume { cmd: vc } => match vc {
            VolumeCmd::Create(a) => cmd::netvol::volume_create(&c, a).await,
            VolumeCmd::Ls(a) => cmd::netvol::volume_ls(&c, a).await,
            VolumeCmd::Inspect(a) => {
                cmd::image::inspect_typed(&c, "volume", a.format, a.names).await
            }
            VolumeCmd::Rm(a) => cmd::netvol::remove(&c, "volumes", a).await,
            VolumeCmd::Prune(a) => cmd::netvol::prune(&c, "volumes", a).await,
        },
        Command::C(cc) | Command::Container { cmd: cc } => cmd::container::dispatch(&c, cc).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(args: &[&str]) -> (String, String) {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let e = Cli::try_parse_from(&v).unwrap_err();
        (usage_message(&e), command_path(&v))
    }

    #[test]
    fn unknown_flags_like_docker() {
        assert_eq!(
            err(&["berth", "run", "--bogus", "busybox"]),
            ("unknown flag: --bogus".into(), "berth run".into())
        );
        assert_eq!(
            err(&["berth", "-H", "unix:///x", "image", "ls", "--nope=1"]),
            ("unknown flag: --nope".into(), "berth image ls".into())
        );
        assert_eq!(
            err(&["berth", "ps", "-Z"]).0,
            "unknown shorthand flag: 'Z' in -Z"
        );
    }

    #[test]
    fn unknown_commands_like_docker() {
        let msg = |args: &[&str]| {
            let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let e = Cli::try_parse_from(&v).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidSubcommand, "{args:?}");
            unknown_command_message(&v)
        };
        assert_eq!(
            msg(&["berth", "-H", "unix:///x", "frobnicate", "x"]),
            "berth: 'frobnicate' is not a berth command.\nSee 'berth --help'"
        );
        let m = msg(&["berth", "volume", "lss"]);
        assert!(m.starts_with("\nManage volumes\n"), "{m}");
        assert!(m.contains("Usage: berth volume <COMMAND>"), "{m}");
    }

    #[test]
    fn grammar_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
