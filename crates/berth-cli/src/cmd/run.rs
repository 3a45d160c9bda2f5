//! Interactive container commands: run, create, start, attach, exec, logs.

use berth_client::models::{ContainerCreateResponse, ExecConfig};
use berth_client::{body, Client, ErrorKind};
use hyper::Method;
use serde_json::{json, Value};

use super::stream::{self, parse_detach_keys};
use super::{path_name, Query};
use crate::cli::{AttachArgs, ExecArgs, LogsArgs, RunArgs, StartArgs};
use crate::exit::{describe, start_failure, usage, Exit};
use crate::opts::split_tag;
use crate::runopts::{self, CreatePlan, Env};
use crate::tty::RawMode;

pub const DEFAULT_DETACH: &str = "ctrl-p,ctrl-q";

fn read_file(p: &str) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| e.to_string())
}

/// Pull `image` with progress on stderr-friendly lines (used by run/create).
async fn pull_for_run(c: &Client, image: &str, platform: Option<&str>) -> anyhow::Result<()> {
    let (repo, tag) = split_tag(image);
    let q = Query::new()
        .add("fromImage", repo)
        .add("tag", tag)
        .opt("platform", platform);
    let s = super::registry::create_image(c, &q, image).await?;
    crate::progress::show(s, crate::progress::Mode::Auto).await?;
    Ok(())
}

/// `POST /containers/create`, pulling the image when missing (per `--pull`).
pub(crate) async fn create(c: &Client, plan: &CreatePlan, pull: &str) -> anyhow::Result<String> {
    let image = plan.body.image.clone().unwrap_or_default();
    if pull == "always" {
        pull_for_run(c, &image, plan.platform.as_deref()).await?;
    }
    let q = Query::new()
        .opt("name", plan.name.as_deref())
        .opt("platform", plan.platform.as_deref());
    let path = q.on("/containers/create");
    let r: Result<ContainerCreateResponse, _> = c.post_json(&path, Some(&plan.body)).await;
    let r = match r {
        Err(e) if is_missing_image(&e) && pull == "missing" => {
            let shown = if image.contains(':') || image.contains('@') {
                image.clone()
            } else {
                format!("{image}:latest")
            };
            eprintln!("Unable to find image '{shown}' locally");
            pull_for_run(c, &image, plan.platform.as_deref()).await?;
            c.post_json(&path, Some(&plan.body)).await?
        }
        other => other?,
    };
    for w in &r.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(r.id)
}

/// A 404 from create that is about the image (not, say, an unknown route or network).
fn is_missing_image(e: &berth_client::Error) -> bool {
    e.kind() == ErrorKind::NotFound && e.to_string().to_ascii_lowercase().contains("image")
}

pub(crate) fn plan_from(a: &RunArgs, cmd: &str) -> anyhow::Result<CreatePlan> {
    if !matches!(a.pull.as_str(), "missing" | "always" | "never") {
        return Err(usage(
            cmd,
            format!(
                "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
                a.pull
            ),
        ));
    }
    let joined;
    let a = match &a.pod {
        Some(pod) => {
            joined = crate::cmd::pod::join(a, pod).map_err(|e| usage(cmd, e))?;
            &joined
        }
        None => a,
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let lookup = |k: &str| std::env::var(k).ok();
    let env = Env {
        lookup: &lookup,
        read_file: &read_file,
        cwd: &cwd,
    };
    runopts::plan(a, &env).map_err(|e| usage(cmd, e))
}

pub async fn create_cmd(c: &Client, a: RunArgs) -> anyhow::Result<()> {
    let plan = plan_from(&a, "create")?;
    let id = create(c, &plan, &a.pull).await?;
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &id)?;
    }
    println!("{id}");
    Ok(())
}

/// Start waiting (headers received, so the daemon registered the waiter) before start.
async fn begin_wait(
    c: &Client,
    id: &str,
    condition: &str,
) -> anyhow::Result<berth_client::ResponseStream> {
    Ok(c.stream(
        Method::POST,
        &format!("/containers/{id}/wait?condition={condition}"),
        body::empty(),
        &[],
    )
    .await?)
}

async fn finish_wait(w: berth_client::ResponseStream) -> anyhow::Result<i32> {
    let b = w.collect().await?;
    let v: Value = serde_json::from_slice(&b).unwrap_or_default();
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(Exit::msg(125, m.to_string()));
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(125) as i32)
}

