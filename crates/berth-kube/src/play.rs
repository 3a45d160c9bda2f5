//! `kube play`: Kubernetes YAML run on berth. Each pod is an infra container (owning the pod's
//! network, IPC and UTS namespaces — its hostname is the pod's —, publishing the ports of the Services that select the pod) and
//! its containers joined to it; init containers run to completion first. Kubernetes'
//! `command`/`args` become the entrypoint/cmd, ConfigMaps and Secrets feed `env`/`envFrom`
//! and volumes (filled named volumes, see [`crate::sources`]), PersistentVolumeClaims are named volumes, `emptyDir` a volume of the pod. `kube down`
//! removes what a file made. The plan (`plan_file`) is pure; `apply` talks to the engine.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolumeClaim, Pod, PodSpec, Probe, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Map, Value};

use crate::model::dns_name;
use crate::sources::{self, Data, Filled};

/// Labels on everything `play` makes.
pub mod labels {
    pub const PLAY: &str = "io.berth.kube.play";
    pub const POD: &str = "io.berth.kube.pod";
    pub const CONTAINER: &str = "io.berth.kube.container";
    pub const INFRA: &str = "io.berth.kube.infra";
}

/// The network every played pod is attached to (created on first use).
pub const NETWORK: &str = "berth-kube";
/// The infra image: a static busybox sleeping under berth's init.
pub const INFRA_IMAGE: &str = "berth-kube-infra:1";

/// Why a file cannot be played; the text names the document and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayError {
    #[error("{file}: {detail}")]
    Yaml { file: String, detail: String },
    #[error("document {doc}: unsupported kind {kind:?} (supported: Pod, Deployment, Service, ConfigMap, Secret, PersistentVolumeClaim)")]
    UnknownKind { doc: usize, kind: String },
    #[error("document {doc} ({kind} {name}): {detail}")]
    Invalid {
        doc: usize,
        kind: String,
        name: String,
        detail: String,
    },
    #[error("{kind} {name}: unsupported fields: {}", fields.join(", "))]
    Unsupported {
        kind: String,
        name: String,
        fields: Vec<String>,
    },
    #[error("pod {pod}: {detail}")]
    Reference { pod: String, detail: String },
}

/// One container to create, already in Engine API terms.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedContainer {
    pub name: String,
    /// The `POST /containers/create` body (its NetworkMode/IpcMode/UTSMode point at the infra).
    pub body: Value,
    /// An init container: run to completion, in order, before the others start.
    pub init: bool,
}

/// One pod to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPod {
    pub name: String,
    /// The infra container's create body (ports published here).
    pub infra: Value,
    pub containers: Vec<PlannedContainer>,
    /// Named volumes to create first (claims, emptyDirs, ConfigMap and Secret volumes):
    /// (name, remove on down).
    pub volumes: Vec<(String, bool)>,
    /// The ConfigMap and Secret volumes among them, with the files to write into them.
    pub filled: Vec<Filled>,
}

/// What a file asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub pods: Vec<PlannedPod>,
    /// Warnings (fields accepted but without effect on one machine).
    pub warnings: Vec<String>,
}

/// Parse a multi-document YAML file into JSON documents (empty ones dropped). Numbers with a
/// leading zero are octal, as in the YAML 1.1 kubectl reads (`defaultMode: 0440` is 288).
pub fn documents(file: &str, text: &str) -> Result<Vec<Value>, PlayError> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| PlayError::Yaml {
            file: file.to_string(),
            detail: e.to_string().lines().next().unwrap_or_default().to_string(),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Fields of a pod spec and a container that `play` carries out.
const POD_FIELDS: &[&str] = &[
    "containers",
    "initContainers",
    "volumes",
    "restartPolicy",
    "hostname",
    "terminationGracePeriodSeconds",
];
/// Accepted without effect on one machine (a warning says so).
const POD_IGNORED: &[&str] = &[
    "dnsPolicy",
    "enableServiceLinks",
    "schedulerName",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "priority",
    "priorityClassName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "subdomain",
];
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "ports",
    "volumeMounts",
    "workingDir",
    "resources",
    "securityContext",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "tty",
    "stdin",
    "imagePullPolicy",
    "terminationMessagePath",
    "terminationMessagePolicy",
];

