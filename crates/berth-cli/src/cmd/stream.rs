//! Moving bytes between the local terminal and a container: hijacked attach/exec connections,
//! log streams, terminal resize (SIGWINCH) and signal proxying.

use std::os::fd::AsFd;

use berth_client::demux::{Demuxer, StreamKind};
use berth_client::{Client, Hijacked, ResponseStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Copy container output from a raw (tty) or multiplexed stream to stdout/stderr until EOF.
/// Output is buffered and flushed whenever the stream has nothing more ready (so a live
/// stream shows each line at once, and a million-line log is not a million writes); a switch
/// between stdout and stderr flushes the other first, keeping their order on one terminal.
pub async fn copy_output(mut r: impl AsyncRead + Unpin, tty: bool) -> anyhow::Result<()> {
    use futures::FutureExt;
    let mut out = tokio::io::BufWriter::with_capacity(256 << 10, tokio::io::stdout());
    let mut err = tokio::io::BufWriter::with_capacity(64 << 10, tokio::io::stderr());
    let mut dm = Demuxer::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match r.read(&mut buf).now_or_never() {
            Some(n) => n?,
            None => {
                out.flush().await?;
                err.flush().await?;
                r.read(&mut buf).await?
            }
        };
        if n == 0 {
            break;
        }
        if tty {
            out.write_all(&buf[..n]).await?;
            continue;
        }
        let frames = dm
            .push(&buf[..n])
            .map_err(|b| anyhow::anyhow!("unexpected stream type {} in multiplexed output", b.0))?;
        for (k, data) in frames {
            match k {
                StreamKind::Stderr | StreamKind::System => {
                    if !out.buffer().is_empty() {
                        out.flush().await?;
                    }
                    err.write_all(&data).await?;
                }
                _ => {
                    if !err.buffer().is_empty() {
                        err.flush().await?;
                    }
                    out.write_all(&data).await?;
                }
            }
        }
    }
    out.flush().await?;
    err.flush().await?;
    Ok(())
}

/// Same for an HTTP response body (logs).
pub async fn copy_body(mut s: ResponseStream, tty: bool) -> anyhow::Result<()> {
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    let feeder = async move {
        while let Some(chunk) = s.next_chunk().await? {
            if tx.write_all(&chunk).await.is_err() {
                break;
            }
        }
        drop(tx);
        anyhow::Ok(())
    };
    let (a, b) = tokio::join!(feeder, copy_output(rx, tty));
    a?;
    b
}

/// Parse docker's `--detach-keys` ("ctrl-p,ctrl-q", "ctrl-a,x") into the byte sequence.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("invalid detach keys ({k}) provided")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("invalid detach keys ({k}) provided"));
        }
    }
    Ok(out)
}

/// Run a hijacked session: stdin → container (when `stdin`), output → local stdio.
/// Returns when the container's output ends; `true` if the user typed the detach keys.
pub async fn pump(h: Hijacked, stdin: bool, tty: bool, detach: Vec<u8>) -> anyhow::Result<bool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Hijacked { reader, mut writer } = h;
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let flag = detached.clone();
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 8192];
            let mut matched = 0usize;
            loop {
                match input.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        for b in &buf[..n] {
                            if !detach.is_empty() {
                                if *b == detach[matched] {
                                    matched += 1;
                                    if matched == detach.len() {
                                        flag.store(true, Ordering::SeqCst);
                                        matched = 0;
                                    }
                                } else {
                                    matched = usize::from(*b == detach[0]);
                                }
                            }
                        }
                        if writer.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        let _ = writer.flush().await;
                    }
                }
            }
            // half-close so the container sees EOF on its stdin
            let _ = writer.shutdown().await;
        });
    } else {
        drop(writer);
    }
    copy_output(reader, tty).await?;
    Ok(detached.load(Ordering::SeqCst))
}

/// Send the local terminal size to `<prefix>/resize` now and on every SIGWINCH.
pub fn forward_resize(c: &Client, prefix: String) {
    let c = c.clone();
    tokio::spawn(async move {
        let send = |c: Client, prefix: String| async move {
            if let Some((h, w)) = crate::tty::size(std::io::stdout().as_fd()) {
                let _ = c
                    .post(&format!("{prefix}/resize?h={h}&w={w}"), None::<&()>)
                    .await;
            }
        };
        send(c.clone(), prefix.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            send(c.clone(), prefix.clone()).await;
        }
    });
}

/// Forward SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container as `POST /kill?signal=`.
pub fn proxy_signals(c: &Client, id: String) {
    use tokio::signal::unix::{signal, SignalKind};
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
    ] {
        let c = c.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let Ok(mut s) = signal(kind) else { return };
            while s.recv().await.is_some() {
                let _ = c
                    .post(&format!("/containers/{id}/kill?signal={name}"), None::<&()>)
                    .await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }
}
