//! `berth kube` grammar: generate Kubernetes YAML from containers, pods or a Compose project;
//! play a Kubernetes file on berth and take it down.

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct KubeArgs {
    #[command(subcommand)]
    pub cmd: KubeCmd,
}

#[derive(Subcommand, Debug)]
pub enum KubeCmd {
    /// Generate Kubernetes YAML from containers, a played pod, or a Compose project
    Generate(KubeGenerateArgs),
    /// Run the Pods, Deployments, Services, ConfigMaps, Secrets and PVCs of a Kubernetes file
    Play(KubePlayArgs),
    /// Remove what `kube play FILE` made (claims' volumes are kept)
    Down(KubePlayArgs),
}

#[derive(Args, Debug)]
pub struct KubeGenerateArgs {
    /// The workload kind: pod or deployment (default: pod; deployment for --compose)
    #[arg(short = 't', long = "type", value_parser = ["pod", "deployment"])]
    pub kind: Option<String>,
    /// Generate from the Compose project in the current directory (or --compose-file)
    #[arg(long)]
    pub compose: bool,
    /// Compose files (implies --compose)
    #[arg(long = "compose-file")]
    pub compose_files: Vec<String>,
    /// The pod's name when containers are given (default: the first container's name + "-pod")
    #[arg(long)]
    pub name: Option<String>,
    /// Containers (one pod holding them all) or the name of a pod `kube play` made
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KubePlayArgs {
    /// The Kubernetes YAML file
    pub file: String,
}

#[derive(Subcommand, Debug)]
pub enum PodCmd {
    /// Create a pod (its infra container holds the namespaces and the published ports)
    Create(PodCreateArgs),
    /// List pods
    #[command(alias = "ps", alias = "list")]
    Ls(PodLsArgs),
    /// Display a pod's configuration and members as JSON
    Inspect(PodNamesArgs),
    /// Start pods (the infra container, then the members)
    Start(PodNamesArgs),
    /// Stop pods (the members, then the infra container)
    Stop(PodNamesArgs),
    /// Remove pods (`-f`: running ones too)
    Rm(PodRmArgs),
}

#[derive(Args, Debug)]
pub struct PodCreateArgs {
    /// The pod's name
    #[arg(long)]
    pub name: String,
    /// Publish a port of the pod to the host (as `run -p`)
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Set metadata on the pod
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// The network the pod joins (default: berth-kube)
    #[arg(long)]
    pub network: Option<String>,
    /// The pod's hostname (default: its name)
    #[arg(long)]
    pub hostname: Option<String>,
}

#[derive(Args, Debug)]
pub struct PodLsArgs {
    /// Only display pod names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct PodNamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PodRmArgs {
    /// Stop running pods before removing them
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}
