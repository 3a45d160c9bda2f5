//! Image commands: images, load, save, import, tag, rmi, inspect, history, image prune.

use std::io::Write;

use anyhow::Context;
use berth_client::{body, Client, ErrorKind};
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{path_name, print_json_indented, Query};
use crate::cli::{
    HistoryArgs, ImagePruneArgs, ImagesArgs, ImportArgs, InspectArgs, LoadArgs, RmiArgs, SaveArgs,
    TagArgs,
};
use crate::exit::{describe, Exit};
use crate::format::{short_id, Lister};
use crate::opts::{filters_query, split_tag};
use crate::progress::{self, Mode};
use crate::template::Template;
use crate::units::{ago, human_size_prec, now_unix};

const IMAGES: Lister = Lister {
    default_table: "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: &[
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
    ],
};
const IMAGES_DIGESTS: Lister = Lister {
    default_table: "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: IMAGES.headers,
};

/// Local time as Go prints `time.Time` ("2006-01-02 15:04:05 -0700 MST").
pub fn go_time(ts: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(ts, 0) {
        chrono::LocalResult::Single(t) => {
            let zone = if t.offset().local_minus_utc() == 0 {
                "UTC".to_string()
            } else {
                t.format("%z").to_string()
            };
            format!("{} {zone}", t.format("%Y-%m-%d %H:%M:%S %z"))
        }
        _ => ts.to_string(),
    }
}

/// Rows of `berth images` from `/images/json` entries (one per tag, like docker).
pub fn image_rows(list: &[Value], no_trunc: bool, now: i64) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in list {
        let id = img["Id"].as_str().unwrap_or_default();
        let id = if no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        let created = img["Created"].as_i64().unwrap_or(0);
        let size = img["Size"].as_i64().unwrap_or(0);
        let digests: Vec<&str> = img["RepoDigests"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut tags: Vec<(String, String)> = img["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "<none>:<none>")
                    .map(|t| {
                        let (r, tg) = split_tag(t);
                        (r, tg)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if tags.is_empty() {
            // untagged: show repos from digests, else <none>
            tags = digests
                .iter()
                .map(|d| {
                    (
                        d.split('@').next().unwrap_or("<none>").to_string(),
                        "<none>".to_string(),
                    )
                })
                .collect();
            if tags.is_empty() {
                tags.push(("<none>".into(), "<none>".into()));
            }
        }
        for (repo, tag) in tags {
            let digest = digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, dg)| dg)
                })
                .unwrap_or("<none>");
            rows.push(json!({
                "Containers": img["Containers"].as_i64().filter(|n| *n >= 0).map(|n| n.to_string()).unwrap_or("N/A".into()),
                "CreatedAt": go_time(created),
                "CreatedSince": ago(created, now),
                "Digest": digest,
                "ID": id,
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": human_size_prec(size as f64, 3),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size_prec(img["VirtualSize"].as_i64().unwrap_or(size) as f64, 3),
            }));
        }
    }
    rows
}

pub async fn images(c: &Client, a: ImagesArgs) -> anyhow::Result<()> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let q = Query::new()
        .flag("all", a.all)
        .flag("digests", a.digests)
        .raw(
            "filters",
            filters_query(&filters).map_err(|e| Exit::msg(125, e))?,
        );
    let list: Vec<Value> = c.get_json(&q.on("/images/json")).await?;
    let rows = image_rows(&list, a.no_trunc, now_unix());
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        let mut out = std::io::stdout().lock();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default();
            if seen.insert(id.to_string()) {
                writeln!(out, "{id}")?;
            }
        }
        return Ok(());
    }
    let l = if a.digests { IMAGES_DIGESTS } else { IMAGES };
    l.print(a.format.as_deref(), &rows)
}

pub async fn load(c: &Client, a: LoadArgs) -> anyhow::Result<()> {
    let b = match &a.input {
        Some(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .with_context(|| format!("open {p}"))?;
            body::reader(f)
        }
        None => {
            if crate::tty::stdin_is_tty() {
                return Err(Exit::msg(
                    1,
                    "requested load from stdin, but stdin is empty",
                ));
            }
            body::reader(tokio::io::stdin())
        }
    };
    let path = Query::new().flag("quiet", a.quiet).on("/images/load");
    let s = c
        .stream(
            Method::POST,
            &path,
            b,
            &[("Content-Type", "application/x-tar")],
        )
        .await?;
    let out = progress::show(s, Mode::Lines).await?;
    drop(out);
    Ok(())
}

