//! The host side of rootless mode: the user's `berth daemon` forks a child into new user,
//! mount and network namespaces, maps its ids (`newuidmap`/`newgidmap`, or a single id written
//! directly), lets it re-execute itself as root of that namespace, forwards signals to it and
//! exits with its status. The child's first stage ([`resume_child`]) waits for the maps.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::plan::{map_args, map_text, plan, IdMap, Mapping, User};
use crate::RootlessError;

/// Set in the first stage (the forked child, not yet mapped): the fd it waits on.
const SYNC_ENV: &str = "_BERTH_ROOTLESS_SYNC_FD";
/// Set in the second stage (root of the namespace): `subordinate` or `single`.
pub const INNER_ENV: &str = "_BERTH_ROOTLESS";
/// The pid of the host-side parent, for the inner daemon's parent-death check.
const PARENT_ENV: &str = "_BERTH_ROOTLESS_PARENT";
/// The host's `net.ipv4.ip_unprivileged_port_start` (the daemon's namespace has its own).
const PORT_START_ENV: &str = "_BERTH_ROOTLESS_PORT_START";
/// The host user's name (or uid), for hints the inner daemon gives.
const USER_ENV: &str = "_BERTH_ROOTLESS_USER";
/// The fd number the sync pipe gets in the child.
const SYNC_FD: i32 = 3;

/// Where this process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Real root (or already root of some namespace it was started in): no re-exec.
    Root,
    /// An ordinary user: `berth daemon` must go through [`run_parent`].
    User,
    /// The daemon inside its own user namespace; `single` when only root is mapped.
    Inner { single: bool },
}

/// This process's stage, from its effective uid and the environment the parent set.
pub fn stage() -> Stage {
    let euid = nix::unistd::geteuid();
    match std::env::var(INNER_ENV).ok().as_deref() {
        Some(v) if euid.is_root() => Stage::Inner {
            single: v == "single",
        },
        _ if euid.is_root() => Stage::Root,
        _ => Stage::User,
    }
}

/// The user running this process (name from the passwd database when it has an entry).
pub fn current_user() -> User {
    let uid = nix::unistd::getuid();
    User {
        name: nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default(),
        uid: uid.as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    }
}

/// Called first thing in `main`: in the forked child's first stage, wait until the parent has
/// written the maps, then re-execute as root of the namespace (execve grants the namespace's
/// capabilities only to uid 0, which the user became when the map was written). Returns when
/// this process is not that child; exits when the parent gave up.
pub fn resume_child() {
    let Some(fd) = std::env::var(SYNC_ENV).ok() else {
        return;
    };
    if fd.parse::<i32>() != Ok(SYNC_FD) {
        return;
    }
    // SAFETY: the parent put the pipe's read end at SYNC_FD for us; nothing else owns it.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(SYNC_FD) });
    let mut go = [0u8; 1];
    if !matches!(pipe.read(&mut go), Ok(1)) || go[0] == 0 {
        // The parent failed to map us and says why itself.
        std::process::exit(125);
    }
    drop(pipe);
    let mode = if go[0] == b's' {
        "single"
    } else {
        "subordinate"
    };
    let args: Vec<OsString> = std::env::args_os().collect();
    let err = Command::new("/proc/self/exe")
        .arg0(&args[0])
        .args(&args[1..])
        .env_remove(SYNC_ENV)
        .env(INNER_ENV, mode)
        .exec();
    eprintln!("berth: rootless: cannot re-execute the daemon in its namespace: {err}");
    std::process::exit(125);
}

/// The child, for signal forwarding.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, sig) };
    }
}

/// `newuidmap` / `newgidmap` on PATH (else in /usr/bin, where Debian's uidmap puts them).
fn find_tool(tool: &'static str) -> Result<PathBuf, RootlessError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or(RootlessError::NoTool { tool })
}

fn read(path: &str) -> Result<String, RootlessError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(RootlessError::Read {
            path: path.into(),
            source,
        }),
    }
}

/// Write `pid`'s maps: through the setuid helpers for subordinate ranges, else directly (a
/// single id of one's own needs no helper, but `setgroups` must be denied first).
fn write_maps(pid: u32, mapping: &Mapping) -> Result<(), RootlessError> {
    match mapping {
        Mapping::Subordinate { uids, gids } => {
            helper("newuidmap", pid, uids)?;
            helper("newgidmap", pid, gids)
        }
        Mapping::Single { .. } => {
            let proc = PathBuf::from(format!("/proc/{pid}"));
            let write = |file: &str, text: &str| {
                std::fs::write(proc.join(file), text).map_err(|e| RootlessError::Map {
                    what: format!("writing {}", proc.join(file).display()),
                    detail: e.to_string(),
                })
            };
            write("setgroups", "deny")?;
            write("uid_map", &map_text(&mapping.maps(false)))?;
            write("gid_map", &map_text(&mapping.maps(true)))
        }
    }
}

