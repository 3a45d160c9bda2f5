//! Command-line grammar (clap): global flags and every subcommand's flags, named as docker's.

use clap::{ArgAction, Args, Parser, Subcommand};

pub use crate::cli_compose::*;
pub use crate::cli_container::*;
pub use crate::cli_kube::*;

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
    /// Daemon to connect to (unix:///path, tcp://host:port or ssh://[user@]host[:port]); env
    /// BERTH_HOST, else DOCKER_HOST
    #[arg(short = 'H', long = "host", env = "BERTH_HOST")]
    pub host: Option<String>,
    /// Context of the docker CLI's store to use (env BERTH_CONTEXT, else DOCKER_CONTEXT, else
    /// currentContext); -H, BERTH_HOST and DOCKER_HOST win
    #[arg(short = 'c', long = "context", env = "BERTH_CONTEXT")]
    pub context: Option<String>,
    /// State directory of an auto-started daemon (default /var/lib/berth; for an ordinary user
    /// $XDG_DATA_HOME/berth, else ~/.local/share/berth)
    #[arg(long)]
    pub root: Option<String>,
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
    /// OCI runtime with runc's command line (also when invoked as `berth-runc`)
    #[command(disable_help_flag = true)]
    Runtime(ShimArgs),
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
    /// Pull an image or a repository from a registry
    Pull(PullArgs),
    /// Push an image or a repository to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Search Docker Hub (or the registry named in TERM) for images
    Search(SearchArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Print a one-time login link to the dashboard (and open it in a browser when there is
    /// one); the daemon must serve it (`berth daemon --ui 127.0.0.1:PORT`)
    Ui(UiArgs),
    /// Manage berth
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Manage contexts (shared with the docker CLI's store)
    Context {
        #[command(subcommand)]
        cmd: ContextCmd,
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
    /// Define and run multi-container applications (Compose)
    Compose(ComposeArgs),
    /// Kubernetes: generate YAML from containers or Compose projects, play YAML on berth
    Kube(KubeArgs),
    /// Run a private registry (OCI Distribution / Docker Registry API V2)
    Registry {
        #[command(subcommand)]
        cmd: RegistryCmd,
    },
    /// Manage pods: containers sharing one network and IPC namespace
    Pod {
        #[command(subcommand)]
        cmd: PodCmd,
    },
    #[command(flatten)]
    C(ContainerCmd),
}

#[derive(Subcommand, Debug)]
pub enum RegistryCmd {
    /// Serve a registry from a directory
    Serve(Box<RegistryServeArgs>),
    /// Remove blobs no manifest references (mark and sweep)
    Gc(RegistryGcArgs),
}

#[derive(Args, Debug)]
pub struct RegistryGcArgs {
    /// The registry's root directory
    #[arg(long, default_value = "/var/lib/berth-registry")]
    pub root: String,
    /// Only list what would be removed
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Spare unreferenced blobs younger than this many seconds (a push may still be linking them)
    #[arg(long, default_value_t = 3600)]
    pub grace: u64,
}

#[derive(Args, Debug)]
pub struct RegistryServeArgs {
    /// Read settings from this YAML file (keys as these flags: addr, root, tls-cert, …);
    /// flags given here win
    #[arg(long)]
    pub config: Option<String>,
    /// Address to listen on (a non-loopback one needs --tls-cert/--tls-key or --insecure)
    /// [default: 127.0.0.1:5000]
    #[arg(long)]
    pub addr: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM)
    #[arg(long = "tls-cert")]
    pub tls_cert: Option<String>,
    /// The certificate's private key (PEM)
    #[arg(long = "tls-key")]
    pub tls_key: Option<String>,
    /// The users (bcrypt: `htpasswd -B`): Basic auth on every request, or with --token-policy
    /// the logins of the token realm
    #[arg(long)]
    pub htpasswd: Option<String>,
    /// Require Bearer tokens from the built-in issuer (`/auth/token`), granting what this
    /// YAML policy file allows each user (repository glob: [pull, push, delete])
    #[arg(long = "token-policy")]
    pub token_policy: Option<String>,
    /// Sign tokens with the key in this file (at least 32 bytes), so they outlive a restart
    /// [default: a random key made at start]
    #[arg(long = "token-key")]
    pub token_key: Option<String>,
    /// Lifetime of the tokens issued, in seconds [default: 300]
    #[arg(long = "token-ttl")]
    pub token_ttl: Option<u64>,
    /// The service name in challenges and tokens [default: berth-registry]
    #[arg(long = "token-service")]
    pub token_service: Option<String>,
    /// The token realm to announce [default: <scheme>://<Host>/auth/token of the request]
    #[arg(long = "token-realm")]
    pub token_realm: Option<String>,
    /// Serve plain HTTP on a non-loopback address anyway
    #[arg(long)]
    pub insecure: bool,
    /// Be a pull-through cache of this registry (`https://host[:port]`); pushes are refused
    #[arg(long)]
    pub proxy: Option<String>,
    /// The upstream's user, for --proxy (its password in BERTH_PROXY_PASSWORD)
    #[arg(long = "proxy-username")]
    pub proxy_username: Option<String>,
    /// Where blobs, manifests and uploads are stored [default: /var/lib/berth-registry]
    #[arg(long)]
    pub root: Option<String>,
    /// Allow DELETE of manifests, tags and blobs
    #[arg(long)]
    pub delete: bool,
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
    /// Root of persisted state (dockerd's --data-root)
    #[arg(long, visible_alias = "data-root")]
    pub root: Option<String>,
    /// Enable debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Path to use for the daemon PID file (default: <exec-root>/berth.pid)
    #[arg(short = 'p', long = "pidfile")]
    pub pidfile: Option<String>,
    /// Write firewall rules (NAT, published ports); false: none at all, as dockerd
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub iptables: Option<bool>,
    /// Accepted for dockerd's command line: berth's IPv6 rules follow --iptables
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub ip6tables: Option<bool>,
    /// Accepted for dockerd's command line: berth always keeps containers running across
    /// daemon restarts (false is refused)
    #[arg(long = "live-restore", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub live_restore: Option<bool>,
    /// Accepted for dockerd's command line: berth publishes ports with nftables alone, no
    /// proxy process
    #[arg(long = "userland-proxy", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub userland_proxy: Option<bool>,
    /// Accepted for dockerd's command line: berth runs containers itself, not through
    /// containerd
    #[arg(long)]
    pub containerd: Option<String>,
    /// Accepted for dockerd's command line (berth does not use containerd)
    #[arg(long = "containerd-namespace")]
    pub containerd_namespace: Option<String>,
    /// Accepted for dockerd's command line (berth does not use containerd)
    #[arg(long = "containerd-plugins-namespace")]
    pub containerd_plugins_namespace: Option<String>,
    /// Map containers' root to an unprivileged range: "default" (the dockremap user, created
    /// if absent) or USER[:GROUP], whose /etc/subuid and /etc/subgid ranges are used
    #[arg(long = "userns-remap")]
    pub userns_remap: Option<String>,
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
    /// Storage driver: overlay2, or fuse-overlayfs (rootless; default where the user
    /// namespace cannot mount overlayfs)
    #[arg(short = 's', long = "storage-driver")]
    pub storage_driver: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Serve a non-loopback tcp:// host without --tlsverify (anyone who reaches it controls
    /// this host)
    #[arg(long = "insecure-tcp")]
    pub insecure_tcp: bool,
    /// Group owning the unix socket (default: none, root only)
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Serve the dashboard on this address (loopback ip:port, or any address with --tls);
    /// `berth ui` prints its login link
    #[arg(long)]
    pub ui: Option<String>,
}

#[derive(Args, Debug)]
pub struct UiArgs {
    /// Only print the link; do not open a browser
    #[arg(long = "no-browser")]
    pub no_browser: bool,
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
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format the output using the given Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Pull an image or a repository from a registry
    Pull(PullArgs),
    /// Push an image or a repository to a registry
    Push(PushArgs),
    /// Build an image from a Dockerfile
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
    /// Set platform if server is multi-platform capable
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
    /// Format the output using the given Go template
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
    /// Pretty-print images using a Go template
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
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
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

#[derive(Args, Debug, Default)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// `name:ip` added to RUN steps' /etc/hosts (repeatable).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Images to trust as cache sources (then only those are).
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Remove intermediate containers after a successful build
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
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// List what crashes left behind (processes, mounts, cgroups, netns, veths, unused blobs
    /// and snapshots, records without state, state without records); exit 1 while any remain
    Check(SystemCheckArgs),
    /// Proxy the daemon's API over stdin/stdout (what `-H ssh://` clients run on the remote)
    #[command(name = "dial-stdio")]
    DialStdio,
}

#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// List contexts
    #[command(alias = "list")]
    Ls(ContextLsArgs),
    /// Display detailed information on one or more contexts
    Inspect(ContextInspectArgs),
    /// Set the current context (in config.json, as docker does)
    Use(ContextNameArg),
    /// Create a context
    Create(ContextCreateArgs),
    /// Remove one or more contexts
    #[command(alias = "remove")]
    Rm(ContextRmArgs),
    /// Print the name of the current context
    Show,
    /// Update a context's description or docker endpoint
    Update(ContextUpdateArgs),
    /// Export a context to a tar file ("-" for stdout)
    Export(ContextExportArgs),
    /// Import a context from a tar file ("-" for stdin)
    Import(ContextImportArgs),
}

#[derive(Args, Debug)]
pub struct ContextLsArgs {
    /// Only show context names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a custom template ("json", "table …" or a Go template)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct ContextInspectArgs {
    /// Contexts (default: the current one)
    pub names: Vec<String>,
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct ContextUpdateArgs {
    pub name: String,
    /// Docker endpoint: host=URL,ca=FILE,cert=FILE,key=FILE,skip-tls-verify=BOOL
    #[arg(long)]
    pub docker: Option<String>,
    /// Description of the context
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Args, Debug)]
pub struct ContextExportArgs {
    pub name: String,
    /// Where to write it (default: NAME.dockercontext; "-" for stdout)
    pub file: Option<String>,
}

#[derive(Args, Debug)]
pub struct ContextImportArgs {
    pub name: String,
    /// The exported context ("-" for stdin)
    pub file: String,
}

#[derive(Args, Debug)]
pub struct ContextNameArg {
    pub name: String,
}

#[derive(Args, Debug)]
pub struct ContextCreateArgs {
    pub name: String,
    /// Docker endpoint: host=unix:///path|tcp://h:p|ssh://[user@]host[:port], and for TLS
    /// ca=FILE,cert=FILE,key=FILE,skip-tls-verify=BOOL
    #[arg(long)]
    pub docker: String,
    /// Description of the context
    #[arg(long, default_value = "")]
    pub description: String,
}

#[derive(Args, Debug)]
pub struct ContextRmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SystemCheckArgs {
    /// Repair what is found (exit 0 when everything was repaired)
    #[arg(long)]
    pub repair: bool,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Pretty-print disk usage using a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. 'label=<key>=<value>')
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(ImageInspectArgs),
    /// Remove one or more networks
    #[command(
        alias = "remove",
        mut_arg("force", |a| a.help("Has no effect on networks (shared with volume rm)"))
    )]
    Rm(NamesArgs),
    /// Remove all unused networks
    #[command(
        mut_arg("all", |a| a.help("Has no effect on networks (shared with volume prune)")),
        mut_arg("filter", |a| a.help("Provide filter values (e.g. 'until=<timestamp>')"))
    )]
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on a network
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct NetworkLsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. 'driver=bridge')
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print networks using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. 'label=<label>')
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(
        alias = "list",
        mut_arg("quiet", |a| a.help("Only display volume names")),
        mut_arg("filter", |a| a.help("Provide filter values (e.g. 'dangling=true')")),
        mut_arg("format", |a| a.help("Pretty-print volumes using a Go template"))
    )]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(ImageInspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove all unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and every flag says in one line what it does (`berth run --help` is read
    /// by people, not only by scripts).
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || arg.is_positional() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if !sub.is_hide_set() && sub.get_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "berth", &mut missing);
        assert!(
            missing.is_empty(),
            "{} without help:\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}
