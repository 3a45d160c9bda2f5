//! `berth pod`: pods made by hand, the same shape `kube play` gives a Kubernetes Pod — an infra
//! container (network, IPC and UTS namespaces, published ports) that `run --pod NAME`
//! containers join.

use serde_json::{json, Value};

use berth_kube::play::{labels, INFRA_IMAGE, NETWORK};

use crate::cli::{PodCmd, PodCreateArgs, PodLsArgs, RunArgs};
use crate::exit::Exit;

fn infra_of(pod: &str) -> String {
    format!("{pod}-infra")
}

/// `run --pod NAME`: the flags that join the pod's infra container. Options the pod owns
/// (network, IPC, UTS, published ports, hostname) are refused rather than ignored.
pub fn join(a: &RunArgs, pod: &str) -> Result<RunArgs, String> {
    let owned = [
        ("--network", a.network.is_some()),
        ("--ipc", a.ipc.is_some()),
        ("--uts", a.uts.is_some()),
        ("--publish", !a.publish.is_empty() || a.publish_all),
        ("--hostname", a.hostname.is_some()),
    ];
    if let Some((flag, _)) = owned.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{flag} cannot be used with --pod: the pod {pod:?} owns it (set it at `berth pod create`)"
        ));
    }
    let mut j = a.clone();
    j.network = Some(format!("container:{}", infra_of(pod)));
    j.ipc = Some(format!("container:{}", infra_of(pod)));
    j.uts = Some(format!("container:{}", infra_of(pod)));
    j.label.push(format!("{}={pod}", labels::POD));
    if let Some(n) = &a.name {
        j.label.push(format!("{}={n}", labels::CONTAINER));
    }
    Ok(j)
}

