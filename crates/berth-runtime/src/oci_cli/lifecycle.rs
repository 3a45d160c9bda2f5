//! create, start, run, state, kill, delete, pause/resume and list over libcontainer, with
//! runc's messages for the wrong state; `run` attached waits and forwards signals.

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;

use super::args::{CreateOpts, Format, Kill, List, Run};
use super::{bundle, dir, fail, lc, load, state, CliError, R};

/// Create container `id` from `opts.bundle`; its init waits for `start`. `attached` (`run`
/// without --detach): a terminal container without a console socket uses our own terminal.
pub fn create(root: &Path, id: &str, opts: &CreateOpts, attached: bool) -> R<Container> {
    super::check_id(id)?;
    let bundle_dir = bundle::resolve(&opts.bundle)?;
    bundle::load(&bundle_dir)?;
    if dir(root, id).exists() {
        return fail(format!("container with id {id} already exists"));
    }
    std::fs::create_dir_all(root)
        .map_err(|e| CliError(format!("create state root {}: {e}", root.display())))?;
    let mut b = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(crate::executor::BerthExecutor)
        .with_root_path(root)
        .map_err(|e| lc("state root", e))?
        .with_console_socket(opts.console_socket.as_ref())
        .with_preserved_fds(opts.preserve_fds);
    if let Some(p) = &opts.pid_file {
        b = b.with_pid_file(Some(p)).map_err(|e| lc("pid file", e))?;
    }
    let built = b
        .as_init(&bundle_dir)
        .with_systemd(false)
        .with_detach(!attached)
        .with_no_pivot(opts.no_pivot)
        .build();
    match built {
        Ok(c) => Ok(c),
        Err(e) => {
            // Leave nothing behind: a half-made container is removed with its cgroup.
            match Container::load(dir(root, id)) {
                Ok(mut c) => {
                    let _ = c.delete(true);
                }
                Err(_) => {
                    let _ = std::fs::remove_dir_all(dir(root, id));
                }
            }
            Err(lc(&format!("create container {id}"), e))
        }
    }
}

/// Start a created container's process.
pub fn start(root: &Path, id: &str) -> R<()> {
    let mut c = load(root, id)?;
    match c.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => return fail("cannot start a container that has stopped"),
        ContainerStatus::Running => return fail("cannot start an already running container"),
        s => return fail(format!("cannot start a container in the {s} state")),
    }
    c.start()
        .map_err(|e| lc(&format!("start container {id}"), e))
}

static INIT_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = INIT_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Become a subreaper (so the container's process, whose parent exits during create, is ours
/// to wait for) — call before creating.
pub(crate) fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Forward the usual terminal signals to `pid` and wait for it: its exit code, or 128+signal.
pub(crate) fn wait_forwarding(pid: i32) -> i32 {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use nix::sys::wait::{waitpid, WaitStatus};
    INIT_PID.store(pid, Ordering::SeqCst);
    let act = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        // SAFETY: the handler only calls kill(2) with an atomic's value.
        let _ = unsafe { sigaction(s, &act) };
    }
    let target = nix::unistd::Pid::from_raw(pid);
    loop {
        match waitpid(target, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            // Not our child (no subreaper): poll until it is gone.
            Err(_) => {
                while nix::sys::signal::kill(target, None).is_ok() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                return 0;
            }
        }
    }
}

/// create + start; attached (no --detach) wait, delete, and return the container's exit code.
pub fn run(root: &Path, r: &Run) -> R<i32> {
    if !r.detach {
        become_subreaper();
    }
    let mut c = create(root, &r.id, &r.opts, !r.detach)?;
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(lc(&format!("start container {}", r.id), e));
    }
    if r.detach {
        return Ok(0);
    }
    let pid = c.pid().map(|p| p.as_raw()).unwrap_or(0);
    let code = wait_forwarding(pid);
    if !r.keep {
        if let Ok(mut c) = Container::load(dir(root, &r.id)) {
            c.delete(true)
                .map_err(|e| lc(&format!("delete container {}", r.id), e))?;
        }
    }
    Ok(code)
}

pub fn state(root: &Path, id: &str) -> R<()> {
    let c = load(root, id)?;
    let s = serde_json::to_string_pretty(&state::of(&c)).expect("state serializes");
    println!("{s}");
    Ok(())
}

pub fn kill(root: &Path, k: &Kill) -> R<()> {
    let sig = super::signal::parse(&k.signal)?;
    let mut c = load(root, &k.id)?;
    if !k.all && matches!(c.status(), ContainerStatus::Stopped) {
        return fail("container not running");
    }
    let status = c.status();
    c.kill(sig, k.all)
        .map_err(|e| lc(&format!("kill container {}", k.id), e))?;
    // libcontainer records every killed container as stopped; a signal that did not end the
    // process (or a kill of a paused one) must not hide it from `delete`'s running check.
    if let Ok(mut again) = Container::load(dir(root, &k.id)) {
        if again.status() != ContainerStatus::Stopped && again.status() != status {
            let _ = again.set_status(status).save();
        }
    }
    Ok(())
}

pub fn delete(root: &Path, id: &str, force: bool) -> R<()> {
    super::check_id(id)?;
    let d = dir(root, id);
    if !d.join("state.json").exists() {
        // An aborted create may have left the directory without state (as runc).
        if d.exists() {
            let _ = std::fs::remove_dir_all(&d);
        }
        return if force {
            Ok(())
        } else {
            fail(format!("container {id} does not exist"))
        };
    }
    let mut c = load(root, id)?;
    let s = c.status();
    if !force && matches!(s, ContainerStatus::Running | ContainerStatus::Paused) {
        return fail(
            format!(
            "cannot delete container {id} that is not stopped: {}\n(use --force to kill it first)",
            state::status_word(s)
        )
            .replace('\n', " "),
        );
    }
    c.delete(true)
        .map_err(|e| lc(&format!("delete container {id}"), e))
}

pub fn pause(root: &Path, id: &str, pause: bool) -> R<()> {
    let mut c = load(root, id)?;
    if pause {
        if c.status() != ContainerStatus::Running {
            return fail("container not running");
        }
        c.pause()
            .map_err(|e| lc(&format!("pause container {id}"), e))
    } else {
        if c.status() != ContainerStatus::Paused {
            return fail("container not paused");
        }
        c.resume()
            .map_err(|e| lc(&format!("resume container {id}"), e))
    }
}

pub fn list(root: &Path, l: &List) -> R<()> {
    let mut states = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let Some(id) = e.file_name().to_str().map(String::from) else {
                continue;
            };
            if let Ok(c) = load(root, &id) {
                states.push(state::of(&c));
            }
        }
    }
    states.sort_by(|a, b| a.created.cmp(&b.created));
    if l.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match l.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&states).expect("states serialize")
        ),
        Format::Table => print!("{}", state::table(&states)),
    }
    Ok(())
}