fn unsupported(
    v: &Value,
    allowed: &[&str],
    ignored: &[&str],
    prefix: &str,
    out: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    for k in v
        .as_object()
        .map(|m| m.keys().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if allowed.contains(&k.as_str()) {
            continue;
        }
        if ignored.contains(&k.as_str()) {
            warnings.push(format!("{prefix}{k} has no effect on one machine; ignored"));
        } else {
            out.push(format!("{prefix}{k}"));
        }
    }
}

/// A Pod or a Deployment's template: (kind, name, labels, spec, raw spec, replicas).
type PodDoc = (
    &'static str,
    String,
    Map<String, Value>,
    PodSpec,
    Value,
    i32,
);

/// Everything a file holds, by kind.
#[derive(Default)]
struct Objects {
    pods: Vec<PodDoc>,
    services: Vec<Service>,
    config_maps: BTreeMap<String, Data>,
    secrets: BTreeMap<String, Data>,
    claims: Vec<String>,
}

fn name_of(doc: &Value) -> String {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn read(docs: &[Value], warnings: &mut Vec<String>) -> Result<Objects, PlayError> {
    let mut o = Objects::default();
    for (i, doc) in docs.iter().enumerate() {
        let n = i + 1;
        let kind = doc["kind"].as_str().unwrap_or("").to_string();
        let name = name_of(doc);
        let invalid = |detail: String| PlayError::Invalid {
            doc: n,
            kind: kind.clone(),
            name: name.clone(),
            detail,
        };
        if name.is_empty() && !kind.is_empty() {
            return Err(invalid("metadata.name is required".into()));
        }
        match kind.as_str() {
            "Pod" => {
                let p: Pod =
                    serde_json::from_value(doc.clone()).map_err(|e| invalid(e.to_string()))?;
                let labels = p.metadata.labels.clone().unwrap_or_default();
                let spec = p.spec.ok_or_else(|| invalid("spec is required".into()))?;
                let lm: Map<String, Value> =
                    labels.into_iter().map(|(k, v)| (k, json!(v))).collect();
                o.pods
                    .push(("pod", name.clone(), lm, spec, doc["spec"].clone(), 1));
            }
            "Deployment" => {
                let d: Deployment =
                    serde_json::from_value(doc.clone()).map_err(|e| invalid(e.to_string()))?;
                let spec = d.spec.ok_or_else(|| invalid("spec is required".into()))?;
                let template = spec.template;
                let pod_spec = template
                    .spec
                    .ok_or_else(|| invalid("spec.template.spec is required".into()))?;
                let labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
                let lm: Map<String, Value> =
                    labels.into_iter().map(|(k, v)| (k, json!(v))).collect();
                o.pods.push((
                    "deployment",
                    name.clone(),
                    lm,
                    pod_spec,
                    doc.pointer("/spec/template/spec")
                        .cloned()
                        .unwrap_or_default(),
                    spec.replicas.unwrap_or(1).max(0),
                ));
            }
            "Service" => {
                let s: Service =
                    serde_json::from_value(doc.clone()).map_err(|e| invalid(e.to_string()))?;
                o.services.push(s);
            }
            "ConfigMap" | "Secret" => {
                // Keys first: a bad base64 value is named, not left to serde's message.
                let data = sources::read_data(doc, &kind).map_err(invalid)?;
                if kind == "Secret" {
                    let _: Secret =
                        serde_json::from_value(doc.clone()).map_err(|e| invalid(e.to_string()))?;
                    o.secrets.insert(name.clone(), data);
                } else {
                    let _: ConfigMap =
                        serde_json::from_value(doc.clone()).map_err(|e| invalid(e.to_string()))?;
                    o.config_maps.insert(name.clone(), data);
                }
            }
            "PersistentVolumeClaim" => {
                let _: PersistentVolumeClaim =
                    serde_json::from_value(doc.clone()).map_err(|e| invalid(e.to_string()))?;
                o.claims.push(name.clone());
            }
            other => {
                return Err(PlayError::UnknownKind {
                    doc: n,
                    kind: other.to_string(),
                })
            }
        }
    }
    let _ = warnings;
    Ok(o)
}

/// Plan a file's documents.
pub fn plan(docs: &[Value], play: &str) -> Result<Plan, PlayError> {
    let mut warnings = Vec::new();
    let objects = read(docs, &mut warnings)?;
    let mut pods = Vec::new();
    for (kind, name, labels, spec, raw, replicas) in &objects.pods {
        let mut bad = Vec::new();
        unsupported(
            raw,
            POD_FIELDS,
            POD_IGNORED,
            "spec.",
            &mut bad,
            &mut warnings,
        );
        for (key, list) in [
            ("containers", &raw["containers"]),
            ("initContainers", &raw["initContainers"]),
        ] {
            for (i, c) in list.as_array().into_iter().flatten().enumerate() {
                unsupported(
                    c,
                    CONTAINER_FIELDS,
                    &[],
                    &format!("spec.{key}[{i}]."),
                    &mut bad,
                    &mut warnings,
                );
                for (j, m) in c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    unsupported(
                        m,
                        &["name", "mountPath", "readOnly", "subPath"],
                        &[],
                        &format!("spec.{key}[{i}].volumeMounts[{j}]."),
                        &mut bad,
                        &mut warnings,
                    );
                }
            }
        }
        for (i, v) in raw["volumes"].as_array().into_iter().flatten().enumerate() {
            unsupported(
                v,
                &[
                    "name",
                    "persistentVolumeClaim",
                    "emptyDir",
                    "hostPath",
                    "configMap",
                    "secret",
                ],
                &[],
                &format!("spec.volumes[{i}]."),
                &mut bad,
                &mut warnings,
            );
        }
        if !bad.is_empty() {
            return Err(PlayError::Unsupported {
                kind: kind.to_string(),
                name: name.clone(),
                fields: bad,
            });
        }
        for r in 0..*replicas {
            let pod_name = if *kind == "deployment" {
                format!("{}-{}", dns_name(name), r + 1)
            } else {
                dns_name(name)
            };
            // Only the first replica publishes the host ports (they can be bound once).
            let services: Vec<&Service> = if r == 0 {
                objects
                    .services
                    .iter()
                    .filter(|s| selects(s, labels))
                    .collect()
            } else {
                vec![]
            };
            pods.push(plan_pod(
                &pod_name, spec, labels, &services, &objects, play,
            )?);
        }
    }
    Ok(Plan { pods, warnings })
}

