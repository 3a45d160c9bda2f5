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
