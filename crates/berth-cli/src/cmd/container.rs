//! Container lifecycle and listing commands: ps, stop, restart, kill, rm, wait, top, stats,
//! pause, unpause, rename, update, port, diff, export, commit, container prune.

use std::io::Write;

use berth_client::{body, Client};
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{path_name, run, Query};
use crate::cli::{CommitArgs, ContainerCmd, KillArgs, PortArgs, PsArgs, RmArgs, StopArgs, TopArgs};
use crate::cmd::image::ellipsis;
use crate::exit::{describe, Exit};
use crate::format::{short_id, tabulate, Lister};
use crate::opts::filters_query;
use crate::units::{ago, human_size_prec, now_unix};

pub async fn dispatch(c: &Client, cmd: ContainerCmd) -> anyhow::Result<()> {
    match cmd {
        ContainerCmd::Run(a) => run::run(c, a).await,
        ContainerCmd::Create(a) => run::create_cmd(c, a).await,
        ContainerCmd::Ps(a) => ps(c, a).await,
        ContainerCmd::Start(a) => run::start(c, a).await,
        ContainerCmd::Stop(a) => stop(c, a).await,
        ContainerCmd::Restart(a) => restart(c, a).await,
        ContainerCmd::Kill(a) => kill(c, a).await,
        ContainerCmd::Rm(a) => rm(c, a).await,
        ContainerCmd::Logs(a) => run::logs(c, a).await,
        ContainerCmd::Exec(a) => run::exec(c, a).await,
        ContainerCmd::Attach(a) => run::attach(c, a).await,
        ContainerCmd::Wait(a) => wait(c, a.containers).await,
        ContainerCmd::Top(a) => top(c, a).await,
        ContainerCmd::Stats(a) => super::stats::stats(c, a).await,
        ContainerCmd::Pause(a) => each(c, &a.containers, "pause").await,
        ContainerCmd::Unpause(a) => each(c, &a.containers, "unpause").await,
        ContainerCmd::Rename(a) => {
            let q = Query::new().add("name", &a.new_name);
            c.post(
                &q.on(&format!("/containers/{}/rename", path_name(&a.container))),
                None::<&()>,
            )
            .await?;
            Ok(())
        }
        ContainerCmd::Update(a) => super::update::update(c, a).await,
        ContainerCmd::Port(a) => port(c, a).await,
        ContainerCmd::Cp(a) => super::cp::cp(c, a).await,
        ContainerCmd::Diff(a) => diff(c, &a.container).await,
        ContainerCmd::Export(a) => export(c, a.container, a.output).await,
        ContainerCmd::Commit(a) => commit(c, a).await,
        ContainerCmd::Prune(a) => {
            if !super::confirm("WARNING! This will remove all stopped containers.", a.force) {
                return Ok(());
            }
            let q = Query::new().raw(
                "filters",
                filters_query(&a.filter).map_err(|e| Exit::msg(125, e))?,
            );
            let r: Value = c.post_json(&q.on("/containers/prune"), None::<&()>).await?;
            let items: Vec<String> = r["ContainersDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            crate::cmd::image::print_reclaimed(
                "Deleted Containers",
                &items,
                r["SpaceReclaimed"].as_i64().unwrap_or(0),
            );
            Ok(())
        }
    }
}

const PS: Lister = Lister {
    default_table:
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("RunningFor", "CREATED"),
        ("CreatedAt", "CREATED AT"),
    ],
};
const PS_SIZE: Lister = Lister {
    default_table: "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}",
    headers: PS.headers,
};

/// Docker's port column: "0.0.0.0:8080->80/tcp, 443/tcp".
pub fn ports_text(ports: &[Value]) -> String {
    let mut v: Vec<String> = ports
        .iter()
        .map(|p| {
            let private = p["PrivatePort"].as_i64().unwrap_or(0);
            let typ = p["Type"].as_str().unwrap_or("tcp");
            match p["PublicPort"].as_i64() {
                Some(pubp) if pubp > 0 => {
                    let ip = p["IP"].as_str().unwrap_or("");
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.to_string()
                    };
                    format!("{ip}:{pubp}->{private}/{typ}")
                }
                _ => format!("{private}/{typ}"),
            }
        })
        .collect();
    v.dedup();
    v.join(", ")
}

