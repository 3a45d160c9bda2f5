//! Command-line grammar (clap): global flags and every subcommand's flags, named as docker's.

use clap::{ArgAction, Args, Parser, Subcommand};

pub use crate::cli_container::*;

/// berth: a container engine that speaks Docker's Engine API.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    disable_help_subcommand = true,
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path or tcp://host:port); env BERTH_HOST
    #[arg(short = 'H', long = "host", env = "BERTH_HOST")]
    pub host: Option<String>,
    /// State directory of an auto-started daemon
    #[arg(long, default_value = "/var/lib/berth")]
    pub root: String,
    /// Enable debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Never start a daemon automatically (env BERTH_NO_AUTOSTART=1)
    #[arg(long = "no-autostart")]
    pub no_autostart: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Print version information and quit
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the berth daemon (Docker Engine API server)
    Daemon(DaemonArgs),
    /// Internal: per-container runtime shim
    #[command(hide = true)]
    Shim(ShimArgs),
    /// Show the berth version information
    Version(FormatArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Search Docker Hub (or the registry named in TERM) for images
    Search(SearchArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Manage berth
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Manage containers
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: VolumeCmd,
    },
    #[command(flatten)]
    C(ContainerCmd),
}

/// docker's TLS flags, for the client (global) and for `berth daemon`.
#[derive(Args, Debug, Default, Clone)]
pub struct TlsArgs {
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the remote (client: env DOCKER_TLS_VERIFY)
    #[arg(long = "tlsverify")]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA (default: $DOCKER_CERT_PATH or ~/.docker, ca.pem)
    #[arg(long = "tlscacert")]
    pub tlscacert: Option<String>,
    /// Path to TLS certificate file (default: $DOCKER_CERT_PATH or ~/.docker, cert.pem)
    #[arg(long = "tlscert")]
    pub tlscert: Option<String>,
    /// Path to TLS key file (default: $DOCKER_CERT_PATH or ~/.docker, key.pem)
    #[arg(long = "tlskey")]
    pub tlskey: Option<String>,
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Socket to listen on: one unix:///path and/or one tcp://host:port (only those given are
    /// served)
    #[arg(short = 'H', long = "host")]
    pub host: Vec<String>,
    /// Root of persisted state
    #[arg(long)]
    pub root: Option<String>,
    /// Enable debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Runtime state: pid file, shim sockets (default: the socket's directory)
    #[arg(long = "exec-root")]
    pub exec_root: Option<String>,
    /// Daemon configuration file
    #[arg(long = "config-file")]
    pub config_file: Option<String>,
    /// Device of the default bridge network ("none": no default bridge)
    #[arg(short = 'b', long)]
    pub bridge: Option<String>,
    /// Address and prefix of the default bridge (e.g. 10.10.0.1/24)
    #[arg(long)]
    pub bip: Option<String>,
    /// Name of berth's nftables table
    #[arg(long = "nft-table")]
    pub nft_table: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Serve a non-loopback tcp:// host without --tlsverify (anyone who reaches it controls
    /// this host)
    #[arg(long = "insecure-tcp")]
    pub insecure_tcp: bool,
    /// Group owning the unix socket (default: none, root only)
    #[arg(short = 'G', long)]
    pub group: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShimArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct FormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    #[command(alias = "list")]
    Ls(ImagesArgs),
    #[command(alias = "remove")]
    Rm(RmiArgs),
    Inspect(ImageInspectArgs),
    Prune(ImagePruneArgs),
    Load(LoadArgs),
    Save(SaveArgs),
    Import(ImportArgs),
    Tag(TagArgs),
    History(HistoryArgs),
    Pull(PullArgs),
    Push(PushArgs),
    Build(BuildArgs),
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|- [REPOSITORY[:TAG]]
    pub source: String,
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for specified type (container, image, network, volume)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImageInspectArgs {
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Filter output based on conditions provided (is-official, is-automated, stars)
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: i64,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// TERM: a name, or REGISTRY/NAME to search that registry
    pub term: String,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    #[arg(long)]
    pub pull: bool,
    #[arg(long = "label")]
    pub label: Vec<String>,
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(long)]
    pub network: Option<String>,
    /// `name:ip` added to RUN steps' /etc/hosts (repeatable).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Images to trust as cache sources (then only those are).
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    #[arg(long)]
    pub iidfile: Option<String>,
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(long)]
    pub rm: Option<bool>,
    pub context: String,
}

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Show docker disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    Info(FormatArgs),
    Events(EventsArgs),
    /// List what crashes left behind (processes, mounts, cgroups, netns, veths, unused blobs
    /// and snapshots, records without state, state without records); exit 1 while any remain
    Check(SystemCheckArgs),
}

#[derive(Args, Debug)]
pub struct SystemCheckArgs {
    /// Repair what is found (exit 0 when everything was repaired)
    #[arg(long)]
    pub repair: bool,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(long)]
    pub volumes: bool,
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    Create(NetworkCreateArgs),
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    Inspect(ImageInspectArgs),
    #[command(alias = "remove")]
    Rm(NamesArgs),
    Prune(PruneArgs),
    Connect(NetworkConnectArgs),
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    #[arg(long)]
    pub subnet: Vec<String>,
    #[arg(long)]
    pub gateway: Vec<String>,
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    #[arg(long)]
    pub internal: bool,
    #[arg(long)]
    pub ipv6: bool,
    #[arg(long)]
    pub attachable: bool,
    #[arg(long = "label")]
    pub label: Vec<String>,
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct NetworkLsArgs {
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetworkConnectArgs {
    #[arg(long)]
    pub alias: Vec<String>,
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct NetworkDisconnectArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    Create(VolumeCreateArgs),
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    Inspect(ImageInspectArgs),
    #[command(alias = "remove")]
    Rm(NamesArgs),
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    #[arg(long = "label")]
    pub label: Vec<String>,
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}
