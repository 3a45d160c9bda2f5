//! runc's command line as clap types: global flags, one struct per command (pure, tested).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `berth runtime` / `berth-runc`: an OCI runtime with runc's command line.
#[derive(Debug, Parser)]
#[command(
    name = "berth-runc",
    version,
    about = "berth's OCI runtime (runc-compatible command line)",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Root directory for the state of containers.
    #[arg(long, global = true, default_value = "/run/berth-runc")]
    pub root: PathBuf,
    /// Write log messages to this file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not supported: berth manages cgroupfs).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Path to criu (accepted and ignored: checkpoint/restore are not supported).
    #[arg(long, global = true)]
    pub criu: Option<String>,
    /// Rootless mode: true, false or auto (accepted; this runtime runs as root). Before the
    /// command only, as `spec` has its own `--rootless`.
    #[arg(long)]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(Create),
    /// Start the process of a created container.
    Start(Id),
    /// Create and start a container; attached, it waits and exits with the container's code.
    Run(Run),
    /// Print the state of a container as JSON.
    State(Id),
    /// Send a signal to the container's init (or to all its processes with --all).
    Kill(Kill),
    /// Delete a container and its resources.
    Delete(Delete),
    /// Run a new process inside a container.
    Exec(Exec),
    /// List the processes running inside a container.
    Ps(Ps),
    /// Freeze every process of a container.
    Pause(Id),
    /// Thaw a paused container.
    Resume(Id),
    /// Change a running container's resource limits.
    Update(Update),
    /// Print container statistics (`--stats` once) or stream them.
    Events(Events),
    /// Print the features this runtime supports as JSON.
    Features,
    /// Write a default config.json into the bundle.
    Spec(SpecCmd),
    /// List the containers under --root.
    List(List),
    /// Not supported (no CRIU).
    #[command(disable_help_flag = true)]
    Checkpoint(Unsupported),
    /// Not supported (no CRIU).
    #[command(disable_help_flag = true)]
    Restore(Unsupported),
}

#[derive(Debug, Args)]
pub struct Id {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Unsupported {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CreateOpts {
    /// Path to the bundle (default: the current directory).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master of a terminal container.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the container's init pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use chroot-like MS_MOVE instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a session keyring (accepted).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (from 3) into the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}

#[derive(Debug, Args)]
pub struct Create {
    #[command(flatten)]
    pub opts: CreateOpts,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Run {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Return after start instead of waiting for the container.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container's state after it exits (attached mode).
    #[arg(long)]
    pub keep: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Kill {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    /// Signal name (TERM, SIGKILL) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct Delete {
    /// Kill a running container first.
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Exec {
    /// Unix socket that receives the pty master (with --tty).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment (KEY=VALUE), repeatable.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// uid[:gid] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Extra group ids, repeatable.
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// A JSON file with the OCI process to run (args on the command line are then ignored).
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Return once the process is started.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Capabilities to add, repeatable.
    #[arg(long = "cap", short = 'c')]
    pub cap: Vec<String>,
    /// Pass N extra fds into the process (accepted).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Exec even into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// SELinux label (accepted and ignored: no SELinux here).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile (accepted and ignored: no AppArmor here).
    #[arg(long)]
    pub apparmor: Option<String>,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Ps {
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    pub id: String,
    /// Options for ps(1) (table format).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct Update {
    /// A JSON file with the OCI LinuxResources to apply, `-` for stdin.
    #[arg(long, short = 'r')]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g), -1 for unlimited.
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Events {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecCmd {
    /// Write config.json into this directory.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a rootless container.
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Debug, Args)]
pub struct List {
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the container ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berth-runc").chain(a.iter().copied())).unwrap()
    }

    #[test]
    fn containerd_create_line() {
        // What containerd 1.6's runc shim (go-runc) runs.
        let c = parse(&[
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/tmp/pty.sock",
            "--no-pivot",
            "--no-new-keyring",
            "c1",
        ]);
        assert_eq!(c.root, PathBuf::from("/run/containerd/runc/default"));
        assert_eq!(c.log_format, LogFormat::Json);
        let Cmd::Create(cr) = c.cmd else { panic!() };
        assert_eq!(cr.id, "c1");
        assert_eq!(cr.opts.bundle, PathBuf::from("/b"));
        assert!(cr.opts.no_pivot && cr.opts.no_new_keyring);
        assert_eq!(cr.opts.pid_file, Some(PathBuf::from("/b/init.pid")));
    }

    #[test]
    fn exec_keeps_the_commands_own_flags() {
        let c = parse(&["exec", "-t", "--env", "A=1", "c1", "ls", "-la", "--x"]);
        let Cmd::Exec(e) = c.cmd else { panic!() };
        assert!(e.tty);
        assert_eq!(e.env, ["A=1"]);
        assert_eq!(e.command, ["ls", "-la", "--x"]);
        let c = parse(&[
            "exec",
            "--process",
            "/p.json",
            "--detach",
            "--pid-file",
            "/p",
            "c",
        ]);
        let Cmd::Exec(e) = c.cmd else { panic!() };
        assert!(e.detach && e.command.is_empty());
    }

    #[test]
    fn defaults_and_globals_after_the_command() {
        let c = parse(&["kill", "c1"]);
        assert_eq!(c.root, PathBuf::from("/run/berth-runc"));
        let Cmd::Kill(k) = c.cmd else { panic!() };
        assert_eq!((k.signal.as_str(), k.all), ("SIGTERM", false));
        let c = parse(&["delete", "--force", "c1", "--root", "/r"]);
        assert_eq!(c.root, PathBuf::from("/r"));
        let c = parse(&["update", "--resources", "-", "--memory", "-1", "c1"]);
        let Cmd::Update(u) = c.cmd else { panic!() };
        assert_eq!(u.resources.as_deref(), Some("-"));
        assert_eq!(u.memory.as_deref(), Some("-1"));
    }

    #[test]
    fn spec_rootless_is_the_commands_own() {
        let Cmd::Spec(s) = parse(&["spec", "--rootless"]).cmd else {
            panic!()
        };
        assert!(s.rootless);
        assert_eq!(
            parse(&["--rootless", "auto", "list"]).rootless.as_deref(),
            Some("auto")
        );
    }

    #[test]
    fn unknown_command_or_flag_is_an_error() {
        for a in [&["frobnicate"][..], &["create", "--bogus", "x"], &["start"]] {
            let r = Cli::try_parse_from(std::iter::once("berth-runc").chain(a.iter().copied()));
            assert!(r.is_err(), "{a:?}");
        }
    }
}
