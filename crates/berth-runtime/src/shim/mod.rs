//! The per-container shim process: creates and starts the container with libcontainer, then
//! loops single-threaded (poll) copying stdio to the json-file log and attached clients, serving
//! `<dir>/shim.sock`, and finally records `<dir>/exit.json` and cleans up.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};

use crate::cgroups;
use crate::error::{Error, Result};
use crate::logs::{LogConfig, LogWriter};
use crate::orphan::{cleanup_state, write_exit_with};
use crate::protocol::{self, ExitInfo, Request, Response, StateInfo};
use crate::spec::{self, ContainerSpec, HostInfo};
use crate::stdio::{
    close_out, close_stdin, finish_stdio, out_borrowed, out_fds, stdin_borrowed, stdin_fd,
    stdio_for, Stdio,
};
use crate::sys;

mod control;
pub(crate) mod errlog;

/// What the daemon hands the shim (written to `<dir>/shim-config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShimConfig {
    pub spec: ContainerSpec,
    /// libcontainer's state root (keep it under the daemon's root).
    pub state_root: PathBuf,
    pub log: LogConfig,
    /// Create the container but start its process only on a `Start` request, so the daemon
    /// can attach first (like `docker run` without -d) and miss no output.
    #[serde(default)]
    pub start_on_request: bool,
}

pub const CONFIG_FILE: &str = "shim-config.json";
pub const SOCKET: &str = "shim.sock";
pub const EXIT_FILE: &str = "exit.json";
pub const PID_FILE: &str = "shim.pid";
pub const REPORT_FD_ENV: &str = "BERTH_SHIM_REPORT_FD";

/// Arguments of `berth shim <dir>`.
#[derive(Debug, Clone)]
pub struct ShimArgs {
    pub dir: PathBuf,
}

impl ShimArgs {
    /// Parse the arguments after the `shim` subcommand.
    pub fn from_args(mut args: impl Iterator<Item = String>) -> Option<ShimArgs> {
        Some(ShimArgs {
            dir: PathBuf::from(args.next()?),
        })
    }
}

/// The start report the shim sends its spawner (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartReport {
    Started { shim_pid: i32, container_pid: i32 },
    Failed { message: String, exit_code: i32 },
}

