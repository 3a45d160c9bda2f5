//! Network and volume commands.

use berth_client::Client;
use serde_json::{json, Value};

use super::{path_name, Query};
use crate::cli::{
    NamesArgs, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkLsArgs,
    PruneArgs, VolumeCreateArgs,
};
use crate::exit::{describe, Exit};
use crate::format::{short_id, Lister};
use crate::opts::{filters_query, kv_map};

const NETWORKS: Lister = Lister {
    default_table: "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    headers: &[("ID", "NETWORK ID")],
};
const VOLUMES: Lister = Lister {
    default_table: "{{.Driver}}\t{{.Name}}",
    headers: &[("Name", "VOLUME NAME")],
};

pub async fn network_create(c: &Client, a: NetworkCreateArgs) -> anyhow::Result<()> {
    let mut configs = Vec::new();
    for (i, s) in a.subnet.iter().enumerate() {
        let mut cfg = json!({"Subnet": s});
        if let Some(g) = a.gateway.get(i) {
            cfg["Gateway"] = json!(g);
        }
        if let Some(r) = a.ip_range.get(i) {
            cfg["IPRange"] = json!(r);
        }
        configs.push(cfg);
    }
    if a.gateway.len() > a.subnet.len() {
        return Err(Exit::msg(1, "every gateway needs a --subnet"));
    }
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "CheckDuplicate": true,
        "Options": kv_map(&a.opt),
        "Labels": kv_map(&a.label),
        "IPAM": {"Driver": "default", "Config": configs, "Options": {}},
    });
    let r: Value = c.post_json("/networks/create", Some(&body)).await?;
    if let Some(w) = r["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    println!("{}", r["Id"].as_str().unwrap_or_default());
    Ok(())
}

pub async fn network_ls(c: &Client, a: NetworkLsArgs) -> anyhow::Result<()> {
    let q = Query::new().raw(
        "filters",
        filters_query(&a.filter).map_err(|e| Exit::msg(125, e))?,
    );
    let mut list: Vec<Value> = c.get_json(&q.on("/networks")).await?;
    list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or_default();
            json!({
                "ID": if a.no_trunc { id.to_string() } else { short_id(id) },
                "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                "CreatedAt": n["Created"],
            })
        })
        .collect();
    if a.quiet {
        for r in rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    NETWORKS.print(a.format.as_deref(), &rows)
}

pub async fn remove(c: &Client, kind: &str, a: NamesArgs) -> anyhow::Result<()> {
    let mut errs = Vec::new();
    for n in &a.names {
        let q = Query::new().flag("force", a.force && kind == "volumes");
        match c.delete(&q.on(&format!("/{kind}/{}", path_name(n)))).await {
            Ok(_) => println!("{n}"),
            Err(e) => errs.push(describe(&e.into())),
        }
    }
    super::all_ok(errs)
}

pub async fn prune(c: &Client, kind: &str, a: PruneArgs) -> anyhow::Result<()> {
    let warning = if kind == "networks" {
        "WARNING! This will remove all custom networks not used by at least one container."
    } else if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !super::confirm(warning, a.force) {
        return Ok(());
    }
    let mut filters = a.filter.clone();
    if kind == "volumes" && a.all {
        filters.push("all=true".into());
    }
    let q = Query::new().raw(
        "filters",
        filters_query(&filters).map_err(|e| Exit::msg(125, e))?,
    );
    let r: Value = c
        .post_json(&q.on(&format!("/{kind}/prune")), None::<&()>)
        .await?;
    let key = if kind == "networks" {
        "NetworksDeleted"
    } else {
        "VolumesDeleted"
    };
    let items: Vec<String> = r[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if kind == "networks" {
        if !items.is_empty() {
            println!("Deleted Networks:");
            for i in items {
                println!("{i}");
            }
        }
    } else {
        crate::cmd::image::print_reclaimed(
            "Deleted Volumes",
            &items,
            r["SpaceReclaimed"].as_i64().unwrap_or(0),
        );
    }
    Ok(())
}

pub async fn connect(c: &Client, a: NetworkConnectArgs) -> anyhow::Result<()> {
    let mut ep = json!({});
    if !a.alias.is_empty() {
        ep["Aliases"] = json!(a.alias);
    }
    if let Some(ip) = &a.ip {
        ep["IPAMConfig"] = json!({"IPv4Address": ip});
    }
    let body = json!({"Container": a.container, "EndpointConfig": ep});
    c.post(
        &format!("/networks/{}/connect", path_name(&a.network)),
        Some(&body),
    )
    .await?;
    Ok(())
}

pub async fn disconnect(c: &Client, a: NetworkDisconnectArgs) -> anyhow::Result<()> {
    let body = json!({"Container": a.container, "Force": a.force});
    c.post(
        &format!("/networks/{}/disconnect", path_name(&a.network)),
        Some(&body),
    )
    .await?;
    Ok(())
}

pub async fn volume_create(c: &Client, a: VolumeCreateArgs) -> anyhow::Result<()> {
    let body = json!({
        "Name": a.name.clone().unwrap_or_default(),
        "Driver": a.driver,
        "DriverOpts": kv_map(&a.opt),
        "Labels": kv_map(&a.label),
    });
    let r: Value = c.post_json("/volumes/create", Some(&body)).await?;
    println!("{}", r["Name"].as_str().unwrap_or_default());
    Ok(())
}

pub async fn volume_ls(c: &Client, a: NetworkLsArgs) -> anyhow::Result<()> {
    let q = Query::new().raw(
        "filters",
        filters_query(&a.filter).map_err(|e| Exit::msg(125, e))?,
    );
    let r: Value = c.get_json(&q.on("/volumes")).await?;
    let mut rows: Vec<Value> = r["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            json!({"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"],
                   "Scope": v["Scope"], "Labels": v["Labels"], "CreatedAt": v["CreatedAt"]})
        })
        .collect();
    rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    if a.quiet {
        for r in rows {
            println!("{}", r["Name"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    for w in r["Warnings"].as_array().into_iter().flatten() {
        eprintln!("WARNING: {}", w.as_str().unwrap_or_default());
    }
    VOLUMES.print(a.format.as_deref(), &rows)
}
