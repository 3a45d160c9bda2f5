//! The registry's filesystem store: content-addressed blobs shared by every repository,
//! per-repository links (which blobs and manifests a repository may serve), tags, and uploads
//! in progress. Every visible write is atomic (temp file, fsync, rename, directory fsync) and a
//! blob becomes visible only after its bytes hash to its digest; an upload that dies leaves
//! nothing but its own upload directory. Blocking: call it off the async workers.
//!
//! ```text
//! <root>/blobs/sha256/<hex>                     content
//! <root>/uploads/<id>/{data,repo}               an upload in progress
//! <root>/repos/<name>/_blobs/sha256/<hex>       link: the repository serves this blob
//! <root>/repos/<name>/_manifests/sha256/<hex>   link to a manifest; holds its media type
//! <root>/repos/<name>/_tags/<tag>               the digest the tag names
//! <root>/repos/<name>/_referrers/<subject hex>/<hex>   a manifest whose subject is it
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_oci::Digest;
use sha2::{Digest as _, Sha256};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob unknown to registry")]
    BlobUnknown,
    #[error("manifest unknown")]
    ManifestUnknown,
    #[error("upload unknown")]
    UploadUnknown,
    #[error("provided digest did not match uploaded content (got {got})")]
    DigestMismatch { got: Digest },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Io { what, source }
}

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The running SHA-256 of each upload and the size it covers, so finishing an upload
    /// need not read it back (absent, or stale after a cut-short body: it is re-read).
    hashers: std::sync::Arc<std::sync::Mutex<HashMap<String, (Sha256, u64)>>>,
}

/// One request body being appended to an upload: the file opened once, hashed as it is
/// written. A failed write (a full disk) drops the whole upload, so nothing is left holding
/// the space; the client starts again.
pub struct UploadWriter {
    store: Store,
    id: String,
    file: fs::File,
    hasher: Option<Sha256>,
    size: u64,
}

impl UploadWriter {
    /// Append `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        if let Err(e) = self.file.write_all(data) {
            self.store.drop_upload(&self.id);
            return Err(io_err("write upload")(e));
        }
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
        self.size += data.len() as u64;
        Ok(())
    }

    /// Start writing what was appended so far to the disk, without waiting for it, so the
    /// fsync when the upload finishes has little left to wait for.
    pub fn start_writeback(&self) {
        use std::os::fd::AsRawFd as _;
        // SAFETY: sync_file_range(2) on a file descriptor this writer owns; it only starts
        // writeback of the whole file (offset 0, length 0 = to the end) and touches no memory.
        unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }

    /// The upload's size now; its hash state is kept for the next body or the finish.
    pub fn finish(self) -> u64 {
        if let Some(h) = self.hasher {
            self.store
                .hashers
                .lock()
                .expect("hashers lock")
                .insert(self.id, (h, self.size));
        }
        self.size
    }
}

/// Write `bytes` to `path` atomically, creating its directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().expect("store paths have a parent");
    fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    berth_rootfs::atomic::write_atomic(path, bytes)
        .map_err(io_err(format!("write {}", path.display())))
}

