//! Container stdio for the shim: pipes or a pty (via libcontainer's console socket), and the
//! helpers the poll loop uses to find and close those fds.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;

use crate::error::{Error, Result};
use crate::sys;

pub(crate) enum Stdio {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    },
    Pty {
        master: Option<OwnedFd>,
    },
}

pub(crate) type PendingStdio = Stdio;

/// Give the builder its stdio: pipes, or a console socket for a pty.
pub(crate) fn stdio_for(
    b: ContainerBuilder,
    tty: bool,
    stdin: bool,
    console_name: &str,
) -> Result<(ContainerBuilder, Stdio, Option<UnixListener>)> {
    if tty {
        let _ = std::fs::remove_file(console_name);
        let l = UnixListener::bind(console_name)
            .map_err(|e| Error::io("listen on console socket", console_name, e))?;
        let full = std::env::current_dir()
            .unwrap_or_default()
            .join(console_name);
        return Ok((
            b.with_console_socket(Some(full)),
            Stdio::Pty { master: None },
            Some(l),
        ));
    }
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let mut b = b.with_stdout(out_w).with_stderr(err_w);
    let stdin_w = if stdin {
        let (r, w) = sys::pipe()?;
        b = b.with_stdin(r);
        Some(w)
    } else {
        b = b.with_stdin(sys::dev_null()?);
        None
    };
    Ok((
        b,
        Stdio::Pipes {
            stdin: stdin_w,
            stdout: Some(out_r),
            stderr: Some(err_r),
        },
        None,
    ))
}

/// After build: receive the pty master, set everything non-blocking.
pub(crate) fn finish_stdio(stdio: Stdio, console: Option<UnixListener>) -> Result<Stdio> {
    match stdio {
        Stdio::Pty { .. } => {
            let l = console.expect("console listener for pty");
            let (conn, _) = l
                .accept()
                .map_err(|e| Error::io("accept console socket", "console.sock", e))?;
            let master = sys::recv_fd(conn.as_raw_fd())?;
            sys::set_nonblocking(master.as_raw_fd());
            if let Some(p) = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
            {
                let _ = std::fs::remove_file(p);
            }
            Ok(Stdio::Pty {
                master: Some(master),
            })
        }
        Stdio::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            for fd in [&stdin, &stdout, &stderr].into_iter().flatten() {
                sys::set_nonblocking(fd.as_raw_fd());
            }
            Ok(Stdio::Pipes {
                stdin,
                stdout,
                stderr,
            })
        }
    }
}

pub(crate) fn out_fds(stdio: &Stdio) -> Vec<(u8, RawFd)> {
    match stdio {
        Stdio::Pipes { stdout, stderr, .. } => [(1u8, stdout), (2u8, stderr)]
            .into_iter()
            .filter_map(|(s, fd)| fd.as_ref().map(|f| (s, f.as_raw_fd())))
            .collect(),
        Stdio::Pty { master } => master.iter().map(|m| (1u8, m.as_raw_fd())).collect(),
    }
}

pub(crate) fn stdin_fd(stdio: &Stdio) -> Option<RawFd> {
    match stdio {
        Stdio::Pipes { stdin, .. } => stdin.as_ref().map(|f| f.as_raw_fd()),
        Stdio::Pty { master } => master.as_ref().map(|m| m.as_raw_fd()),
    }
}

/// The stdin end (or the pty master), borrowed for as long as `stdio` holds it.
pub(crate) fn stdin_borrowed(stdio: &Stdio) -> Option<BorrowedFd<'_>> {
    match stdio {
        Stdio::Pipes { stdin, .. } => stdin.as_ref().map(|f| f.as_fd()),
        Stdio::Pty { master } => master.as_ref().map(|m| m.as_fd()),
    }
}

/// The read end of output `stream` (1 stdout, 2 stderr; the pty master is stream 1), borrowed.
pub(crate) fn out_borrowed(stdio: &Stdio, stream: u8) -> Option<BorrowedFd<'_>> {
    match stdio {
        Stdio::Pipes { stdout, stderr, .. } => match stream {
            1 => stdout.as_ref().map(|f| f.as_fd()),
            2 => stderr.as_ref().map(|f| f.as_fd()),
            _ => None,
        },
        Stdio::Pty { master } if stream == 1 => master.as_ref().map(|m| m.as_fd()),
        Stdio::Pty { .. } => None,
    }
}

pub(crate) fn close_out(stdio: &mut Stdio, stream: u8) {
    match stdio {
        Stdio::Pipes { stdout, stderr, .. } => {
            if stream == 1 {
                *stdout = None
            } else {
                *stderr = None
            }
        }
        Stdio::Pty { master } => *master = None,
    }
}

pub(crate) fn close_stdin(stdio: &mut Stdio) {
    if let Stdio::Pipes { stdin, .. } = stdio {
        *stdin = None;
    }
}
