//! `berth compose`: load the project (berth-compose), then `config` prints it without a daemon
//! and `up`/`down`/`ps` apply it through the same client as every other command. Errors print
//! as one line and exit 1, as Compose v2's do.

use std::path::PathBuf;

use berth_compose::apply::{self, Action, BuildRequest, DownOptions, UpOptions};
use berth_compose::{LoadOptions, Project};
use serde_json::Value;

use crate::cli::{
    BuildArgs, ComposeArgs, ComposeCmd, ComposeConfigArgs, ComposeCpArgs, ComposeEventsArgs,
    ComposeExecArgs, ComposeLogsArgs, ComposeLsArgs, ComposePsArgs, ComposeRunArgs, ComposeUpArgs,
    ComposeVersionArgs, ExecArgs, PushArgs,
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
    // These two need no project.
    match &a.cmd {
        ComposeCmd::Ls(l) => return ls(c, l).await,
        ComposeCmd::Version(v) => {
            version(v);
            return Ok(());
        }
        _ => {}
    }
    let p = load(a)?;
    let fail = |e: apply::ApplyError| -> anyhow::Error { Exit::msg(1, e.to_string()) };
    match &a.cmd {
        ComposeCmd::Config(_) => unreachable!("config needs no daemon"),
        ComposeCmd::Up(u) | ComposeCmd::Create(u) => {
            let create_only = matches!(a.cmd, ComposeCmd::Create(_));
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
                no_start: create_only,
                no_deps: u.no_deps,
            };
            let builder = image_builder(c, false, false, &[]);
            apply::up(c, &p, &o, &builder, &progress)
                .await
                .map_err(fail)?;
            if create_only || (u.detach && !u.wait) {
                return Ok(());
            }
            if u.wait {
                let t = u.wait_timeout.map(std::time::Duration::from_secs);
                return apply::wait_ready(c, &p, &u.services, t).await.map_err(fail);
            }
            attached(c, &p, u).await
        }
        ComposeCmd::Run(r) => run_oneoff(c, &p, r).await,
        ComposeCmd::Pause(s) => each_container(c, &p, &s.services, "pause", "Paused").await,
        ComposeCmd::Unpause(s) => each_container(c, &p, &s.services, "unpause", "Unpaused").await,
        ComposeCmd::Rm(r) => {
            if r.stop {
                apply::lifecycle(c, &p, Action::Stop, &r.services, None, &progress)
                    .await
                    .map_err(fail)?;
            }
            remove_stopped(c, &p, &r.services, r.volumes).await
        }
        ComposeCmd::Pull(s) => pull(c, &p, &s.services).await,
        ComposeCmd::Push(s) => push(c, &p, &s.services).await,
        ComposeCmd::Images(s) => images(c, &p, &s.services).await,
        ComposeCmd::Top(s) => top(c, &p, &s.services).await,
        ComposeCmd::Port(pa) => {
            let list = apply::service_containers(c, &p, &pa.service)
                .await
                .map_err(fail)?;
            let Some((id, _)) = list.get(pa.index.saturating_sub(1)) else {
                return Err(Exit::msg(
                    1,
                    format!("service {:?} has no container #{}", pa.service, pa.index),
                ));
            };
            let info: Value = c.get_json(&format!("/containers/{id}/json")).await?;
            let key = format!("{}/{}", pa.private_port, pa.protocol);
            match info
                .pointer(&format!(
                    "/NetworkSettings/Ports/{}",
                    key.replace('/', "~1")
                ))
                .and_then(|b| b.get(0))
            {
                Some(b) => {
                    println!(
                        "{}:{}",
                        b["HostIp"].as_str().unwrap_or("0.0.0.0"),
                        b["HostPort"].as_str().unwrap_or_default()
                    );
                    Ok(())
                }
                None => Err(Exit::msg(1, format!("no port {key} for container {id}"))),
            }
        }
        ComposeCmd::Ls(_) | ComposeCmd::Version(_) => unreachable!("handled before loading"),
        ComposeCmd::Cp(cp) => copy(c, &p, cp).await,
        ComposeCmd::Events(e) => events(c, &p, e).await,
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
                rmi: match d.rmi.as_deref() {
                    Some("all") => Some(apply::RmiMode::All),
                    Some(_) => Some(apply::RmiMode::Local),
                    None => None,
                },
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
    let colour = !l.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let streams = targets.iter().enumerate().map(|(i, (id, name))| {
        let prefix = if l.no_log_prefix {
            String::new()
        } else {
            prefix_for(name, width, colour.then_some(i))
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

/// `version`.
fn version(v: &ComposeVersionArgs) {
    let ver = env!("CARGO_PKG_VERSION");
    match (v.short, v.format.as_str()) {
        (true, _) => println!("{ver}"),
        (false, "json") => println!("{}", serde_json::json!({"version": ver})),
        _ => println!("berth compose version {ver} (Compose Specification, Compose v2 commands)"),
    }
}

/// `ls`: projects found through their containers' labels.
async fn ls(c: &berth_client::Client, a: &ComposeLsArgs) -> anyhow::Result<()> {
    let filters = serde_json::json!({"label": [berth_compose::plan::labels::PROJECT]}).to_string();
    let q = super::Query::new().add("all", "1").add("filters", filters);
    let rows: Vec<Value> = c.get_json(&q.on("/containers/json")).await?;
    let mut projects: std::collections::BTreeMap<String, (Vec<String>, String)> =
        Default::default();
    for r in &rows {
        let labels = &r["Labels"];
        let Some(name) = labels[berth_compose::plan::labels::PROJECT].as_str() else {
            continue;
        };
        let e = projects.entry(name.to_string()).or_default();
        e.0.push(r["State"].as_str().unwrap_or("unknown").to_string());
        if let Some(f) = labels[berth_compose::plan::labels::CONFIG_FILES].as_str() {
            e.1 = f.to_string();
        }
    }
    let mut out = Vec::new();
    for (name, (states, files)) in projects {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for s in &states {
            *counts.entry(s.as_str()).or_default() += 1;
        }
        if !a.all && !counts.contains_key("running") {
            continue;
        }
        let status = counts
            .iter()
            .map(|(s, n)| format!("{s}({n})"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push((name, status, files));
    }
    if a.quiet {
        out.iter().for_each(|(n, _, _)| println!("{n}"));
    } else if a.format == "json" {
        let v: Vec<Value> = out
            .iter()
            .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let mut t = String::from("NAME\tSTATUS\tCONFIG FILES\n");
        for (n, s, f) in &out {
            t.push_str(&format!("{n}\t{s}\t{f}\n"));
        }
        print!("{}", crate::format::tabulate(&t));
    }
    Ok(())
}

/// Every replica of the selected services, in service order: (id, name).
async fn selected(
    c: &berth_client::Client,
    p: &Project,
    services: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let names: Vec<String> = if services.is_empty() {
        p.model
            .get("services")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        services.to_vec()
    };
    let mut out = Vec::new();
    for s in &names {
        out.extend(
            apply::service_containers(c, p, s)
                .await
                .map_err(|e| Exit::msg(1, e.to_string()))?,
        );
    }
    Ok(out)
}

async fn each_container(
    c: &berth_client::Client,
    p: &Project,
    services: &[String],
    action: &str,
    done: &str,
) -> anyhow::Result<()> {
    for (id, name) in selected(c, p, services).await? {
        c.post::<Value>(&format!("/containers/{id}/{action}"), None)
            .await
            .map_err(|e| Exit::msg(1, format!("container {name}: {e}")))?;
        progress(&format!(" Container {name}  {done}"));
    }
    Ok(())
}

/// `rm`: the selected services' stopped containers (a running one is left, as Compose does).
async fn remove_stopped(
    c: &berth_client::Client,
    p: &Project,
    services: &[String],
    volumes: bool,
) -> anyhow::Result<()> {
    let mut any = false;
    for (id, name) in selected(c, p, services).await? {
        let info: Value = c.get_json(&format!("/containers/{id}/json")).await?;
        if info.pointer("/State/Running") == Some(&Value::Bool(true)) {
            continue;
        }
        any = true;
        let v = if volumes { "1" } else { "0" };
        c.delete(&format!("/containers/{id}?v={v}"))
            .await
            .map_err(|e| Exit::msg(1, format!("container {name}: {e}")))?;
        progress(&format!(" Container {name}  Removed"));
    }
    if !any {
        progress("No stopped containers");
    }
    Ok(())
}

fn service_names(p: &Project, services: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    let all = p
        .model
        .get("services")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for s in services {
        if !all.contains_key(s) {
            return Err(Exit::msg(1, format!("no such service: {s}")));
        }
    }
    Ok(all
        .into_iter()
        .filter(|(n, _)| services.is_empty() || services.contains(n))
        .collect())
}

/// `pull`: the images of services that name one (a service with only `build` is skipped).
async fn pull(c: &berth_client::Client, p: &Project, services: &[String]) -> anyhow::Result<()> {
    for (name, svc) in service_names(p, services)? {
        let Some(image) = svc.get("image").and_then(Value::as_str) else {
            continue;
        };
        if svc.get("build").is_some() && svc.get("pull_policy").is_none() {
            // Compose pulls such an image too but does not fail when it is not published.
            let r = crate::cmd::registry::pull(c, pull_args(image)).await;
            if let Err(e) = r {
                progress(&format!(" {name} Skipped - {e}"));
            }
            continue;
        }
        progress(&format!(" {name} Pulling"));
        crate::cmd::registry::pull(c, pull_args(image)).await?;
        progress(&format!(" {name} Pulled"));
    }
    Ok(())
}

fn pull_args(image: &str) -> crate::cli::PullArgs {
    crate::cli::PullArgs {
        image: image.to_string(),
        quiet: true,
        ..Default::default()
    }
}

/// `push`: the images of services that have both `build` and `image`.
async fn push(c: &berth_client::Client, p: &Project, services: &[String]) -> anyhow::Result<()> {
    for (name, svc) in service_names(p, services)? {
        let (Some(image), Some(_)) = (svc.get("image").and_then(Value::as_str), svc.get("build"))
        else {
            continue;
        };
        progress(&format!(" {name} Pushing"));
        crate::cmd::registry::push(
            c,
            PushArgs {
                image: image.to_string(),
                quiet: true,
                all_tags: false,
            },
        )
        .await?;
        progress(&format!(" {name} Pushed"));
    }
    Ok(())
}

/// `images`: the image of each container.
async fn images(c: &berth_client::Client, p: &Project, services: &[String]) -> anyhow::Result<()> {
    let mut t = String::from("CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE\n");
    for (id, name) in selected(c, p, services).await? {
        let info: Value = c.get_json(&format!("/containers/{id}/json")).await?;
        let image_ref = info["Config"]["Image"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let img: Value = c
            .get_json(&format!("/images/{}/json", super::path_name(&image_ref)))
            .await
            .unwrap_or_default();
        let (repo, tag) = match image_ref.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (image_ref.clone(), "latest".to_string()),
        };
        let iid = img["Id"].as_str().unwrap_or_default();
        t.push_str(&format!(
            "{name}\t{repo}\t{tag}\t{}\t{}\n",
            crate::format::short_id(iid.trim_start_matches("sha256:")),
            crate::units::human_size(img["Size"].as_i64().unwrap_or(0)),
        ));
    }
    print!("{}", crate::format::tabulate(&t));
    Ok(())
}

/// `top`: each running container's processes, under its name.
async fn top(c: &berth_client::Client, p: &Project, services: &[String]) -> anyhow::Result<()> {
    for (id, name) in selected(c, p, services).await? {
        let Ok(v) = c.get_json::<Value>(&format!("/containers/{id}/top")).await else {
            continue;
        };
        println!("{name}");
        let titles: Vec<&str> = v["Titles"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut t = titles.join("\t") + "\n";
        for row in v["Processes"].as_array().into_iter().flatten() {
            let cells: Vec<&str> = row
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            t.push_str(&(cells.join("\t") + "\n"));
        }
        println!("{}", crate::format::tabulate(&t));
    }
    Ok(())
}

/// `up` without `-d`: follow every container's output with name prefixes until they all
/// exit; Ctrl-C stops the project's containers. `--abort-on-container-exit` (and
/// `--exit-code-from`) stops everything when one container exits.
async fn attached(c: &berth_client::Client, p: &Project, u: &ComposeUpArgs) -> anyhow::Result<()> {
    let targets = selected(c, p, &u.services).await?;
    let width = targets.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    let args = ComposeLogsArgs {
        follow: true,
        tail: "all".into(),
        timestamps: false,
        no_color: true,
        no_log_prefix: false,
        services: vec![],
    };
    let abort = u.abort_on_container_exit || u.exit_code_from.is_some();
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let streams: Vec<_> = targets
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            Box::pin(log_stream(
                c,
                id,
                prefix_for(name, width, colour.then_some(i)),
                &args,
            ))
        })
        .collect();
    let all_done = async {
        if abort {
            if !streams.is_empty() {
                let _ = futures::future::select_all(streams).await;
            }
        } else {
            futures::future::join_all(streams).await;
        }
    };
    let interrupted = tokio::select! {
        _ = all_done => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted || abort {
        progress(if interrupted {
            "Gracefully stopping... (press Ctrl+C again to force)"
        } else {
            "Aborting on container exit..."
        });
        apply::lifecycle(c, p, Action::Stop, &u.services, None, &progress)
            .await
            .map_err(|e| Exit::msg(1, e.to_string()))?;
    }
    if let Some(svc) = &u.exit_code_from {
        let list = apply::service_containers(c, p, svc)
            .await
            .map_err(|e| Exit::msg(1, e.to_string()))?;
        if let Some((id, _)) = list.first() {
            let info: Value = c.get_json(&format!("/containers/{id}/json")).await?;
            let code = info["State"]["ExitCode"].as_i64().unwrap_or(0) as i32;
            if code != 0 {
                return Err(Exit::code(code));
            }
        }
    }
    Ok(())
}

/// `run`: a one-off container of the service (its dependencies started first); attached, its
/// output is shown and its exit code is the command's.
async fn run_oneoff(
    c: &berth_client::Client,
    p: &Project,
    r: &ComposeRunArgs,
) -> anyhow::Result<()> {
    let tty = !r.no_tty && !r.detach && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let one = berth_compose::apply::OneOff {
        command: (!r.cmd.is_empty()).then(|| r.cmd.clone()),
        entrypoint: r
            .entrypoint
            .as_ref()
            .map(|e| berth_compose::units::split_command(e).unwrap_or_else(|| vec![e.clone()])),
        env: r.env.clone(),
        user: r.user.clone(),
        workdir: r.workdir.clone(),
        service_ports: r.service_ports,
        name: r.name.clone(),
        tty,
        stdin_open: !r.detach,
    };
    let mut p = p.clone();
    if r.no_deps {
        if let Some(svc) = p
            .model
            .pointer_mut(&format!("/services/{}", r.service))
            .and_then(Value::as_object_mut)
        {
            svc.remove("depends_on");
        }
    }
    let builder = image_builder(c, false, false, &[]);
    let (id, name) = apply::create_oneoff(c, &p, &r.service, &one, &builder, &progress)
        .await
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    if r.detach {
        c.post::<Value>(&format!("/containers/{id}/start"), None)
            .await?;
        println!("{name}");
        return Ok(());
    }
    let h = c
        .hijack(
            &format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1"),
            None::<&Value>,
        )
        .await?;
    c.post::<Value>(&format!("/containers/{id}/start"), None)
        .await?;
    let raw = tty.then(crate::tty::RawMode::stdin).flatten();
    let keys = super::stream::parse_detach_keys(super::run::DEFAULT_DETACH)
        .map_err(|e| Exit::msg(1, e))?;
    let detached = super::stream::pump(h, true, tty, keys).await?;
    drop(raw);
    if detached {
        return Ok(());
    }
    let waited: Value = c
        .post_json(&format!("/containers/{id}/wait"), None::<&Value>)
        .await?;
    let code = waited["StatusCode"].as_i64().unwrap_or(0) as i32;
    if r.rm {
        let _ = c.delete(&format!("/containers/{id}?v=1&force=1")).await;
    }
    if code != 0 {
        return Err(Exit::code(code));
    }
    Ok(())
}

/// `cp`: `SERVICE:PATH` names the service's container at `--index`; `berth cp` does the copy.
async fn copy(c: &berth_client::Client, p: &Project, a: &ComposeCpArgs) -> anyhow::Result<()> {
    let side = |s: &str| -> Option<(String, String)> {
        // A local path may hold a colon only after a slash (as `docker cp` reads it).
        let (svc, path) = s.split_once(':')?;
        (!svc.is_empty() && !svc.contains('/')).then(|| (svc.to_string(), path.to_string()))
    };
    let resolve = |svc: String, path: String| async move {
        let list = apply::service_containers(c, p, &svc)
            .await
            .map_err(|e| Exit::msg(1, e.to_string()))?;
        match list.get(a.index.saturating_sub(1)) {
            Some((id, _)) => Ok(format!("{id}:{path}")),
            None => Err(Exit::msg(
                1,
                format!("service {svc:?} has no container #{}", a.index),
            )),
        }
    };
    let (src, dst) = match (side(&a.src), side(&a.dst)) {
        (Some((s, path)), None) => (resolve(s, path).await?, a.dst.clone()),
        (None, Some((s, path))) => (a.src.clone(), resolve(s, path).await?),
        _ => {
            return Err(Exit::msg(
                1,
                "copy between a service container (SERVICE:PATH) and a local path",
            ))
        }
    };
    crate::cmd::cp::cp(
        c,
        crate::cli::CpArgs {
            archive: a.archive,
            follow_link: a.follow_link,
            quiet: true,
            src,
            dst,
        },
    )
    .await
}

/// `events`: the project's container events as Compose prints them (`--json`: one object per
/// line with `time`, `type`, `action`, `id`, `service`, `attributes`).
async fn events(
    c: &berth_client::Client,
    p: &Project,
    a: &ComposeEventsArgs,
) -> anyhow::Result<()> {
    use std::io::Write;
    let labels = berth_compose::plan::labels::PROJECT;
    let filters = serde_json::json!({
        "label": [format!("{labels}={}", p.name)],
        "type": ["container"],
    })
    .to_string();
    let q = super::Query::new().add("filters", filters);
    let mut s = c
        .stream(
            hyper::Method::GET,
            &q.on("/events"),
            berth_client::body::empty(),
            &[],
        )
        .await?;
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = s.next_chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let attrs = ev["Actor"]["Attributes"].clone();
            let service = attrs[berth_compose::plan::labels::SERVICE]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !a.services.is_empty() && !a.services.contains(&service) {
                continue;
            }
            let nanos = ev["timeNano"].as_i64().unwrap_or(0);
            let time = chrono::DateTime::from_timestamp(
                nanos / 1_000_000_000,
                (nanos % 1_000_000_000) as u32,
            )
            .unwrap_or_default();
            let action = ev["Action"].as_str().unwrap_or_default();
            let id = ev["Actor"]["ID"].as_str().unwrap_or_default();
            let mut o = std::io::stdout().lock();
            if a.json {
                let v = serde_json::json!({
                    "time": time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    "type": "container",
                    "action": action,
                    "id": id,
                    "service": service,
                    "attributes": attrs,
                });
                writeln!(o, "{v}")?;
            } else {
                let shown: Vec<String> = ["image", "name"]
                    .iter()
                    .filter_map(|k| attrs[*k].as_str().map(|v| format!("{k}={v}")))
                    .collect();
                writeln!(
                    o,
                    "{} container {action} {id} ({})",
                    time.format("%Y-%m-%d %H:%M:%S%.6f"),
                    shown.join(", ")
                )?;
            }
            o.flush()?;
        }
    }
    Ok(())
}

/// `name  | ` padded to `width`, in the `i`th of Compose's prefix colours on a terminal.
fn prefix_for(name: &str, width: usize, colour: Option<usize>) -> String {
    const COLOURS: [&str; 12] = [
        "36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91",
    ];
    match colour {
        Some(i) => format!(
            "\x1b[{}m{name:width$}  |\x1b[0m ",
            COLOURS[i % COLOURS.len()]
        ),
        None => format!("{name:width$}  | "),
    }
}
