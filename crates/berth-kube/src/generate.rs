//! `kube generate`: pods of the model as Kubernetes objects (k8s-openapi types, serialized as
//! YAML documents) — a Pod or a Deployment, a Service for published ports, a
//! PersistentVolumeClaim per named volume, a ConfigMap per pod's env files (taken with
//! `envFrom`), a Secret of the pod's Compose secrets (a volume whose keys are mounted file by
//! file with `subPath`); probes from healthchecks, resources from limits, a securityContext from user,
//! capabilities and read-only root.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, ExecAction, HostPathVolumeSource, KeyToPath, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, Secret, SecretVolumeSource, SecurityContext, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use crate::model::{dns_name, ContainerModel, Mount, PodModel};

/// What to write a pod as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Deployment,
}

/// One Kubernetes object.
#[derive(Debug, Clone)]
pub enum Object {
    Pod(Box<Pod>),
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    Claim(Box<PersistentVolumeClaim>),
    ConfigMap(Box<ConfigMap>),
    Secret(Box<Secret>),
}

impl Object {
    fn to_value(&self) -> serde_json::Value {
        match self {
            Object::Pod(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Claim(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
        }
        .expect("k8s-openapi objects serialize")
    }
}

/// The objects as a multi-document YAML stream.
pub fn to_yaml(objects: &[Object]) -> Result<String, String> {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(
            &serde_saphyr::to_string(&o.to_value()).map_err(|e| format!("writing YAML: {e}"))?,
        );
    }
    Ok(out)
}

fn labels_of(pod: &PodModel) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = pod.labels.iter().cloned().collect();
    l.insert("app".into(), pod.name.clone());
    l
}

/// The Kubernetes objects of one pod.
pub fn objects(pod: &PodModel, kind: Kind) -> Vec<Object> {
    let labels = labels_of(pod);
    let mut volumes: Vec<Volume> = Vec::new();
    let mut claims: Vec<Object> = Vec::new();
    let containers: Vec<Container> = pod
        .containers
        .iter()
        .map(|c| container(c, &pod.name, &mut volumes, &mut claims))
        .collect();
    let restart = match pod.restart.as_deref() {
        Some("always") | Some("unless-stopped") => Some("Always"),
        Some("on-failure") => Some("OnFailure"),
        Some("no") | Some("") => Some("Never"),
        _ => None,
    };
    let spec = PodSpec {
        containers,
        volumes: (!volumes.is_empty()).then_some(volumes),
        restart_policy: restart
            .filter(|r| kind == Kind::Pod || *r == "Always")
            .map(String::from),
        ..PodSpec::default()
    };
    let meta = ObjectMeta {
        name: Some(pod.name.clone()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    let mut out = Vec::new();
    match kind {
        Kind::Pod => out.push(Object::Pod(Box::new(Pod {
            metadata: meta,
            spec: Some(spec),
            status: None,
        }))),
        Kind::Deployment => out.push(Object::Deployment(Box::new(Deployment {
            metadata: meta,
            spec: Some(DeploymentSpec {
                replicas: Some(pod.replicas.unwrap_or(1)),
                selector: LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), pod.name.clone())])),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(spec),
                },
                ..DeploymentSpec::default()
            }),
            status: None,
        }))),
    }
    let ports: Vec<ServicePort> = pod
        .containers
        .iter()
        .flat_map(|c| c.ports.iter())
        .filter_map(|p| {
            let host = p.host?;
            Some(ServicePort {
                name: Some(format!("{}-{}", p.container, p.protocol.to_lowercase())),
                port: i32::from(host),
                target_port: Some(IntOrString::Int(i32::from(p.container))),
                node_port: None,
                protocol: Some(p.protocol.clone()),
                ..ServicePort::default()
            })
        })
        .collect();
    if !ports.is_empty() {
        out.push(Object::Service(Box::new(Service {
            metadata: ObjectMeta {
                name: Some(pod.name.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".into(), pod.name.clone())])),
                ports: Some(ports),
                type_: Some("NodePort".into()),
                ..ServiceSpec::default()
            }),
            status: None,
        })));
    }
    out.extend(claims);
    let meta = |name: &String| ObjectMeta {
        name: Some(name.clone()),
        labels: Some(labels_of(pod)),
        ..ObjectMeta::default()
    };
    for (name, data) in &pod.config_maps {
        out.push(Object::ConfigMap(Box::new(ConfigMap {
            metadata: meta(name),
            data: Some(data.clone()),
            ..ConfigMap::default()
        })));
    }
    for (name, data) in &pod.secrets {
        out.push(Object::Secret(Box::new(Secret {
            metadata: meta(name),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                    .collect(),
            ),
            ..Secret::default()
        })));
    }
    out
}

/// The pod volume holding its Compose secrets.
const SECRETS_VOLUME: &str = "compose-secrets";

