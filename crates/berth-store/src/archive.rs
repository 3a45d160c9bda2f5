//! Image archives: `load_archive` (OCI layout tars and `docker save` tars, old and new),
//! `save_archive` (OCI layout + docker `manifest.json`, like docker 25+), and `import_rootfs`
//! (`docker import`). Loads stream into a staging dir under `tmp/` and touch the store only after
//! every blob and layer verified; a failure leaves the store as it was.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use berth_oci::media_type::{self, is_index, is_manifest};
use berth_oci::{
    Descriptor, Digest, History, ImageConfig, ImageRuntimeConfig, Index, Manifest, Platform,
    Reference, RootFs,
};
use serde::{Deserialize, Serialize};

use crate::apply::{clean_components, decompressed};
use crate::blobs::{put_into, unique_name};
use crate::error::{IoCtx, Result, StoreError};
use crate::images::{chain_ids, ImageRecord, Prepared};
use crate::Store;

/// Largest non-blob metadata file (index.json, manifest.json, legacy configs) read into memory.
const MAX_META: u64 = 16 << 20;

const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A temp dir removed on drop.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
    /// The image's parent when it is in the same archive (dockerd sets it again on load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
}

fn archive_err(why: impl Into<String>) -> StoreError {
    StoreError::Archive(why.into())
}

