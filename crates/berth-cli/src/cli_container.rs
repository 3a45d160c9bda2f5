//! Command-line grammar of container commands: run/create flags and the lifecycle commands.

use clap::{ArgAction, Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    #[command(mut_arg("pull", |a| a.help("Pull image before creating (\"always\"|\"missing\"|\"never\")")))]
    Create(RunArgs),
    /// List containers
    #[command(alias = "ls", alias = "list")]
    Ps(PsArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    #[command(mut_arg("time", |a| a.help("Seconds to wait for stop before killing the container (default 10)")))]
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
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
}

/// Flags of `run` and `create` (docker's names; `-h` is --hostname, so help is `--help`).
#[derive(Args, Debug, Default, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Restart policy to apply when a container exits (default "no")
    #[arg(long)]
    pub restart: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Signal to stop a container (default "SIGTERM")
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Run the container in a pod (`berth pod create`, or one `kube play` made): it joins the
    /// pod's network, IPC and UTS namespaces
    #[arg(long)]
    pub pod: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Legacy link to another container (`name[:alias]`)
    #[arg(long)]
    pub link: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// UTS namespace to use (host, or container:<name|id> to share another's hostname)
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace to use
    #[arg(long)]
    pub userns: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile")]
    pub cidfile: Option<String>,
    /// Suppress the pull output
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
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print containers using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait for stop before killing it (default 10)
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container (default "KILL")
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Args, Debug, Default)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1.., required = true)]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
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
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Pretty-print stats using a Go template
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
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Publish a port of the running container, live (same -p syntax)
    #[arg(long = "publish-add", value_name = "PORT")]
    pub publish_add: Vec<String>,
    /// Stop publishing a port (`80`, `80/udp`, `8080:80`), live
    #[arg(long = "publish-rm", value_name = "PORT")]
    pub publish_rm: Vec<String>,
    /// Add a mount (--mount syntax); a running container is restarted
    #[arg(long = "mount-add", value_name = "MOUNT")]
    pub mount_add: Vec<String>,
    /// Remove the mount at this container path; a running container is restarted
    #[arg(long = "mount-rm", value_name = "PATH")]
    pub mount_rm: Vec<String>,
    /// Add a volume or bind (-v syntax); a running container is restarted
    #[arg(long = "volume-add", value_name = "VOLUME")]
    pub volume_add: Vec<String>,
    /// Remove the volume or bind at this container path (`-v` destination)
    #[arg(long = "volume-rm", value_name = "PATH")]
    pub volume_rm: Vec<String>,
    /// Set an environment variable (KEY=VALUE); a running container is restarted
    #[arg(long = "env-add", value_name = "KEY=VALUE")]
    pub env_add: Vec<String>,
    /// Unset an environment variable; a running container is restarted
    #[arg(long = "env-rm", value_name = "KEY")]
    pub env_rm: Vec<String>,
    /// Connect to a network, live
    #[arg(long = "network-add", value_name = "NETWORK")]
    pub network_add: Vec<String>,
    /// Disconnect from a network, live
    #[arg(long = "network-rm", value_name = "NETWORK")]
    pub network_rm: Vec<String>,
    /// Set a label (key=value)
    #[arg(long = "label-add", value_name = "LABEL")]
    pub label_add: Vec<String>,
    /// Remove a label
    #[arg(long = "label-rm", value_name = "KEY")]
    pub label_rm: Vec<String>,
    /// Print the changes (before/after) and whether a restart is needed; change nothing
    #[arg(long = "dry-run")]
    pub dry_run: bool,
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
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub src: String,
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgsC {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}