fn helper(tool: &'static str, pid: u32, maps: &[IdMap]) -> Result<(), RootlessError> {
    let args = map_args(maps);
    let out = Command::new(find_tool(tool)?)
        .arg(pid.to_string())
        .args(&args)
        .output()
        .map_err(|e| RootlessError::io(format!("run {tool}"), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(RootlessError::Map {
        what: format!("{tool} {pid} {}", args.join(" ")),
        detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// The child's setup before it first executes: the sync pipe at [`SYNC_FD`], death with the
/// parent, and the new namespaces (all created together, so the user namespace owns the mount
/// and network namespaces).
fn child_setup(read_end: i32) -> std::io::Result<()> {
    // SAFETY: plain syscalls on integers between fork and exec (async-signal-safe).
    unsafe {
        if read_end == SYNC_FD {
            if libc::fcntl(SYNC_FD, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else if libc::dup2(read_end, SYNC_FD) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWNET) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What the parent runs beside the child once it is mapped (the user-mode network).
pub trait Beside {
    /// Start helpers for the mapped child `pid`; what they return is stopped at the end.
    fn start(&mut self, pid: u32) -> Result<(), RootlessError>;
    /// Stop what [`Beside::start`] started.
    fn stop(&mut self);
}

/// Nothing beside the child.
pub struct Nothing;
impl Beside for Nothing {
    fn start(&mut self, _: u32) -> Result<(), RootlessError> {
        Ok(())
    }
    fn stop(&mut self) {}
}

/// The host side of `berth daemon` for an ordinary user: plan the mapping (warning when it is
/// a single id), fork this same command line into new namespaces, map it, start `beside`, let
/// it go, forward SIGTERM/SIGINT/SIGHUP/SIGQUIT and return its exit status (128+signal when
/// killed). Nothing is left when a step fails: the child dies with its pipe.
pub fn run_parent(beside: &mut dyn Beside) -> Result<i32, RootlessError> {
    let user = current_user();
    let p = plan(&user, &read("/etc/subuid")?, &read("/etc/subgid")?);
    if let Mapping::Subordinate { .. } = p.mapping {
        find_tool("newuidmap")?;
        find_tool("newgidmap")?;
    }
    if let Some(w) = &p.warning {
        eprintln!("berth: warning: {w}");
        tracing::warn!("{w}");
    }
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RootlessError::io("create the sync pipe", e.into()))?;
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(&args[0])
        .args(&args[1..])
        .env_remove(INNER_ENV)
        .env(SYNC_ENV, SYNC_FD.to_string())
        .env(PARENT_ENV, std::process::id().to_string())
        .env(PORT_START_ENV, host_port_start().to_string())
        .env(USER_ENV, user.display());
    let read_end = r.as_raw_fd();
    // SAFETY: child_setup only makes async-signal-safe syscalls.
    unsafe {
        cmd.pre_exec(move || child_setup(read_end));
    }
    // Only the errno crosses from the child: unshare is the step that fails in practice.
    let mut child = cmd.spawn().map_err(RootlessError::Unshare)?;
    drop(r);
    let mut w = std::fs::File::from(w);
    let pid = child.id();
    let ready = write_maps(pid, &p.mapping).and_then(|()| beside.start(pid));
    if let Err(e) = ready {
        // Closing the pipe without a byte makes the child exit.
        drop(w);
        let _ = child.kill();
        let _ = child.wait();
        beside.stop();
        return Err(e);
    }
    CHILD.store(pid as i32, Ordering::SeqCst);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: `forward` only loads an atomic and calls kill.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
    let go: &[u8] = if p.mapping.is_single() { b"s" } else { b"u" };
    let sent = w.write_all(go);
    drop(w);
    let status = child.wait();
    beside.stop();
    sent.map_err(|e| RootlessError::io("start the daemon in its namespaces", e))?;
    let status = status.map_err(|e| RootlessError::io("wait for the daemon", e))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The host-side parent's pid, as the inner daemon was told.
pub fn parent_pid() -> Option<i32> {
    std::env::var(PARENT_ENV).ok()?.parse().ok()
}

/// The lowest host port an ordinary user may bind (`net.ipv4.ip_unprivileged_port_start`).
fn host_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// In the rootless daemon: the lowest host port it can publish (the host's
/// `net.ipv4.ip_unprivileged_port_start`, read by the parent before the namespaces existed).
pub fn unprivileged_port_start() -> u16 {
    std::env::var(PORT_START_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024)
}

/// In a rootless daemon that maps a single id: what to do about an owner it cannot map (the
/// `usermod` command for the user who started it).
pub fn single_id_hint() -> Option<String> {
    if stage() != (Stage::Inner { single: true }) {
        return None;
    }
    let user = User {
        name: std::env::var(USER_ENV).unwrap_or_default(),
        uid: 0,
        gid: 0,
    };
    Some(format!(
        "this rootless daemon maps only your own id (no subordinate ids): add a range with \
         `{}` and restart it",
        crate::plan::usermod_hint(&user)
    ))
}
