//! `berth compose` grammar: Compose v2's global flags (`-f`, `-p`, `--project-directory`,
//! `--env-file`, `--profile`) and the subcommands berth implements so far.

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// Compose configuration files (default: compose.yaml in the current or a parent directory)
    #[arg(short = 'f', long = "file")]
    pub files: Vec<String>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the first file's directory)
    #[arg(long = "project-directory")]
    pub project_directory: Option<String>,
    /// Alternate environment files (default: .env in the project directory)
    #[arg(long = "env-file")]
    pub env_files: Vec<String>,
    /// Profiles to enable
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    #[command(subcommand)]
    pub cmd: ComposeCmd,
}

#[derive(Subcommand, Debug)]
pub enum ComposeCmd {
    /// Parse, resolve and render the compose file in canonical format
    Config(ComposeConfigArgs),
    /// Create and start containers
    Up(ComposeUpArgs),
    /// Stop and remove containers and networks
    Down(ComposeDownArgs),
    /// List containers
    Ps(ComposePsArgs),
    /// Build or rebuild services
    Build(ComposeBuildArgs),
    /// View output from containers
    Logs(ComposeLogsArgs),
    /// Execute a command in a running container
    Exec(ComposeExecArgs),
    /// Start services
    Start(ComposeServicesArgs),
    /// Stop services
    Stop(ComposeTimeoutArgs),
    /// Restart service containers
    Restart(ComposeTimeoutArgs),
    /// Force stop service containers
    Kill(ComposeServicesArgs),
    /// Creates containers for a service
    Create(ComposeUpArgs),
    /// Run a one-off command on a service
    Run(ComposeRunArgs),
    /// Removes stopped service containers
    Rm(ComposeRmArgs),
    /// Pause services
    Pause(ComposeServicesArgs),
    /// Unpause services
    Unpause(ComposeServicesArgs),
    /// Pull service images
    Pull(ComposeServicesArgs),
    /// Push service images
    Push(ComposeServicesArgs),
    /// List images used by the created containers
    Images(ComposeServicesArgs),
    /// Display the running processes
    Top(ComposeServicesArgs),
    /// Print the public port for a port binding
    Port(ComposePortArgs),
    /// List running compose projects
    Ls(ComposeLsArgs),
    /// Show the Docker Compose version information
    Version(ComposeVersionArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(ComposeCpArgs),
    /// Receive real time events from containers
    Events(ComposeEventsArgs),
}

#[derive(Args, Debug)]
pub struct ComposeCpArgs {
    /// Index of the container if the service has several replicas
    #[arg(long, default_value_t = 1)]
    pub index: usize,
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// SERVICE:SRC_PATH or a local path
    pub src: String,
    /// SERVICE:DEST_PATH or a local path
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct ComposeEventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    pub json: bool,
    /// Services (default: all)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeRunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run as specified username or uid
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    pub service_ports: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// The service
    pub service: String,
    /// The command (default: the service's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeRmArgs {
    /// Don't ask to confirm removal
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Services (default: all)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposePortArgs {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Index of the container if the service has several replicas
    #[arg(long, default_value_t = 1)]
    pub index: usize,
    pub service: String,
    pub private_port: u16,
}

#[derive(Args, Debug)]
pub struct ComposeLsArgs {
    /// Show all stopped Compose projects
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display project names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct ComposeVersionArgs {
    /// Shows only Compose's version number
    #[arg(long)]
    pub short: bool,
    /// Format the output: pretty or json
    #[arg(short = 'f', long, default_value = "pretty")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct ComposeServicesArgs {
    /// Services (default: all)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeTimeoutArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// Services (default: all)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeBuildArgs {
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Services (default: all with a build section)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeLogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// Services (default: all)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeExecArgs {
    /// Detached mode: run the command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation (by default a TTY is allocated when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Run the command as this user
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the process
    #[arg(long)]
    pub privileged: bool,
    /// Index of the container if the service has several replicas
    #[arg(long, default_value_t = 1)]
    pub index: usize,
    /// The service
    pub service: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeConfigArgs {
    /// Format the output: yaml or json
    #[arg(long, default_value = "yaml")]
    pub format: String,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    pub profiles: bool,
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ComposeUpArgs {
    /// Detached mode: run containers in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Recreate containers even if their configuration hasn't changed
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Don't build an image, even if it's missing
    #[arg(long = "no-build", conflicts_with = "build")]
    pub no_build: bool,
    /// Scale SERVICE to NUM instances (SERVICE=NUM); overrides the file's replicas
    #[arg(long)]
    pub scale: Vec<String>,
    /// Stops all containers if any container was stopped (attached mode)
    #[arg(long = "abort-on-container-exit")]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container (implies --abort-on-container-exit)
    #[arg(long = "exit-code-from")]
    pub exit_code_from: Option<String>,
    /// Wait for services to be running|healthy (implies detached mode)
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long = "wait-timeout")]
    pub wait_timeout: Option<u64>,
    /// Services to start (default: all)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeDownArgs {
    /// Remove images used by services: "local" (built, without an image name) or "all"
    #[arg(long, value_parser = ["local", "all"])]
    pub rmi: Option<String>,
    /// Remove named volumes declared in the volumes section and anonymous volumes
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove containers for services not defined in the compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
}

#[derive(Args, Debug)]
pub struct ComposePsArgs {
    /// Show all stopped containers
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
}