/// Image names an index entry carries (containerd's full name wins over the OCI ref name,
/// which is used only when it contains a repository, not a bare tag).
fn names_from(d: &Descriptor) -> Vec<Reference> {
    let Some(a) = &d.annotations else {
        return Vec::new();
    };
    if let Some(r) = a
        .get(ANN_CONTAINERD_NAME)
        .and_then(|n| Reference::parse(n).ok())
    {
        return vec![r];
    }
    match a.get(ANN_REF_NAME) {
        Some(n) if n.contains(':') || n.contains('/') => {
            Reference::parse(n).ok().into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// What the tar stream held, staged.
struct Loaded {
    staging: Staging,
    staged: HashSet<Digest>,
    /// small metadata files by archive path
    files: HashMap<String, Vec<u8>>,
    /// other regular files by archive path → staged digest
    paths: HashMap<String, Digest>,
    /// symlinks by archive path → cleaned target path
    links: HashMap<String, String>,
}

impl Loaded {
    fn locate(&self, store: &Store, d: &Digest) -> PathBuf {
        if self.staged.contains(d) {
            self.staging.0.join(d.hex())
        } else {
            store.blob_path(d)
        }
    }

    fn read(&self, store: &Store, d: &Digest) -> Result<Vec<u8>> {
        let p = self.locate(store, d);
        let b = fs::read(&p).map_err(|_| archive_err(format!("blob {d} is missing")))?;
        if Digest::of(&b) != *d {
            return Err(StoreError::DigestMismatch {
                what: format!("archive blob {d}"),
                expected: d.clone(),
                actual: Digest::of(&b),
            });
        }
        Ok(b)
    }

    fn resolve_path(&self, p: &str) -> String {
        let mut p = p.to_string();
        for _ in 0..16 {
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        p
    }

    /// Bytes of an archive member named by path (legacy manifest.json).
    fn member_bytes(&self, store: &Store, path: &str) -> Result<Vec<u8>> {
        let path = self.resolve_path(path);
        if let Some(b) = self.files.get(&path) {
            return Ok(b.clone());
        }
        let d = self.member_digest(&path)?;
        self.read(store, &d)
    }

    fn member_digest(&self, path: &str) -> Result<Digest> {
        let path = self.resolve_path(path);
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            return Digest::from_hex(hex).map_err(|e| archive_err(e.to_string()));
        }
        if let Some(b) = self.files.get(&path) {
            return Ok(Digest::of(b));
        }
        self.paths
            .get(&path)
            .cloned()
            .ok_or_else(|| archive_err(format!("{path} is referenced but not in the archive")))
    }
}

fn clean_path(raw: &[u8]) -> Result<String> {
    let comps = clean_components(raw).ok_or_else(|| {
        archive_err(format!(
            "entry {:?} climbs out of the archive",
            String::from_utf8_lossy(raw)
        ))
    })?;
    let parts: Vec<String> = comps
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

fn stream_in(store: &Store, r: impl Read) -> Result<Loaded> {
    let staging = Staging(store.tmp_dir().join(unique_name("load")));
    fs::create_dir_all(&staging.0).at(&staging.0)?;
    let mut l = Loaded {
        staging,
        staged: HashSet::new(),
        files: HashMap::new(),
        paths: HashMap::new(),
        links: HashMap::new(),
    };
    let input = decompressed(r).map_err(|e| archive_err(format!("reading archive: {e}")))?;
    let mut ar = tar::Archive::new(input);
    let tar_err = |e: io::Error| archive_err(format!("malformed tar: {e}"));
    for entry in ar.entries().map_err(tar_err)? {
        let mut e = entry.map_err(tar_err)?;
        let path = clean_path(&e.path_bytes())?;
        match e.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Some(t) = e.link_name_bytes() {
                    let target = if e.header().entry_type() == tar::EntryType::Link {
                        clean_path(&t)?
                    } else {
                        let parent = path.rsplit_once('/').map(|p| p.0).unwrap_or("");
                        clean_path(format!("{parent}/{}", String::from_utf8_lossy(&t)).as_bytes())?
                    };
                    l.links.insert(path, target);
                }
                continue;
            }
            _ => continue,
        }
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let d = Digest::from_hex(hex)
                .map_err(|_| archive_err(format!("{path}: not a sha256 blob name")))?;
            if store.has_blob(&d) || l.staged.contains(&d) {
                io::copy(&mut e, &mut io::sink()).map_err(tar_err)?;
            } else {
                put_into(&l.staging.0, &l.staging.0, &mut e, Some(&d))?;
                l.staged.insert(d);
            }
            continue;
        }
        let meta_like = path.ends_with(".json") || path == "oci-layout" || path == "repositories";
        if meta_like && e.size() <= MAX_META {
            let mut b = Vec::with_capacity(e.size() as usize);
            e.read_to_end(&mut b).map_err(tar_err)?;
            l.files.insert(path, b);
        } else {
            let (d, _) = put_into(&l.staging.0, &l.staging.0, &mut e, None)?;
            l.staged.insert(d.clone());
            l.paths.insert(path, d);
        }
    }
    Ok(l)
}

/// An image the archive describes.
struct WantedImage {
    manifest: Vec<u8>,
    config: Vec<u8>,
    names: Vec<Reference>,
    /// manifest.json's `Parent` (an image ID).
    parent: Option<Digest>,
}

type Wanted = Vec<WantedImage>;

fn parent_of(item: &DockerManifestItem) -> Option<Digest> {
    item.parent.as_deref().and_then(|p| p.parse().ok())
}

fn wanted_from_index(store: &Store, l: &Loaded, idx: &[u8]) -> Result<Wanted> {
    let index = Index::from_slice(idx).map_err(|e| archive_err(format!("index.json: {e}")))?;
    // docker save (25+) also writes manifest.json; use its RepoTags when the index has no names.
    let legacy: Vec<DockerManifestItem> = l
        .files
        .get("manifest.json")
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let host = Platform::host();
    let mut out = Vec::new();
    for desc in &index.manifests {
        let mut names = names_from(desc);
        let mut d = desc.clone();
        if is_index(&d.media_type) {
            let nested = Index::from_slice(&l.read(store, &d.digest)?)
                .map_err(|e| archive_err(format!("index {}: {e}", d.digest)))?;
            d = nested.select(&host).cloned().ok_or_else(|| {
                archive_err(format!("index {} has no manifest for {host}", d.digest))
            })?;
        }
        if !is_manifest(&d.media_type) {
            tracing::debug!(media_type = %d.media_type, "skipping non-manifest index entry");
            continue;
        }
        let mb = l.read(store, &d.digest)?;
        let m = Manifest::from_slice(&mb)
            .map_err(|e| archive_err(format!("manifest {}: {e}", d.digest)))?;
        let cb = l.read(store, &m.config.digest)?;
        let cfg_path = format!("blobs/sha256/{}", m.config.digest.hex());
        let mut parent = None;
        for item in &legacy {
            if l.resolve_path(&item.config) == cfg_path {
                parent = parent.or(parent_of(item));
                if names.is_empty() {
                    for t in item.repo_tags.iter().flatten() {
                        names.push(Reference::parse(t).map_err(|e| archive_err(e.to_string()))?);
                    }
                }
            }
        }
        out.push(WantedImage {
            manifest: mb,
            config: cb,
            names,
            parent,
        });
    }
    Ok(out)
}

fn sniff_layer_type(path: &std::path::Path) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let mut f = fs::File::open(path).at(path)?;
    let n = f.read(&mut head).at(path)?;
    Ok(if n >= 2 && head[..2] == [0x1f, 0x8b] {
        media_type::OCI_LAYER_GZIP
    } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        media_type::OCI_LAYER_ZSTD
    } else {
        media_type::OCI_LAYER
    })
}

