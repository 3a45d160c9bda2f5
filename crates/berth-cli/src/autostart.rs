//! Starting the daemon on demand: `<current exe> daemon --root <root>` in its own session,
//! logging to `<root>/daemon.log`, then waiting for `/_ping`.

use std::path::Path;
use std::time::Duration;

use berth_client::{Client, Host};

use crate::exit::Exit;

/// Start a daemon listening on `sock` and wait up to ~10s for it to answer.
pub async fn start_daemon(sock: &Path, root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use std::os::unix::process::CommandExt;
    // The root (0700) and its log (0600) are root's alone; the daemon repairs older modes.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| {
            Exit::msg(
                125,
                format!("cannot create daemon root {}: {e}", root.display()),
            )
        })?;
    let log_path = root.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| Exit::msg(125, format!("cannot open {}: {e}", log_path.display())))?;
    let exe = std::env::current_exe()?;
    tracing::info!(socket = %sock.display(), "starting daemon");
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon")
        .arg("--root")
        .arg(root)
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and only detaches the child from our session.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Exit::msg(125, format!("cannot start the berth daemon: {e}")))?;
    let client = Client::new(Host::Unix(sock.to_path_buf()));
    for _ in 0..100 {
        if sock.exists() && client.ping().await.is_ok() {
            // The daemon lives on in its own session; we don't wait for it.
            std::mem::drop(child);
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(Exit::msg(
                125,
                format!(
                    "the berth daemon exited ({st}) while starting; see {}",
                    log_path.display()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Exit::msg(
        125,
        format!(
            "the berth daemon did not answer on {} within 10s; see {}",
            sock.display(),
            log_path.display()
        ),
    ))
}
