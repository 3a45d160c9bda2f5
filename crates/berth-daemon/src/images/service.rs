//! The engine's [`ImageService`]: applies the plans of `images::plan` against the store (on the
//! blocking pool), bridges request/response bodies to the store's sync readers/writers, and
//! emits Docker's image events (load, tag, untag, delete, import, save, prune).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use berth_api_types::models::{
    ImageDeleteResponseItem, ImageHistoryResponseItem, ImagePruneResponse, ImageSummary,
};
use berth_api_types::{
    ApiResult, ByteStream, Filters, ImageInspect, ImageListOptions, ImageService, ImportOptions,
};
use berth_oci::{Digest, ImageRuntimeConfig, Platform, Reference};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::engine::Engine;
use crate::error::{DaemonError, Result};
use crate::images::changes::apply_changes;
use crate::images::plan::{self, DeleteStep};
use crate::images::store::{ImportRequest, StoredImage};

/// A `Write` that forwards chunks to an async channel (for streaming `docker save`).
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Engine {
    fn used_by(&self, id: &Digest) -> Option<String> {
        self.container_using(id)
    }

    /// Apply an rmi plan; returns Docker's response items.
    fn apply_delete(
        &self,
        store: &dyn crate::images::store::ImageStore,
        img: &StoredImage,
        steps: &[DeleteStep],
    ) -> Result<(Vec<ImageDeleteResponseItem>, u64)> {
        let mut out = Vec::new();
        let mut freed = 0;
        let labels = plan::labels(img);
        for s in steps {
            match s {
                DeleteStep::Untag(r) => {
                    store.untag(r)?;
                    let name = r.familiar();
                    self.events()
                        .image("untag", &img.id.to_string(), &name, &labels);
                    out.push(ImageDeleteResponseItem {
                        untagged: Some(name),
                        deleted: None,
                    });
                }
                DeleteStep::Remove => {
                    let rep = store.remove_image(&img.id)?;
                    freed += rep.bytes_freed;
                    for u in rep.untagged {
                        out.push(ImageDeleteResponseItem {
                            untagged: Some(u),
                            deleted: None,
                        });
                    }
                    let id = img.id.to_string();
                    self.events().image("delete", &id, &id, &labels);
                    for d in rep.deleted {
                        out.push(ImageDeleteResponseItem {
                            untagged: None,
                            deleted: Some(d.to_string()),
                        });
                    }
                }
            }
        }
        Ok((out, freed))
    }
}

impl Engine {
    /// After `deleted` is gone, delete its parent chain while each parent is untagged, has no
    /// other child and no container uses it: dockerd's rmi (without `noprune`) and prune,
    /// which take a build's intermediate images with its result.
    fn prune_parents(
        &self,
        store: &dyn crate::images::store::ImageStore,
        deleted: StoredImage,
    ) -> Result<(Vec<ImageDeleteResponseItem>, u64)> {
        let (mut out, mut freed, mut deleted) = (Vec::new(), 0, deleted);
        loop {
            let all = store.images()?;
            let Some(p) = plan::prunable_parent(&all, &deleted).cloned() else {
                break;
            };
            if self.used_by(&p.id).is_some() {
                break;
            }
            let (i, b) = self.apply_delete(store, &p, &[DeleteStep::Remove])?;
            out.extend(i);
            freed += b;
            deleted = p;
        }
        Ok((out, freed))
    }
}