fn wanted_from_docker(store: &Store, l: &Loaded, mj: &[u8]) -> Result<Wanted> {
    let items: Vec<DockerManifestItem> =
        serde_json::from_slice(mj).map_err(|e| archive_err(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for item in items {
        let cb = l.member_bytes(store, &item.config)?;
        let mut layers = Vec::new();
        for lp in &item.layers {
            let d = l.member_digest(lp)?;
            let p = l.locate(store, &d);
            let size = fs::metadata(&p).at(&p)?.len();
            layers.push(Descriptor::new(sniff_layer_type(&p)?, d, size as i64));
        }
        let m = Manifest::oci(&cb, layers);
        let mut names = Vec::new();
        for t in item.repo_tags.iter().flatten() {
            names.push(Reference::parse(t).map_err(|e| archive_err(e.to_string()))?);
        }
        out.push(WantedImage {
            manifest: m.to_vec(),
            config: cb,
            names,
            parent: parent_of(&item),
        });
    }
    Ok(out)
}

/// dockerd's parents on load: an image's `Parent` is kept when that image is in the same
/// archive and is a valid parent — its history is the image's but for one more entry (or
/// neither has history). moby checks nothing else (`checkValidParent`); an invalid one is
/// dropped here, where dockerd fails the load after the images are in.
fn keep_parents(wanted: &[WantedImage], prepared: &mut [Prepared]) {
    let history = |cb: &[u8]| ImageConfig::from_slice(cb).map(|c| c.history).ok();
    for i in 0..wanted.len() {
        let Some(p) = &wanted[i].parent else {
            continue;
        };
        let Some(j) = prepared.iter().position(|x| x.row.id == *p) else {
            continue;
        };
        if prepared[i].row.id == *p {
            continue;
        }
        let (Some(h), Some(ph)) = (history(&wanted[i].config), history(&wanted[j].config)) else {
            continue;
        };
        let valid =
            (h.is_empty() && ph.is_empty()) || (h.len() == ph.len() + 1 && h[..ph.len()] == ph[..]);
        if valid {
            prepared[i].row.parent = Some(p.clone());
        } else {
            tracing::warn!(image = %prepared[i].row.id, parent = %p, "not a valid parent; dropped");
        }
    }
}

/// Load an image archive (OCI layout tar, `docker save` tar, optionally gzip/zstd compressed).
/// All-or-nothing: on any failure the store holds exactly what it held before.
pub fn load_archive(store: &Store, r: impl Read) -> Result<Vec<ImageRecord>> {
    Ok(load_archive_named(store, r)?
        .into_iter()
        .map(|(img, _)| img)
        .collect())
}

/// [`load_archive`], also returning the names the archive gave each image (empty for an image
/// saved by ID): what `docker load` reports, whatever other tags the image already had here.
pub fn load_archive_named(
    store: &Store,
    r: impl Read,
) -> Result<Vec<(ImageRecord, Vec<Reference>)>> {
    let _g = store.gc_lock.read().unwrap_or_else(|p| p.into_inner());
    let l = stream_in(store, r)?;
    let wanted = if let Some(idx) = l.files.get("index.json") {
        wanted_from_index(store, &l, idx)?
    } else if let Some(mj) = l.files.get("manifest.json") {
        wanted_from_docker(store, &l, mj)?
    } else {
        return Err(archive_err(
            "neither index.json (OCI layout) nor manifest.json (docker save) found",
        ));
    };
    if wanted.is_empty() {
        return Err(archive_err("the archive describes no image"));
    }
    let locate = |d: &Digest| l.locate(store, d);
    let mut created = Vec::new();
    let mut moved: Vec<Digest> = Vec::new();
    let res = (|| {
        let mut prepared: Vec<Prepared> = Vec::new();
        for w in &wanted {
            prepared.push(store.prepare_image(
                &w.manifest,
                &w.config,
                &w.names,
                &locate,
                &mut created,
            )?);
        }
        keep_parents(&wanted, &mut prepared);
        // Everything verified: move the blobs the images use into the store, then commit.
        let mut used: HashSet<Digest> = HashSet::new();
        for p in &prepared {
            used.extend(p.row.layers.iter().map(|d| d.digest.clone()));
            used.insert(p.row.manifest_digest.clone());
            used.insert(p.row.id.clone());
        }
        for d in &used {
            if !store.has_blob(d) {
                moved.push(d.clone());
                if l.staged.contains(d) {
                    let src = l.staging.0.join(d.hex());
                    let dst = store.blob_path(d);
                    fs::rename(&src, &dst).at(&dst)?;
                }
            }
        }
        crate::blobs::sync_dir(&store.blobs_dir())?;
        store.commit_prepared(&prepared)?;
        Ok(prepared
            .iter()
            .map(|p| p.row.id.clone())
            .zip(wanted.iter().map(|w| w.names.clone()))
            .collect::<Vec<_>>())
    })();
    match res {
        Ok(ids) => {
            let mut out: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
            for (id, names) in ids {
                match out.iter_mut().find(|(img, _)| img.id == id) {
                    Some((_, n)) => n.extend(names),
                    None => out.push((store.image_by_id(&id)?, names)),
                }
            }
            Ok(out)
        }
        Err(e) => {
            tracing::warn!(error = %e, "load failed; rolling back");
            store.rollback_snapshots(&created);
            let referenced = store.referenced().map(|r| r.0).unwrap_or_default();
            for d in moved.iter().filter(|d| !referenced.contains(d)) {
                let _ = store.remove_blob(d);
            }
            Err(e)
        }
    }
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data)
}

fn append_symlink<W: Write>(b: &mut tar::Builder<W>, path: &str, target: &str) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_mtime(0);
    h.set_size(0);
    b.append_link(&mut h, path, target)
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_size(0);
    b.append_data(&mut h, path, io::empty())
}

