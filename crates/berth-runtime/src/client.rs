//! Async (tokio) side for the daemon: spawn a shim, talk to it over `<dir>/shim.sock`, read its
//! exit status when it is gone.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::protocol::{self, ExecConfig, ExitInfo, Request, Response, StateInfo};
use crate::shim::{self, ShimConfig, StartReport};
use crate::spec::Resources;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimStarted {
    pub shim_pid: i32,
    pub container_pid: i32,
}

/// In the forked child before exec: `fd` becomes `target` (inheritable) and every other fd
/// above stdio is marked close-on-exec, so the shim (and the container it starts) inherits
/// none of the daemon's sockets, database or log files, whoever opened them without
/// O_CLOEXEC. Only async-signal-safe syscalls (dup2, fcntl, close_range, getrlimit).
fn only_stdio_and(fd: RawFd, target: RawFd) -> std::io::Result<()> {
    let os_err = std::io::Error::last_os_error;
    // SAFETY: dup2/fcntl on fds this process owns; no memory is passed.
    unsafe {
        if fd == target {
            // dup2(x, x) keeps FD_CLOEXEC: clear it by hand.
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(os_err());
            }
        } else if libc::dup2(fd, target) < 0 {
            return Err(os_err());
        }
    }
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let first = (target + 1) as libc::c_uint;
    // SAFETY: close_range only changes fd flags of this (child) process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // Kernels before 5.11: mark each possible fd up to the fd limit.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(1 << 20) as RawFd
    } else {
        1024
    };
    for f in first as RawFd..max {
        // SAFETY: F_SETFD on a closed fd fails with EBADF, which is fine.
        unsafe { libc::fcntl(f, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Handle on one container's shim directory.
#[derive(Debug, Clone)]
pub struct Shim {
    dir: PathBuf,
}

impl Shim {
    pub fn new(dir: impl Into<PathBuf>) -> Shim {
        Shim { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write the config into `dir`, run `exe shim <dir>`, and wait for the shim's report:
    /// the container is running when this returns Ok. `exe`'s `shim` subcommand must call
    /// [`crate::shim_main`].
    pub async fn spawn(exe: &Path, dir: &Path, cfg: &ShimConfig) -> Result<(Shim, ShimStarted)> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io("create container dir", dir, e))?;
        let _ = tokio::fs::remove_file(dir.join(shim::EXIT_FILE)).await;
        let cfg_path = dir.join(shim::CONFIG_FILE);
        tokio::fs::write(
            &cfg_path,
            serde_json::to_vec(cfg).expect("config serializes"),
        )
        .await
        .map_err(|e| Error::io("write shim config", &cfg_path, e))?;
        let (r, w) = crate::sys::pipe()?;
        let wfd = w.as_raw_fd();
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("shim")
            .arg(dir)
            .env(shim::REPORT_FD_ENV, "3")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: the closure only makes async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || only_stdio_and(wfd, 3));
        }
        let mut child = cmd.spawn().map_err(|e| Error::io("start shim", exe, e))?;
        drop(w);
        // The direct child forks the real shim and exits at once.
        let _ = child.wait().await;
        let report = read_report(r).await;
        let shim = Shim::new(dir);
        match report {
            Some(StartReport::Started {
                shim_pid,
                container_pid,
            }) => Ok((
                shim,
                ShimStarted {
                    shim_pid,
                    container_pid,
                },
            )),
            Some(StartReport::Failed { message, exit_code }) => {
                if exit_code == 126 || exit_code == 127 {
                    Err(Error::Exec { message, exit_code })
                } else {
                    Err(Error::Shim(message))
                }
            }
            None => {
                let log = std::fs::read_to_string(dir.join("shim.log")).unwrap_or_default();
                Err(Error::Runtime {
                    id: cfg.spec.id.clone(),
                    message: format!("shim exited without a report; shim.log: {}", log.trim()),
                })
            }
        }
    }

    async fn connect(&self) -> Result<UnixStream> {
        // Connect through /proc/self/fd to dodge sun_path's 108-byte limit for deep roots.
        let dirf = std::fs::File::open(&self.dir).map_err(|e| Error::ShimGone {
            dir: self.dir.clone(),
            source: e,
        })?;
        let p = format!("/proc/self/fd/{}/{}", dirf.as_raw_fd(), shim::SOCKET);
        let s = UnixStream::connect(&p).await.map_err(|e| Error::ShimGone {
            dir: self.dir.clone(),
            source: e,
        });
        drop(dirf);
        s
    }

    fn proto(&self, message: impl Into<String>) -> Error {
        Error::Protocol {
            dir: self.dir.clone(),
            message: message.into(),
        }
    }

    async fn call_on(&self, s: &mut BufReader<UnixStream>, req: &Request) -> Result<Response> {
        let mut line = serde_json::to_vec(req).expect("request serializes");
        line.push(b'\n');
        s.get_mut()
            .write_all(&line)
            .await
            .map_err(|e| self.proto(format!("send: {e}")))?;
        let mut resp = String::new();
        let n = s
            .read_line(&mut resp)
            .await
            .map_err(|e| self.proto(format!("receive: {e}")))?;
        if n == 0 {
            return Err(self.proto("shim closed the connection"));
        }
        let r: Response =
            serde_json::from_str(&resp).map_err(|e| self.proto(format!("bad response: {e}")))?;
        if let Response::Error { message, exit_code } = r {
            return Err(if exit_code == 126 || exit_code == 127 {
                Error::Exec { message, exit_code }
            } else {
                self.proto(message)
            });
        }
        Ok(r)
    }

    async fn call(&self, req: &Request) -> Result<Response> {
        let mut s = BufReader::new(self.connect().await?);
        self.call_on(&mut s, req).await
    }

    pub async fn state(&self) -> Result<StateInfo> {
        match self.call(&Request::State).await? {
            Response::State(s) => Ok(s),
            other => Err(self.proto(format!("unexpected {other:?}"))),
        }
    }

    /// Start a container spawned with `start_on_request` (attach first).
    pub async fn start(&self) -> Result<()> {
        self.call(&Request::Start).await.map(|_| ())
    }

    pub async fn kill(&self, signal: i32) -> Result<()> {
        self.call(&Request::Kill { signal }).await.map(|_| ())
    }

    pub async fn pause(&self) -> Result<()> {
        self.call(&Request::Pause).await.map(|_| ())
    }

    pub async fn resume(&self) -> Result<()> {
        self.call(&Request::Resume).await.map(|_| ())
    }

    pub async fn update(&self, resources: Resources) -> Result<()> {
        self.call(&Request::Update { resources }).await.map(|_| ())
    }

    pub async fn resize(&self, height: u16, width: u16, exec_pid: Option<i32>) -> Result<()> {
        self.call(&Request::Resize {
            height,
            width,
            exec_pid,
        })
        .await
        .map(|_| ())
    }

    /// Wait for the container to exit. Works whether the shim is alive (waits on the socket),
    /// already finished (reads exit.json), or died (cleans up and reports 137, `shim_died`).
    pub async fn wait(&self) -> Result<ExitInfo> {
        if let Ok(s) = self.connect().await {
            let mut s = BufReader::new(s);
            match self.call_on(&mut s, &Request::Wait).await {
                Ok(Response::Exited(x)) => return Ok(x),
                Ok(other) => return Err(self.proto(format!("unexpected {other:?}"))),
                Err(Error::Protocol { .. }) => {} // the shim died while we waited
                Err(e) => return Err(e),
            }
        }
        if let Some(x) = read_exit(&self.dir) {
            return Ok(x);
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || crate::orphan::cleanup_orphan(&dir))
            .await
            .map_err(|e| self.proto(format!("cleanup task: {e}")))?
    }

    /// Attach to the container's stdio. Frames use [`protocol`] stream ids.
    pub async fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<StdioStream> {
        let mut s = BufReader::new(self.connect().await?);
        self.call_on(
            &mut s,
            &Request::Attach {
                stdin,
                stdout,
                stderr,
            },
        )
        .await?;
        Ok(StdioStream {
            inner: s,
            buf: Vec::new(),
        })
    }

    /// Run a process in the container; returns its pid and its stdio stream (ending with an
    /// EXIT frame carrying the exit code).
    pub async fn exec(&self, cfg: &ExecConfig) -> Result<(i32, StdioStream)> {
        let mut s = BufReader::new(self.connect().await?);
        match self.call_on(&mut s, &Request::Exec(cfg.clone())).await? {
            Response::ExecStarted { pid } => Ok((
                pid,
                StdioStream {
                    inner: s,
                    buf: Vec::new(),
                },
            )),
            other => Err(self.proto(format!("unexpected {other:?}"))),
        }
    }
}

/// A framed stdio stream with the shim (attach or exec).
pub struct StdioStream {
    inner: BufReader<UnixStream>,
    buf: Vec<u8>,
}

/// One event on a [`StdioStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdioEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
    /// The shim closed the stream.
    Closed,
}

