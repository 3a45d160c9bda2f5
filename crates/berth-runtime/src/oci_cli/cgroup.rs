//! The cgroup-side commands: `ps`, `update` and `events`, through libcgroups' manager for the
//! container's own cgroup path (as the shim's update does).

use std::io::Read;
use std::path::Path;

use libcgroups::common::{AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt};
use libcontainer::container::{Container, ContainerStatus};

use super::args::{Events, Format, Ps, Update};
use super::{fail, lc, load, resources, CliError, R};

fn manager(c: &Container) -> R<AnyCgroupManager> {
    let path = c
        .spec()
        .map_err(|e| lc("read the container's config", e))?
        .cgroup_path;
    libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: path,
        systemd_cgroup: false,
        container_name: c.id().to_string(),
    })
    .map_err(|e| lc("cgroup manager", e))
}

fn running(c: &Container) -> R<()> {
    match c.status() {
        ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Created => Ok(()),
        _ => fail("container not running"),
    }
}

pub fn ps(root: &Path, p: &Ps) -> R<()> {
    let c = load(root, &p.id)?;
    running(&c)?;
    let pids: Vec<i32> = manager(&c)?
        .get_all_pids()
        .map_err(|e| lc("list the container's processes", e))?
        .into_iter()
        .map(|p| p.as_raw())
        .collect();
    if p.format == Format::Json {
        println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
        return Ok(());
    }
    let args = if p.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        p.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| CliError(format!("run ps: {e}")))?;
    if !out.status.success() {
        return fail(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    print!(
        "{}",
        filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)?
    );
    Ok(())
}

/// Keep ps(1)'s header and the lines whose PID column is one of `pids` (runc's ps table).
pub fn filter_ps(text: &str, pids: &[i32]) -> R<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        return fail("couldn't find PID field in ps output");
    };
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

pub fn update(root: &Path, u: &Update) -> R<()> {
    let c = load(root, &u.id)?;
    running(&c)?;
    let text = match u.resources.as_deref() {
        None => None,
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError(format!("read resources from stdin: {e}")))?;
            Some(s)
        }
        Some(f) => {
            Some(std::fs::read_to_string(f).map_err(|e| CliError(format!("read {f}: {e}")))?)
        }
    };
    let res = resources::from_update(u, text.as_deref())?;
    manager(&c)?
        .apply(&ControllerOpt {
            resources: &res,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| lc(&format!("update container {}", u.id), e))
}

fn stats_event(c: &Container) -> R<serde_json::Value> {
    let s = manager(c)?
        .stats()
        .map_err(|e| lc("read the container's cgroup stats", e))?;
    Ok(serde_json::json!({"type": "stats", "id": c.id(), "data": resources::runc_stats(&s)}))
}

pub fn events(root: &Path, e: &Events) -> R<()> {
    let interval = resources::parse_interval(&e.interval)?;
    let c = load(root, &e.id)?;
    running(&c)?;
    if e.stats {
        println!("{}", stats_event(&c)?);
        return Ok(());
    }
    loop {
        let c = load(root, &e.id)?;
        if c.status() == ContainerStatus::Stopped {
            return Ok(());
        }
        println!("{}", stats_event(&c)?);
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_table_keeps_the_containers_lines() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 1 0 0 10:00 ? 00:00:01 init\n\
                    root 42 1 0 10:00 ? 00:00:00 sleep 9\n";
        let t = filter_ps(text, &[42]).unwrap();
        assert_eq!(t.lines().count(), 2);
        assert!(t.contains("sleep 9") && !t.contains("init"));
        assert!(filter_ps("USER CMD\n", &[1]).is_err());
    }
}
