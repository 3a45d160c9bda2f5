//! Exec: start another process inside a running container (libcontainer's tenant builder).

use std::os::unix::net::UnixListener;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::Spec;
use serde_json::json;

use crate::error::{Error, Result};
use crate::protocol::ExecConfig;
use crate::shim::ShimConfig;
use crate::spec;

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn rt(id: &str, m: impl std::fmt::Display) -> Error {
    Error::Runtime {
        id: id.to_string(),
        message: m.to_string(),
    }
}

/// The OCI process for an exec: the container's process with the exec's overrides.
pub fn exec_process(base: &Spec, ec: &ExecConfig) -> Result<serde_json::Value> {
    let mut p = serde_json::to_value(
        base.process()
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig("container spec has no process".into()))?,
    )
    .map_err(|e| Error::InvalidConfig(e.to_string()))?;
    p["args"] = json!(ec.args);
    p["terminal"] = json!(ec.tty);
    let mut env: Vec<String> = serde_json::from_value(p["env"].clone()).unwrap_or_default();
    for kv in &ec.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p["env"] = json!(env);
    if !ec.cwd.is_empty() {
        p["cwd"] = json!(ec.cwd);
    }
    if let Some(u) = &ec.user {
        let map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
        let gids = spec::groups(&u.additional_gids, spec::single_id(&map));
        p["user"] = json!({"uid": u.uid, "gid": u.gid, "additionalGids": gids});
    }
    if ec.privileged {
        // Only what this runtime holds: one capability outside its bounding set fails the exec.
        let all: Vec<String> = spec::ALL_CAPS.iter().map(|c| c.to_string()).collect();
        let (all, _) = crate::confine::split_held(&all, crate::confine::bounding_set());
        p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    }
    if let Some(o) = p.as_object_mut() {
        o.remove("oomScoreAdj");
    }
    Ok(p)
}

/// The exec's working directory must exist inside the container: say which one is missing
/// (runc's wording) instead of failing in the runtime's chdir without a name.
fn check_cwd(root: &std::path::Path, cwd: &str) -> Result<()> {
    let host = crate::pathutil::resolve_in_root(root, cwd);
    let why = match host.as_deref().map(std::fs::metadata) {
        Some(Ok(m)) if m.is_dir() => return Ok(()),
        Some(Ok(_)) => "not a directory",
        None => "too many levels of symbolic links",
        Some(Err(_)) => "no such file or directory",
    };
    Err(Error::Exec {
        message: format!("chdir to cwd (\"{cwd}\") set in config.json failed: {why}"),
        exit_code: 126,
    })
}

type StdioPending = (crate::stdio::PendingStdio, Option<UnixListener>);

/// Start the exec; returns its host pid and its stdio (to be finished by the shim).
pub(crate) fn start(cfg: &ShimConfig, ec: &ExecConfig) -> Result<(i32, StdioPending)> {
    let id = &cfg.spec.id;
    if ec.args.is_empty() {
        return Err(Error::InvalidConfig("exec: no command given".into()));
    }
    let base = Spec::load(crate::userns::exec_base("bundle")).map_err(|e| rt(id, e))?;
    let path_env = spec::path_of(&base);
    let init_pid = libcontainer::container::Container::load(cfg.state_root.join(id))
        .ok()
        .and_then(|c| c.pid());
    // Look through the container's own root so its volumes and tmpfs mounts count too.
    let root = init_pid
        .map(|pid| std::path::PathBuf::from(format!("/proc/{pid}/root")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| cfg.spec.rootfs.clone());
    let user = match &ec.user {
        Some(u) => u.clone(),
        None => crate::executor::spec_user(&base),
    };
    crate::pathutil::find_executable(&root, &ec.args[0], &path_env, &user)?;
    if !ec.cwd.is_empty() {
        check_cwd(&root, &ec.cwd)?;
    }
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let proc_path = format!("exec-{n}.json");
    let p = exec_process(&base, ec)?;
    std::fs::write(&proc_path, serde_json::to_vec(&p).expect("json"))
        .map_err(|e| Error::io("write exec process", &proc_path, e))?;
    // The shim runs in the container's directory, where its error log is.
    let here = std::path::Path::new(".");
    let since = crate::shim::errlog::mark(here);
    let b = ContainerBuilder::new(id.clone(), SyscallType::default())
        .with_executor(crate::executor::BerthExecutor)
        .with_root_path(&cfg.state_root)
        .map_err(|e| rt(id, e))?;
    let console = format!("exec-{n}-console.sock");
    let (b, stdio, listener) = crate::stdio::stdio_for(b, ec.tty, ec.stdin, &console)?;
    let abs = std::env::current_dir().unwrap_or_default().join(&proc_path);
    let tenant = move || {
        b.as_tenant()
            .with_process(Some(abs))
            .with_detach(true)
            .build()
            .map_err(|e| e.to_string())
    };
    let r = match (&cfg.spec.userns, init_pid) {
        (Some(_), Some(pid)) => crate::userns::in_user_namespace_of(pid.as_raw(), tenant),
        (Some(_), None) => Err("the container has no process to join".to_string()),
        (None, _) => tenant().map(|p| p.as_raw()),
    };
    let _ = std::fs::remove_file(&proc_path);
    let pid = r.map_err(|e| {
        rt(
            id,
            crate::shim::errlog::explain(&format!("exec failed: {e}"), here, since),
        )
    })?;
    Ok((pid, (stdio, listener)))
}