/// Rows of `berth ps` from `/containers/json` entries.
pub fn ps_rows(list: &[Value], no_trunc: bool, now: i64) -> Vec<Value> {
    list.iter()
        .map(|ct| {
            let id = ct["Id"].as_str().unwrap_or_default();
            let cmd = ct["Command"].as_str().unwrap_or_default();
            let cmd = if no_trunc {
                cmd.to_string()
            } else {
                ellipsis(cmd, 20)
            };
            let names: Vec<String> = ct["Names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| no_trunc || !n.contains('/'))
                .collect();
            let created = ct["Created"].as_i64().unwrap_or(0);
            let mut labels: Vec<String> = ct["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            labels.sort();
            let networks: Vec<String> = ct["NetworkSettings"]["Networks"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let mounts: Vec<String> = ct["Mounts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    m["Name"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .or(m["Source"].as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
            let size = match (ct["SizeRw"].as_i64(), ct["SizeRootFs"].as_i64()) {
                (rw, Some(root)) => format!(
                    "{} (virtual {})",
                    human_size_prec(rw.unwrap_or(0) as f64, 3),
                    human_size_prec(root as f64, 3)
                ),
                _ => String::new(),
            };
            json!({
                "ID": if no_trunc { id.to_string() } else { short_id(id) },
                "Image": ct["Image"],
                "Command": format!("{cmd:?}"),
                "CreatedAt": crate::cmd::image::go_time(created),
                "RunningFor": ago(created, now),
                "Ports": ports_text(ct["Ports"].as_array().map(Vec::as_slice).unwrap_or(&[])),
                "State": ct["State"],
                "Status": ct["Status"],
                "Size": size,
                "Names": names.join(","),
                "Labels": labels.join(","),
                "Mounts": mounts.join(","),
                "Networks": networks.join(","),
            })
        })
        .collect()
}

pub async fn ps(c: &Client, a: PsArgs) -> anyhow::Result<()> {
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let q = Query::new()
        .flag("all", a.all || limit.is_some())
        .flag("size", a.size)
        .opt("limit", limit.map(|n| n.to_string()))
        .raw(
            "filters",
            filters_query(&a.filter).map_err(|e| Exit::msg(125, e))?,
        );
    let list: Vec<Value> = c.get_json(&q.on("/containers/json")).await?;
    let rows = ps_rows(&list, a.no_trunc, now_unix());
    if a.quiet {
        let mut out = std::io::stdout().lock();
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(());
    }
    let l = if a.size { PS_SIZE } else { PS };
    l.print(a.format.as_deref(), &rows)
}

/// Run `op` on every container, at most 50 at once, as docker's CLI does for stop, kill, rm,
/// pause and unpause: each name is printed as its operation completes, in argument order, and
/// the failures (`on_err` may report and drop one) are returned together at the end (exit 1).
async fn parallel<'a, F, Fut>(
    ids: &'a [String],
    op: F,
    on_err: impl Fn(&str, anyhow::Error) -> Option<String>,
) -> anyhow::Result<()>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use futures::StreamExt;
    const PARALLEL: usize = 50;
    let mut done = futures::stream::iter(ids.iter().map(|id| {
        let f = op(id);
        async move { (id, f.await) }
    }))
    .buffered(PARALLEL);
    let mut errs = Vec::new();
    while let Some((id, r)) = done.next().await {
        match r {
            Ok(()) => println!("{id}"),
            Err(e) => errs.extend(on_err(id, e)),
        }
    }
    super::all_ok(errs)
}

fn daemon_error(_id: &str, e: anyhow::Error) -> Option<String> {
    Some(describe(&e))
}

/// `POST /containers/{id}/{action}` on every container, concurrently.
async fn each_q(c: &Client, ids: &[String], action: &str, q: &Query) -> anyhow::Result<()> {
    let op = |id: &str| {
        let path = q.on(&format!("/containers/{}/{action}", path_name(id)));
        async move { Ok(c.post(&path, None::<&()>).await?) }
    };
    parallel(ids, op, daemon_error).await
}

async fn each(c: &Client, ids: &[String], action: &str) -> anyhow::Result<()> {
    each_q(c, ids, action, &Query::new()).await
}

async fn stop(c: &Client, a: StopArgs) -> anyhow::Result<()> {
    each_q(c, &a.containers, "stop", &stop_query(&a)).await
}

fn stop_query(a: &StopArgs) -> Query {
    Query::new()
        .opt("t", a.time.map(|t| t.to_string()))
        .opt("signal", a.signal.as_deref())
}

/// `restart` goes one container after the other, as docker's CLI does.
async fn restart(c: &Client, a: StopArgs) -> anyhow::Result<()> {
    let q = stop_query(&a);
    let mut errs = Vec::new();
    for id in &a.containers {
        let path = q.on(&format!("/containers/{}/restart", path_name(id)));
        match c.post(&path, None::<&()>).await {
            Ok(()) => println!("{id}"),
            Err(e) => errs.push(describe(&e.into())),
        }
    }
    super::all_ok(errs)
}

async fn kill(c: &Client, a: KillArgs) -> anyhow::Result<()> {
    let q = Query::new().opt("signal", a.signal.as_deref());
    each_q(c, &a.containers, "kill", &q).await
}

/// docker 20.10's client words a missing container as "Error: No such container: <name>";
/// with `-f` that is printed but does not fail the command.
async fn rm(c: &Client, a: RmArgs) -> anyhow::Result<()> {
    let q = Query::new()
        .flag("force", a.force)
        .flag("v", a.volumes)
        .flag("link", a.link);
    let op = |id: &str| {
        let name = id.trim_matches('/').to_string();
        let path = q.on(&format!("/containers/{}", path_name(&name)));
        async move {
            if name.is_empty() {
                anyhow::bail!("Container name cannot be empty");
            }
            c.delete(&path).await?;
            Ok(())
        }
    };
    let on_err = |id: &str, e: anyhow::Error| {
        let not_found = e
            .downcast_ref::<berth_client::Error>()
            .is_some_and(|e| e.status() == Some(404));
        if !not_found {
            return Some(describe(&e));
        }
        let msg = format!("Error: No such container: {}", id.trim_matches('/'));
        if a.force {
            eprintln!("{msg}");
            return None;
        }
        Some(msg)
    };
    parallel(&a.containers, op, on_err).await
}

async fn wait(c: &Client, ids: Vec<String>) -> anyhow::Result<()> {
    let mut errs = Vec::new();
    for id in &ids {
        match c
            .post_json::<Value, ()>(&format!("/containers/{}/wait", path_name(id)), None)
            .await
        {
            Ok(v) => println!("{}", v["StatusCode"].as_i64().unwrap_or(-1)),
            Err(e) => errs.push(describe(&e.into())),
        }
    }
    super::all_ok(errs)
}

async fn top(c: &Client, a: TopArgs) -> anyhow::Result<()> {
    let q = Query::new().opt(
        "ps_args",
        (!a.ps_args.is_empty()).then(|| a.ps_args.join(" ")),
    );
    let v: Value = c
        .get_json(&q.on(&format!("/containers/{}/top", path_name(&a.container))))
        .await?;
    let mut s = String::new();
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    s.push_str(&titles.join("\t"));
    s.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        s.push_str(&cells.join("\t"));
        s.push('\n');
    }
    print!("{}", tabulate(&s));
    Ok(())
}

async fn port(c: &Client, a: PortArgs) -> anyhow::Result<()> {
    let v: Value = c
        .get_json(&format!("/containers/{}/json", path_name(&a.container)))
        .await?;
    let want = a.private_port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut lines = Vec::new();
    if let Some(m) = v["NetworkSettings"]["Ports"].as_object() {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        for k in keys {
            if want.as_ref().is_some_and(|w| w != k) {
                continue;
            }
            for b in m[k].as_array().into_iter().flatten() {
                let ip = b["HostIp"].as_str().unwrap_or("");
                let hp = b["HostPort"].as_str().unwrap_or("");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                lines.push(if want.is_some() {
                    format!("{ip}:{hp}")
                } else {
                    format!("{k} -> {ip}:{hp}")
                });
            }
        }
    }
    if lines.is_empty() {
        if let Some(w) = want {
            return Err(Exit::msg(
                1,
                format!("Error: No public port '{w}' published for {}", a.container),
            ));
        }
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

async fn diff(c: &Client, id: &str) -> anyhow::Result<()> {
    let v: Value = c
        .get_json(&format!("/containers/{}/changes", path_name(id)))
        .await?;
    for ch in v.as_array().into_iter().flatten() {
        let k = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{k} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(())
}

async fn export(c: &Client, id: String, output: Option<String>) -> anyhow::Result<()> {
    if output.is_none() && crate::tty::stdout_is_tty() {
        return Err(Exit::msg(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut s = c
        .stream(
            Method::GET,
            &format!("/containers/{}/export", path_name(&id)),
            body::empty(),
            &[],
        )
        .await?;
    let mut w: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &output {
        Some(p) => Box::new(tokio::fs::File::create(p).await?),
        None => Box::new(tokio::io::stdout()),
    };
    while let Some(chunk) = s.next_chunk().await? {
        w.write_all(&chunk).await?;
    }
    w.flush().await?;
    Ok(())
}

async fn commit(c: &Client, a: CommitArgs) -> anyhow::Result<()> {
    let mut q = Query::new().add("container", &a.container);
    if let Some(r) = &a.reference {
        let (repo, tag) = crate::opts::split_tag(r);
        q = q.add("repo", repo).add("tag", tag);
    }
    q = q
        .opt("comment", a.message.as_deref())
        .opt("author", a.author.as_deref())
        .add("pause", if a.pause { "1" } else { "0" });
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    let v: Value = c.post_json(&q.on("/commit"), Some(&json!({}))).await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_row_fields() {
        let list = vec![json!({
            "Id": "0123456789abcdef0123", "Image": "busybox", "Command": "sleep 1000000000000000",
            "Created": 0, "Status": "Up 2 minutes", "State": "running",
            "Names": ["/web"], "Ports": [{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":443,"Type":"tcp"}],
            "Labels": {"b":"2","a":"1"}
        })];
        let r = &ps_rows(&list, false, 180)[0];
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sleep 1000000000000…\"");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp, 443/tcp");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["RunningFor"], "3 minutes ago");
        let s = PS.render(None, &ps_rows(&list, false, 180)).unwrap();
        assert!(s.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{s}");
    }
}