pub async fn save(c: &Client, a: SaveArgs) -> anyhow::Result<()> {
    if a.output.is_none() && crate::tty::stdout_is_tty() {
        return Err(Exit::msg(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q = Query::new();
    for i in &a.images {
        q = q.add("names", i);
    }
    let mut s = c
        .stream(Method::GET, &q.on("/images/get"), body::empty(), &[])
        .await?;
    let mut w: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &a.output {
        Some(p) => Box::new(
            tokio::fs::File::create(p)
                .await
                .with_context(|| format!("failed to save image: create {p}"))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    while let Some(chunk) = s.next_chunk().await? {
        w.write_all(&chunk).await?;
    }
    w.flush().await?;
    Ok(())
}

pub async fn import(c: &Client, a: ImportArgs) -> anyhow::Result<()> {
    let b = if a.source == "-" {
        body::reader(tokio::io::stdin())
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        body::empty()
    } else {
        let f = tokio::fs::File::open(&a.source)
            .await
            .with_context(|| format!("open {}", a.source))?;
        body::reader(f)
    };
    let from_src = if a.source.starts_with("http") {
        a.source.as_str()
    } else {
        "-"
    };
    let mut q = Query::new().add("fromSrc", from_src);
    if let Some(r) = &a.reference {
        let (repo, tag) = split_tag(r);
        q = q.add("repo", repo).add("tag", tag);
    }
    q = q
        .opt("message", a.message.as_deref())
        .opt("platform", a.platform.as_deref());
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    let s = c
        .stream(
            Method::POST,
            &q.on("/images/create"),
            b,
            &[("Content-Type", "application/x-tar")],
        )
        .await?;
    let out = progress::show(s, Mode::Quiet).await?;
    if let Some(id) = out.statuses.last() {
        println!("{id}");
    }
    Ok(())
}

pub async fn tag(c: &Client, a: TagArgs) -> anyhow::Result<()> {
    let (repo, tag) = split_tag(&a.target);
    let q = Query::new().add("repo", repo).add("tag", tag);
    c.send(
        Method::POST,
        &q.on(&format!("/images/{}/tag", path_name(&a.source))),
        body::empty(),
    )
    .await?;
    Ok(())
}

pub async fn rmi(c: &Client, a: RmiArgs) -> anyhow::Result<()> {
    let mut failed = false;
    for img in &a.images {
        let q = Query::new()
            .flag("force", a.force)
            .flag("noprune", a.no_prune);
        match c
            .delete(&q.on(&format!("/images/{}", path_name(img))))
            .await
        {
            Ok(b) => {
                let items: Vec<Value> = serde_json::from_slice(&b).unwrap_or_default();
                for it in items {
                    if let Some(u) = it["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("{}", describe(&e.into()));
            }
        }
    }
    if failed {
        return Err(Exit::code(1));
    }
    Ok(())
}

async fn inspect_one(
    c: &Client,
    kind: &str,
    name: &str,
    size: bool,
) -> Result<Value, berth_client::Error> {
    let n = path_name(name);
    let path = match kind {
        "container" => Query::new()
            .flag("size", size)
            .on(&format!("/containers/{n}/json")),
        "image" => format!("/images/{n}/json"),
        "network" => format!("/networks/{n}"),
        "volume" => format!("/volumes/{n}"),
        "exec" => format!("/exec/{n}/json"),
        _ => unreachable!("validated kind"),
    };
    c.get_json(&path).await
}

/// Print inspect results as a JSON array or through `--format`.
pub fn print_inspect(results: &[Value], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        None | Some("") => print_json_indented(&Value::Array(results.to_vec())),
        Some("json") => {
            for r in results {
                println!("{}", serde_json::to_string(r)?);
            }
            Ok(())
        }
        Some(f) => {
            let t = Template::parse(f).map_err(|e| Exit::msg(1, e.to_string()))?;
            let mut out = std::io::stdout().lock();
            for r in results {
                writeln!(
                    out,
                    "{}",
                    t.render(r).map_err(|e| Exit::msg(1, e.to_string()))?
                )?;
            }
            Ok(())
        }
    }
}

async fn inspect_kinds(
    c: &Client,
    kinds: &[&str],
    format: Option<String>,
    names: Vec<String>,
    size: bool,
) -> anyhow::Result<()> {
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for n in &names {
        let mut found = None;
        for k in kinds {
            match inspect_one(c, k, n, size).await {
                Ok(v) => {
                    found = Some(v);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        match found {
            Some(v) => results.push(v),
            None => {
                let what = if kinds.len() == 1 { kinds[0] } else { "object" };
                errors.push(format!("Error: No such {what}: {n}"));
            }
        }
    }
    // docker prints what it found, then the errors
    if !results.is_empty() || errors.is_empty() {
        print_inspect(&results, format.as_deref())?;
    }
    if !errors.is_empty() {
        return Err(Exit::msg(1, errors.join("\n")));
    }
    Ok(())
}

pub async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<()> {
    let kinds: Vec<&str> = match a.kind.as_deref() {
        None | Some("") => vec!["container", "image", "volume", "network"],
        Some(k @ ("container" | "image" | "network" | "volume")) => vec![k],
        Some(k) => {
            return Err(Exit::msg(
                125,
                format!("\"{k}\" is not a valid value for --type"),
            ))
        }
    };
    inspect_kinds(c, &kinds, a.format, a.names, a.size).await
}

pub async fn inspect_typed(
    c: &Client,
    kind: &str,
    format: Option<String>,
    names: Vec<String>,
) -> anyhow::Result<()> {
    inspect_kinds(c, &[kind], format, names, false).await
}

const HISTORY: Lister = Lister {
    default_table: "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
    ],
};

/// Go's stringutils.Ellipsis: cut to `max` chars ending in "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Rows of `berth history`.
pub fn history_rows(items: &[Value], human: bool, no_trunc: bool, now: i64) -> Vec<Value> {
    items
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" || no_trunc { id.to_string() } else { short_id(id) };
            let created = h["Created"].as_i64().unwrap_or(0);
            let size = h["Size"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or_default().replace('\t', " ");
            let by = if no_trunc { by } else { ellipsis(&by, 45) };
            json!({
                "ID": id,
                "CreatedSince": if human { ago(created, now) } else { chrono::DateTime::from_timestamp(created, 0).map(|t| t.to_rfc3339()).unwrap_or_default() },
                "CreatedAt": go_time(created),
                "CreatedBy": by,
                "Size": if human { human_size_prec(size as f64, 3) } else { size.to_string() },
                "Comment": h["Comment"].as_str().unwrap_or_default(),
            })
        })
        .collect()
}

pub async fn history(c: &Client, a: HistoryArgs) -> anyhow::Result<()> {
    let items: Vec<Value> = c
        .get_json(&format!("/images/{}/history", path_name(&a.image)))
        .await?;
    let rows = history_rows(&items, a.human, a.no_trunc, now_unix());
    if a.quiet {
        for r in rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    HISTORY.print(a.format.as_deref(), &rows)
}

/// Print a prune report's deleted items and reclaimed space.
pub fn print_reclaimed(title: &str, items: &[String], space: i64) {
    if !items.is_empty() {
        println!("{title}:");
        for i in items {
            println!("{i}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size_prec(space as f64, 3)
    );
}

pub async fn prune(c: &Client, a: ImagePruneArgs) -> anyhow::Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !super::confirm(warning, a.force) {
        return Ok(());
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("dangling=false".into());
    }
    let q = Query::new().raw(
        "filters",
        filters_query(&filters).map_err(|e| Exit::msg(125, e))?,
    );
    let r: Value = c.post_json(&q.on("/images/prune"), None::<&()>).await?;
    let mut items = Vec::new();
    for d in r["ImagesDeleted"].as_array().into_iter().flatten() {
        if let Some(u) = d["Untagged"].as_str() {
            items.push(format!("untagged: {u}"));
        }
        if let Some(x) = d["Deleted"].as_str() {
            items.push(format!("deleted: {x}"));
        }
    }
    print_reclaimed(
        "Deleted Images",
        &items,
        r["SpaceReclaimed"].as_i64().unwrap_or(0),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag() {
        let list = vec![
            json!({
                "Id": "sha256:c50ff9579a62aaaaaaaaaaaa", "Created": 1000, "Size": 1_990_000,
                "RepoTags": ["busybox:latest", "localhost:5000/bb:1"],
                "RepoDigests": ["busybox@sha256:abc"]
            }),
            json!({"Id":"sha256:0123456789abcdef","Created":1000,"Size":0,"RepoTags":null,"RepoDigests":[]}),
        ];
        let rows = image_rows(&list, false, 1000 + 7200);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[0]["Digest"], "sha256:abc");
        assert_eq!(rows[0]["ID"], "c50ff9579a62");
        assert_eq!(rows[0]["Size"], "1.99MB");
        assert_eq!(rows[0]["CreatedSince"], "2 hours ago");
        assert_eq!(rows[1]["Repository"], "localhost:5000/bb");
        assert_eq!(rows[1]["Digest"], "<none>");
        assert_eq!(rows[2]["Tag"], "<none>");
        let s = IMAGES.render(None, &rows[..1]).unwrap();
        assert_eq!(
            s,
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             busybox      latest    c50ff9579a62   2 hours ago   1.99MB\n"
        );
    }

    #[test]
    fn history_truncates() {
        let by = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in /";
        let items =
            vec![json!({"Id":"<missing>","Created":0,"CreatedBy":by,"Size":1000,"Comment":""})];
        let r = history_rows(&items, true, false, 60);
        assert_eq!(r[0]["CreatedBy"].as_str().unwrap().chars().count(), 45);
        assert!(r[0]["CreatedBy"].as_str().unwrap().ends_with('…'));
        assert_eq!(r[0]["Size"], "1kB");
        let r = history_rows(&items, false, true, 60);
        assert_eq!(r[0]["Size"], "1000");
        assert_eq!(r[0]["CreatedBy"], by);
    }
}