/// Entry point of the shim process. Never returns.
pub fn shim_main(args: ShimArgs) -> ! {
    let t0 = std::time::Instant::now();
    sys::lean_heap();
    let report_fd: Option<RawFd> = std::env::var(REPORT_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    // SAFETY: the fd was handed to us by the spawner for exactly this purpose.
    let mut report = report_fd.map(|fd| unsafe { std::fs::File::from_raw_fd(fd) });
    // Detach: new session, then fork so the daemon's direct child exits at once and the shim
    // is reparented away from the daemon.
    sys::detach(&args.dir);
    init_log(&args.dir);
    let code = match prepare(&args.dir, t0) {
        Ok(mut shim) => {
            let r = StartReport::Started {
                shim_pid: std::process::id() as i32,
                container_pid: shim.pid,
            };
            send_report(&mut report, &r);
            drop(report.take());
            sys::shed_start_memory();
            shim.run();
            0
        }
        Err(e) => {
            tracing::error!("shim failed to start container: {e}");
            send_report(
                &mut report,
                &StartReport::Failed {
                    message: e.to_string(),
                    exit_code: e.exit_code(),
                },
            );
            1
        }
    };
    std::process::exit(code)
}

/// Log to `<dir>/shim.log` when the daemon passed `BERTH_SHIM_LOG` (an `EnvFilter`, e.g.
/// `debug` for the start-path timings), and always keep error events for [`errlog`]. Explicit
/// files, not stderr: the container's init inherits this subscriber, and its fd 2 is the
/// container's own stderr.
fn init_log(dir: &Path) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // A list rather than `Option` layers: a `None` layer's "off" level hint would switch the
    // others off too.
    let mut layers = errlog::layer(dir).into_iter().collect::<Vec<_>>();
    if let Ok(f) = tracing_subscriber::EnvFilter::try_from_env("BERTH_SHIM_LOG") {
        if let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("shim.log"))
        {
            layers.push(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_ansi(false)
                    .with_filter(f)
                    .boxed(),
            );
        }
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// Milliseconds since `t0`, for the start-path timing events.
fn ms(t0: std::time::Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

fn send_report(report: &mut Option<std::fs::File>, r: &StartReport) {
    if let Some(f) = report.as_mut() {
        let mut line = serde_json::to_vec(r).expect("report serializes");
        line.push(b'\n');
        let _ = f.write_all(&line);
    }
}

struct Client {
    sock: UnixStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// None until the request line is read.
    role: Option<Role>,
    closed: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Waiter,
    Exec {
        pid: i32,
    },
    Done,
}

struct ExecProc {
    stdio: Stdio,
    stdin_buf: Vec<u8>,
}

struct Shim {
    dir: PathBuf,
    cfg: ShimConfig,
    pid: i32,
    pidfd: OwnedFd,
    stdio: Stdio,
    stdin_buf: Vec<u8>,
    close_stdin_after: bool,
    log: LogWriter,
    listener: UnixListener,
    clients: Vec<Client>,
    execs: HashMap<i32, ExecProc>,
    exec_pidfds: HashMap<i32, OwnedFd>,
    started_at: String,
    exit: Option<ExitInfo>,
    /// Created but not yet started (`start_on_request`).
    pending: Option<Container>,
    /// The loop's read buffer, see [`Shim::take_buf`].
    io_buf: Vec<u8>,
}

/// A libcontainer failure of `id`, with the steps its processes logged since `since`.
fn rt_err_since(id: &str, e: impl std::fmt::Display, dir: &Path, since: u64) -> Error {
    rt_err(id, errlog::explain(&e.to_string(), dir, since))
}

fn rt_err(id: &str, e: impl std::fmt::Display) -> Error {
    Error::Runtime {
        id: id.to_string(),
        message: e.to_string(),
    }
}

pub(crate) fn load_config(dir: &Path) -> Result<ShimConfig> {
    let p = dir.join(CONFIG_FILE);
    let text = std::fs::read(&p).map_err(|e| Error::io("read shim config", &p, e))?;
    serde_json::from_slice(&text).map_err(|e| Error::InvalidConfig(format!("{}: {e}", p.display())))
}

/// Create and start the container; on failure clean up what was made.
fn prepare(dir: &Path, t0: std::time::Instant) -> Result<Shim> {
    tracing::debug!(ms = ms(t0), "shim: detached");
    let cfg = load_config(dir)?;
    let c = &cfg.spec;
    let host = HostInfo::detect();
    let oci = spec::build_spec(c, &host)?;
    tracing::debug!(ms = ms(t0), "shim: spec built");
    // Check the command inside the rootfs first: Docker's 126/127 errors, no container made.
    let path_env = spec::path_of(&oci);
    if c.init.is_none() {
        crate::pathutil::find_executable(&c.rootfs, &c.args[0], &path_env, &c.user)?;
    }
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|e| Error::io("create bundle dir", &bundle, e))?;
    oci.save(bundle.join("config.json"))
        .map_err(|e| rt_err(&c.id, format!("write bundle config: {e}")))?;
    std::fs::create_dir_all(&cfg.state_root)
        .map_err(|e| Error::io("create runtime state root", &cfg.state_root, e))?;
    let log = LogWriter::open(cfg.log.clone())?;
    let _ = std::fs::remove_file(dir.join(SOCKET));
    tracing::debug!(ms = ms(t0), "shim: bundle written");
    let listener =
        UnixListener::bind(SOCKET).map_err(|e| Error::io("listen on", dir.join(SOCKET), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("listen on", dir.join(SOCKET), e))?;

    let since = errlog::mark(dir);
    crate::orphan::rootless_cgroup_prepare(&cfg)?;
    // A remapped container's prepared netns: joined here, while still root of the host's user
    // namespace (execs then inherit it too).
    if let Some(p) = crate::userns::shim_netns(c) {
        sys::join_netns(p).map_err(|e| Error::io("join network namespace", p, e))?;
        crate::userns::write_sysctls(&crate::userns::shim_sysctls(c, &host))
            .map_err(|e| rt_err(&c.id, e))?;
    }
    let builder = ContainerBuilder::new(c.id.clone(), SyscallType::default())
        .with_executor(crate::executor::BerthExecutor)
        .with_root_path(&cfg.state_root)
        .map_err(|e| rt_err(&c.id, e))?;
    let (builder, stdio, console) = stdio_for(builder, c.tty, c.open_stdin, "console.sock")?;
    let built = builder
        .as_init(&bundle)
        .with_systemd(false)
        .with_detach(true)
        .build();
    let mut container = match built {
        Ok(ct) => ct,
        Err(e) => {
            cleanup_state(&cfg);
            return Err(rt_err_since(&c.id, e, dir, since));
        }
    };
    tracing::debug!(ms = ms(t0), "shim: libcontainer create done");
    if c.userns.is_some() {
        if let Err(e) = crate::userns::bundle_for_execs(&bundle, &oci) {
            let _ = container.delete(true);
            return Err(rt_err(&c.id, e));
        }
    }
    let stdio = match finish_stdio(stdio, console) {
        Ok(s) => s,
        Err(e) => {
            let _ = container.delete(true);
            return Err(e);
        }
    };
    let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = container.delete(true);
            return Err(rt_err(&c.id, format!("pidfd_open {pid}: {e}")));
        }
    };
    let mut pending = None;
    if cfg.start_on_request {
        pending = Some(container);
    } else if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(rt_err_since(&c.id, e, dir, since));
    }
    let _ = std::fs::write(PID_FILE, std::process::id().to_string());
    tracing::debug!(ms = ms(t0), "shim: ready");
    let close_stdin_after = c.open_stdin;
    Ok(Shim {
        dir: dir.to_path_buf(),
        pid,
        pidfd,
        stdio,
        stdin_buf: Vec::new(),
        close_stdin_after,
        log,
        listener,
        clients: Vec::new(),
        execs: HashMap::new(),
        exec_pidfds: HashMap::new(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        exit: None,
        pending,
        io_buf: Vec::new(),
        cfg,
    })
}

