//! The `ssh://` transport: one `ssh … berth system dial-stdio` child per connection (as the
//! docker CLI does), HTTP spoken over the child's stdin/stdout, and one line saying what went
//! wrong (unreachable, authentication, host key, no berth on the remote) when it fails.

use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::{Error, SshTarget};

/// Replaces the remote command (default `berth system dial-stdio`), e.g.
/// `docker system dial-stdio` for a remote dockerd or a full path to berth.
pub const REMOTE_CMD_ENV: &str = "BERTH_SSH_REMOTE_CMD";
/// Extra `ssh` arguments, split on whitespace (no quoting), placed before the host:
/// e.g. `-F /path/to/ssh_config` or `-i key -o UserKnownHostsFile=…`.
pub const OPTS_ENV: &str = "BERTH_SSH_OPTS";
const DEFAULT_REMOTE_CMD: &str = "berth system dial-stdio";

/// The argv of the ssh child for `t` (without the program name).
pub fn ssh_args(t: &SshTarget, opts: Option<&str>, remote_cmd: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = ["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"]
        .map(String::from)
        .to_vec();
    a.extend(opts.unwrap_or("").split_whitespace().map(String::from));
    if let Some(u) = &t.user {
        a.extend(["-l".into(), u.clone()]);
    }
    if let Some(p) = t.port {
        a.extend(["-p".into(), p.to_string()]);
    }
    a.extend(["--".into(), t.host.clone()]);
    let cmd = remote_cmd.filter(|c| !c.trim().is_empty());
    a.push(cmd.unwrap_or(DEFAULT_REMOTE_CMD).to_string());
    a
}

/// The stdio of one ssh child: reads its stdout, writes its stdin; shutdown closes its stdin
/// (the remote dial-stdio then half-closes the daemon socket).
pub(crate) struct SshStream {
    stdin: SshWriter,
    stdout: ChildStdout,
}

/// What the ssh child said and how it ended, for the error line when a request fails.
pub(crate) struct SshExit(JoinHandle<String>);

impl SshExit {
    /// The one-line reason the connection failed (waits briefly for ssh to exit).
    pub(crate) async fn reason(self, target: &SshTarget) -> Error {
        let why = match tokio::time::timeout(Duration::from_secs(10), self.0).await {
            Ok(Ok(w)) => w,
            _ => "the ssh connection broke".to_string(),
        };
        Error::Ssh {
            host: format!("ssh://{target}"),
            why,
        }
    }
}

/// Start `ssh` for one connection.
pub(crate) fn spawn(t: &SshTarget) -> Result<(SshStream, SshExit), Error> {
    let opts = std::env::var(OPTS_ENV).ok();
    let remote = std::env::var(REMOTE_CMD_ENV).ok();
    let args = ssh_args(t, opts.as_deref(), remote.as_deref());
    tracing::debug!(?args, "ssh");
    let mut child = Command::new("ssh")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Ssh {
            host: format!("ssh://{t}"),
            why: format!("cannot run ssh: {e} (install an OpenSSH client)"),
        })?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        unreachable!("all three pipes were requested");
    };
    let exit = tokio::spawn(async move {
        let mut err = Vec::new();
        let _ = stderr.read_to_end(&mut err).await;
        let code = child.wait().await.ok().and_then(|s| s.code());
        classify(code, &String::from_utf8_lossy(&err))
    });
    Ok((
        SshStream {
            stdin: SshWriter(Some(stdin)),
            stdout,
        },
        SshExit(exit),
    ))
}

/// Name the failure from ssh's exit status and the last thing it (or the remote) printed.
fn classify(code: Option<i32>, stderr: &str) -> String {
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("");
    let has = |s: &str| stderr.contains(s);
    let kind = match code {
        Some(255) if has("Permission denied") || has("Too many authentication failures") => {
            "authentication failed"
        }
        Some(255) if has("Host key verification failed") || has("HOST IDENTIFICATION HAS") => {
            "host key verification failed (check known_hosts)"
        }
        Some(255) => "cannot reach the host",
        Some(127) => {
            "no berth on the remote (install berth there, or set BERTH_SSH_REMOTE_CMD to its command)"
        }
        Some(126) => "berth on the remote cannot be run",
        Some(0) => "the remote closed the connection",
        Some(_) => "the remote `system dial-stdio` failed",
        None => "ssh was killed",
    };
    if last.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {last}")
    }
}

impl SshStream {
    /// Split into the read half (ssh's stdout) and write half (ssh's stdin).
    pub(crate) fn into_split(self) -> (ChildStdout, SshWriter) {
        (self.stdout, self.stdin)
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "ssh stdin already closed")
}

impl AsyncWrite for SshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stdin).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_shutdown(cx)
    }
}

/// The write half of a hijacked ssh connection: `shutdown()` closes ssh's stdin.
pub(crate) struct SshWriter(Option<ChildStdin>);

impl AsyncWrite for SshWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().0.as_mut() {
            Some(w) => Pin::new(w).poll_write(cx, buf),
            None => Poll::Ready(Err(closed())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().0.as_mut() {
            Some(w) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if let Some(w) = me.0.as_mut() {
            std::task::ready!(Pin::new(w).poll_flush(cx))?;
        }
        me.0 = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_carries_user_port_opts_and_remote_command() {
        let t = SshTarget {
            user: Some("me".into()),
            host: "box".into(),
            port: Some(2222),
        };
        let a = ssh_args(&t, Some(" -F /c  -i /k "), None);
        let tail: Vec<&str> = a.iter().map(String::as_str).skip(5).collect();
        assert_eq!(
            tail,
            [
                "-F",
                "/c",
                "-i",
                "/k",
                "-l",
                "me",
                "-p",
                "2222",
                "--",
                "box",
                "berth system dial-stdio"
            ]
        );
        assert!(a.contains(&"BatchMode=yes".to_string()));
        let t = SshTarget {
            user: None,
            host: "h".into(),
            port: None,
        };
        let a = ssh_args(&t, None, Some("docker system dial-stdio"));
        assert_eq!(a[a.len() - 3..], ["--", "h", "docker system dial-stdio"]);
    }

    #[test]
    fn failures_are_named() {
        let c = classify(
            Some(255),
            "root@127.0.0.1: Permission denied (publickey).\n",
        );
        assert_eq!(
            c,
            "authentication failed: root@127.0.0.1: Permission denied (publickey)."
        );
        assert!(classify(
            Some(255),
            "ssh: connect to host x port 1: Connection refused"
        )
        .starts_with("cannot reach the host: ssh: connect"));
        assert!(classify(Some(255), "Host key verification failed.\n")
            .starts_with("host key verification failed"));
        assert!(classify(Some(127), "sh: 1: berth: not found\n").starts_with("no berth on"));
        assert_eq!(
            classify(Some(1), "cannot connect to the berth daemon at unix:///x\n"),
            "the remote `system dial-stdio` failed: cannot connect to the berth daemon at unix:///x"
        );
    }
}
