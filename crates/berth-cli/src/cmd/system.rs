//! System commands: version, info, events, system df, system prune, system check.

use std::io::Write;

use berth_client::{body, Client};
use hyper::Method;
use serde_json::{json, Value};

use super::Query;
use crate::cli::{DfArgs, EventsArgs, FormatArgs, SystemCheckArgs, SystemPruneArgs};
use crate::exit::Exit;
use crate::format::{short_id, tabulate, Lister};
use crate::opts::filters_query;
use crate::template::Template;
use crate::units::{human_size, now_unix};

fn render(format: &str, v: &Value) -> anyhow::Result<()> {
    let t = Template::parse(format).map_err(|e| Exit::msg(1, e.to_string()))?;
    println!("{}", t.render(v).map_err(|e| Exit::msg(1, e.to_string()))?);
    Ok(())
}

pub async fn version(c: &Client, a: FormatArgs) -> anyhow::Result<()> {
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": c.api_version().unwrap_or(berth_client::MAX_API_VERSION),
        "DefaultAPIVersion": berth_client::MAX_API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
    });
    let server: Value = c.get_json("/version").await?;
    let all = json!({"Client": client, "Server": server});
    if let Some(f) = &a.format {
        return render(f, &all);
    }
    let mut s = String::new();
    s.push_str("Client:\n");
    s.push_str(&format!(
        " Version:\t{}\n",
        client["Version"].as_str().unwrap_or("")
    ));
    s.push_str(&format!(
        " API version:\t{}\n",
        client["ApiVersion"].as_str().unwrap_or("")
    ));
    s.push_str(&format!(
        " OS/Arch:\t{}/{}\n\n",
        client["Os"].as_str().unwrap_or(""),
        client["Arch"].as_str().unwrap_or("")
    ));
    let platform = server["Platform"]["Name"].as_str().unwrap_or("");
    s.push_str(&format!("Server: {platform}\n"));
    s.push_str(" Engine:\n");
    s.push_str(&format!(
        "  Version:\t{}\n",
        server["Version"].as_str().unwrap_or("")
    ));
    s.push_str(&format!(
        "  API version:\t{} (minimum version {})\n",
        server["ApiVersion"].as_str().unwrap_or(""),
        server["MinAPIVersion"].as_str().unwrap_or("")
    ));
    s.push_str(&format!(
        "  Git commit:\t{}\n",
        server["GitCommit"].as_str().unwrap_or("")
    ));
    s.push_str(&format!(
        "  OS/Arch:\t{}/{}\n",
        server["Os"].as_str().unwrap_or(""),
        server["Arch"].as_str().unwrap_or("")
    ));
    for comp in server["Components"].as_array().into_iter().flatten() {
        let name = comp["Name"].as_str().unwrap_or("");
        if name == "Engine" {
            continue;
        }
        s.push_str(&format!(
            " {name}:\n  Version:\t{}\n",
            comp["Version"].as_str().unwrap_or("")
        ));
    }
    print!("{}", tabulate_plain(&s));
    Ok(())
}