pub async fn run(c: &Client, a: RunArgs) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    // Round-trip timings for `BERTH_LOG=berth_cli=debug`.
    let ms = |what: &str| {
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        tracing::debug!(ms, "run: {what}");
    };
    let plan = plan_from(&a, "run")?;
    let detach_keys = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_DETACH.into());
    let keys = parse_detach_keys(&detach_keys).map_err(|e| usage("run", e))?;
    let id = create(c, &plan, &a.pull).await?;
    ms("created");
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &id)?;
    }
    if a.detach {
        c.post(&format!("/containers/{id}/start"), None::<&()>)
            .await
            .map_err(|e| start_failure(e.into()))?;
        println!("{id}");
        return Ok(());
    }
    let b = &plan.body;
    let (stdin, stdout, stderr) = (
        b.attach_stdin.unwrap_or(false),
        b.attach_stdout.unwrap_or(true),
        b.attach_stderr.unwrap_or(true),
    );
    let q = Query::new()
        .add("stream", "1")
        .flag("stdin", stdin)
        .flag("stdout", stdout)
        .flag("stderr", stderr)
        .add("detachKeys", &detach_keys);
    let h = c
        .hijack(&q.on(&format!("/containers/{id}/attach")), None::<&()>)
        .await?;
    ms("attached");
    let wait = begin_wait(c, &id, if a.rm { "removed" } else { "next-exit" }).await?;
    ms("waiting");
    let _raw = (a.tty && stdin).then(RawMode::stdin).flatten();
    if let Err(e) = c
        .post(&format!("/containers/{id}/start"), None::<&()>)
        .await
    {
        drop(_raw);
        if a.rm {
            let _ = c.delete(&format!("/containers/{id}?force=1")).await;
        }
        return Err(start_failure(e.into()));
    }
    ms("started");
    if a.tty {
        stream::forward_resize(c, format!("/containers/{id}"));
    } else if a.sig_proxy {
        stream::proxy_signals(c, id.clone());
    }
    let detached = stream::pump(h, stdin, a.tty, keys).await?;
    ms("output ended");
    if detached {
        drop(_raw);
        return Ok(());
    }
    let code = finish_wait(wait).await?;
    ms("wait answered");
    drop(_raw);
    if code != 0 {
        return Err(Exit::code(code));
    }
    Ok(())
}

async fn inspect_container(c: &Client, id: &str) -> anyhow::Result<Value> {
    Ok(c.get_json(&format!("/containers/{}/json", path_name(id)))
        .await?)
}

/// Attach to a container that is about to start or running; returns its exit code.
async fn attach_session(
    c: &Client,
    id: &str,
    stdin: bool,
    detach_keys: &str,
    start: bool,
    sig_proxy: bool,
) -> anyhow::Result<Option<i32>> {
    let info = inspect_container(c, id).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = parse_detach_keys(detach_keys).map_err(|e| Exit::msg(125, e))?;
    let q = Query::new()
        .add("stream", "1")
        .flag("stdin", stdin)
        .add("stdout", "1")
        .add("stderr", "1")
        .add("detachKeys", detach_keys);
    let h = c
        .hijack(&q.on(&format!("/containers/{id}/attach")), None::<&()>)
        .await?;
    let wait = begin_wait(c, id, if start { "next-exit" } else { "not-running" }).await?;
    let _raw = (tty && stdin).then(RawMode::stdin).flatten();
    if start {
        c.post(&format!("/containers/{id}/start"), None::<&()>)
            .await?;
    }
    if tty {
        stream::forward_resize(c, format!("/containers/{id}"));
    } else if sig_proxy {
        stream::proxy_signals(c, id.to_string());
    }
    if stream::pump(h, stdin, tty, keys).await? {
        return Ok(None);
    }
    Ok(Some(finish_wait(wait).await?))
}

pub async fn start(c: &Client, a: StartArgs) -> anyhow::Result<()> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(Exit::msg(
                1,
                "you cannot start and attach multiple containers at once",
            ));
        }
        let keys = a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH);
        let code = attach_session(c, &a.containers[0], a.interactive, keys, true, true).await?;
        return match code {
            Some(0) | None => Ok(()),
            Some(n) => Err(Exit::code(n)),
        };
    }
    let mut failed = Vec::new();
    for id in &a.containers {
        match c
            .post(&format!("/containers/{}/start", path_name(id)), None::<&()>)
            .await
        {
            Ok(()) => println!("{id}"),
            Err(e) => failed.push(describe(&e.into())),
        }
    }
    if !failed.is_empty() {
        failed.push("Error: failed to start containers: ".to_string() + &a.containers.join(", "));
        return Err(Exit::msg(1, failed.join("\n")));
    }
    Ok(())
}