/// Identifies what a poll slot refers to.
#[derive(Clone, Copy)]
enum Slot {
    Listener,
    InitExit,
    Out { exec: Option<i32>, stream: u8 },
    StdinW { exec: Option<i32> },
    Client(usize),
    ExecExit,
}

impl Shim {
    fn run(&mut self) {
        loop {
            let mut slots: Vec<(Slot, RawFd, PollFlags)> =
                vec![(Slot::Listener, self.listener.as_raw_fd(), PollFlags::POLLIN)];
            if self.exit.is_none() {
                slots.push((Slot::InitExit, self.pidfd.as_raw_fd(), PollFlags::POLLIN));
            }
            for (stream, fd) in out_fds(&self.stdio) {
                slots.push((Slot::Out { exec: None, stream }, fd, PollFlags::POLLIN));
            }
            if !self.stdin_buf.is_empty() {
                if let Some(fd) = stdin_fd(&self.stdio) {
                    slots.push((Slot::StdinW { exec: None }, fd, PollFlags::POLLOUT));
                }
            }
            for (pid, e) in &self.execs {
                for (stream, fd) in out_fds(&e.stdio) {
                    slots.push((
                        Slot::Out {
                            exec: Some(*pid),
                            stream,
                        },
                        fd,
                        PollFlags::POLLIN,
                    ));
                }
                if !e.stdin_buf.is_empty() {
                    if let Some(fd) = stdin_fd(&e.stdio) {
                        slots.push((Slot::StdinW { exec: Some(*pid) }, fd, PollFlags::POLLOUT));
                    }
                }
            }
            for fd in self.exec_pidfds.values() {
                slots.push((Slot::ExecExit, fd.as_raw_fd(), PollFlags::POLLIN));
            }
            for (i, c) in self.clients.iter().enumerate() {
                let mut f = PollFlags::POLLIN;
                if !c.wbuf.is_empty() {
                    f |= PollFlags::POLLOUT;
                }
                slots.push((Slot::Client(i), c.sock.as_raw_fd(), f));
            }
            // SAFETY: every fd in `slots` is owned by `self` and outlives this poll call.
            let borrowed: Vec<_> = slots
                .iter()
                .map(|(_, fd, _)| unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) })
                .collect();
            let mut pfds: Vec<PollFd> = borrowed
                .iter()
                .zip(slots.iter())
                .map(|(b, (_, _, f))| PollFd::new(b.as_fd(), *f))
                .collect();
            match poll(&mut pfds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("poll failed: {e}");
                    break;
                }
            }
            let ready: Vec<(Slot, PollFlags)> = pfds
                .iter()
                .zip(slots.iter())
                .filter_map(|(p, (s, _, _))| {
                    let r = p.revents().unwrap_or(PollFlags::empty());
                    (!r.is_empty()).then_some((*s, r))
                })
                .collect();
            drop(pfds);
            for (slot, flags) in ready {
                self.handle(slot, flags);
            }
            self.reap();
            self.clients
                .retain(|c| !(c.closed || (c.role == Some(Role::Done) && c.wbuf.is_empty())));
            if self.exit.is_some() && self.execs.is_empty() {
                self.finish();
                return;
            }
        }
    }

    fn handle(&mut self, slot: Slot, flags: PollFlags) {
        match slot {
            Slot::Listener => {
                while let Ok((sock, _)) = self.listener.accept() {
                    let _ = sock.set_nonblocking(true);
                    self.clients.push(Client {
                        sock,
                        rbuf: Vec::new(),
                        wbuf: Vec::new(),
                        role: None,
                        closed: false,
                    });
                }
            }
            Slot::InitExit | Slot::ExecExit => {} // handled by reap()
            Slot::Out { exec, stream } => self.read_output(exec, stream),
            Slot::StdinW { exec } => {
                let (stdio, buf) = match exec {
                    None => (&mut self.stdio, &mut self.stdin_buf),
                    Some(pid) => match self.execs.get_mut(&pid) {
                        Some(e) => (&mut e.stdio, &mut e.stdin_buf),
                        None => return,
                    },
                };
                match stdin_borrowed(stdio).map(|fd| nix::unistd::write(fd, buf)) {
                    Some(Ok(n)) => {
                        buf.drain(..n);
                    }
                    Some(Err(nix::errno::Errno::EAGAIN)) | None => {}
                    Some(Err(_)) => {
                        buf.clear();
                        close_stdin(stdio);
                    }
                }
            }
            Slot::Client(i) => {
                if flags.contains(PollFlags::POLLOUT) {
                    self.flush_client(i);
                }
                if flags.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.read_client(i);
                }
            }
        }
    }

    /// The read buffer, made on first use: zero-allocated on the heap, a page is dirtied only
    /// once a read fills it (a 32 KiB array on the stack was zeroed, all 8 pages dirtied, by
    /// every read, even of a 14-byte `wait` request, for the shim's whole life).
    fn take_buf(&mut self) -> Vec<u8> {
        let b = std::mem::take(&mut self.io_buf);
        if b.is_empty() {
            vec![0u8; protocol::MAX_FRAME]
        } else {
            b
        }
    }

    fn read_output(&mut self, exec: Option<i32>, stream: u8) {
        let mut buf = self.take_buf();
        self.read_output_into(exec, stream, &mut buf);
        self.io_buf = buf;
    }

    fn read_output_into(&mut self, exec: Option<i32>, stream: u8, buf: &mut [u8]) {
        let stdio = match exec {
            None => &mut self.stdio,
            Some(pid) => match self.execs.get_mut(&pid) {
                Some(e) => &mut e.stdio,
                None => return,
            },
        };
        let Some((_, fd)) = out_fds(stdio).into_iter().find(|(s, _)| *s == stream) else {
            return;
        };
        let n = match nix::unistd::read(fd, buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => {
                close_out(stdio, stream);
                return;
            }
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return,
            Err(_) => {
                close_out(stdio, stream);
                return;
            }
        };
        let data = &buf[..n];
        match exec {
            None => {
                if let Err(e) = self.log.write(stream, data) {
                    tracing::warn!("log write failed: {e}");
                }
                let f = protocol::frame(stream, data);
                for c in &mut self.clients {
                    if let Some(Role::Attach { stdout, stderr, .. }) = c.role {
                        if (stream == 1 && stdout) || (stream == 2 && stderr) {
                            push_bounded(c, &f);
                        }
                    }
                }
            }
            Some(pid) => {
                let f = protocol::frame(stream, data);
                for c in &mut self.clients {
                    if c.role == Some(Role::Exec { pid }) {
                        push_bounded(c, &f);
                    }
                }
            }
        }
    }

    /// The stdio of the init process (`None`) or of exec `pid`.
    fn stdio_of(&self, exec: Option<i32>) -> Option<&Stdio> {
        match exec {
            None => Some(&self.stdio),
            Some(pid) => self.execs.get(&pid).map(|e| &e.stdio),
        }
    }

    fn drain_outputs(&mut self, exec: Option<i32>) {
        // Non-blocking: read what is buffered; never wait for writers that linger.
        for _ in 0..4096 {
            let streams: Vec<u8> = self
                .stdio_of(exec)
                .map(|s| out_fds(s).into_iter().map(|(stream, _)| stream).collect())
                .unwrap_or_default();
            if streams.is_empty() {
                return;
            }
            let mut any = false;
            for stream in streams {
                let ready = self
                    .stdio_of(exec)
                    .and_then(|s| out_borrowed(s, stream))
                    .is_some_and(|fd| {
                        let mut pfd = [PollFd::new(fd, PollFlags::POLLIN)];
                        poll(&mut pfd, PollTimeout::ZERO).unwrap_or(0) > 0
                    });
                if ready {
                    any = true;
                    self.read_output(exec, stream);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = self.take_buf();
        self.read_client_into(i, &mut buf);
        self.io_buf = buf;
    }

    fn read_client_into(&mut self, i: usize, buf: &mut [u8]) {
        let c = &mut self.clients[i];
        match c.sock.read(buf) {
            Ok(0) => {
                c.closed = c.wbuf.is_empty() || c.role != Some(Role::Waiter);
                if matches!(c.role, Some(Role::Waiter)) {
                    c.closed = true;
                }
                // A closed attach connection with stdin ends stdin like docker's --attach stdin.
                if let Some(Role::Attach { stdin: true, .. }) = c.role {
                    if self.close_stdin_after && self.stdin_buf.is_empty() {
                        close_stdin(&mut self.stdio);
                    }
                }
                return;
            }
            Ok(n) => c.rbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => {
                c.closed = true;
                return;
            }
        }
        if c.role.is_none() {
            let Some(nl) = c.rbuf.iter().position(|&b| b == b'\n') else {
                return;
            };
            let line: Vec<u8> = c.rbuf.drain(..=nl).collect();
            match serde_json::from_slice::<Request>(&line) {
                Ok(req) => self.request(i, req),
                Err(e) => {
                    let c = &mut self.clients[i];
                    reply(
                        c,
                        &Response::Error {
                            message: format!("bad request: {e}"),
                            exit_code: 125,
                        },
                    );
                    c.role = Some(Role::Done);
                }
            }
        }
        // Stdin frames for attach/exec.
        let c = &mut self.clients[i];
        let target = match c.role {
            Some(Role::Attach { stdin: true, .. }) => Some(None),
            Some(Role::Exec { pid }) => Some(Some(pid)),
            _ => None,
        };
        let Some(exec) = target else { return };
        while let Some((stream, payload)) = protocol::take_frame(&mut self.clients[i].rbuf) {
            let (stdio, sbuf) = match exec {
                None => (&mut self.stdio, &mut self.stdin_buf),
                Some(pid) => match self.execs.get_mut(&pid) {
                    Some(e) => (&mut e.stdio, &mut e.stdin_buf),
                    None => return,
                },
            };
            match stream {
                protocol::STDIN => sbuf.extend_from_slice(&payload),
                protocol::STDIN_EOF => {
                    // Flush what is buffered synchronously, then close.
                    if let Some(fd) = stdin_borrowed(stdio) {
                        sys::set_blocking(fd.as_raw_fd());
                        let _ = nix::unistd::write(fd, sbuf);
                        sys::set_nonblocking(fd.as_raw_fd());
                    }
                    sbuf.clear();
                    close_stdin(stdio);
                }
                _ => {}
            }
        }
    }

    fn flush_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        match c.sock.write(&c.wbuf) {
            Ok(n) => {
                c.wbuf.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => c.closed = true,
        }
    }

    /// Reap every exited child; record init's and execs' statuses.
    fn reap(&mut self) {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        loop {
            let st = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => st,
            };
            let (pid, code) = match st {
                WaitStatus::Exited(p, c) => (p.as_raw(), c),
                WaitStatus::Signaled(p, s, _) => (p.as_raw(), 128 + s as i32),
                _ => continue,
            };
            if pid == self.pid {
                self.drain_outputs(None);
                let _ = self.log.flush();
                let cg =
                    spec::cgroup_path(self.cfg.spec.cgroup_parent.as_deref(), &self.cfg.spec.id);
                let oom = cgroups::oom_kills(Path::new(cgroups::CGROUP_ROOT), &cg) > 0;
                let info = ExitInfo {
                    exit_code: code,
                    oom_killed: oom,
                    finished_at: chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    shim_died: false,
                };
                tracing::info!(pid, code, oom, "container exited");
                self.exit = Some(info);
            } else if self.execs.contains_key(&pid) {
                self.drain_outputs(Some(pid));
                self.execs.remove(&pid);
                self.exec_pidfds.remove(&pid);
                let f = protocol::frame(protocol::EXIT, code.to_string().as_bytes());
                for c in &mut self.clients {
                    if c.role == Some(Role::Exec { pid }) {
                        c.wbuf.extend_from_slice(&f);
                        c.role = Some(Role::Done);
                    }
                }
            }
        }
    }

    /// Container exited: persist exit.json, clean up, tell waiters and attached clients.
    fn finish(&mut self) {
        let info = self.exit.clone().expect("finish after exit");
        // A container that is started again (restart policy, `docker start` right after
        // `docker wait`) must find the old runtime state gone, so report only after removing
        // it; an auto-removed one never is, and its removal can overlap this cleanup.
        let early = self.cfg.spec.auto_remove;
        let written = timed("shim: exit.json written", || {
            write_exit_with(&self.dir, &info, !early)
        });
        if let Err(e) = written {
            tracing::error!("{e}");
        }
        if !early {
            timed("shim: state and cgroups removed", || {
                cleanup_state(&self.cfg)
            });
        }
        let _ = std::fs::remove_file(self.dir.join(SOCKET));
        let resp = Response::Exited(info.clone());
        let exit_frame = protocol::frame(protocol::EXIT, info.exit_code.to_string().as_bytes());
        for c in &mut self.clients {
            match c.role {
                Some(Role::Waiter) => reply(c, &resp),
                Some(Role::Attach { .. }) => c.wbuf.extend_from_slice(&exit_frame),
                _ => {}
            }
        }
        // Best effort: deliver the last bytes, blocking briefly per client.
        for c in &mut self.clients {
            let _ = c.sock.set_nonblocking(false);
            let _ = c
                .sock
                .set_write_timeout(Some(std::time::Duration::from_secs(2)));
            let _ = c.sock.write_all(&c.wbuf);
        }
        if early {
            self.clients.clear();
            timed("shim: state and cgroups removed", || {
                cleanup_state(&self.cfg)
            });
        }
    }
}

/// Run `f`, logging how long it took at debug level.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t0 = std::time::Instant::now();
    let r = f();
    tracing::debug!(ms = ms(t0), "{what}");
    r
}

fn push_bounded(c: &mut Client, f: &[u8]) {
    // A client that stops reading loses output (the log keeps it) rather than stalling the shim.
    if c.wbuf.len() < 8 << 20 {
        c.wbuf.extend_from_slice(f);
    }
}

fn err_resp(message: String) -> Response {
    Response::Error {
        message,
        exit_code: 125,
    }
}

fn reply(c: &mut Client, r: &Response) {
    let mut line = serde_json::to_vec(r).expect("response serializes");
    line.push(b'\n');
    c.wbuf.extend_from_slice(&line);
}