pub async fn run(c: &berth_client::Client, cmd: &PodCmd) -> anyhow::Result<()> {
    match cmd {
        PodCmd::Create(a) => create(c, a).await,
        PodCmd::Ls(a) => ls(c, a).await,
        PodCmd::Inspect(a) => {
            let mut out = Vec::new();
            for n in &a.names {
                out.push(inspect(c, n).await?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        PodCmd::Start(a) => {
            for n in &a.names {
                let (infra, members) = members(c, n).await?;
                for id in std::iter::once(&infra).chain(members.iter()) {
                    start_or_stop(c, id, "start").await?;
                }
                println!("{n}");
            }
            Ok(())
        }
        PodCmd::Stop(a) => {
            for n in &a.names {
                let (infra, members) = members(c, n).await?;
                for id in members.iter().chain(std::iter::once(&infra)) {
                    start_or_stop(c, id, "stop").await?;
                }
                println!("{n}");
            }
            Ok(())
        }
        PodCmd::Rm(a) => {
            for n in &a.names {
                let (infra, members) = members(c, n).await?;
                let force = if a.force { "1" } else { "0" };
                for id in members.iter().chain(std::iter::once(&infra)) {
                    c.delete(&format!("/containers/{id}?force={force}&v=1"))
                        .await
                        .map_err(|e| {
                            Exit::msg(
                                1,
                                format!("pod {n}: {e}{}", if a.force { "" } else { " (use -f)" }),
                            )
                        })?;
                }
                println!("{n}");
            }
            Ok(())
        }
    }
}

async fn start_or_stop(c: &berth_client::Client, id: &str, what: &str) -> anyhow::Result<()> {
    match c
        .post::<Value>(&format!("/containers/{id}/{what}"), None)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.status() == Some(304) => Ok(()),
        Err(e) => Err(Exit::msg(1, e.to_string())),
    }
}

async fn list(c: &berth_client::Client, label: &str) -> anyhow::Result<Vec<Value>> {
    let filters = json!({"label": [label]}).to_string();
    let q = super::Query::new().add("all", "1").add("filters", filters);
    Ok(c.get_json(&q.on("/containers/json")).await?)
}

/// The pod's infra container id and its members' ids.
async fn members(c: &berth_client::Client, pod: &str) -> anyhow::Result<(String, Vec<String>)> {
    let all = list(c, &format!("{}={pod}", labels::POD)).await?;
    let mut infra = None;
    let mut rest = Vec::new();
    for x in all {
        let id = x["Id"].as_str().unwrap_or_default().to_string();
        if x["Labels"][labels::INFRA].as_str() == Some("true") {
            infra = Some(id);
        } else {
            rest.push(id);
        }
    }
    let infra = infra.ok_or_else(|| Exit::msg(1, format!("no such pod: {pod}")))?;
    Ok((infra, rest))
}

async fn create(c: &berth_client::Client, a: &PodCreateArgs) -> anyhow::Result<()> {
    // The infra image and the default network, as `kube play` makes them.
    berth_kube::apply::ensure_infra(c, &|l| eprintln!("{l}"))
        .await
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    let network = a.network.clone().unwrap_or_else(|| NETWORK.to_string());
    let mut run = RunArgs {
        name: Some(infra_of(&a.name)),
        detach: true,
        init: true,
        network: Some(network),
        hostname: Some(a.hostname.clone().unwrap_or_else(|| a.name.clone())),
        ipc: Some("shareable".into()),
        publish: a.publish.clone(),
        restart: Some("unless-stopped".into()),
        image: INFRA_IMAGE.to_string(),
        args: vec!["/bin/busybox".into(), "sleep".into(), "2147483647".into()],
        pull: "never".into(),
        ..RunArgs::default()
    };
    run.label = a.label.clone();
    run.label.push(format!("{}={}", labels::POD, a.name));
    run.label.push(format!("{}=true", labels::INFRA));
    let plan = super::run::plan_from(&run, "pod create")?;
    let id = super::run::create(c, &plan, &run.pull).await?;
    c.post::<Value>(&format!("/containers/{id}/start"), None)
        .await
        .map_err(|e| Exit::msg(1, format!("pod {}: {e}", a.name)))?;
    println!("{id}");
    Ok(())
}

async fn inspect(c: &berth_client::Client, pod: &str) -> anyhow::Result<Value> {
    let (infra, members) = members(c, pod).await?;
    let info: Value = c.get_json(&format!("/containers/{infra}/json")).await?;
    let mut ctrs = Vec::new();
    for id in &members {
        let m: Value = c.get_json(&format!("/containers/{id}/json")).await?;
        ctrs.push(json!({
            "Id": m["Id"],
            "Name": m["Name"].as_str().unwrap_or_default().trim_start_matches('/'),
            "State": m["State"]["Status"],
        }));
    }
    Ok(json!({
        "Name": pod,
        "InfraContainerId": infra,
        "State": info["State"]["Status"],
        "Created": info["Created"],
        "Hostname": info["Config"]["Hostname"],
        "Ports": info["HostConfig"]["PortBindings"],
        "Labels": info["Config"]["Labels"],
        "Containers": ctrs,
    }))
}

async fn ls(c: &berth_client::Client, a: &PodLsArgs) -> anyhow::Result<()> {
    let infras = list(c, &format!("{}=true", labels::INFRA)).await?;
    let mut rows = Vec::new();
    for x in &infras {
        let Some(pod) = x["Labels"][labels::POD].as_str() else {
            continue;
        };
        let members = list(c, &format!("{}={pod}", labels::POD)).await?.len() - 1;
        rows.push((
            pod.to_string(),
            x["State"].as_str().unwrap_or_default().to_string(),
            members,
            x["Id"].as_str().unwrap_or_default().to_string(),
        ));
    }
    rows.sort();
    if a.quiet {
        rows.iter().for_each(|r| println!("{}", r.0));
    } else if a.format == "json" {
        let v: Vec<Value> = rows
            .iter()
            .map(|(n, s, m, id)| json!({"Name": n, "Status": s, "Containers": m, "InfraId": id}))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let mut t = String::from("NAME\tSTATUS\tCONTAINERS\tINFRA ID\n");
        for (n, s, m, id) in &rows {
            t.push_str(&format!("{n}\t{s}\t{m}\t{}\n", crate::format::short_id(id)));
        }
        print!("{}", crate::format::tabulate(&t));
    }
    Ok(())
}