fn tabulate_plain(s: &str) -> String {
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(1).padding(1);
    let _ = tw.write_all(s.as_bytes());
    let _ = tw.flush();
    String::from_utf8(tw.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub async fn info(c: &Client, a: FormatArgs) -> anyhow::Result<()> {
    let v: Value = c.get_json("/info").await?;
    if let Some(f) = &a.format {
        return render(f, &v);
    }
    let g = |k: &str| {
        v[k].as_str()
            .map(String::from)
            .unwrap_or_else(|| v[k].to_string())
    };
    let mut s = String::new();
    s.push_str("Client:\n Version:    ");
    s.push_str(env!("CARGO_PKG_VERSION"));
    s.push_str("\n\nServer:\n");
    s.push_str(&format!(" Containers: {}\n", g("Containers")));
    s.push_str(&format!(
        "  Running: {}\n  Paused: {}\n  Stopped: {}\n",
        g("ContainersRunning"),
        g("ContainersPaused"),
        g("ContainersStopped")
    ));
    s.push_str(&format!(" Images: {}\n", g("Images")));
    s.push_str(&format!(" Server Version: {}\n", g("ServerVersion")));
    s.push_str(&format!(" Storage Driver: {}\n", g("Driver")));
    s.push_str(&format!(" Logging Driver: {}\n", g("LoggingDriver")));
    s.push_str(&format!(" Cgroup Driver: {}\n", g("CgroupDriver")));
    s.push_str(&format!(" Cgroup Version: {}\n", g("CgroupVersion")));
    s.push_str(&format!(" Kernel Version: {}\n", g("KernelVersion")));
    s.push_str(&format!(" Operating System: {}\n", g("OperatingSystem")));
    s.push_str(&format!(" OSType: {}\n", g("OSType")));
    s.push_str(&format!(" Architecture: {}\n", g("Architecture")));
    s.push_str(&format!(" CPUs: {}\n", g("NCPU")));
    s.push_str(&format!(
        " Total Memory: {}\n",
        crate::units::bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    s.push_str(&format!(" Name: {}\n", g("Name")));
    s.push_str(&format!(" ID: {}\n", g("ID")));
    s.push_str(&format!(" Docker Root Dir: {}\n", g("DockerRootDir")));
    s.push_str(&format!(" Debug Mode: {}\n", g("Debug")));
    s.push_str(&rootless_lines(&v, c.host()));
    print!("{s}");
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or_default());
    }
    Ok(())
}

/// For a rootless daemon (`name=rootless` in SecurityOptions, as dockerd's): say so and give
/// the `DOCKER_HOST` that points docker clients at it.
fn rootless_lines(info: &Value, host: &berth_client::Host) -> String {
    let rootless = info["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o.as_str() == Some("name=rootless"));
    let mut s = match rootless {
        true => format!(" Rootless: true\n  For docker clients: export DOCKER_HOST={host}\n"),
        false => String::new(),
    };
    s.push_str(&remap_line(info));
    s
}

/// Under `--userns-remap` (`name=userns`, as dockerd's): the host ids of the containers' root,
/// which name the remapped root dir (`<root>/<uid>.<gid>`, as dockerd's).
fn remap_line(info: &Value) -> String {
    let on = info["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o.as_str() == Some("name=userns"));
    if !on {
        return String::new();
    }
    let dir = info["DockerRootDir"].as_str().unwrap_or_default();
    match dir.rsplit('/').next().and_then(|d| d.split_once('.')) {
        Some((u, g)) => format!(" User namespace remap: container root = host {u}:{g}\n"),
        None => " User namespace remap: on\n".into(),
    }
}

/// docker's default one-line event rendering.
pub fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or(e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
                .to_string()
        })
        .unwrap_or_default();
    let typ = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().or(e["status"].as_str()).unwrap_or("");
    let id = e["Actor"]["ID"].as_str().or(e["id"].as_str()).unwrap_or("");
    let mut attrs: Vec<String> = e["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    attrs.sort();
    if attrs.is_empty() {
        format!("{t} {typ} {action} {id}")
    } else {
        format!("{t} {typ} {action} {id} ({})", attrs.join(", "))
    }
}

pub async fn events(c: &Client, a: EventsArgs) -> anyhow::Result<()> {
    let now = now_unix();
    let q = Query::new()
        .opt(
            "since",
            a.since
                .as_deref()
                .map(|s| super::run::timestamp_arg(s, now)),
        )
        .opt(
            "until",
            a.until
                .as_deref()
                .map(|s| super::run::timestamp_arg(s, now)),
        )
        .raw(
            "filters",
            filters_query(&a.filter).map_err(|e| Exit::msg(125, e))?,
        );
    let mut s = c
        .stream(Method::GET, &q.on("/events"), body::empty(), &[])
        .await?;
    let tpl = match a.format.as_deref() {
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(f).map_err(|e| Exit::msg(1, e.to_string()))?),
        None => None,
    };
    let mut split = berth_client::jsonstream::JsonSplitter::new();
    let mut out = std::io::stdout();
    while let Some(chunk) = s.next_chunk().await? {
        for e in split.push(&chunk) {
            let line = match &tpl {
                Some(t) => t.render(&e)?,
                None => event_line(&e),
            };
            writeln!(out, "{line}")?;
            out.flush()?;
        }
    }
    Ok(())
}

pub async fn df(c: &Client, a: DfArgs) -> anyhow::Result<()> {
    let v: Value = c.get_json("/system/df").await?;
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let images = arr("Images");
    let containers = arr("Containers");
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let cache = arr("BuildCache");
    let pct = |r: i64, t: i64| {
        if t > 0 {
            format!(" ({}%)", r * 100 / t)
        } else {
            String::new()
        }
    };
    let img_total: i64 = images.iter().map(|i| i["Size"].as_i64().unwrap_or(0)).sum();
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let img_reclaim: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) <= 0)
        .map(|i| i["Size"].as_i64().unwrap_or(0) - i["SharedSize"].as_i64().unwrap_or(0).max(0))
        .sum();
    let ct_total: i64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let ct_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let ct_reclaim: i64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let vsize = |x: &Value| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0);
    let vol_total: i64 = volumes.iter().map(vsize).sum();
    let vol_active = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let vol_reclaim: i64 = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) <= 0)
        .map(vsize)
        .sum();
    let bc_total: i64 = cache.iter().map(|b| b["Size"].as_i64().unwrap_or(0)).sum();
    let bc_reclaim: i64 = cache
        .iter()
        .filter(|b| !b["InUse"].as_bool().unwrap_or(false))
        .map(|b| b["Size"].as_i64().unwrap_or(0))
        .sum();
    let row = |t: &str, total: usize, active: usize, size: i64, rec: i64| {
        json!({"Type": t, "TotalCount": total.to_string(), "Active": active.to_string(),
               "Size": human_size(size), "Reclaimable": format!("{}{}", human_size(rec), pct(rec, size))})
    };
    let rows = vec![
        row("Images", images.len(), img_active, img_total, img_reclaim),
        row(
            "Containers",
            containers.len(),
            ct_active,
            ct_total,
            ct_reclaim,
        ),
        row(
            "Local Volumes",
            volumes.len(),
            vol_active,
            vol_total,
            vol_reclaim,
        ),
        row(
            "Build Cache",
            cache.len(),
            cache
                .iter()
                .filter(|b| b["InUse"].as_bool().unwrap_or(false))
                .count(),
            bc_total,
            bc_reclaim,
        ),
    ];
    if !a.verbose {
        const DF: Lister = Lister {
            default_table: "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
            headers: &[("TotalCount", "TOTAL")],
        };
        return DF.print(a.format.as_deref(), &rows);
    }
    let now = now_unix();
    let mut s = String::from("Images space usage:\n\nREPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n");
    for i in &images {
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        let first = tags.first().cloned().unwrap_or("<none>:<none>".into());
        let (r, t) = crate::opts::split_tag(&first);
        let size = i["Size"].as_i64().unwrap_or(0);
        let shared = i["SharedSize"].as_i64().unwrap_or(0).max(0);
        s.push_str(&format!(
            "{r}\t{t}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            short_id(i["Id"].as_str().unwrap_or("")),
            crate::units::ago(i["Created"].as_i64().unwrap_or(0), now),
            human_size(size),
            human_size(shared),
            human_size(size - shared),
            i["Containers"].as_i64().unwrap_or(0)
        ));
    }
    s.push_str("\nContainers space usage:\n\nCONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n");
    for ct in &containers {
        s.push_str(&format!(
            "{}\t{}\t{:?}\t{}\t{}\t{}\t{}\t{}\n",
            short_id(ct["Id"].as_str().unwrap_or("")),
            ct["Image"].as_str().unwrap_or(""),
            crate::cmd::image::ellipsis(ct["Command"].as_str().unwrap_or(""), 20),
            ct["Mounts"].as_array().map(|m| m.len()).unwrap_or(0),
            human_size(ct["SizeRw"].as_i64().unwrap_or(0)),
            crate::units::ago(ct["Created"].as_i64().unwrap_or(0), now),
            ct["Status"].as_str().unwrap_or(""),
            ct["Names"][0]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/'),
        ));
    }
    s.push_str("\nLocal Volumes space usage:\n\nVOLUME NAME\tLINKS\tSIZE\n");
    for x in &volumes {
        s.push_str(&format!(
            "{}\t{}\t{}\n",
            x["Name"].as_str().unwrap_or(""),
            x["UsageData"]["RefCount"].as_i64().unwrap_or(0),
            human_size(vsize(x))
        ));
    }
    s.push_str("\nBuild cache usage: ");
    s.push_str(&human_size(bc_total));
    s.push('\n');
    print!("{}", tabulate(&s));
    Ok(())
}

