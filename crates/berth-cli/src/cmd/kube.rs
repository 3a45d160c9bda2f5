//! `berth kube`: generate (berth-kube's model from inspect JSON or a Compose project, written
//! as Kubernetes YAML) and play/down (berth-kube's plan carried out through the client).

use berth_kube::generate::{self, Kind};
use berth_kube::model::{
    compose_env_file_pairs, compose_secrets, container_from_compose, container_from_inspect,
    dns_name, env_files_to_config_map, ports_from_inspect, PodModel,
};
use berth_kube::play;
use serde_json::Value;

use crate::cli::{KubeArgs, KubeCmd, KubeGenerateArgs, KubePlayArgs};
use crate::exit::Exit;

fn progress(line: &str) {
    eprintln!("{line}");
}

pub async fn run(c: &berth_client::Client, a: &KubeArgs) -> anyhow::Result<()> {
    match &a.cmd {
        KubeCmd::Generate(g) => generate(c, g).await,
        KubeCmd::Play(p) => play_file(c, p, false).await,
        KubeCmd::Down(p) => play_file(c, p, true).await,
    }
}

/// Whether this `kube` command needs no daemon (`generate --compose` reads files only).
pub fn offline(a: &KubeArgs) -> bool {
    matches!(&a.cmd, KubeCmd::Generate(g) if g.compose || !g.compose_files.is_empty())
}

/// `generate --compose`, without a daemon.
pub fn generate_offline(a: &KubeArgs) -> anyhow::Result<()> {
    let KubeCmd::Generate(g) = &a.cmd else {
        unreachable!("only generate is offline")
    };
    let pods = compose_pods(g)?;
    write(&pods, g, true)
}

fn compose_pods(g: &KubeGenerateArgs) -> anyhow::Result<Vec<PodModel>> {
    let mut pods = Vec::new();
    {
        let opts = berth_compose::LoadOptions {
            files: g.compose_files.iter().map(Into::into).collect(),
            environment: std::env::vars().collect(),
            cwd: std::env::current_dir()?,
            ..Default::default()
        };
        let p = berth_compose::load(&opts).map_err(|e| Exit::msg(1, e.to_string()))?;
        let read = |f: &std::path::Path| std::fs::read_to_string(f).map_err(|e| e.to_string());
        for (name, svc) in p
            .model
            .get("services")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let pod = dns_name(&format!("{}-{name}", p.name));
            let mut container = container_from_compose(&p.model, name, svc);
            // env_file values go to a ConfigMap; `environment:` stays inline.
            let pairs = compose_env_file_pairs(&p, name, &read).map_err(|e| Exit::msg(1, e))?;
            let config_maps = env_files_to_config_map(&pod, &mut container, &pairs)
                .into_iter()
                .collect();
            // Its secrets: a Secret mounted file by file.
            let read_bytes = |f: &std::path::Path| std::fs::read(f).map_err(|e| e.to_string());
            let secrets = compose_secrets(&p, &pod, &mut container, svc, &read_bytes)
                .map_err(|e| Exit::msg(1, e))?
                .into_iter()
                .collect();
            pods.push(PodModel {
                name: pod,
                labels: vec![("io.berth.compose.project".into(), dns_name(&p.name))],
                containers: vec![container],
                config_maps,
                secrets,
                restart: svc.get("restart").and_then(Value::as_str).map(String::from),
                replicas: svc
                    .pointer("/deploy/replicas")
                    .and_then(Value::as_i64)
                    .map(|n| n as i32),
            });
        }
    }
    Ok(pods)
}

