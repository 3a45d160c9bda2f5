//! berth-kube: the Kubernetes hand-off. `generate` writes containers, pods and Compose
//! projects as Kubernetes objects (k8s-openapi types); `play` runs Pods, Deployments,
//! Services, ConfigMaps, Secrets (env and volumes: `sources`) and PersistentVolumeClaims on
//! any Docker-API engine through berth-client, each pod as an infra container whose network, IPC and UTS namespaces its
//! containers join.

pub mod apply;
pub mod generate;
pub mod model;
pub mod play;
pub mod sources;