/// `berth system check [--repair]`: one line per finding (kind, what, where; `repaired` or
/// the error after `--repair`); exit 0 when clean, 1 while findings remain.
pub async fn check(c: &Client, a: SystemCheckArgs) -> anyhow::Result<()> {
    let r: Value = c
        .post_json(
            &Query::new()
                .flag("repair", a.repair)
                .on("/berth/system/check"),
            None::<&()>,
        )
        .await?;
    let findings = r["Findings"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for f in &findings {
        let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
        let mut line = format!("{}\t{}\t{}", s("Kind"), s("What"), s("Where"));
        if a.repair {
            match f["Error"].as_str() {
                _ if f["Repaired"].as_bool() == Some(true) => line.push_str("\trepaired"),
                Some(e) => line.push_str(&format!("\tnot repaired: {e}")),
                None => line.push_str("\tnot repaired"),
            }
        }
        writeln!(out, "{line}")?;
    }
    if r["Clean"].as_bool() == Some(true) {
        if findings.is_empty() {
            writeln!(out, "clean")?;
        }
        return Ok(());
    }
    Err(Exit::code(1))
}

pub async fn prune(c: &Client, a: SystemPruneArgs) -> anyhow::Result<()> {
    let mut warn = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        warn.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warn.push_str(if a.all {
        "  - all images without at least one container associated to them\n  - all build cache\n"
    } else {
        "  - all dangling images\n  - unused build cache\n"
    });
    if !super::confirm(warn.trim_end(), a.force) {
        return Ok(());
    }
    let f = filters_query(&a.filter).map_err(|e| Exit::msg(125, e))?;
    let mut total = 0i64;
    let r: Value = c
        .post_json(
            &Query::new()
                .raw("filters", f.clone())
                .on("/containers/prune"),
            None::<&()>,
        )
        .await?;
    total += r["SpaceReclaimed"].as_i64().unwrap_or(0);
    let items: Vec<&str> = r["ContainersDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !items.is_empty() {
        println!("Deleted Containers:\n{}\n", items.join("\n"));
    }
    let r: Value = c
        .post_json(
            &Query::new().raw("filters", f.clone()).on("/networks/prune"),
            None::<&()>,
        )
        .await?;
    let items: Vec<&str> = r["NetworksDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !items.is_empty() {
        println!("Deleted Networks:\n{}\n", items.join("\n"));
    }
    if a.volumes {
        let r: Value = c
            .post_json(
                &Query::new().raw("filters", f.clone()).on("/volumes/prune"),
                None::<&()>,
            )
            .await?;
        total += r["SpaceReclaimed"].as_i64().unwrap_or(0);
        let items: Vec<&str> = r["VolumesDeleted"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !items.is_empty() {
            println!("Deleted Volumes:\n{}\n", items.join("\n"));
        }
    }
    let mut img_filters = a.filter.clone();
    if a.all {
        img_filters.push("dangling=false".into());
    }
    let fi = filters_query(&img_filters).map_err(|e| Exit::msg(125, e))?;
    let r: Value = c
        .post_json(
            &Query::new().raw("filters", fi).on("/images/prune"),
            None::<&()>,
        )
        .await?;
    total += r["SpaceReclaimed"].as_i64().unwrap_or(0);
    let mut items = Vec::new();
    for d in r["ImagesDeleted"].as_array().into_iter().flatten() {
        if let Some(u) = d["Untagged"].as_str() {
            items.push(format!("untagged: {u}"));
        }
        if let Some(x) = d["Deleted"].as_str() {
            items.push(format!("deleted: {x}"));
        }
    }
    if !items.is_empty() {
        println!("Deleted Images:\n{}\n", items.join("\n"));
    }
    match c
        .post_json::<Value, ()>(&Query::new().flag("all", a.all).on("/build/prune"), None)
        .await
    {
        Ok(r) => total += r["SpaceReclaimed"].as_i64().unwrap_or(0),
        Err(e) => tracing::debug!("build cache prune unavailable: {e}"),
    }
    println!(
        "Total reclaimed space: {}",
        crate::units::human_size_prec(total as f64, 3)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_rendering() {
        let e = json!({"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"x","image":"busybox"}},"timeNano":0});
        let l = event_line(&e);
        assert!(
            l.ends_with(" container start abc (image=busybox, name=x)"),
            "{l}"
        );
    }

    #[test]
    fn a_rootless_daemon_gets_its_docker_host_line() {
        let host = berth_client::Host::Unix("/run/user/7/berth/berth.sock".into());
        let info = serde_json::json!({"SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless"]});
        assert_eq!(
            rootless_lines(&info, &host),
            " Rootless: true\n  For docker clients: export DOCKER_HOST=unix:///run/user/7/berth/berth.sock\n"
        );
        let rootful = serde_json::json!({"SecurityOptions": ["name=seccomp,profile=builtin"]});
        assert_eq!(rootless_lines(&rootful, &host), "");
    }

    #[test]
    fn a_remapped_daemon_shows_its_containers_root() {
        let host = berth_client::Host::Unix("/run/berth/berth.sock".into());
        let info = serde_json::json!({
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=userns"],
            "DockerRootDir": "/var/lib/berth/100000.100000"
        });
        assert_eq!(
            rootless_lines(&info, &host),
            " User namespace remap: container root = host 100000:100000\n"
        );
    }
}