fn selects(s: &Service, labels: &Map<String, Value>) -> bool {
    let Some(sel) = s.spec.as_ref().and_then(|sp| sp.selector.as_ref()) else {
        return false;
    };
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v.as_str()))
}

fn common_labels(play: &str, pod: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(labels::PLAY.into(), json!(play));
    m.insert(labels::POD.into(), json!(pod));
    m
}

fn plan_pod(
    pod: &str,
    spec: &PodSpec,
    pod_labels: &Map<String, Value>,
    services: &[&Service],
    o: &Objects,
    play: &str,
) -> Result<PlannedPod, PlayError> {
    let refer = |detail: String| PlayError::Reference {
        pod: pod.to_string(),
        detail,
    };
    let infra_name = format!("{pod}-infra");
    // Published ports: the selecting Services' ports, and containers' hostPorts.
    let mut bindings: Map<String, Value> = Map::new();
    let mut exposed: Map<String, Value> = Map::new();
    let named_port = |name: &str| -> Option<i32> {
        spec.containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
    };
    for s in services {
        for sp in s
            .spec
            .as_ref()
            .and_then(|x| x.ports.as_ref())
            .into_iter()
            .flatten()
        {
            let target = match &sp.target_port {
                Some(IntOrString::Int(n)) => *n,
                Some(IntOrString::String(name)) => named_port(name).ok_or_else(|| {
                    refer(format!(
                        "service port targets an unknown container port {name:?}"
                    ))
                })?,
                None => sp.port,
            };
            let proto = sp.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            let host = sp.node_port.unwrap_or(sp.port);
            let key = format!("{target}/{proto}");
            exposed.insert(key.clone(), json!({}));
            bindings.insert(key, json!([{"HostIp": "", "HostPort": host.to_string()}]));
        }
    }
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            let proto = p.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            let key = format!("{}/{proto}", p.container_port);
            exposed.entry(key.clone()).or_insert_with(|| json!({}));
            if let Some(h) = p.host_port {
                bindings.insert(
                    key,
                    json!([{"HostIp": p.host_ip.clone().unwrap_or_default(), "HostPort": h.to_string()}]),
                );
            }
        }
    }
    let mut infra_labels = common_labels(play, pod);
    infra_labels.insert(labels::INFRA.into(), json!("true"));
    for (k, v) in pod_labels {
        infra_labels.insert(k.clone(), v.clone());
    }
    let infra = json!({
        "Image": INFRA_IMAGE,
        "Cmd": ["/bin/busybox", "sleep", "2147483647"],
        "Hostname": spec.hostname.clone().unwrap_or_else(|| pod.to_string()),
        "Labels": infra_labels,
        "ExposedPorts": exposed,
        "HostConfig": {
            "Init": true,
            "IpcMode": "shareable",
            "NetworkMode": NETWORK,
            "PortBindings": bindings,
            "RestartPolicy": {"Name": "unless-stopped"},
        },
        "NetworkingConfig": {"EndpointsConfig": {NETWORK: {"Aliases": [pod]}}},
    });
    // Volumes of the pod.
    let mut vol_mounts: BTreeMap<String, Value> = BTreeMap::new();
    let mut volumes = Vec::new();
    let mut filled = Vec::new();
    for v in spec.volumes.iter().flatten() {
        let source = if let Some(c) = &v.config_map {
            Some((
                sources::Source {
                    kind: "ConfigMap",
                    name: &c.name,
                    items: c.items.as_deref(),
                    default_mode: c.default_mode,
                    optional: c.optional == Some(true),
                },
                o.config_maps.get(&c.name),
            ))
        } else if let Some(s) = &v.secret {
            let name = s
                .secret_name
                .as_deref()
                .ok_or_else(|| refer(format!("volume {:?}: secret without secretName", v.name)))?;
            Some((
                sources::Source {
                    kind: "Secret",
                    name,
                    items: s.items.as_deref(),
                    default_mode: s.default_mode,
                    optional: s.optional == Some(true),
                },
                o.secrets.get(name),
            ))
        } else {
            None
        };
        if let Some((source, data)) = source {
            let files = sources::files(&source, data)
                .map_err(|e| refer(format!("volume {:?}: {e}", v.name)))?;
            let name = format!("{pod}-{}", v.name);
            volumes.push((name.clone(), true));
            filled.push(Filled {
                volume: name.clone(),
                mount: v.name.clone(),
                files,
            });
            // Read-only whatever the mount says, as the kubelet mounts them.
            vol_mounts.insert(
                v.name.clone(),
                json!({"Type": "volume", "Source": name, "ReadOnly": true}),
            );
            continue;
        }
        if let Some(c) = &v.persistent_volume_claim {
            if !o.claims.contains(&c.claim_name) {
                return Err(refer(format!(
                    "volume {:?} uses claim {:?}, which the file does not define",
                    v.name, c.claim_name
                )));
            }
            volumes.push((c.claim_name.clone(), false));
            vol_mounts.insert(
                v.name.clone(),
                json!({"Type": "volume", "Source": c.claim_name}),
            );
        } else if v.empty_dir.is_some() {
            let name = format!("{pod}-{}", v.name);
            volumes.push((name.clone(), true));
            vol_mounts.insert(v.name.clone(), json!({"Type": "volume", "Source": name}));
        } else if let Some(h) = &v.host_path {
            vol_mounts.insert(v.name.clone(), json!({"Type": "bind", "Source": h.path}));
        }
    }
    let restart = match spec.restart_policy.as_deref() {
        Some("OnFailure") => "on-failure",
        Some("Never") => "no",
        _ => "always",
    };
    let mut containers = Vec::new();
    for (init, list) in [
        (true, spec.init_containers.as_deref().unwrap_or_default()),
        (false, &spec.containers[..]),
    ] {
        for c in list {
            let body = container_body(
                c,
                pod,
                &infra_name,
                &vol_mounts,
                o,
                play,
                if init { "no" } else { restart },
                spec.termination_grace_period_seconds,
            )
            .map_err(refer)?;
            containers.push(PlannedContainer {
                name: format!("{pod}-{}", c.name),
                body,
                init,
            });
        }
    }
    Ok(PlannedPod {
        name: pod.to_string(),
        infra,
        containers,
        volumes,
        filled,
    })
}

