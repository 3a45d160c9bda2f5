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

/// Wait until process `pid` has exited (or never existed), at most `limit`: true when it is
/// gone (a zombie counts, its reaper is someone else's business). Waits on a pidfd, so the
/// caller wakes the moment the process exits instead of polling `/proc` on a timer.
pub fn await_exit(pid: i32, limit: std::time::Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => return e.raw_os_error() == Some(libc::ESRCH),
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, ms) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// From here on, allocations of 16 KiB and more get mappings of their own (glibc's default
/// threshold is 128 KiB): the start's big transient buffers (file contents, mountinfo, JSON)
/// are then returned whole when freed instead of leaving holes in the heap that the shim
/// keeps, partly dirty, for the container's lifetime.
pub fn lean_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before the shim has other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 * 1024);
    }
}

/// Give back memory that only the container's start needed, before the shim settles into its
/// loop for the container's lifetime: free heap pages (the spec, libcontainer's builder and
/// state, serde buffers) go back to the kernel, and so do the main stack's pages below the
/// current frame, dirtied by the deep call chains of the start and never used again by the
/// shallow poll loop (they fault back in as zero pages if they ever are).
pub fn shed_start_memory() {
    let bounds = stack_bounds();
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of the allocator to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    let marker = 0u8;
    let sp = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    let Some((low, high)) = bounds else {
        return;
    };
    // Keep a margin below the current frame for this function's callees (madvise itself, a
    // signal frame if one arrives meanwhile).
    const MARGIN: usize = 16 * 1024;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as usize;
    if sp <= low || sp > high {
        return;
    }
    let end = sp.saturating_sub(MARGIN) & !(page - 1);
    if end > low {
        // SAFETY: [low, end) is the part of this thread's stack mapping below the live frames
        // (the stack grows down from `high`); nothing refers to it, and MADV_DONTNEED only
        // turns its pages back into zero-fill-on-demand ones.
        unsafe { libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED) };
    }
}

/// The `[stack]` mapping of the main thread (low, high), from /proc/self/maps.
fn stack_bounds() -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let (lo, hi) = line.split_whitespace().next()?.split_once('-')?;
    Some((
        usize::from_str_radix(lo, 16).ok()?,
        usize::from_str_radix(hi, 16).ok()?,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// A process that cannot exit yet is reported alive when the limit passes; it is reported
    /// gone once it exits, also while it is still an unreaped zombie.
    #[test]
    fn await_exit_follows_the_process() {
        let mut child = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn cat");
        let pid = child.id() as i32;
        assert!(
            !await_exit(pid, Duration::from_millis(20)),
            "cat waits for stdin"
        );
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"x").expect("write");
        drop(stdin);
        assert!(await_exit(pid, Duration::from_secs(60)), "cat exits at EOF");
        // Not reaped yet: still a zombie, and still gone.
        assert!(await_exit(pid, Duration::ZERO));
        child.wait().expect("reap");
    }
}