#[async_trait]
impl ImageService for Engine {
    async fn list(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>> {
        let (shared, all) = (opts.shared_size, opts.all);
        let out = self
            .blocking(move |s| {
                let mut imgs = s.images()?;
                let parents = plan::parents(&imgs);
                imgs.retain(|i| plan::listed(i, &parents, all));
                let sizes: HashMap<Digest, u64> = if shared {
                    s.usage()?.shared.into_iter().collect()
                } else {
                    HashMap::new()
                };
                Ok(imgs
                    .iter()
                    .map(|i| {
                        plan::summary(
                            i,
                            sizes.get(&i.id).copied().or(Some(0)).filter(|_| shared),
                            0,
                        )
                    })
                    .collect())
            })
            .await?;
        Ok(out)
    }

    async fn inspect(&self, name: &str) -> ApiResult<ImageInspect> {
        let name = name.to_string();
        Ok(self
            .blocking(move |s| {
                let img = s.image(&name)?;
                let dirs = s.layer_dirs(&img.id).unwrap_or_default();
                Ok(plan::inspect(&img, &dirs))
            })
            .await?)
    }

    async fn history(&self, name: &str) -> ApiResult<Vec<ImageHistoryResponseItem>> {
        let name = name.to_string();
        Ok(self
            .blocking(move |s| {
                let img = s.image(&name)?;
                let dirs: Vec<PathBuf> = s.layer_dirs(&img.id).unwrap_or_default();
                // One layer: the store's own figure, so history agrees with inspect.
                let sizes: Vec<u64> = if dirs.len() == 1 {
                    vec![img.size]
                } else {
                    dirs.iter()
                        .map(|d| berth_store::tree_size(d, berth_store::Measure::Content))
                        .collect()
                };
                Ok(plan::history(&img, &sizes))
            })
            .await?)
    }

    async fn tag(&self, name: &str, repo: &str, tag: &str) -> ApiResult<()> {
        let full = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let r = Reference::parse(&full)
            .map_err(|e| DaemonError::Invalid(e.to_string()))?
            .with_default_tag();
        let (name, this) = (name.to_string(), self.clone());
        self.blocking(move |s| {
            let img = s.image(&name)?;
            s.tag(&img.id, &r)?;
            this.events().image(
                "tag",
                &img.id.to_string(),
                &r.familiar(),
                &plan::labels(&img),
            );
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> ApiResult<Vec<ImageDeleteResponseItem>> {
        let (name, this) = (name.to_string(), self.clone());
        Ok(self
            .blocking(move |s| {
                let img = s.image(&name)?;
                let used = this.used_by(&img.id);
                let children = plan::parents(&s.images()?).contains(&img.id);
                let steps = plan::plan_delete(&name, &img, force, used.as_deref(), children)?;
                let mut out = this.apply_delete(s, &img, &steps)?.0;
                if !noprune && steps.contains(&DeleteStep::Remove) {
                    out.extend(this.prune_parents(s, img)?.0);
                }
                Ok(out)
            })
            .await?)
    }

    async fn prune(&self, filters: &Filters) -> ApiResult<ImagePruneResponse> {
        let (f, this) = (filters.clone(), self.clone());
        Ok(self
            .blocking(move |s| {
                let all = s.images()?;
                let in_use = |d: &Digest| this.used_by(d).is_some();
                let cands = plan::prune_candidates(&all, &f, &in_use, now_secs())?;
                let mut items = Vec::new();
                let mut freed = 0;
                for img in cands {
                    let mut steps: Vec<DeleteStep> = img
                        .repo_tags
                        .iter()
                        .chain(&img.repo_digests)
                        .filter_map(|t| Reference::parse(t).ok())
                        .map(DeleteStep::Untag)
                        .collect();
                    steps.push(DeleteStep::Remove);
                    let (i, b) = this.apply_delete(s, img, &steps)?;
                    items.extend(i);
                    freed += b;
                    let (i, b) = this.prune_parents(s, img.clone())?;
                    items.extend(i);
                    freed += b;
                }
                freed += s.gc()?;
                let attrs = HashMap::from([("reclaimed".to_string(), freed.to_string())]);
                this.events().emit(
                    berth_api_types::models::EventMessageTypeEnum::IMAGE,
                    "prune",
                    "",
                    attrs,
                );
                Ok(ImagePruneResponse {
                    images_deleted: Some(items),
                    space_reclaimed: Some(freed as i64),
                })
            })
            .await?)
    }

    async fn load(&self, body: ByteStream, _quiet: bool) -> ApiResult<Vec<String>> {
        let mut reader = SyncIoBridge::new(StreamReader::new(body));
        let this = self.clone();
        Ok(self
            .blocking(move |s| {
                let imgs = s.load(&mut reader)?;
                let mut lines = Vec::new();
                // As docker: the names the archive gave (not every tag the image has here),
                // or the ID for an image saved by ID.
                for (img, names) in &imgs {
                    let id = img.id.to_string();
                    this.events().image("load", &id, &id, &plan::labels(img));
                    if names.is_empty() {
                        lines.push(format!("Loaded image ID: {id}"));
                    }
                    for t in names {
                        lines.push(format!("Loaded image: {}", t.familiar()));
                    }
                }
                Ok(lines)
            })
            .await?)
    }

    async fn save(&self, names: Vec<String>) -> ApiResult<ByteStream> {
        // Resolve everything first so a bad name is a 404, not a truncated tar.
        let this = self.clone();
        let plan = self
            .blocking(move |s| {
                let mut out: Vec<(StoredImage, Vec<Reference>)> = Vec::new();
                let add = |out: &mut Vec<(StoredImage, Vec<Reference>)>,
                           img: StoredImage,
                           refs: Vec<Reference>| {
                    match out.iter_mut().find(|(i, _)| i.id == img.id) {
                        Some((_, rs)) => {
                            for r in refs {
                                if !rs.contains(&r) {
                                    rs.push(r);
                                }
                            }
                        }
                        None => out.push((img, refs)),
                    }
                };
                let all = s.images()?;
                for n in &names {
                    if let Some(repo) = plan::save_repository(n, &all) {
                        for (img, refs) in repo {
                            add(&mut out, img, refs);
                        }
                        continue;
                    }
                    let img = s.image(n)?;
                    let refs: Vec<Reference> = if plan::is_id_reference(n, &img.id) {
                        vec![]
                    } else {
                        let r =
                            Reference::parse(n).map_err(|e| DaemonError::Invalid(e.to_string()))?;
                        if r.digest.is_some() {
                            vec![]
                        } else {
                            vec![r.with_default_tag()]
                        }
                    };
                    add(&mut out, img, refs);
                }
                Ok(out)
            })
            .await?;
        let (tx, mut rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::new(),
            };
            let res = store.save(&plan, &mut w).and_then(|_| {
                w.flush()
                    .map_err(|e| DaemonError::io("stream saved images", e))
            });
            match res {
                Ok(()) => {
                    for (img, _) in &plan {
                        let id = img.id.to_string();
                        this.events().image("save", &id, &id, &plan::labels(img));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "docker save failed mid-stream");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        });
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Box::pin(stream))
    }

    async fn commit(&self, opts: berth_api_types::service::CommitOptions) -> ApiResult<String> {
        Ok(self.commit_container(opts).await?)
    }

    async fn import(&self, body: ByteStream, opts: ImportOptions) -> ApiResult<String> {
        let mut config = ImageRuntimeConfig::default();
        apply_changes(&mut config, &opts.changes)?;
        let tag = if opts.repo.is_empty() {
            None
        } else {
            let full = if opts.tag.is_empty() {
                opts.repo.clone()
            } else {
                format!("{}:{}", opts.repo, opts.tag)
            };
            Some(
                Reference::parse(&full)
                    .map_err(|e| DaemonError::Invalid(e.to_string()))?
                    .with_default_tag(),
            )
        };
        let platform = if opts.platform.is_empty() {
            Platform::host()
        } else {
            Platform::parse(&opts.platform).map_err(DaemonError::Invalid)?
        };
        let req = ImportRequest {
            config,
            comment: opts.message.clone(),
            tag,
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
        };
        let mut reader = SyncIoBridge::new(StreamReader::new(body));
        let this = self.clone();
        Ok(self
            .blocking(move |s| {
                let img = s.import(&mut reader, req)?;
                let id = img.id.to_string();
                this.events().image("import", &id, &id, &plan::labels(&img));
                Ok(id)
            })
            .await?)
    }

    async fn pull(
        &self,
        opts: berth_api_types::PullOptions,
    ) -> ApiResult<berth_api_types::JsonStream> {
        Ok(self.registry_pull(opts).await?)
    }

    async fn push(
        &self,
        opts: berth_api_types::PushOptions,
    ) -> ApiResult<berth_api_types::JsonStream> {
        Ok(self.registry_push(opts).await?)
    }

    async fn search(
        &self,
        opts: berth_api_types::SearchOptions,
    ) -> ApiResult<Vec<berth_api_types::models::ImageSearchResponseItem>> {
        Ok(self.search_images(opts).await?)
    }

    async fn distribution(
        &self,
        name: &str,
        registry_auth: Option<String>,
    ) -> ApiResult<berth_api_types::models::DistributionInspect> {
        Ok(self.registry_distribution(name, registry_auth).await?)
    }

    async fn build(
        &self,
        body: berth_api_types::ByteStream,
        opts: berth_api_types::BuildOptions,
    ) -> ApiResult<berth_api_types::JsonStream> {
        Ok(self.build_image(body, opts).await?)
    }

    fn build_state_dir(&self) -> Option<std::path::PathBuf> {
        Some(
            self.store()?
                .root()
                .join(crate::build::service::BUILD_STATE_DIR),
        )
    }

    async fn export_rootfs(&self, name: &str) -> ApiResult<berth_api_types::ByteStream> {
        let store = self.store().cloned().ok_or_else(|| {
            DaemonError::NotImplemented("this engine's image store cannot export images".into())
        })?;
        let image = store.image(name).map_err(DaemonError::from)?;
        let id = image.id.clone();
        let ids = store.ids().clone();
        // A throwaway rw layer over the image, mounted for the walk and removed after it.
        let scratch = tokio::task::spawn_blocking(move || {
            crate::build::backend::Scratch::new(&store, Some(&id))
        })
        .await
        .map_err(DaemonError::from)?
        .map_err(|e| DaemonError::Failed {
            what: format!("mount image {name} to export its filesystem"),
            source: Box::new(e),
        })?;
        Ok(crate::containers::archive::tar_stream(move |w| {
            let r = berth_rootfs::archive::export_mapped(&scratch.merged, &ids, w);
            drop(scratch);
            r.map_err(DaemonError::from)
        }))
    }

    async fn build_prune(&self) -> ApiResult<(Vec<String>, u64)> {
        let Some(store) = self.store() else {
            return Ok((Vec::new(), 0));
        };
        let root = store.root().to_path_buf();
        let pruned =
            tokio::task::spawn_blocking(move || crate::build::service::prune_build_cache(&root))
                .await
                .map_err(DaemonError::from)?;
        Ok(pruned.map_err(|e| DaemonError::io("prune the build cache", e))?)
    }

    async fn build_cache(&self) -> ApiResult<Vec<berth_api_types::BuildCacheItem>> {
        let Some(store) = self.store() else {
            return Ok(Vec::new());
        };
        let root = store.root().to_path_buf();
        Ok(
            tokio::task::spawn_blocking(move || crate::system::build_cache_usage(&root))
                .await
                .map_err(DaemonError::from)?,
        )
    }

    async fn login(&self, req: berth_api_types::AuthRequest) -> ApiResult<String> {
        Ok(self.registry_login(req).await?)
    }
}
