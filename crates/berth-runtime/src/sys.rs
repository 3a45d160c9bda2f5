//! Thin syscall helpers for the shim (pipes, fd passing, pidfd, pty size, detaching).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::error::{Error, Result};

/// Detach from the spawner: new session, fork (the parent exits so the spawner can reap it at
/// once), become a child subreaper, chdir into `dir`, stdio to /dev/null and `dir/shim.log`.
pub fn detach(dir: &Path) {
    let _ = nix::unistd::setsid();
    // SAFETY: the shim is single-threaded here; the child only continues ordinary Rust code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            // SAFETY: _exit skips destructors and atexit handlers, which is what we want.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            tracing::error!("fork failed: {e}");
        }
    }
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let _ = std::env::set_current_dir(dir);
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
    if let Ok(log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("shim.log"))
    {
        let _ = nix::unistd::dup2(log.as_raw_fd(), 2);
    }
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("create pipe", "pipe", e.into()))
}

pub fn dev_null() -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| Error::io("open", "/dev/null", e))
}

fn set_flag(fd: RawFd, nonblock: bool) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(bits) = fcntl(fd, FcntlArg::F_GETFL) {
        let mut f = OFlag::from_bits_truncate(bits);
        f.set(OFlag::O_NONBLOCK, nonblock);
        let _ = fcntl(fd, FcntlArg::F_SETFL(f));
    }
}

pub fn set_nonblocking(fd: RawFd) {
    set_flag(fd, true)
}

pub fn set_blocking(fd: RawFd) {
    set_flag(fd, false)
}

/// Receive one fd sent with SCM_RIGHTS over the unix socket `sock`.
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| Error::io("receive pty master", "console socket", e.into()))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::io("receive pty master", "console socket", e.into()))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us; we take sole ownership.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::io(
        "receive pty master",
        "console socket",
        std::io::Error::other("no fd in message"),
    ))
}

/// pidfd_open(2): a pollable fd that becomes readable when `pid` exits.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// TIOCSWINSZ on a pty master.
pub fn resize(fd: RawFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives for the duration of the call.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// SIGKILL every process listed in any hierarchy's `cgroup.procs` for `cg_path`, repeating
/// until they are gone (bounded).
pub fn kill_cgroup(root: &Path, cg_path: &str) {
    for _ in 0..200 {
        let mut found = false;
        for d in crate::cgroups::existing_dirs(root, cg_path) {
            let Ok(text) = std::fs::read_to_string(d.join("cgroup.procs")) else {
                continue;
            };
            for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                found = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !found {
            return;
        }
        // Frozen cgroups would never die: thaw (v1 freezer).
        for d in crate::cgroups::existing_dirs(root, cg_path) {
            let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Move this (single-threaded) process into the network namespace at `path`.
pub fn join_netns(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}
