//! A forwarded SSH agent as a socket for one RUN step's bind mount (`RUN --mount=type=ssh`):
//! a listener under the build's own directory with the owner and mode asked; every connection
//! to it is piped to a new connection to the client's agent. Closed and removed when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use berth_api_types::SshForward;

/// A step's agent socket; dropping it stops serving and removes the file.
pub(crate) struct SshSocket {
    pub(crate) path: PathBuf,
    serving: tokio::task::JoinHandle<()>,
}

impl SshSocket {
    /// Listen at `path` (created new; `mode`, owned by uid:gid) and forward each connection
    /// to `agent`. Must be called inside the tokio runtime.
    pub(crate) fn serve(
        path: PathBuf,
        agent: SshForward,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> std::io::Result<Self> {
        let std_listener = std::os::unix::net::UnixListener::bind(&path)?;
        let prepared = (|| {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
            std_listener.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(std_listener)
        })();
        let listener = match prepared {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let serving = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let agent = agent.clone();
                tokio::spawn(async move {
                    match agent.0.connect().await {
                        Ok(mut upstream) => {
                            let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                        }
                        Err(e) => tracing::warn!("forward a build's SSH agent connection: {e}"),
                    }
                });
            }
        });
        Ok(SshSocket { path, serving })
    }
}

impl Drop for SshSocket {
    fn drop(&mut self) {
        self.serving.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}
