//! `berth compose`: load the project (berth-compose), then `config` prints it without a daemon
//! and `up`/`down`/`ps` apply it through the same client as every other command. Errors print
//! as one line and exit 1, as Compose v2's do.

use std::path::PathBuf;

use berth_compose::apply::{self, DownOptions, UpOptions};
use berth_compose::{LoadOptions, Project};
use serde_json::Value;

use crate::cli::{ComposeArgs, ComposeCmd, ComposeConfigArgs, ComposePsArgs};
use crate::exit::Exit;

/// Load the project the flags and the environment name.
pub fn load(a: &ComposeArgs) -> anyhow::Result<Project> {
    let cwd = std::env::current_dir()?;
    let opts = LoadOptions {
        files: a.files.iter().map(PathBuf::from).collect(),
        project_directory: a.project_directory.as_ref().map(PathBuf::from),
        project_name: a.project_name.clone(),
        env_files: a.env_files.iter().map(PathBuf::from).collect(),
        profiles: a.profiles.clone(),
        environment: std::env::vars().collect(),
        cwd,
    };
    let p = berth_compose::load(&opts).map_err(|e| Exit::msg(1, e.to_string()))?;
    for w in &p.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(p)
}

/// `config`.
pub fn config(a: &ComposeArgs, c: &ComposeConfigArgs) -> anyhow::Result<()> {
    let p = load(a)?;
    if c.quiet {
        return Ok(());
    }
    let keys = |section: &str| -> Vec<String> {
        p.model
            .get(section)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    if c.services {
        keys("services").iter().for_each(|s| println!("{s}"));
        return Ok(());
    }
    if c.volumes {
        keys("volumes").iter().for_each(|s| println!("{s}"));
        return Ok(());
    }
    if c.profiles {
        let mut profiles: Vec<String> = p
            .model
            .get("services")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|s| s.get("profiles").and_then(Value::as_array))
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        profiles.sort();
        profiles.dedup();
        profiles.iter().for_each(|s| println!("{s}"));
        return Ok(());
    }
    let shown = berth_compose::project::for_output(&p.model);
    match c.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&shown)?),
        "yaml" => print!(
            "{}",
            berth_compose::project::to_yaml(&shown).map_err(anyhow::Error::msg)?
        ),
        other => {
            return Err(Exit::msg(
                1,
                format!("unsupported format {other:?}: use yaml or json"),
            ))
        }
    }
    Ok(())
}

fn progress(line: &str) {
    eprintln!("{line}");
}

/// The subcommands that talk to a daemon.
pub async fn run(c: &berth_client::Client, a: &ComposeArgs) -> anyhow::Result<()> {
    let p = load(a)?;
    let fail = |e: apply::ApplyError| -> anyhow::Error { Exit::msg(1, e.to_string()) };
    match &a.cmd {
        ComposeCmd::Config(_) => unreachable!("config needs no daemon"),
        ComposeCmd::Up(u) => {
            if !u.detach {
                return Err(Exit::msg(
                    1,
                    "berth compose up runs detached only for now: add -d (then `berth logs` or `berth compose ps`)",
                ));
            }
            let o = UpOptions {
                force_recreate: u.force_recreate,
                no_recreate: u.no_recreate,
                remove_orphans: u.remove_orphans,
                services: u.services.clone(),
            };
            apply::up(c, &p, &o, &progress).await.map_err(fail)
        }
        ComposeCmd::Down(d) => {
            let o = DownOptions {
                volumes: d.volumes,
                remove_orphans: d.remove_orphans,
                timeout: d.timeout,
            };
            apply::down(c, &p, &o, &progress).await.map_err(fail)
        }
        ComposeCmd::Ps(ps) => list(c, &p, ps).await,
    }
}

async fn list(c: &berth_client::Client, p: &Project, a: &ComposePsArgs) -> anyhow::Result<()> {
    let mut rows = apply::containers(c, &p.name)
        .await
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    if !a.all {
        rows.retain(|r| r.get("State").and_then(Value::as_str) == Some("running"));
    }
    let label = |r: &Value, k: &str| -> String {
        r.get("Labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let name = |r: &Value| -> String {
        r.pointer("/Names/0")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string()
    };
    rows.sort_by_key(name);
    if a.quiet {
        for r in &rows {
            println!(
                "{}",
                r.get("Id").and_then(Value::as_str).unwrap_or_default()
            );
        }
        return Ok(());
    }
    if a.services {
        let mut s: Vec<String> = rows
            .iter()
            .map(|r| label(r, berth_compose::plan::labels::SERVICE))
            .collect();
        s.dedup();
        s.iter().for_each(|s| println!("{s}"));
        return Ok(());
    }
    if a.format == "json" {
        let out: Vec<Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "ID": r.get("Id"),
                    "Name": name(r),
                    "Image": r.get("Image"),
                    "Command": r.get("Command"),
                    "Project": p.name,
                    "Service": label(r, berth_compose::plan::labels::SERVICE),
                    "State": r.get("State"),
                    "Status": r.get("Status"),
                    "Publishers": r.get("Ports"),
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp();
    let mut s = String::from("NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS\n");
    for r in &rows {
        let ports: Vec<String> = r
            .get("Ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|pt| {
                let private = pt.get("PrivatePort").and_then(Value::as_u64).unwrap_or(0);
                let typ = pt.get("Type").and_then(Value::as_str).unwrap_or("tcp");
                match pt.get("PublicPort").and_then(Value::as_u64) {
                    Some(public) => format!(
                        "{}:{public}->{private}/{typ}",
                        pt.get("IP").and_then(Value::as_str).unwrap_or("0.0.0.0")
                    ),
                    None => format!("{private}/{typ}"),
                }
            })
            .collect();
        s.push_str(&format!(
            "{}\t{}\t\"{}\"\t{}\t{}\t{}\t{}\n",
            name(r),
            r.get("Image").and_then(Value::as_str).unwrap_or_default(),
            r.get("Command").and_then(Value::as_str).unwrap_or_default(),
            label(r, berth_compose::plan::labels::SERVICE),
            crate::units::ago(r.get("Created").and_then(Value::as_i64).unwrap_or(now), now),
            r.get("Status").and_then(Value::as_str).unwrap_or_default(),
            ports.join(", "),
        ));
    }
    print!("{}", crate::format::tabulate(&s));
    Ok(())
}
