//! Command-line grammar of container commands: run/create flags and the lifecycle commands.

use clap::{ArgAction, Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// List containers
    #[command(alias = "ls", alias = "list")]
    Ps(PsArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Remove all stopped containers
    #[command(hide = true)]
    Prune(PruneArgsC),
}

/// Resource limits, shared by `run`/`create` and `update` (parsed by `runopts::resources`).
#[derive(Args, Debug, Default, Clone)]
pub struct ResourceFlags {
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long)]
    pub cpus: Option<String>,
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
}

/// Flags of `run` and `create` (docker's names; `-h` is --hostname, so help is `--help`).
#[derive(Args, Debug, Default, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub domainname: Option<String>,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    #[arg(long)]
    pub init: bool,
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    #[arg(long)]
    pub ulimit: Vec<String>,
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[arg(long)]
    pub privileged: bool,
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    #[arg(long)]
    pub expose: Vec<String>,
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    #[arg(long)]
    pub ip: Option<String>,
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Legacy link to another container (`name[:alias]`)
    #[arg(long)]
    pub link: Vec<String>,
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    #[arg(long)]
    pub mount: Vec<String>,
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(long, default_value = "missing")]
    pub pull: String,
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sig_proxy: bool,
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    #[arg(long)]
    pub sysctl: Vec<String>,
    #[arg(long)]
    pub device: Vec<String>,
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    #[arg(long)]
    pub ipc: Option<String>,
    #[arg(long)]
    pub pid: Option<String>,
    #[arg(long)]
    pub userns: Option<String>,
    #[arg(long = "cidfile")]
    pub cidfile: Option<String>,
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// IMAGE
    pub image: String,
    /// [COMMAND] [ARG...]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(short = 'n', long = "last")]
    pub last: Option<i64>,
    #[arg(short = 'l', long)]
    pub latest: bool,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    #[arg(short = 'a', long)]
    pub attach: bool,
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(short = 't', long)]
    pub timestamps: bool,
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1.., required = true)]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ContainerArg {
    pub container: String,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    pub private_port: Option<String>,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    #[arg(short = 'a', long)]
    pub archive: bool,
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub src: String,
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    #[arg(short = 'p', long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgsC {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}