fn container(
    c: &ContainerModel,
    pod: &str,
    volumes: &mut Vec<Volume>,
    claims: &mut Vec<Object>,
) -> Container {
    let mut mounts = Vec::new();
    for f in &c.secret_files {
        if !volumes.iter().any(|v| v.name == SECRETS_VOLUME) {
            volumes.push(Volume {
                name: SECRETS_VOLUME.into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(dns_name(&format!("{pod}-secrets"))),
                    items: Some(vec![]),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        let items = volumes
            .iter_mut()
            .find(|v| v.name == SECRETS_VOLUME)
            .and_then(|v| v.secret.as_mut())
            .and_then(|s| s.items.as_mut());
        if let Some(items) = items {
            if !items.iter().any(|i| i.key == f.key) {
                items.push(KeyToPath {
                    key: f.key.clone(),
                    path: f.key.clone(),
                    mode: Some(f.mode as i32),
                });
            }
        }
        mounts.push(VolumeMount {
            name: SECRETS_VOLUME.into(),
            mount_path: f.target.clone(),
            sub_path: Some(f.key.clone()),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    for m in &c.mounts {
        let (vol_name, target, read_only, volume) = match m {
            Mount::Volume {
                name,
                target,
                read_only,
            } => {
                let claim = dns_name(name);
                if !claims.iter().any(|o| matches!(o, Object::Claim(p) if p.metadata.name.as_deref() == Some(claim.as_str()))) {
                    claims.push(Object::Claim(Box::new(claim_for(&claim))));
                }
                (
                    claim.clone(),
                    target,
                    *read_only,
                    Volume {
                        name: claim.clone(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: claim,
                            read_only: None,
                        }),
                        ..Volume::default()
                    },
                )
            }
            Mount::Bind {
                source,
                target,
                read_only,
            } => {
                let name = dns_name(&format!("{}-host{}", c.name, source));
                (
                    name.clone(),
                    target,
                    *read_only,
                    Volume {
                        name,
                        host_path: Some(HostPathVolumeSource {
                            path: source.clone(),
                            type_: None,
                        }),
                        ..Volume::default()
                    },
                )
            }
            Mount::Tmpfs { target } => {
                let name = dns_name(&format!("{}-tmpfs{}", c.name, target));
                (
                    name.clone(),
                    target,
                    false,
                    Volume {
                        name,
                        empty_dir: Some(EmptyDirVolumeSource {
                            medium: Some("Memory".into()),
                            size_limit: None,
                        }),
                        ..Volume::default()
                    },
                )
            }
        };
        if !volumes.iter().any(|v| v.name == vol_name) {
            volumes.push(volume);
        }
        mounts.push(VolumeMount {
            name: vol_name,
            mount_path: target.clone(),
            read_only: read_only.then_some(true),
            ..VolumeMount::default()
        });
    }
    let mut limits = BTreeMap::new();
    if let Some(m) = c.memory {
        limits.insert("memory".to_string(), Quantity(m.to_string()));
    }
    if let Some(n) = c.nano_cpus {
        limits.insert("cpu".to_string(), Quantity(format!("{}m", n / 1_000_000)));
    }
    let (run_as_user, run_as_group) = match c
        .user
        .as_deref()
        .map(|u| u.split_once(':').unwrap_or((u, "")))
    {
        Some((u, g)) => (u.parse::<i64>().ok(), g.parse::<i64>().ok()),
        None => (None, None),
    };
    let security = SecurityContext {
        run_as_user,
        run_as_group,
        read_only_root_filesystem: c.read_only.then_some(true),
        privileged: c.privileged.then_some(true),
        capabilities: (!c.cap_add.is_empty() || !c.cap_drop.is_empty()).then(|| Capabilities {
            add: (!c.cap_add.is_empty()).then(|| c.cap_add.clone()),
            drop: (!c.cap_drop.is_empty()).then(|| c.cap_drop.clone()),
        }),
        ..SecurityContext::default()
    };
    let has_security = security != SecurityContext::default();
    Container {
        name: c.name.clone(),
        image: Some(c.image.clone()),
        command: c.entrypoint.clone(),
        args: c.cmd.clone(),
        env: (!c.env.is_empty()).then(|| {
            c.env
                .iter()
                .map(|(k, v)| EnvVar {
                    name: k.clone(),
                    value: Some(v.clone()),
                    value_from: None,
                })
                .collect()
        }),
        env_from: (!c.env_from.is_empty()).then(|| {
            c.env_from
                .iter()
                .map(|name| EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: name.clone(),
                        optional: None,
                    }),
                    ..EnvFromSource::default()
                })
                .collect()
        }),
        ports: (!c.ports.is_empty()).then(|| {
            c.ports
                .iter()
                .map(|p| ContainerPort {
                    container_port: i32::from(p.container),
                    protocol: Some(p.protocol.clone()),
                    host_port: p.host.map(i32::from),
                    host_ip: p.host_ip.clone(),
                    name: None,
                })
                .collect()
        }),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        working_dir: c.workdir.clone(),
        resources: (!limits.is_empty()).then(|| ResourceRequirements {
            limits: Some(limits),
            ..ResourceRequirements::default()
        }),
        security_context: has_security.then_some(security),
        liveness_probe: c.check.as_ref().map(|h| Probe {
            exec: Some(ExecAction {
                command: Some(h.command.clone()),
            }),
            period_seconds: h.period,
            timeout_seconds: h.timeout,
            failure_threshold: h.retries,
            initial_delay_seconds: h.start,
            ..Probe::default()
        }),
        tty: c.tty.then_some(true),
        stdin: c.stdin.then_some(true),
        ..Container::default()
    }
}

fn claim_for(name: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity("1Gi".into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, Port};

    fn pod() -> PodModel {
        PodModel {
            name: "web".into(),
            labels: vec![],
            containers: vec![ContainerModel {
                name: "web".into(),
                image: "busybox".into(),
                cmd: Some(vec!["httpd".into(), "-f".into()]),
                env: vec![("A".into(), "1".into())],
                ports: vec![Port {
                    container: 80,
                    host: Some(8080),
                    host_ip: None,
                    protocol: "TCP".into(),
                }],
                mounts: vec![Mount::Volume {
                    name: "app_data".into(),
                    target: "/data".into(),
                    read_only: false,
                }],
                user: Some("1000:1000".into()),
                memory: Some(64 << 20),
                check: Some(Check {
                    command: vec!["true".into()],
                    period: Some(5),
                    timeout: None,
                    retries: Some(3),
                    start: None,
                }),
                ..ContainerModel::default()
            }],
            restart: Some("always".into()),
            replicas: Some(2),
            config_maps: vec![],
            secrets: vec![],
        }
    }

    #[test]
    fn a_deployment_with_its_service_and_claim() {
        let objs = objects(&pod(), Kind::Deployment);
        assert_eq!(objs.len(), 3);
        let d = objs[0].to_value();
        assert_eq!(d["apiVersion"], "apps/v1");
        assert_eq!(d["kind"], "Deployment");
        assert_eq!(d["spec"]["replicas"], 2);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"], serde_json::json!(["httpd", "-f"]));
        assert!(c.get("command").is_none());
        assert_eq!(c["securityContext"]["runAsUser"], 1000);
        assert_eq!(c["resources"]["limits"]["memory"], "67108864");
        assert_eq!(
            c["livenessProbe"]["exec"]["command"],
            serde_json::json!(["true"])
        );
        assert_eq!(c["volumeMounts"][0]["name"], "app-data");
        let s = objs[1].to_value();
        assert_eq!(s["kind"], "Service");
        assert_eq!(s["spec"]["ports"][0]["port"], 8080);
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        let pvc = objs[2].to_value();
        assert_eq!(pvc["kind"], "PersistentVolumeClaim");
        assert_eq!(pvc["metadata"]["name"], "app-data");
        let yaml = to_yaml(&objs).unwrap();
        assert_eq!(
            yaml.matches("\n---\n").count() + usize::from(yaml.starts_with("---")),
            2,
            "{yaml}"
        );
    }

    #[test]
    fn env_files_are_a_config_map_taken_with_env_from() {
        let mut p = pod();
        p.containers[0].env_from = vec!["web-env".into()];
        p.config_maps = vec![(
            "web-env".into(),
            BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
        )];
        let objs = objects(&p, Kind::Pod);
        let c = &objs[0].to_value()["spec"]["containers"][0];
        assert_eq!(
            c["envFrom"],
            serde_json::json!([{"configMapRef": {"name": "web-env"}}])
        );
        assert_eq!(c["env"], serde_json::json!([{"name": "A", "value": "1"}]));
        let cm = objs.last().unwrap().to_value();
        assert_eq!(cm["apiVersion"], "v1");
        assert_eq!(cm["kind"], "ConfigMap");
        assert_eq!(cm["metadata"]["name"], "web-env");
        assert_eq!(cm["data"], serde_json::json!({"GREETING": "hi"}));
    }

    #[test]
    fn compose_secrets_are_a_secret_volume_mounted_by_key() {
        let mut p = pod();
        p.containers[0].secret_files = vec![crate::model::SecretFile {
            key: "token".into(),
            target: "/run/secrets/token".into(),
            mode: 0o400,
        }];
        p.secrets = vec![(
            "web-secrets".into(),
            BTreeMap::from([("token".to_string(), b"s3cret".to_vec())]),
        )];
        let objs = objects(&p, Kind::Pod);
        let spec = &objs[0].to_value()["spec"];
        assert_eq!(
            spec["volumes"][0],
            serde_json::json!({"name": "compose-secrets", "secret": {"secretName": "web-secrets", "items": [{"key": "token", "path": "token", "mode": 256}]}})
        );
        assert_eq!(
            spec["containers"][0]["volumeMounts"][0],
            serde_json::json!({"name": "compose-secrets", "mountPath": "/run/secrets/token", "subPath": "token", "readOnly": true})
        );
        let secret = objs.last().unwrap().to_value();
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["data"]["token"], "czNjcmV0");
    }

    #[test]
    fn a_pod_keeps_its_restart_policy() {
        let mut p = pod();
        p.restart = Some("no".into());
        let v = objects(&p, Kind::Pod)[0].to_value();
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["spec"]["restartPolicy"], "Never");
    }
}
