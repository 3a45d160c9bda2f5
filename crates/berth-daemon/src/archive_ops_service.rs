//! berth-api's `ContainerFsService` (docker cp, diff, export) over [`crate::archive_ops`] and
//! the store's rw layers. Container lookup is the [`ContainerFs`] trait: the containers code
//! implements `resolve` (name/prefix → ID plus its volume/bind mounts); the rootfs is the
//! store's rw layer, mounted (idempotently) so stopped containers work too. The overlay is
//! left mounted afterwards: unmounting could race a concurrent start, and container stop/rm
//! unmount it anyway.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use berth_api::models::{ChangeType, FilesystemChange};
use berth_api::{ApiError, ApiResult, ByteStream, ContainerFsService, ExtractOptions, PathStat};
use futures::StreamExt;

use crate::archive_ops::{self, FsMount};
use crate::error::DaemonError;

/// Container lookup for filesystem operations.
pub trait ContainerFs: Send + Sync + 'static {
    /// The full container ID for `id_or_name` and the mounts file operations must honour.
    fn resolve(&self, id_or_name: &str) -> ApiResult<(String, Vec<FsMount>)>;
}

/// Lookup by full container ID only (no mounts): what the engine can do before the
/// containers module implements [`ContainerFs`] itself.
pub struct RwLayerLookup(pub Arc<berth_store::Store>);

impl ContainerFs for RwLayerLookup {
    fn resolve(&self, id: &str) -> ApiResult<(String, Vec<FsMount>)> {
        match self.0.rw_layer(id) {
            Ok(l) => Ok((l.container_id, Vec::new())),
            Err(_) => Err(ApiError::not_found(format!("No such container: {id}"))),
        }
    }
}

/// The service: a lookup plus the store holding the rw layers.
pub struct ContainerFsOver<L: ContainerFs> {
    pub lookup: L,
    pub store: Arc<berth_store::Store>,
}

struct View {
    rootfs: PathBuf,
    mounts: Vec<FsMount>,
    id: String,
}

impl<L: ContainerFs> ContainerFsOver<L> {
    fn view(&self, id: &str) -> ApiResult<View> {
        let (id, mounts) = self.lookup.resolve(id)?;
        let rootfs = self.store.mount_rw_layer(&id).map_err(DaemonError::from)?;
        Ok(View { rootfs, mounts, id })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// Run a tar writer on the blocking pool, streaming its output.
fn tar_stream(
    write: impl FnOnce(&mut dyn std::io::Write) -> crate::error::Result<()> + Send + 'static,
) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChanWriter(tx.clone());
        if let Err(e) = write(&mut w) {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Box::pin(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

struct ChanWriter(tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>);

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A request body as a blocking reader (fed from the async stream).
fn body_reader(body: ByteStream) -> impl std::io::Read + Send {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<bytes::Bytes>>(8);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(chunk) = body.next().await {
            if tx.send(chunk).is_err() {
                break;
            }
        }
    });
    ChanReader {
        rx,
        cur: bytes::Bytes::new(),
    }
}

struct ChanReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

impl std::io::Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

#[async_trait]
impl<L: ContainerFs> ContainerFsService for ContainerFsOver<L> {
    async fn stat_path(&self, id: &str, path: &str) -> ApiResult<PathStat> {
        let v = self.view(id)?;
        let p = path.to_string();
        blocking(move || Ok(archive_ops::stat(&v.rootfs, &v.mounts, &p)?)).await
    }

    async fn get_archive(&self, id: &str, path: &str) -> ApiResult<(PathStat, ByteStream)> {
        let v = self.view(id)?;
        let st = self.stat_path(&v.id, path).await?;
        let p = path.to_string();
        let body =
            tar_stream(move |w| archive_ops::archive(&v.rootfs, &v.mounts, &p, w).map(|_| ()));
        Ok((st, body))
    }

    async fn put_archive(&self, id: &str, opts: ExtractOptions, body: ByteStream) -> ApiResult<()> {
        let v = self.view(id)?;
        let r = body_reader(body);
        blocking(move || {
            Ok(archive_ops::extract(
                &v.rootfs,
                &v.mounts,
                &opts.path,
                opts.copy_uid_gid,
                opts.no_overwrite_dir_non_dir,
                r,
            )?)
        })
        .await
    }

    async fn changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>> {
        let (id, _) = self.lookup.resolve(id)?;
        let plan = self.store.plan_rw_mount(&id).map_err(DaemonError::from)?;
        let c = blocking(move || Ok(archive_ops::changes(&plan.upper, &plan.lower)?)).await?;
        Ok(c.into_iter()
            .map(|c| FilesystemChange {
                path: c.path,
                kind: match c.kind {
                    0 => ChangeType::_0,
                    1 => ChangeType::_1,
                    _ => ChangeType::_2,
                },
            })
            .collect())
    }

    async fn export(&self, id: &str) -> ApiResult<ByteStream> {
        let v = self.view(id)?;
        Ok(tar_stream(move |w| archive_ops::export(&v.rootfs, w)))
    }
}

/// Containers by ID, prefix or name, with their `-v` binds and volumes as mounts; an ID the
/// containers module does not know but the store has an rw layer for is served without mounts.
impl ContainerFs for crate::Engine {
    fn resolve(&self, key: &str) -> ApiResult<(String, Vec<FsMount>)> {
        let ctr = match self.inner.containers.get(key) {
            Ok(c) => c,
            Err(e) => {
                return match self.store() {
                    Some(s) => RwLayerLookup(s.clone()).resolve(key).map_err(|_| e),
                    None => Err(e),
                }
            }
        };
        let rec = ctr.snapshot();
        let mut mounts = Vec::new();
        for b in rec.host_config.binds.clone().unwrap_or_default() {
            let Ok(p) = crate::volumes_mounts::parse_bind(&b) else {
                continue;
            };
            let source = match &p.kind {
                crate::volumes_mounts::MountKind::Bind { source, .. } => PathBuf::from(source),
                crate::volumes_mounts::MountKind::Volume { name: Some(n), .. } => {
                    self.inner.volumes.mountpoint(n)
                }
                _ => continue,
            };
            mounts.push(FsMount {
                destination: p.destination,
                source,
                read_only: p.read_only,
            });
        }
        Ok((rec.id, mounts))
    }
}

/// The engine's filesystem service: over the store's rw layers when it runs on berth-store.
pub(crate) fn service_for(engine: &crate::Engine) -> Arc<dyn ContainerFsService> {
    match engine.store() {
        Some(store) => Arc::new(ContainerFsOver {
            lookup: engine.clone(),
            store: store.clone(),
        }),
        None => Arc::new(berth_api::NoContainerFs),
    }
}
