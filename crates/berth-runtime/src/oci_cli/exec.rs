//! `exec`: another process in a running container through libcontainer's tenant builder — from
//! a `--process` JSON file (containerd's way) or from args and flags over the container's own
//! process (the shim's `exec_process`).

use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::ContainerStatus;
use libcontainer::syscall::syscall::SyscallType;

use super::args::Exec;
use super::{dir, fail, lc, load, CliError, R};
use crate::protocol::ExecConfig;
use crate::user::User;

/// `uid[:gid]` as runc's `--user` takes it.
pub fn parse_user(s: &str, extra: &[u32]) -> R<User> {
    let (u, g) = s.split_once(':').unwrap_or((s, "0"));
    let bad = || {
        CliError(format!(
            "invalid --user {s:?}: expected uid[:gid] (numbers)"
        ))
    };
    Ok(User {
        uid: u.parse().map_err(|_| bad())?,
        gid: g.parse().map_err(|_| bad())?,
        additional_gids: extra.to_vec(),
        home: None,
    })
}

pub fn exec(root: &Path, e: &Exec) -> R<i32> {
    let c = load(root, &e.id)?;
    match c.status() {
        ContainerStatus::Running => {}
        ContainerStatus::Paused if e.ignore_paused => {}
        ContainerStatus::Paused => {
            return fail("cannot exec in a paused container (use --ignore-paused to override)")
        }
        ContainerStatus::Stopped => return fail("cannot exec in a stopped container"),
        s => return fail(format!("cannot exec in a container in the {s} state")),
    }
    // The process to run: the given file, or one made from the container's process.
    let mut made = None;
    let process_file = match &e.process {
        Some(p) => p.clone(),
        None => {
            if e.command.is_empty() {
                return fail("exec: no command given (args or --process)");
            }
            let cfg = c.bundle().join("config.json");
            let base = oci_spec::runtime::Spec::load(&cfg)
                .map_err(|x| CliError(format!("read {}: {x}", cfg.display())))?;
            let ec = ExecConfig {
                args: e.command.clone(),
                env: e.env.clone(),
                cwd: e.cwd.clone().unwrap_or_default(),
                user: e
                    .user
                    .as_deref()
                    .map(|u| parse_user(u, &e.additional_gids))
                    .transpose()?,
                tty: e.tty,
                stdin: true,
                privileged: false,
            };
            let mut p =
                crate::exec::exec_process(&base, &ec).map_err(|x| CliError(x.to_string()))?;
            if e.no_new_privs {
                p["noNewPrivileges"] = serde_json::json!(true);
            }
            let path = dir(root, &e.id).join(format!("exec-{}.json", std::process::id()));
            std::fs::write(&path, p.to_string())
                .map_err(|x| CliError(format!("write {}: {x}", path.display())))?;
            made = Some(path.clone());
            path
        }
    };
    let process_file = std::fs::canonicalize(&process_file)
        .map_err(|x| CliError(format!("process file {}: {x}", process_file.display())))?;
    if !e.detach {
        super::lifecycle::become_subreaper();
    }
    let mut b = ContainerBuilder::new(e.id.clone(), SyscallType::default())
        .with_executor(crate::executor::BerthExecutor)
        .with_root_path(root)
        .map_err(|x| lc("state root", x))?
        .with_console_socket(e.console_socket.as_ref())
        .with_preserved_fds(e.preserve_fds);
    if let Some(p) = &e.pid_file {
        b = b.with_pid_file(Some(p)).map_err(|x| lc("pid file", x))?;
    }
    let built = b
        .as_tenant()
        .with_process(Some(&process_file))
        .with_detach(e.detach)
        .build();
    if let Some(p) = made {
        let _ = std::fs::remove_file(p);
    }
    let pid = built.map_err(|x| lc(&format!("exec in container {}", e.id), x))?;
    if e.detach {
        return Ok(0);
    }
    Ok(super::lifecycle::wait_forwarding(pid.as_raw()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        let u = parse_user("1000:100", &[5]).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 100, vec![5]));
        assert_eq!(parse_user("7", &[]).unwrap().gid, 0);
        assert!(parse_user("bob", &[]).is_err());
    }
}
