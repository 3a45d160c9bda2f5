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
    /// Services to start (default: all)
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ComposeDownArgs {
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