/// Write images as one tar holding an OCI layout (`oci-layout`, `index.json` with
/// `io.containerd.image.name` / `org.opencontainers.image.ref.name` annotations, `blobs/sha256/*`)
/// and docker's `manifest.json` (with `Parent` when an image's parent is saved too), like
/// docker 25+, plus what dockerd 20.10 writes for older tools: `repositories` (name → tag →
/// top layer's v1 id) and per layer `<v1 id>/{VERSION,json,layer.tar}`, `layer.tar` a symlink
/// to the layer's blob. Each image is saved under the given refs (none: saved untagged).
pub fn save_archive(
    store: &Store,
    images: &[(ImageRecord, Vec<Reference>)],
    w: impl Write,
) -> Result<()> {
    let out_err = |e: io::Error| StoreError::Io {
        path: PathBuf::from("<archive output>"),
        source: e,
    };
    let mut b = tar::Builder::new(w);
    let mut blobs: Vec<Digest> = Vec::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests: Vec::new(),
        annotations: None,
    };
    let mut docker: Vec<DockerManifestItem> = Vec::new();
    // name → tag → top layer's v1 id (dockerd's `repositories`)
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    // v1 id → (json, layer blob), each written once
    let mut legacy: BTreeMap<String, (Vec<u8>, Digest)> = BTreeMap::new();
    for (img, refs) in images {
        let mb = store.read_blob(&img.manifest_digest)?;
        let m = Manifest::from_slice(&mb)
            .map_err(|e| archive_err(format!("manifest {}: {e}", img.manifest_digest)))?;
        let mt = m
            .media_type
            .clone()
            .unwrap_or_else(|| media_type::OCI_MANIFEST.into());
        let base = Descriptor::new(&mt, img.manifest_digest.clone(), mb.len() as i64);
        let tags: Vec<Reference> = refs
            .iter()
            .map(|r| r.clone().with_default_tag())
            .filter(|r| r.tag.is_some())
            .collect();
        if tags.is_empty() {
            index.manifests.push(base.clone());
        }
        for t in &tags {
            let mut d = base.clone();
            let mut a = BTreeMap::new();
            a.insert(ANN_CONTAINERD_NAME.to_string(), t.to_string());
            a.insert(ANN_REF_NAME.to_string(), t.tag.clone().unwrap_or_default());
            d.annotations = Some(a);
            index.manifests.push(d);
        }
        let cb = store.read_blob(&m.config.digest)?;
        let chains = chain_ids(&img.config.rootfs.diff_ids);
        if chains.len() == m.layers.len() && !chains.is_empty() {
            let v1 = berth_oci::v1::v1_layers(&cb, &chains)
                .map_err(|e| archive_err(format!("config {}: {e}", m.config.digest)))?;
            for (l, layer) in v1.iter().zip(&m.layers) {
                legacy
                    .entry(l.id.clone())
                    .or_insert_with(|| (l.json.clone(), layer.digest.clone()));
            }
            let top = &v1[v1.len() - 1].id;
            for t in &tags {
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(t.tag.clone().unwrap_or_default(), top.clone());
            }
        }
        // As dockerd: the parent only when it is saved too.
        let parent = img
            .parent
            .as_ref()
            .filter(|p| **p != img.id && images.iter().any(|(i, _)| i.id == **p));
        docker.push(DockerManifestItem {
            config: format!("blobs/sha256/{}", m.config.digest.hex()),
            repo_tags: Some(tags.iter().map(|t| t.familiar()).collect()),
            layers: m
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                .collect(),
            parent: parent.map(|p| p.to_string()),
        });
        for d in std::iter::once(&img.manifest_digest)
            .chain(std::iter::once(&m.config.digest))
            .chain(m.layers.iter().map(|l| &l.digest))
        {
            if !blobs.contains(d) {
                blobs.push(d.clone());
            }
        }
    }
    append_dir(&mut b, "blobs/").map_err(out_err)?;
    append_dir(&mut b, "blobs/sha256/").map_err(out_err)?;
    for d in &blobs {
        let p = store.blob_path(d);
        let mut f = fs::File::open(&p).map_err(|_| StoreError::BlobNotFound(d.clone()))?;
        let len = f.metadata().at(&p)?.len();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(len);
        b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut f)
            .map_err(out_err)?;
    }
    for (id, (json, layer)) in &legacy {
        append_dir(&mut b, &format!("{id}/")).map_err(out_err)?;
        append_bytes(&mut b, &format!("{id}/VERSION"), b"1.0").map_err(out_err)?;
        append_bytes(&mut b, &format!("{id}/json"), json).map_err(out_err)?;
        append_symlink(
            &mut b,
            &format!("{id}/layer.tar"),
            &format!("../blobs/sha256/{}", layer.hex()),
        )
        .map_err(out_err)?;
    }
    append_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(out_err)?;
    append_bytes(&mut b, "index.json", &index.to_vec()).map_err(out_err)?;
    let mut mj = serde_json::to_vec(&docker).expect("manifest.json serialises");
    mj.push(b'\n');
    append_bytes(&mut b, "manifest.json", &mj).map_err(out_err)?;
    if !repositories.is_empty() {
        let mut rj = serde_json::to_vec(&repositories).expect("repositories serialises");
        rj.push(b'\n');
        append_bytes(&mut b, "repositories", &rj).map_err(out_err)?;
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(out_err)?;
    Ok(())
}

