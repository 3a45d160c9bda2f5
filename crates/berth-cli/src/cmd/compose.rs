//! `berth compose`: load the project (berth-compose), then `config` prints it without a daemon
//! and `up`/`down`/`ps` apply it through the same client as every other command. Errors print
//! as one line and exit 1, as Compose v2's do.

use std::path::PathBuf;

use berth_compose::apply::{self, Action, BuildRequest, DownOptions, UpOptions};
use berth_compose::{LoadOptions, Project};
use serde_json::Value;

use crate::cli::{
    BuildArgs, ComposeArgs, ComposeCmd, ComposeConfigArgs, ComposeExecArgs, ComposeLogsArgs,
    ComposePsArgs, ExecArgs,
};
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
            let mut scale = std::collections::BTreeMap::new();
            for s in &u.scale {
                let parsed = s
                    .split_once('=')
                    .and_then(|(k, n)| n.parse::<u32>().ok().map(|n| (k.to_string(), n)));
                let Some((k, n)) = parsed else {
                    return Err(Exit::msg(
                        1,
                        format!("invalid --scale {s:?}: use SERVICE=NUM"),
                    ));
                };
                scale.insert(k, n);
            }
            let o = UpOptions {
                force_recreate: u.force_recreate,
                no_recreate: u.no_recreate,
                remove_orphans: u.remove_orphans,
                services: u.services.clone(),
                build: u.build,
                no_build: u.no_build,
                scale,
            };
            let builder = image_builder(c, false, false, &[]);
            apply::up(c, &p, &o, &builder, &progress)
                .await
                .map_err(fail)
        }
        ComposeCmd::Build(b) => {
            let builder = image_builder(c, b.no_cache, b.pull, &b.build_arg);
            apply::build(&p, &b.services, &builder, &progress)
                .await
                .map_err(fail)
        }
        ComposeCmd::Logs(l) => logs(c, &p, l).await,
        ComposeCmd::Exec(e) => exec(c, &p, e).await,
        ComposeCmd::Start(s) => {
            apply::lifecycle(c, &p, Action::Start, &s.services, None, &progress)
                .await
                .map_err(fail)
        }
        ComposeCmd::Kill(s) => apply::lifecycle(c, &p, Action::Kill, &s.services, None, &progress)
            .await
            .map_err(fail),
        ComposeCmd::Stop(s) => {
            apply::lifecycle(c, &p, Action::Stop, &s.services, s.timeout, &progress)
                .await
                .map_err(fail)
        }
        ComposeCmd::Restart(s) => {
            apply::lifecycle(c, &p, Action::Restart, &s.services, s.timeout, &progress)
                .await
                .map_err(fail)
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

/// Builds a service's image with `berth build`'s code over the same client: the normalized
/// `build` section becomes its flags (the Dockerfile path made absolute, as the model's
/// context is).
fn image_builder<'a>(
    c: &'a berth_client::Client,
    no_cache: bool,
    pull: bool,
    extra_args: &'a [String],
) -> impl Fn(BuildRequest) -> futures::future::BoxFuture<'a, Result<(), String>> + Sync + 'a {
    move |req: BuildRequest| {
        let spec = req.spec;
        let context = spec
            .get("context")
            .and_then(Value::as_str)
            .unwrap_or(".")
            .to_string();
        let strs = |key: &str| -> Vec<String> {
            spec.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let kv = |key: &str| -> Vec<String> {
            spec.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| match v.as_str() {
                            Some(v) => format!("{k}={v}"),
                            None => k.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut build_arg = kv("args");
        build_arg.extend(extra_args.iter().cloned());
        let args = BuildArgs {
            tag: vec![req.image],
            file: spec.get("dockerfile").and_then(Value::as_str).map(|f| {
                PathBuf::from(&context)
                    .join(f)
                    .to_string_lossy()
                    .into_owned()
            }),
            build_arg,
            target: spec.get("target").and_then(Value::as_str).map(String::from),
            no_cache: no_cache || spec.get("no_cache").and_then(Value::as_bool) == Some(true),
            pull: pull || spec.get("pull").and_then(Value::as_bool) == Some(true),
            label: kv("labels"),
            network: spec
                .get("network")
                .and_then(Value::as_str)
                .map(String::from),
            add_host: strs("extra_hosts")
                .into_iter()
                .map(|h| h.replacen('=', ":", 1))
                .collect(),
            cache_from: strs("cache_from"),
            context,
            ..BuildArgs::default()
        };
        Box::pin(async move {
            crate::cmd::build::build(c, args).await.map_err(|e| {
                crate::exit::report(&e, 1)
                    .0
                    .unwrap_or_else(|| e.to_string())
            })
        }) as futures::future::BoxFuture<'a, Result<(), String>>
    }
}

/// `exec`: the service's container at `--index` runs the command, as `berth exec` runs it.
async fn exec(c: &berth_client::Client, p: &Project, e: &ComposeExecArgs) -> anyhow::Result<()> {
    let list = apply::service_containers(c, p, &e.service)
        .await
        .map_err(|err| Exit::msg(1, err.to_string()))?;
    let Some((id, _)) = list.get(e.index.saturating_sub(1)) else {
        return Err(Exit::msg(
            1,
            format!(
                "service {:?} is not running container #{}",
                e.service, e.index
            ),
        ));
    };
    let tty = !e.no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
    crate::cmd::run::exec(
        c,
        ExecArgs {
            detach: e.detach,
            interactive: !e.detach,
            tty,
            env: e.env.clone(),
            user: e.user.clone(),
            workdir: e.workdir.clone(),
            privileged: e.privileged,
            container: id.clone(),
            cmd: e.cmd.clone(),
            ..ExecArgs::default()
        },
    )
    .await
}

/// `logs`: each container's output, line by line, prefixed with its name and `|` (names
/// padded to one width, as Compose aligns them); `-f` follows all of them at once.
async fn logs(c: &berth_client::Client, p: &Project, l: &ComposeLogsArgs) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    let services: Vec<String> = if l.services.is_empty() {
        p.model
            .get("services")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        l.services.clone()
    };
    for s in &services {
        targets.extend(
            apply::service_containers(c, p, s)
                .await
                .map_err(|err| Exit::msg(1, err.to_string()))?,
        );
    }
    let width = targets.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    let streams = targets.iter().map(|(id, name)| {
        let prefix = if l.no_log_prefix {
            String::new()
        } else {
            format!("{name:width$}  | ")
        };
        log_stream(c, id, prefix, l)
    });
    for r in futures::future::join_all(streams).await {
        r?;
    }
    Ok(())
}

async fn log_stream(
    c: &berth_client::Client,
    id: &str,
    prefix: String,
    l: &ComposeLogsArgs,
) -> anyhow::Result<()> {
    use std::io::Write;
    let info: Value = c.get_json(&format!("/containers/{id}/json")).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = super::Query::new()
        .add("stdout", "1")
        .add("stderr", "1")
        .flag("follow", l.follow)
        .flag("timestamps", l.timestamps)
        .add("tail", &l.tail);
    let mut s = c
        .stream(
            hyper::Method::GET,
            &q.on(&format!("/containers/{id}/logs")),
            berth_client::body::empty(),
            &[],
        )
        .await?;
    let mut demux = berth_client::demux::Demuxer::new();
    let mut pending: Vec<u8> = Vec::new();
    let emit = |line: &[u8]| {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(prefix.as_bytes());
        let _ = o.write_all(line);
        let _ = o.write_all(b"\n");
    };
    while let Some(chunk) = s.next_chunk().await? {
        let payloads: Vec<Vec<u8>> = if tty {
            vec![chunk.to_vec()]
        } else {
            demux
                .push(&chunk)
                .map_err(|b| anyhow::anyhow!("malformed log stream (stream byte {})", b.0))?
                .into_iter()
                .map(|(_, b)| b.to_vec())
                .collect()
        };
        for b in payloads {
            pending.extend_from_slice(&b);
            while let Some(i) = pending.iter().position(|x| *x == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                emit(&line[..line.len() - 1]);
            }
        }
    }
    if !pending.is_empty() {
        emit(&pending);
    }
    Ok(())
}