async fn generate(c: &berth_client::Client, g: &KubeGenerateArgs) -> anyhow::Result<()> {
    let mut pods = Vec::new();
    {
        if g.names.is_empty() {
            return Err(Exit::msg(
                1,
                "kube generate: name containers, a pod `kube play` made, or use --compose",
            ));
        }
        // A pod `kube play` made: its containers but the infra.
        let filters =
            serde_json::json!({"label": [format!("{}={}", play::labels::POD, g.names[0])]})
                .to_string();
        let q = super::Query::new().add("all", "1").add("filters", filters);
        let members: Vec<Value> = c.get_json(&q.on("/containers/json")).await?;
        let ids: Vec<String> = if g.names.len() == 1 && !members.is_empty() {
            members
                .iter()
                .filter(|m| m["Labels"][play::labels::INFRA].as_str() != Some("true"))
                .filter_map(|m| m["Id"].as_str().map(String::from))
                .collect()
        } else {
            g.names.clone()
        };
        let mut containers: Vec<berth_kube::model::ContainerModel> = Vec::new();
        let mut restart = None;
        for id in &ids {
            let v: Value = c
                .get_json(&format!("/containers/{}/json", super::path_name(id)))
                .await
                .map_err(|e| Exit::msg(1, format!("{id}: {e}")))?;
            let mut m = container_from_inspect(&v);
            if let Some(n) = v["Config"]["Labels"][play::labels::CONTAINER].as_str() {
                m.name = dns_name(n);
            }
            restart = v["HostConfig"]["RestartPolicy"]["Name"]
                .as_str()
                .map(String::from);
            containers.push(m);
        }
        // A played pod publishes its ports on the infra: they go to its first container.
        let infra = members
            .iter()
            .find(|m| m["Labels"][play::labels::INFRA].as_str() == Some("true"));
        if let (Some(infra), Some(first)) =
            (infra.filter(|_| g.names.len() == 1), containers.first_mut())
        {
            let id = infra["Id"].as_str().unwrap_or_default();
            let v: Value = c.get_json(&format!("/containers/{id}/json")).await?;
            first.ports.extend(ports_from_inspect(&v));
        }
        let name = g.name.clone().unwrap_or_else(|| {
            if !members.is_empty() && g.names.len() == 1 {
                g.names[0].clone()
            } else {
                format!("{}-pod", containers[0].name)
            }
        });
        pods.push(PodModel {
            name: dns_name(&name),
            labels: vec![],
            containers,
            restart,
            replicas: None,
            config_maps: vec![],
            secrets: vec![],
        });
    }
    write(&pods, g, false)
}

/// The pods as YAML on stdout.
fn write(pods: &[PodModel], g: &KubeGenerateArgs, compose: bool) -> anyhow::Result<()> {
    let kind = match g.kind.as_deref() {
        Some("deployment") => Kind::Deployment,
        Some(_) => Kind::Pod,
        None if compose => Kind::Deployment,
        None => Kind::Pod,
    };
    let mut objects = Vec::new();
    for p in pods {
        for o in generate::objects(p, kind) {
            // One claim per volume, even when several pods mount it.
            let dup = matches!(&o, generate::Object::Claim(c) if objects.iter().any(|x| matches!(x, generate::Object::Claim(y) if y.metadata.name == c.metadata.name)));
            if !dup {
                objects.push(o);
            }
        }
    }
    print!(
        "{}",
        generate::to_yaml(&objects).map_err(anyhow::Error::msg)?
    );
    Ok(())
}

async fn play_file(c: &berth_client::Client, a: &KubePlayArgs, down: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| Exit::msg(1, format!("open {}: {e}", a.file)))?;
    let docs = play::documents(&a.file, &text).map_err(|e| Exit::msg(1, e.to_string()))?;
    let id = std::path::Path::new(&a.file)
        .file_stem()
        .map(|s| dns_name(&s.to_string_lossy()))
        .unwrap_or_else(|| "play".into());
    let plan = play::plan(&docs, &id).map_err(|e| Exit::msg(1, e.to_string()))?;
    for w in &plan.warnings {
        eprintln!("WARN {w}");
    }
    let r = if down {
        berth_kube::apply::down(c, &plan, &progress).await
    } else {
        berth_kube::apply::play(c, &plan, &id, &progress).await
    };
    r.map_err(|e| Exit::msg(1, e.to_string()))
}