/// Options of `docker import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The runtime config (`--change` applied by the caller).
    pub changes: ImageRuntimeConfig,
    pub tags: Vec<Reference>,
    /// History comment (`-m`); default "Imported from -".
    pub comment: Option<String>,
    /// Defaults to the host platform.
    pub platform: Option<Platform>,
}

/// `docker import`: a root filesystem tar (optionally compressed) becomes a one-layer image.
pub fn import_rootfs(store: &Store, r: impl Read, opts: ImportOptions) -> Result<ImageRecord> {
    let input = decompressed(r).map_err(|e| archive_err(format!("reading rootfs tar: {e}")))?;
    let _g = store.gc_lock.read().unwrap_or_else(|p| p.into_inner());
    let layer = store.commit_layer_unlocked(None, input)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let platform = opts.platform.unwrap_or_else(Platform::host);
    let config = ImageConfig {
        created: Some(now.clone()),
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: opts.changes,
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        history: vec![History {
            created: Some(now),
            comment: Some(opts.comment.unwrap_or_else(|| "Imported from -".into())),
            ..Default::default()
        }],
        ..Default::default()
    };
    let cb = config.to_vec();
    let m = Manifest::oci(&cb, vec![layer.descriptor]);
    store.register_image_unlocked(&m.to_vec(), &cb, &opts.tags)
}
