//! `berth update`: Docker's limit and restart flags plus berth's `--publish-add/-rm`,
//! `--mount-/--volume-add/-rm`, `--env-add/-rm`, `--network-add/-rm`, `--label-add/-rm` and
//! `--dry-run`, sent as one `POST /containers/{id}/update` (berth's extension fields).

use berth_client::Client;
use serde_json::{json, Map, Value};

use super::path_name;
use crate::cli::UpdateArgs;
use crate::exit::describe;

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    crate::exit::usage("update", e)
}

/// The request body the flags ask for (pure but for `--env-add KEY`, read from this
/// environment as `docker run -e KEY` does).
pub fn update_body(a: &UpdateArgs) -> anyhow::Result<Map<String, Value>> {
    let r = crate::runopts::resources(&a.resources).map_err(usage)?;
    let mut body = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    put("Memory", r.memory.map(Value::from));
    put("MemorySwap", r.memory_swap.map(Value::from));
    put("MemoryReservation", r.memory_reservation.map(Value::from));
    put("NanoCpus", r.nano_cpus.map(Value::from));
    put("CpuShares", r.cpu_shares.map(Value::from));
    put("CpusetCpus", r.cpuset_cpus.map(Value::from));
    put("PidsLimit", r.pids_limit.map(Value::from));
    if let Some(r) = &a.restart {
        let p = crate::opts::parse_restart(r).map_err(usage)?;
        put("RestartPolicy", Some(serde_json::to_value(p)?));
    }
    let ports = |specs: &[String]| -> anyhow::Result<Option<Value>> {
        let mut out = Vec::new();
        for s in specs {
            for p in crate::opts::parse_publish(s).map_err(usage)? {
                out.push(
                    json!({"ContainerPort": p.port, "HostIp": p.host_ip, "HostPort": p.host_port}),
                );
            }
        }
        Ok((!out.is_empty()).then_some(Value::from(out)))
    };
    put("PublishAdd", ports(&a.publish_add)?);
    put("PublishRm", ports(&a.publish_rm)?);
    let list = |v: &[String]| (!v.is_empty()).then(|| Value::from(v.to_vec()));
    let mut mounts = Vec::new();
    for m in &a.mount_add {
        mounts.push(serde_json::to_value(
            crate::opts::parse_mount(m).map_err(usage)?,
        )?);
    }
    put(
        "MountsAdd",
        (!mounts.is_empty()).then_some(Value::from(mounts)),
    );
    let cwd = std::env::current_dir()?;
    let mut binds = Vec::new();
    for v in &a.volume_add {
        binds.push(match crate::opts::parse_volume(v, &cwd).map_err(usage)? {
            crate::opts::VolumeSpec::Anonymous(d) | crate::opts::VolumeSpec::Bind(d) => d,
        });
    }
    put("BindsAdd", list(&binds));
    let rm: Vec<String> = a.mount_rm.iter().chain(&a.volume_rm).cloned().collect();
    put("MountsRm", list(&rm));
    let mut env = Vec::new();
    for e in &a.env_add {
        if e.contains('=') {
            env.push(e.clone());
        } else {
            let v = std::env::var(e)
                .map_err(|_| usage(format!("--env-add {e}: not set here; give {e}=VALUE")))?;
            env.push(format!("{e}={v}"));
        }
    }
    put("EnvAdd", list(&env));
    put("EnvRm", list(&a.env_rm));
    put("NetworksAdd", list(&a.network_add));
    put("NetworksRm", list(&a.network_rm));
    if !a.label_add.is_empty() {
        let labels: Map<String, Value> = a
            .label_add
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), Value::from(v))
            })
            .collect();
        put("LabelsAdd", Some(Value::Object(labels)));
    }
    put("LabelsRm", list(&a.label_rm));
    Ok(body)
}

/// What a dry run prints: the action, whether the process restarts, and each changed field.
fn describe_plan(id: &str, v: &Value) -> String {
    let action = v["Action"].as_str().unwrap_or("none");
    let restart = if v["Restart"].as_bool().unwrap_or(false) {
        "yes"
    } else {
        "no"
    };
    let mut s = format!("{id}: {action} (restart: {restart})\n");
    for c in v["Changes"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {}\n    before: {}\n    after:  {}\n",
            c["Field"].as_str().unwrap_or(""),
            c["Before"],
            c["After"]
        ));
    }
    s
}

pub async fn update(c: &Client, a: UpdateArgs) -> anyhow::Result<()> {
    let body = update_body(&a)?;
    let q = if a.dry_run { "?dryRun=1" } else { "" };
    let mut errs = Vec::new();
    for id in &a.containers {
        let path = format!("/containers/{}/update{q}", path_name(id));
        match c.post_json::<Value, _>(&path, Some(&body)).await {
            Ok(v) if a.dry_run => print!("{}", describe_plan(id, &v)),
            Ok(_) => println!("{id}"),
            Err(e) => errs.push(describe(&e.into())),
        }
    }
    super::all_ok(errs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn body(args: &[&str]) -> Map<String, Value> {
        let mut argv = vec!["berth", "update"];
        argv.extend(args);
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let crate::cli::Command::C(crate::cli::ContainerCmd::Update(a)) = cli.cmd else {
            panic!("not an update");
        };
        update_body(&a).unwrap()
    }

    #[test]
    fn flags_become_extension_fields() {
        let b = body(&[
            "--publish-add",
            "127.0.0.1:8081:81",
            "--publish-rm",
            "80",
            "--env-add",
            "A=1",
            "--env-rm",
            "B",
            "--volume-add",
            "data:/data:ro",
            "--mount-add",
            "type=tmpfs,target=/t",
            "--mount-rm",
            "/old",
            "--label-add",
            "k=v",
            "--network-add",
            "n1",
            "-m",
            "64m",
            "c1",
        ]);
        assert_eq!(
            b["PublishAdd"],
            json!([{"ContainerPort": "81/tcp", "HostIp": "127.0.0.1", "HostPort": "8081"}])
        );
        assert_eq!(
            b["PublishRm"],
            json!([{"ContainerPort": "80/tcp", "HostIp": "", "HostPort": ""}])
        );
        assert_eq!(b["EnvAdd"], json!(["A=1"]));
        assert_eq!(b["EnvRm"], json!(["B"]));
        assert_eq!(b["BindsAdd"], json!(["data:/data:ro"]));
        assert_eq!(b["MountsAdd"][0]["Target"], "/t");
        assert_eq!(b["MountsRm"], json!(["/old"]));
        assert_eq!(b["LabelsAdd"], json!({"k": "v"}));
        assert_eq!(b["NetworksAdd"], json!(["n1"]));
        assert_eq!(b["Memory"], 64 << 20);
        assert!(!b.contains_key("NetworksRm"));
    }

    #[test]
    fn limits_only_send_dockers_keys() {
        let b = body(&["--cpu-shares", "512", "c1"]);
        assert_eq!(b.keys().collect::<Vec<_>>(), ["CpuShares"]);
    }

    #[test]
    fn dry_run_prints_before_and_after() {
        let v = json!({"Action": "recreate", "Restart": true, "Changes": [
            {"Field": "Config.Env", "Before": ["A=1"], "After": ["A=2"]}]});
        assert_eq!(
            describe_plan("web", &v),
            "web: recreate (restart: yes)\n  Config.Env\n    before: [\"A=1\"]\n    after:  [\"A=2\"]\n"
        );
    }
}