pub async fn attach(c: &Client, a: AttachArgs) -> anyhow::Result<()> {
    let keys = a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH);
    match attach_session(c, &a.container, !a.no_stdin, keys, false, a.sig_proxy).await? {
        Some(0) | None => Ok(()),
        Some(n) => Err(Exit::code(n)),
    }
}

pub async fn exec(c: &Client, a: ExecArgs) -> anyhow::Result<()> {
    let mut env = Vec::new();
    let lookup = |k: &str| std::env::var(k).ok();
    for f in &a.env_file {
        let text = read_file(f).map_err(|e| usage("exec", format!("open {f}: {e}")))?;
        env.extend(crate::opts::parse_env_file(&text, &lookup).map_err(|e| usage("exec", e))?);
    }
    env.extend(
        a.env
            .iter()
            .filter_map(|e| crate::opts::env_entry(e, &lookup)),
    );
    let detach_keys = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_DETACH.into());
    let keys = parse_detach_keys(&detach_keys).map_err(|e| usage("exec", e))?;
    let cfg = ExecConfig {
        attach_stdin: Some(a.interactive && !a.detach),
        attach_stdout: Some(!a.detach),
        attach_stderr: Some(!a.detach),
        tty: Some(a.tty),
        env: (!env.is_empty()).then_some(env),
        cmd: Some(a.cmd.clone()),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        privileged: Some(a.privileged),
        detach_keys: a.detach_keys.clone(),
        ..Default::default()
    };
    let r: Value = c
        .post_json(
            &format!("/containers/{}/exec", path_name(&a.container)),
            Some(&cfg),
        )
        .await?;
    let exec_id = r["Id"].as_str().unwrap_or_default().to_string();
    let start_body = json!({"Detach": a.detach, "Tty": a.tty});
    if a.detach {
        c.post(&format!("/exec/{exec_id}/start"), Some(&start_body))
            .await?;
        return Ok(());
    }
    let h = c
        .hijack(&format!("/exec/{exec_id}/start"), Some(&start_body))
        .await?;
    let raw = (a.tty && a.interactive).then(RawMode::stdin).flatten();
    if a.tty {
        stream::forward_resize(c, format!("/exec/{exec_id}"));
    }
    let detached = stream::pump(h, a.interactive, a.tty, keys).await?;
    drop(raw);
    if detached {
        return Ok(());
    }
    let info: Value = c.get_json(&format!("/exec/{exec_id}/json")).await?;
    match info["ExitCode"].as_i64() {
        Some(0) => Ok(()),
        Some(n) => Err(Exit::code(n as i32)),
        None => Err(Exit::code(126)),
    }
}

/// docker's GetTimestamp: a Go duration ("10m") is relative to now; RFC3339 or unix stamps
/// pass through as unix seconds.
pub fn timestamp_arg(v: &str, now: i64) -> String {
    if let Ok(d) = crate::units::parse_go_duration(v) {
        return (now - d.as_secs() as i64).to_string();
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return t.timestamp().to_string();
    }
    if let Ok(t) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return t
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp().to_string())
            .unwrap_or_default();
    }
    v.to_string()
}

pub async fn logs(c: &Client, a: LogsArgs) -> anyhow::Result<()> {
    let info = inspect_container(c, &a.container).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = crate::units::now_unix();
    let q = Query::new()
        .add("stdout", "1")
        .add("stderr", "1")
        .flag("follow", a.follow)
        .flag("timestamps", a.timestamps)
        .flag("details", a.details)
        .add("tail", &a.tail)
        .opt("since", a.since.as_deref().map(|s| timestamp_arg(s, now)))
        .opt("until", a.until.as_deref().map(|s| timestamp_arg(s, now)));
    let s = c
        .stream(
            Method::GET,
            &q.on(&format!("/containers/{}/logs", path_name(&a.container))),
            body::empty(),
            &[],
        )
        .await?;
    if s.headers().contains_key("x-berth-log-rotated") {
        eprintln!(
            "berth: older lines of {}'s log were rotated away (json-file keeps max-size x max-file; keep more with --log-opt max-size=... --log-opt max-file=...)",
            a.container
        );
    }
    stream::copy_body(s, tty).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp_arg("10m", 1000), "400");
        assert_eq!(timestamp_arg("1970-01-01T00:01:00Z", 0), "60");
        assert_eq!(timestamp_arg("1234.5", 0), "1234.5");
    }
}