fn probe_test(p: &Probe) -> Option<Value> {
    if let Some(e) = &p.exec {
        return Some(json!(std::iter::once("CMD".to_string())
            .chain(e.command.clone().unwrap_or_default())
            .collect::<Vec<_>>()));
    }
    if let Some(h) = &p.http_get {
        let port = match &h.port {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        return Some(json!([
            "CMD-SHELL",
            format!("wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1")
        ]));
    }
    if let Some(t) = &p.tcp_socket {
        let port = match &t.port {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        return Some(json!([
            "CMD-SHELL",
            format!("nc -z 127.0.0.1 {port} || exit 1")
        ]));
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn container_body(
    c: &Container,
    pod: &str,
    infra: &str,
    vol_mounts: &BTreeMap<String, Value>,
    o: &Objects,
    play: &str,
    restart: &str,
    grace: Option<i64>,
) -> Result<Value, String> {
    let mut env: Vec<String> = Vec::new();
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let m = o.config_maps.get(&r.name).ok_or_else(|| {
                format!(
                    "container {}: envFrom names ConfigMap {:?}, which the file does not define",
                    c.name, r.name
                )
            })?;
            env.extend(m.iter().map(|(k, v)| format!("{prefix}{k}={}", text(v))));
        }
        if let Some(r) = &from.secret_ref {
            let m = o.secrets.get(&r.name).ok_or_else(|| {
                format!(
                    "container {}: envFrom names Secret {:?}, which the file does not define",
                    c.name, r.name
                )
            })?;
            env.extend(m.iter().map(|(k, v)| format!("{prefix}{k}={}", text(v))));
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            v.clone()
        } else if let Some(from) = &e.value_from {
            if let Some(r) = &from.config_map_key_ref {
                o.config_maps.get(&r.name).and_then(|m| m.get(&r.key)).map(|v| text(v)).ok_or_else(|| format!("container {}: env {} wants key {:?} of ConfigMap {:?}, which the file does not define", c.name, e.name, r.key, r.name))?
            } else if let Some(r) = &from.secret_key_ref {
                o.secrets.get(&r.name).and_then(|m| m.get(&r.key)).map(|v| text(v)).ok_or_else(|| format!("container {}: env {} wants key {:?} of Secret {:?}, which the file does not define", c.name, e.name, r.key, r.name))?
            } else if let Some(f) = &from.field_ref {
                match f.field_path.as_str() {
                    "metadata.name" => pod.to_string(),
                    other => return Err(format!("container {}: env {} uses fieldRef {other}, which berth does not support (only metadata.name)", c.name, e.name)),
                }
            } else {
                return Err(format!(
                    "container {}: env {} uses a valueFrom berth does not support",
                    c.name, e.name
                ));
            }
        } else {
            String::new()
        };
        env.push(format!("{}={value}", e.name));
    }
    let mut mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let base = vol_mounts.get(&m.name).ok_or_else(|| {
            format!(
                "container {}: volumeMount {:?} names no volume of the pod",
                c.name, m.name
            )
        })?;
        let mut mount = base.clone();
        mount["Target"] = json!(m.mount_path);
        mount["ReadOnly"] = json!(base["ReadOnly"] == true || m.read_only == Some(true));
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sub.starts_with('/') || sub.split('/').any(|c| c == "..") {
                return Err(format!(
                    "container {}: volumeMount {:?}: subPath {sub:?} must be relative and must not contain '..'",
                    c.name, m.name
                ));
            }
            if base["Type"] == "bind" {
                let src = base["Source"].as_str().unwrap_or_default();
                mount["Source"] = json!(format!("{}/{sub}", src.trim_end_matches('/')));
            } else {
                mount["VolumeOptions"] = json!({"Subpath": sub});
            }
        }
        mounts.push(mount);
    }
    let mut labels = common_labels(play, pod);
    labels.insert(labels::CONTAINER.into(), json!(c.name));
    let mut host = json!({
        "NetworkMode": format!("container:{infra}"),
        "IpcMode": format!("container:{infra}"),
        "UTSMode": format!("container:{infra}"),
        "Mounts": mounts,
        "RestartPolicy": {"Name": restart},
    });
    if let Some(limits) = c.resources.as_ref().and_then(|r| r.limits.as_ref()) {
        if let Some(m) = limits.get("memory") {
            let bytes = quantity_bytes(&m.0).ok_or_else(|| {
                format!(
                    "container {}: memory limit {:?} is not a quantity",
                    c.name, m.0
                )
            })?;
            host["Memory"] = json!(bytes);
        }
        if let Some(cpu) = limits.get("cpu") {
            let cores = quantity_cpus(&cpu.0).ok_or_else(|| {
                format!(
                    "container {}: cpu limit {:?} is not a quantity",
                    c.name, cpu.0
                )
            })?;
            host["NanoCpus"] = json!((cores * 1e9) as i64);
        }
    }
    let mut user = None;
    if let Some(sc) = &c.security_context {
        if let Some(caps) = &sc.capabilities {
            if let Some(a) = &caps.add {
                host["CapAdd"] = json!(a);
            }
            if let Some(d) = &caps.drop {
                host["CapDrop"] = json!(d);
            }
        }
        if sc.read_only_root_filesystem == Some(true) {
            host["ReadonlyRootfs"] = json!(true);
        }
        if sc.privileged == Some(true) {
            host["Privileged"] = json!(true);
        }
        user = match (sc.run_as_user, sc.run_as_group) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (Some(u), None) => Some(u.to_string()),
            _ => None,
        };
    }
    let mut body = json!({
        "Image": c.image.clone().unwrap_or_default(),
        "Env": env,
        "Labels": labels,
        "HostConfig": host,
    });
    // Kubernetes' command replaces the image's entrypoint, args its cmd; a command without
    // args runs without the image's cmd.
    if let Some(cmd) = &c.command {
        body["Entrypoint"] = json!(cmd);
        body["Cmd"] = json!(c.args.clone().unwrap_or_default());
    } else if let Some(args) = &c.args {
        body["Cmd"] = json!(args);
    }
    if let Some(w) = &c.working_dir {
        body["WorkingDir"] = json!(w);
    }
    if let Some(u) = user {
        body["User"] = json!(u);
    }
    if c.tty == Some(true) {
        body["Tty"] = json!(true);
    }
    if c.stdin == Some(true) {
        body["OpenStdin"] = json!(true);
    }
    if let Some(g) = grace {
        body["StopTimeout"] = json!(g);
    }
    let probe = c
        .liveness_probe
        .as_ref()
        .or(c.readiness_probe.as_ref())
        .or(c.startup_probe.as_ref());
    if let Some(p) = probe {
        let test = probe_test(p).ok_or_else(|| {
            format!(
                "container {}: a probe without exec, httpGet or tcpSocket",
                c.name
            )
        })?;
        let s = |n: Option<i32>| n.map(|n| i64::from(n) * 1_000_000_000);
        let mut hc = json!({"Test": test});
        if let Some(i) = s(p.period_seconds) {
            hc["Interval"] = json!(i);
        }
        if let Some(t) = s(p.timeout_seconds) {
            hc["Timeout"] = json!(t);
        }
        if let Some(d) = s(p.initial_delay_seconds) {
            hc["StartPeriod"] = json!(d);
        }
        if let Some(r) = p.failure_threshold {
            hc["Retries"] = json!(r);
        }
        body["Healthcheck"] = hc;
    }
    Ok(body)
}

