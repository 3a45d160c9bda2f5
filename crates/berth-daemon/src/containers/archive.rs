//! berth-api-types' `ContainerFsService` (docker cp, diff, export) over [`berth_rootfs::archive`] and
//! the store's rw layers. Container lookup is the [`ContainerFs`] trait: the containers code
//! implements `resolve` (name/prefix → ID plus its volume/bind mounts); the rootfs is the
//! store's rw layer, mounted (idempotently) so stopped containers work too. The overlay is
//! left mounted afterwards: unmounting could race a concurrent start, and container stop/rm
//! unmount it anyway.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use berth_api_types::models::{ChangeType, FilesystemChange};
use berth_api_types::{ApiResult, ByteStream, ContainerFsService, ExtractOptions, PathStat};
use futures::StreamExt;

use crate::error::{DaemonError, Result};
use berth_rootfs::archive::{self as archive_ops, ExtractOpts, FsMount};

/// What file operations need to know about a container besides its rootfs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsTarget {
    /// The full container ID.
    pub id: String,
    /// Its volume and bind mounts (tmpfs mounts are not visible from outside the container).
    pub mounts: Vec<FsMount>,
    /// Created with `--read-only`.
    pub rootfs_read_only: bool,
}

/// Container lookup for filesystem operations.
pub trait ContainerFs: Send + Sync + 'static {
    /// The container `id_or_name` and the mounts file operations must honour.
    fn resolve(&self, id_or_name: &str) -> Result<FsTarget>;

    /// Report a container event (`archive-path`, `extract-to-dir`, `export`), as dockerd does
    /// for each of these operations. Lookups that know no containers report nothing.
    fn event(&self, _id: &str, _action: &str) {}
}

/// Lookup by full container ID only (no mounts): for containers only the store knows.
pub struct RwLayerLookup(pub Arc<berth_store::Store>);

impl ContainerFs for RwLayerLookup {
    fn resolve(&self, id: &str) -> Result<FsTarget> {
        match self.0.rw_layer(id) {
            Ok(l) => Ok(FsTarget {
                id: l.container_id,
                ..FsTarget::default()
            }),
            Err(_) => Err(DaemonError::NoSuchContainer(id.to_string())),
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
    target: FsTarget,
}

impl<L: ContainerFs> ContainerFsOver<L> {
    fn view(&self, id: &str) -> Result<View> {
        let target = self.lookup.resolve(id)?;
        let rootfs = self.store.mount_rw_layer(&target.id)?;
        archive_ops::ensure_mount_points(&rootfs, &target.mounts)?;
        Ok(View { rootfs, target })
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// berth-rootfs's stat of a container path as the API reports it.
fn api_stat(s: archive_ops::PathStat) -> PathStat {
    PathStat {
        name: s.name,
        size: s.size,
        mode: s.mode,
        mtime: s.mtime,
        link_target: s.link_target,
    }
}

/// Run a tar writer on the blocking pool, streaming its output.
pub(crate) fn tar_stream(
    write: impl FnOnce(&mut dyn std::io::Write) -> crate::error::Result<()> + Send + 'static,
) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        // Batched: the tar writer's small writes (headers, 8 KiB copies) go out 256 KiB at a
        // time, not as one channel message and body chunk each.
        let mut w = std::io::BufWriter::with_capacity(256 << 10, ChanWriter(tx.clone()));
        let r = write(&mut w).and_then(|()| {
            std::io::Write::flush(&mut w).map_err(|e| DaemonError::io("stream a tar", e))
        });
        if let Err(e) = r {
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
    // An async channel: the feeding task waits without blocking a runtime worker thread (a
    // std channel's send would, whenever the extractor falls behind).
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(chunk) = body.next().await {
            if tx.send(chunk).await.is_err() {
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
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

impl std::io::Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
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
        let st = blocking(move || Ok(archive_ops::stat(&v.rootfs, &v.target.mounts, &p)?));
        Ok(api_stat(st.await?))
    }

    async fn get_archive(&self, id: &str, path: &str) -> ApiResult<(PathStat, ByteStream)> {
        let v = self.view(id)?;
        let st = self.stat_path(&v.target.id, path).await?;
        self.lookup.event(&v.target.id, "archive-path");
        let p = path.to_string();
        let ids = self.store.ids().clone();
        let body = tar_stream(move |w| {
            archive_ops::archive_mapped(&v.rootfs, &v.target.mounts, &p, &ids, w)
                .map(|_| ())
                .map_err(DaemonError::from)
        });
        Ok((st, body))
    }

    async fn put_archive(&self, id: &str, opts: ExtractOptions, body: ByteStream) -> ApiResult<()> {
        let v = self.view(id)?;
        let id = v.target.id.clone();
        let r = body_reader(body);
        let ids = self.store.ids().clone();
        blocking(move || {
            let x = ExtractOpts {
                copy_uid_gid: opts.copy_uid_gid,
                no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
                rootfs_read_only: v.target.rootfs_read_only,
            };
            Ok(archive_ops::extract_mapped(
                &v.rootfs,
                &v.target.mounts,
                &opts.path,
                x,
                &ids,
                r,
            )?)
        })
        .await?;
        self.lookup.event(&id, "extract-to-dir");
        Ok(())
    }

    async fn changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>> {
        let id = self.lookup.resolve(id)?.id;
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
        self.lookup.event(&v.target.id, "export");
        let ids = self.store.ids().clone();
        Ok(tar_stream(move |w| {
            archive_ops::export_mapped(&v.rootfs, &ids, w).map_err(DaemonError::from)
        }))
    }
}

/// Containers by ID, prefix or name, with the volume and bind mounts recorded at create
/// (`-v`, `--mount`, image `VOLUME`s, `--volumes-from`; anonymous volumes by their name); an ID
/// the containers module does not know but the store has an rw layer for is served without
/// mounts.
impl ContainerFs for crate::Engine {
    fn resolve(&self, key: &str) -> Result<FsTarget> {
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
        Ok(FsTarget {
            mounts: fs_mounts(&rec.mount_specs),
            rootfs_read_only: rec.host_config.readonly_rootfs.unwrap_or(false),
            id: rec.id,
        })
    }

    fn event(&self, id: &str, action: &str) {
        if let Ok(c) = self.inner.containers.get(id) {
            self.ctr_event(action, &c.snapshot(), Default::default());
        }
    }
}

/// The runtime mounts that file operations see: binds (volumes are binds of their data
/// directory), read-only when mounted `ro`; tmpfs and other kernel mounts are skipped.
pub(crate) fn fs_mounts(specs: &[berth_runtime::MountSpec]) -> Vec<FsMount> {
    specs
        .iter()
        .filter(|m| m.kind == "bind" && m.source.starts_with('/'))
        .map(|m| FsMount {
            destination: m.destination.clone(),
            source: PathBuf::from(&m.source),
            read_only: m.options.iter().any(|o| o == "ro"),
        })
        .collect()
}

/// The engine's filesystem service: over the store's rw layers when it runs on berth-store.
pub(crate) fn service_for(engine: &crate::Engine) -> Arc<dyn ContainerFsService> {
    match engine.store() {
        Some(store) => Arc::new(ContainerFsOver {
            lookup: engine.clone(),
            store: store.clone(),
        }),
        None => Arc::new(berth_api_types::NoContainerFs),
    }
}