impl StdioStream {
    pub async fn next(&mut self) -> std::io::Result<StdioEvent> {
        loop {
            if let Some((stream, payload)) = protocol::take_frame(&mut self.buf) {
                return Ok(match stream {
                    protocol::STDOUT => StdioEvent::Stdout(payload),
                    protocol::STDERR => StdioEvent::Stderr(payload),
                    protocol::EXIT => StdioEvent::Exit(
                        String::from_utf8_lossy(&payload)
                            .trim()
                            .parse()
                            .unwrap_or(-1),
                    ),
                    _ => continue,
                });
            }
            let mut chunk = [0u8; 32 * 1024];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                return Ok(StdioEvent::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn write_stdin(&mut self, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(protocol::MAX_FRAME) {
            self.inner
                .get_mut()
                .write_all(&protocol::frame(protocol::STDIN, chunk))
                .await?;
        }
        Ok(())
    }

    pub async fn close_stdin(&mut self) -> std::io::Result<()> {
        self.inner
            .get_mut()
            .write_all(&protocol::frame(protocol::STDIN_EOF, b""))
            .await
    }

    /// Read until exit or close; returns (stdout, stderr, exit code if reported).
    pub async fn collect(mut self) -> std::io::Result<(Vec<u8>, Vec<u8>, Option<i32>)> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match self.next().await? {
                StdioEvent::Stdout(d) => out.extend(d),
                StdioEvent::Stderr(d) => err.extend(d),
                StdioEvent::Exit(c) => return Ok((out, err, Some(c))),
                StdioEvent::Closed => return Ok((out, err, None)),
            }
        }
    }
}

async fn read_report(r: OwnedFd) -> Option<StartReport> {
    let text = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        // Read one line, not to EOF: a container created but not yet started still holds an
        // inherited copy of the pipe until it execs.
        let mut f = std::fs::File::from(r);
        let mut s = Vec::new();
        let mut b = [0u8; 1];
        while let Ok(1) = f.read(&mut b) {
            if b[0] == b'\n' {
                break;
            }
            s.push(b[0]);
        }
        String::from_utf8_lossy(&s).into_owned()
    })
    .await
    .ok()?;
    serde_json::from_str(text.lines().next()?).ok()
}

/// The recorded exit of a finished container, if its shim wrote one.
pub fn read_exit(dir: &Path) -> Option<ExitInfo> {
    serde_json::from_slice(&std::fs::read(dir.join(shim::EXIT_FILE)).ok()?).ok()
}