/// A ConfigMap's or Secret's value as an environment variable's text.
fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// A Kubernetes memory quantity (`64Mi`, `1G`, `128974848`, `129e6`) in bytes.
pub fn quantity_bytes(q: &str) -> Option<i64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// A Kubernetes CPU quantity (`500m`, `1.5`) in cores.
pub fn quantity_cpus(q: &str) -> Option<f64> {
    match q.trim().strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.trim().parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {GREETING: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {TOKEN: t0k}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  restartPolicy: OnFailure
  initContainers:
    - name: prep
      image: busybox
      command: [sh, -c, "echo prepared > /work/ready"]
      volumeMounts: [{name: work, mountPath: /work}]
  containers:
    - name: server
      image: busybox
      command: [httpd]
      args: ["-f", "-p", "8080"]
      ports: [{containerPort: 8080, name: http}]
      env:
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: GREETING}}}
        - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
      envFrom: [{secretRef: {name: creds}}]
      volumeMounts: [{name: work, mountPath: /work}, {name: store, mountPath: /data, readOnly: true}]
      resources: {limits: {memory: 64Mi, cpu: 500m}}
      livenessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 5}
      securityContext: {runAsUser: 1000, capabilities: {drop: [NET_RAW]}}
    - name: sidecar
      image: busybox
      args: [sleep, "300"]
  volumes:
    - {name: work, emptyDir: {}}
    - {name: store, persistentVolumeClaim: {claimName: data}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 18080, targetPort: http}]