impl Store {
    /// Open (creating) the store at `root`; uploads left by a killed server are removed.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for d in ["blobs/sha256", "uploads", "repos"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(format!("create {}", p.display())))?;
        }
        // Uploads of a server that died: clients start them again.
        let uploads = root.join("uploads");
        for e in fs::read_dir(&uploads)
            .map_err(io_err("read uploads"))?
            .flatten()
        {
            let _ = fs::remove_dir_all(e.path());
        }
        // A blob write cut short leaves a temp file beside the blobs: never a blob.
        for e in fs::read_dir(root.join("blobs/sha256"))
            .map_err(io_err("read blobs"))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if Digest::from_hex(&name).is_err() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(Store {
            root: root.to_path_buf(),
            hashers: Default::default(),
        })
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repos").join(name)
    }

    fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// The blob's size when `name` may serve it.
    pub fn blob_size(&self, name: &str, d: &Digest) -> Result<u64, StoreError> {
        let linked = self.repo(name).join("_blobs/sha256").join(d.hex()).exists()
            || self
                .repo(name)
                .join("_manifests/sha256")
                .join(d.hex())
                .exists();
        if !linked {
            return Err(StoreError::BlobUnknown);
        }
        fs::metadata(self.blob_path(d))
            .map(|m| m.len())
            .map_err(|_| StoreError::BlobUnknown)
    }

    /// Open the blob for reading.
    pub fn blob_file(&self, name: &str, d: &Digest) -> Result<(fs::File, u64), StoreError> {
        let size = self.blob_size(name, d)?;
        let f = fs::File::open(self.blob_path(d)).map_err(|_| StoreError::BlobUnknown)?;
        Ok((f, size))
    }

    /// Whether the content exists at all (any repository): a mount source.
    pub fn has_content(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Let `name` serve blob `d`. A link is an empty file whose existence is all it says, so
    /// it is created in place (nothing to tear) and only its directory is synced; an existing
    /// link costs nothing.
    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<(), StoreError> {
        let dir = self.repo(name).join("_blobs/sha256");
        let link = dir.join(d.hex());
        if link.exists() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
        fs::File::create(&link).map_err(io_err(format!("link {}", link.display())))?;
        berth_rootfs::atomic::sync_dir(&dir).map_err(io_err("sync links"))
    }

    /// Start an upload for `name`: its id.
    pub fn upload_start(&self, name: &str) -> Result<String, StoreError> {
        let mut b = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut b);
        let id = hex::encode(b);
        let dir = self.upload_dir(&id);
        fs::create_dir_all(&dir).map_err(io_err("create upload"))?;
        fs::write(dir.join("repo"), name).map_err(io_err("create upload"))?;
        fs::File::create(dir.join("data")).map_err(io_err("create upload"))?;
        Ok(id)
    }

    /// The bytes received so far for upload `id` of `name`.
    pub fn upload_size(&self, name: &str, id: &str) -> Result<u64, StoreError> {
        let dir = self.upload_dir(id);
        match fs::read_to_string(dir.join("repo")) {
            Ok(r) if r == name => {}
            _ => return Err(StoreError::UploadUnknown),
        }
        fs::metadata(dir.join("data"))
            .map(|m| m.len())
            .map_err(|_| StoreError::UploadUnknown)
    }

    /// Append `chunk` to upload `id` (the caller checked the offset); the new size.
    pub fn upload_append(&self, name: &str, id: &str, chunk: &[u8]) -> Result<u64, StoreError> {
        let mut w = self.upload_writer(name, id)?;
        w.write(chunk)?;
        Ok(w.finish())
    }

    /// Open upload `id` of `name` for appending one body.
    pub fn upload_writer(&self, name: &str, id: &str) -> Result<UploadWriter, StoreError> {
        let size = self.upload_size(name, id)?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(self.upload_dir(id).join("data"))
            .map_err(|_| StoreError::UploadUnknown)?;
        let kept = self.hashers.lock().expect("hashers lock").remove(id);
        let hasher = match kept {
            Some((h, n)) if n == size => Some(h),
            _ if size == 0 => Some(Sha256::new()),
            _ => None,
        };
        Ok(UploadWriter {
            store: self.clone(),
            id: id.to_string(),
            file,
            hasher,
            size,
        })
    }

    /// Forget upload `id` (its bytes and hash state).
    fn drop_upload(&self, id: &str) {
        self.hashers.lock().expect("hashers lock").remove(id);
        let _ = fs::remove_dir_all(self.upload_dir(id));
    }

    /// Finish upload `id`: its bytes must hash to `want`; then the blob is stored and linked.
    pub fn upload_finish(&self, name: &str, id: &str, want: &Digest) -> Result<u64, StoreError> {
        let size = self.upload_size(name, id)?;
        let dir = self.upload_dir(id);
        let data = dir.join("data");
        let f = fs::File::open(&data).map_err(|_| StoreError::UploadUnknown)?;
        let kept = self.hashers.lock().expect("hashers lock").remove(id);
        let hash = match kept {
            Some((h, n)) if n == size => h.finalize(),
            // Not hashed as it came (a body cut short, or written before a restart).
            _ => {
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut r = &f;
                loop {
                    let n = r.read(&mut buf).map_err(io_err("read upload"))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                h.finalize()
            }
        };
        let got = Digest::from_hex(&hex::encode(hash)).expect("a sha256 is a digest");
        if &got != want {
            self.drop_upload(id);
            return Err(StoreError::DigestMismatch { got });
        }
        f.sync_all().map_err(io_err("sync upload"))?;
        let dest = self.blob_path(want);
        fs::rename(&data, &dest).map_err(io_err(format!("store {}", dest.display())))?;
        berth_rootfs::atomic::sync_dir(dest.parent().expect("blob dir"))
            .map_err(io_err("sync blobs"))?;
        let _ = fs::remove_dir_all(&dir);
        self.link_blob(name, want)?;
        Ok(size)
    }

    /// Cancel upload `id`.
    pub fn upload_cancel(&self, name: &str, id: &str) -> Result<(), StoreError> {
        self.upload_size(name, id)?;
        self.hashers.lock().expect("hashers lock").remove(id);
        fs::remove_dir_all(self.upload_dir(id)).map_err(io_err("remove upload"))
    }

    /// Store a manifest's bytes under `name` (and `tag`), recording its media type and, when it
    /// has a subject, the referrer link.
    pub fn put_manifest(
        &self,
        name: &str,
        tag: Option<&str>,
        bytes: &[u8],
        media_type: &str,
        subject: Option<&Digest>,
    ) -> Result<Digest, StoreError> {
        let d = Digest::of(bytes);
        let blob = self.blob_path(&d);
        if !blob.exists() {
            write_atomic(&blob, bytes)?;
        }
        let repo = self.repo(name);
        let link = repo.join("_manifests/sha256").join(d.hex());
        // A manifest pushed again with the same media type changes nothing.
        if fs::read(&link).ok().as_deref() != Some(media_type.as_bytes()) {
            write_atomic(&link, media_type.as_bytes())?;
        }
        if let Some(s) = subject {
            write_atomic(&repo.join("_referrers").join(s.hex()).join(d.hex()), b"")?;
        }
        if let Some(t) = tag {
            write_atomic(&repo.join("_tags").join(t), d.to_string().as_bytes())?;
        }
        Ok(d)
    }

    /// The digest a tag names.
    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Digest, StoreError> {
        let p = self.repo(name).join("_tags").join(tag);
        fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(StoreError::ManifestUnknown)
    }

    /// A manifest of `name`: its bytes and media type.
    pub fn get_manifest(&self, name: &str, d: &Digest) -> Result<(Vec<u8>, String), StoreError> {
        let link = self.repo(name).join("_manifests/sha256").join(d.hex());
        let media = fs::read_to_string(link).map_err(|_| StoreError::ManifestUnknown)?;
        let bytes = fs::read(self.blob_path(d)).map_err(|_| StoreError::ManifestUnknown)?;
        Ok((bytes, media))
    }

    /// Remove a manifest from `name` (and the tags naming it).
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> Result<(), StoreError> {
        let link = self.repo(name).join("_manifests/sha256").join(d.hex());
        fs::remove_file(link).map_err(|_| StoreError::ManifestUnknown)?;
        for t in self.tags(name) {
            if self.resolve_tag(name, &t).ok().as_ref() == Some(d) {
                let _ = fs::remove_file(self.repo(name).join("_tags").join(&t));
            }
        }
        Ok(())
    }

    /// Remove a tag.
    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<(), StoreError> {
        fs::remove_file(self.repo(name).join("_tags").join(tag))
            .map_err(|_| StoreError::ManifestUnknown)
    }

    /// Unlink a blob from `name` (the content stays until gc).
    pub fn delete_blob(&self, name: &str, d: &Digest) -> Result<(), StoreError> {
        fs::remove_file(self.repo(name).join("_blobs/sha256").join(d.hex()))
            .map_err(|_| StoreError::BlobUnknown)
    }

    /// The repository's tags, sorted.
    pub fn tags(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.repo(name).join("_tags"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with(".tmp"))
            .collect();
        out.sort();
        out
    }

    /// Whether the repository exists (has anything stored).
    pub fn repo_exists(&self, name: &str) -> bool {
        self.repo(name).is_dir()
    }

    /// Every repository name, sorted.
    pub fn catalog(&self) -> Vec<String> {
        let mut out = Vec::new();
        let base = self.root.join("repos");
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('_') {
                    if n == "_manifests" {
                        if let Ok(rel) = dir.strip_prefix(&base) {
                            out.push(rel.to_string_lossy().into_owned());
                        }
                    }
                } else if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The manifests of `name` whose subject is `subject`.
    pub fn referrers(&self, name: &str, subject: &Digest) -> Vec<Digest> {
        let mut out: Vec<Digest> =
            fs::read_dir(self.repo(name).join("_referrers").join(subject.hex()))
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
                .filter(|d| {
                    self.repo(name)
                        .join("_manifests/sha256")
                        .join(d.hex())
                        .exists()
                })
                .collect();
        out.sort_by(|a, b| a.hex().cmp(b.hex()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_becomes_a_blob_only_when_its_digest_matches() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let id = s.upload_start("a/b").unwrap();
        assert_eq!(s.upload_append("a/b", &id, b"hello ").unwrap(), 6);
        assert_eq!(s.upload_append("a/b", &id, b"world").unwrap(), 11);
        assert!(matches!(
            s.upload_size("other", &id),
            Err(StoreError::UploadUnknown)
        ));
        let wrong = Digest::of(b"nope");
        assert!(matches!(
            s.upload_finish("a/b", &id, &wrong),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.has_content(&wrong) && !s.has_content(&Digest::of(b"hello world")));
        let id = s.upload_start("a/b").unwrap();
        s.upload_append("a/b", &id, b"hello world").unwrap();
        let d = Digest::of(b"hello world");
        assert_eq!(s.upload_finish("a/b", &id, &d).unwrap(), 11);
        assert_eq!(s.blob_size("a/b", &d).unwrap(), 11);
        // Another repository does not see it until it is mounted (linked).
        assert!(matches!(s.blob_size("c", &d), Err(StoreError::BlobUnknown)));
        s.link_blob("c", &d).unwrap();
        assert_eq!(s.blob_size("c", &d).unwrap(), 11);
        assert!(fs::read_dir(t.path().join("uploads"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn uploads_hash_as_they_are_written_and_survive_interleaved_writers() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let id = s.upload_start("a").unwrap();
        let mut w = s.upload_writer("a", &id).unwrap();
        w.write(b"hello ").unwrap();
        assert_eq!(w.finish(), 6);
        // A second writer opened while a first one is still out: the kept hash no longer
        // covers the file, so finishing reads it back and still gets it right.
        let mut w1 = s.upload_writer("a", &id).unwrap();
        let mut w2 = s.upload_writer("a", &id).unwrap();
        w1.write(b"wor").unwrap();
        w2.write(b"ld").unwrap();
        w1.finish();
        w2.finish();
        let d = Digest::of(b"hello world");
        assert_eq!(s.upload_finish("a", &id, &d).unwrap(), 11);
        assert_eq!(s.blob_size("a", &d).unwrap(), 11);
        // And a plain one-writer upload is finished from the kept hash.
        let id = s.upload_start("a").unwrap();
        let mut w = s.upload_writer("a", &id).unwrap();
        w.write(b"x").unwrap();
        w.finish();
        assert!(s.hashers.lock().unwrap().contains_key(&id));
        assert_eq!(s.upload_finish("a", &id, &Digest::of(b"x")).unwrap(), 1);
        assert!(s.hashers.lock().unwrap().is_empty());
    }

    #[test]
    fn concurrent_pushes_of_one_tag_leave_one_whole_manifest() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let bodies: Vec<Vec<u8>> = (0..8)
            .map(|i| format!(r#"{{"schemaVersion":2,"n":{i}}}"#).into_bytes())
            .collect();
        std::thread::scope(|sc| {
            for b in &bodies {
                let s = s.clone();
                sc.spawn(move || {
                    for _ in 0..20 {
                        s.put_manifest("race", Some("v1"), b, "application/json", None)
                            .unwrap();
                        // Readers never see a torn or missing tag meanwhile.
                        let d = s.resolve_tag("race", "v1").unwrap();
                        s.get_manifest("race", &d).unwrap();
                    }
                });
            }
        });
        let d = s.resolve_tag("race", "v1").unwrap();
        assert!(bodies.iter().any(|b| Digest::of(b) == d));
        assert_eq!(s.tags("race"), vec!["v1".to_string()]);
    }

    #[test]
    fn manifests_tags_catalog_and_referrers() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let m = br#"{"schemaVersion":2}"#;
        let d = s
            .put_manifest(
                "x/y",
                Some("v1"),
                m,
                "application/vnd.oci.image.manifest.v1+json",
                None,
            )
            .unwrap();
        assert_eq!(s.resolve_tag("x/y", "v1").unwrap(), d);
        let (bytes, media) = s.get_manifest("x/y", &d).unwrap();
        assert_eq!(bytes, m);
        assert_eq!(media, "application/vnd.oci.image.manifest.v1+json");
        let art = s
            .put_manifest(
                "x/y",
                None,
                b"{\"a\":1}",
                "application/vnd.oci.image.manifest.v1+json",
                Some(&d),
            )
            .unwrap();
        assert_eq!(s.referrers("x/y", &d), vec![art]);
        s.put_manifest("z", Some("b"), m, "t", None).unwrap();
        s.put_manifest("z", Some("a"), m, "t", None).unwrap();
        assert_eq!(s.tags("z"), vec!["a", "b"]);
        assert_eq!(s.catalog(), vec!["x/y", "z"]);
        s.delete_manifest("z", &d).unwrap();
        assert!(s.tags("z").is_empty());
        assert!(matches!(
            s.get_manifest("z", &d),
            Err(StoreError::ManifestUnknown)
        ));
    }
}

/// What `gc` found: the blobs it removed (or, in a dry run, would remove) and those it kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub removed: Vec<Digest>,
    pub kept: usize,
    /// Unreferenced but younger than the grace period (a push may still be linking them).
    pub young: usize,
}

impl Store {
    /// Every manifest linked in any repository, and the repositories' blob links.
    fn all_links(&self) -> (Vec<Digest>, Vec<PathBuf>) {
        let mut manifests = Vec::new();
        let mut blob_links = Vec::new();
        let base = self.root.join("repos");
        let mut stack = vec![base];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                match e.file_name().to_string_lossy().as_ref() {
                    "_manifests" => {
                        for m in fs::read_dir(p.join("sha256"))
                            .into_iter()
                            .flatten()
                            .flatten()
                        {
                            if let Ok(d) = Digest::from_hex(&m.file_name().to_string_lossy()) {
                                manifests.push(d);
                            }
                        }
                    }
                    "_blobs" => {
                        for b in fs::read_dir(p.join("sha256"))
                            .into_iter()
                            .flatten()
                            .flatten()
                        {
                            blob_links.push(b.path());
                        }
                    }
                    n if n.starts_with('_') => {}
                    _ if p.is_dir() => stack.push(p),
                    _ => {}
                }
            }
        }
        (manifests, blob_links)
    }

    /// Mark every blob a linked manifest reaches (config, layers, child manifests, subject
    /// artifacts' blobs) and sweep the others older than `grace`; `dry_run` only reports.
    pub fn gc(&self, grace: std::time::Duration, dry_run: bool) -> Result<GcReport, StoreError> {
        let (manifests, _) = self.all_links();
        let mut marked: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut todo = manifests;
        while let Some(d) = todo.pop() {
            if !marked.insert(d.hex().to_string()) {
                continue;
            }
            let Ok(bytes) = fs::read(self.blob_path(&d)) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let digest_of =
                |x: &serde_json::Value| x["digest"].as_str().and_then(|s| s.parse::<Digest>().ok());
            if let Some(c) = digest_of(&v["config"]) {
                marked.insert(c.hex().to_string());
            }
            for l in v["layers"].as_array().into_iter().flatten() {
                if let Some(l) = digest_of(l) {
                    marked.insert(l.hex().to_string());
                }
            }
            for m in v["manifests"].as_array().into_iter().flatten() {
                if let Some(m) = digest_of(m) {
                    todo.push(m);
                }
            }
        }
        let now = std::time::SystemTime::now();
        let mut report = GcReport::default();
        let dir = self.root.join("blobs/sha256");
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(io_err(format!("read {}", dir.display())))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(d) = Digest::from_hex(&name) else {
                continue; // a temp file of a write in progress
            };
            if marked.contains(&name) {
                report.kept += 1;
                continue;
            }
            let age = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if age < grace {
                report.young += 1;
                continue;
            }
            if !dry_run {
                fs::remove_file(e.path())
                    .map_err(io_err(format!("remove {}", e.path().display())))?;
            }
            report.removed.push(d);
        }
        if !dry_run {
            // Links to content that is gone no longer serve anything.
            let (_, links) = self.all_links();
            for l in links {
                let hex = l
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !dir.join(&hex).exists() {
                    let _ = fs::remove_file(&l);
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod gc_tests {
    use super::*;

    fn blob(s: &Store, name: &str, data: &[u8]) -> Digest {
        let id = s.upload_start(name).unwrap();
        s.upload_append(name, &id, data).unwrap();
        let d = Digest::of(data);
        s.upload_finish(name, &id, &d).unwrap();
        d
    }

    #[test]
    fn gc_sweeps_exactly_the_unreferenced_blobs() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let config = blob(&s, "r", b"config");
        let layer = blob(&s, "r", b"layer");
        let orphan = blob(&s, "r", b"orphan");
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{config}"}},"layers":[{{"digest":"{layer}"}}]}}"#
        );
        let md = s
            .put_manifest(
                "r",
                Some("v1"),
                m.as_bytes(),
                "application/vnd.oci.image.manifest.v1+json",
                None,
            )
            .unwrap();
        let idx = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{md}"}}]}}"#);
        let id = s
            .put_manifest(
                "other",
                Some("i"),
                idx.as_bytes(),
                "application/vnd.oci.image.index.v1+json",
                None,
            )
            .unwrap();
        // Young blobs are spared.
        let r = s.gc(std::time::Duration::from_secs(3600), false).unwrap();
        assert!(r.removed.is_empty());
        assert_eq!(r.young, 1);
        let dry = s.gc(std::time::Duration::ZERO, true).unwrap();
        assert_eq!(dry.removed, vec![orphan.clone()]);
        assert!(s.has_content(&orphan), "a dry run removed something");
        let r = s.gc(std::time::Duration::ZERO, false).unwrap();
        assert_eq!(r.removed, vec![orphan.clone()]);
        assert_eq!(r.kept, 4);
        assert!(!s.has_content(&orphan));
        for d in [&config, &layer, &md, &id] {
            assert!(s.has_content(d), "{d} was swept");
        }
        assert!(matches!(
            s.blob_size("r", &orphan),
            Err(StoreError::BlobUnknown)
        ));
        // Deleting the manifest frees its blobs (the index in `other` still reaches them: kept).
        s.delete_manifest("r", &md).unwrap();
        let r = s.gc(std::time::Duration::ZERO, false).unwrap();
        assert!(r.removed.is_empty(), "{r:?}");
        s.delete_manifest("other", &id).unwrap();
        let r = s.gc(std::time::Duration::ZERO, false).unwrap();
        let mut want = vec![config, layer, md, id];
        want.sort_by(|a, b| a.hex().cmp(b.hex()));
        assert_eq!(r.removed, want);
    }
}