"#;

    fn planned() -> Plan {
        plan(&documents("f.yaml", FILE).unwrap(), "f").unwrap()
    }

    #[test]
    fn a_pod_becomes_an_infra_container_and_its_containers() {
        let p = planned();
        assert_eq!(p.pods.len(), 1);
        let pod = &p.pods[0];
        assert_eq!(pod.name, "web");
        assert_eq!(
            pod.infra["HostConfig"]["PortBindings"]["8080/tcp"],
            json!([{"HostIp": "", "HostPort": "18080"}])
        );
        assert_eq!(pod.infra["Labels"]["app"], "web");
        assert_eq!(
            pod.volumes,
            vec![("web-work".to_string(), true), ("data".to_string(), false)]
        );
        let names: Vec<(&str, bool)> = pod
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.init))
            .collect();
        assert_eq!(
            names,
            vec![
                ("web-prep", true),
                ("web-server", false),
                ("web-sidecar", false)
            ]
        );
        let server = &pod.containers[1].body;
        assert_eq!(server["Entrypoint"], json!(["httpd"]));
        assert_eq!(server["Cmd"], json!(["-f", "-p", "8080"]));
        assert_eq!(
            server["Env"],
            json!(["TOKEN=t0k", "GREETING=hello", "POD=web"])
        );
        assert_eq!(server["HostConfig"]["NetworkMode"], "container:web-infra");
        assert_eq!(server["HostConfig"]["UTSMode"], "container:web-infra");
        assert_eq!(server["HostConfig"]["IpcMode"], "container:web-infra");
        assert!(server.get("Hostname").is_none());
        assert_eq!(pod.infra["Hostname"], "web");
        assert_eq!(server["HostConfig"]["Memory"], 64 << 20);
        assert_eq!(server["HostConfig"]["NanoCpus"], 500_000_000);
        assert_eq!(server["HostConfig"]["CapDrop"], json!(["NET_RAW"]));
        assert_eq!(server["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
        assert_eq!(server["User"], "1000");
        assert_eq!(
            server["HostConfig"]["Mounts"][1],
            json!({"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": true})
        );
        assert_eq!(server["Healthcheck"]["Test"][0], "CMD-SHELL");
        let sidecar = &pod.containers[2].body;
        assert!(sidecar.get("Entrypoint").is_none());
        assert_eq!(sidecar["Cmd"], json!(["sleep", "300"]));
        assert_eq!(
            pod.containers[0].body["HostConfig"]["RestartPolicy"]["Name"],
            "no"
        );
    }

    #[test]
    fn deployments_make_replicas_and_only_the_first_publishes() {
        let f = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers: [{name: c, image: busybox, ports: [{containerPort: 80}]}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec: {selector: {app: api}, ports: [{port: 9000, targetPort: 80}]}\n";
        let p = plan(&documents("d", f).unwrap(), "d").unwrap();
        assert_eq!(
            p.pods.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            vec!["api-1", "api-2"]
        );
        assert_eq!(
            p.pods[0].infra["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "9000"
        );
        assert_eq!(p.pods[1].infra["HostConfig"]["PortBindings"], json!({}));
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let e = plan(
            &documents(
                "f",
                "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n",
            )
            .unwrap(),
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unsupported kind \"Job\""), "{e}");
        let e = plan(&documents("f", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: true\n  containers: [{name: c, image: x, lifecycle: {}}]\n").unwrap(), "f").unwrap_err();
        assert_eq!(
            e.to_string(),
            "pod p: unsupported fields: spec.hostPID, spec.containers[0].lifecycle"
        );
        let e = plan(&documents("f", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: x, envFrom: [{configMapRef: {name: nope}}]}]\n").unwrap(), "f").unwrap_err();
        assert!(e.to_string().contains("ConfigMap \"nope\""), "{e}");
        assert!(documents("f", "a: [1\n").is_err());
        let p = plan(&documents("f", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  dnsPolicy: ClusterFirst\n  containers: [{name: c, image: x}]\n").unwrap(), "f").unwrap();
        assert_eq!(
            p.warnings,
            vec!["spec.dnsPolicy has no effect on one machine; ignored"]
        );
    }

    #[test]
    fn modes_with_a_leading_zero_are_octal() {
        let d = documents("f", "a: 0440\nb: 420\nc: '0440'\n").unwrap();
        assert_eq!(d[0], json!({"a": 0o440, "b": 420, "c": "0440"}));
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_bytes("64Mi"), Some(64 << 20));
        assert_eq!(quantity_bytes("1G"), Some(1_000_000_000));
        assert_eq!(quantity_bytes("128974848"), Some(128974848));
        assert_eq!(quantity_bytes("1x"), None);
        assert_eq!(quantity_cpus("500m"), Some(0.5));
        assert_eq!(quantity_cpus("2"), Some(2.0));
    }
}
