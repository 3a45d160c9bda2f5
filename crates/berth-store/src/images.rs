//! Image metadata: registering verified images (manifest + config + unpacked snapshots), resolving
//! names and ids the way Docker does, tagging, untagging and removal.

use std::collections::HashSet;
use std::path::PathBuf;

use berth_oci::media_type::{self, layer_compression};
use berth_oci::{Descriptor, Digest, ImageConfig, Manifest, Reference};
use rusqlite::{params, OptionalExtension};

use crate::error::{DbCtx, Result, StoreError};
use crate::Store;

/// An image as the daemon sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    /// Config digest = Docker's image ID.
    pub id: Digest,
    pub manifest_digest: Digest,
    /// Familiar `name:tag`, sorted.
    pub repo_tags: Vec<String>,
    /// Familiar `name@sha256:…`, sorted.
    pub repo_digests: Vec<String>,
    pub config: ImageConfig,
    pub created: Option<String>,
    /// Uncompressed size of all layers' file content.
    pub size: u64,
    pub layers: Vec<Descriptor>,
    pub parent: Option<Digest>,
}

/// What `remove_image` did, in Docker's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// Familiar references removed.
    pub untagged: Vec<String>,
    /// The image id, then the chain ids of snapshots that were deleted.
    pub deleted: Vec<Digest>,
    pub bytes_freed: u64,
}

/// Chain ids of a layer stack: `chain[0] = diff[0]`, `chain[i] = sha256(chain[i-1] + " " + diff[i])`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => chain_next(prev, d),
        };
        out.push(next);
    }
    out
}

pub(crate) fn chain_next(parent: &Digest, diff: &Digest) -> Digest {
    Digest::of(format!("{parent} {diff}").as_bytes())
}

/// One row of the images table.
#[derive(Debug, Clone)]
pub(crate) struct ImageRow {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub size: u64,
    pub layers: Vec<Descriptor>,
    pub chain_ids: Vec<Digest>,
    pub parent: Option<Digest>,
}

/// An image that passed verification and whose snapshots exist, ready for the DB commit.
pub(crate) struct Prepared {
    pub manifest_bytes: Vec<u8>,
    pub config_bytes: Vec<u8>,
    pub row: ImageRow,
    pub tags: Vec<Reference>,
}

fn parse_digest(s: String) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRow> {
    let json_err = |e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    };
    Ok(ImageRow {
        id: parse_digest(r.get(0)?)?,
        manifest_digest: parse_digest(r.get(1)?)?,
        size: r.get::<_, i64>(2)? as u64,
        layers: serde_json::from_str(&r.get::<_, String>(3)?).map_err(json_err)?,
        chain_ids: serde_json::from_str(&r.get::<_, String>(4)?).map_err(json_err)?,
        parent: r
            .get::<_, Option<String>>(5)?
            .map(parse_digest)
            .transpose()?,
    })
}

const ROW_COLS: &str = "id, manifest_digest, size, layers, chain_ids, parent";

fn invalid(what: &str, why: impl Into<String>) -> StoreError {
    StoreError::InvalidImage {
        what: what.to_string(),
        why: why.into(),
    }
}

impl Store {
    pub(crate) fn image_rows(&self) -> Result<Vec<ImageRow>> {
        let c = self.conn();
        let mut st = c
            .prepare(&format!("SELECT {ROW_COLS} FROM images"))
            .db("list images")?;
        let rows = st.query_map([], row_from).db("list images")?;
        rows.collect::<rusqlite::Result<_>>().db("list images")
    }

    pub(crate) fn image_row(&self, id: &Digest) -> Result<ImageRow> {
        let c = self.conn();
        c.query_row(
            &format!("SELECT {ROW_COLS} FROM images WHERE id=?1"),
            [id.to_string()],
            row_from,
        )
        .optional()
        .db("read image")?
        .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))
    }

    pub(crate) fn delete_image_rows(&self, id: &Digest) -> Result<Vec<String>> {
        let mut c = self.conn();
        let tx = c.transaction().db("begin")?;
        let tags: Vec<String> = {
            let mut st = tx
                .prepare("SELECT name FROM tags WHERE image_id=?1")
                .db("list tags")?;
            let rows = st
                .query_map([id.to_string()], |r| r.get(0))
                .db("list tags")?;
            rows.collect::<rusqlite::Result<_>>().db("list tags")?
        };
        for sql in [
            "DELETE FROM tags WHERE image_id=?1",
            "DELETE FROM repo_digests WHERE image_id=?1",
            "DELETE FROM images WHERE id=?1",
        ] {
            tx.execute(sql, [id.to_string()]).db("delete image")?;
        }
        tx.commit().db("commit delete image")?;
        Ok(tags
            .iter()
            .map(|t| {
                Reference::parse(t)
                    .map(|r| r.familiar())
                    .unwrap_or_else(|_| t.clone())
            })
            .collect())
    }

    /// Register an image whose layer blobs are already in the store: verifies the manifest,
    /// the config (must be the manifest's config blob) and every layer's uncompressed digest
    /// against `rootfs.diff_ids` while unpacking it into a snapshot keyed by chain id (reused
    /// when present). All-or-nothing. Tags move from any image that had them.
    pub fn register_image(
        &self,
        manifest_bytes: &[u8],
        config_bytes: &[u8],
        tags: &[Reference],
    ) -> Result<ImageRecord> {
        let _g = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        self.register_image_unlocked(manifest_bytes, config_bytes, tags)
    }

    /// [`Store::register_image`] for callers already holding the GC read lock.
    pub(crate) fn register_image_unlocked(
        &self,
        manifest_bytes: &[u8],
        config_bytes: &[u8],
        tags: &[Reference],
    ) -> Result<ImageRecord> {
        let locate = |d: &Digest| self.blob_path(d);
        let mut created = Vec::new();
        let res = self
            .prepare_image(manifest_bytes, config_bytes, tags, &locate, &mut created)
            .and_then(|p| {
                self.commit_prepared(std::slice::from_ref(&p))?;
                Ok(p.row.id)
            });
        match res {
            Ok(id) => self.image_by_id(&id),
            Err(e) => {
                self.rollback_snapshots(&created);
                Err(e)
            }
        }
    }

    /// Verify one image and build its snapshots (pushing newly created chain ids to `created`).
    pub(crate) fn prepare_image(
        &self,
        manifest_bytes: &[u8],
        config_bytes: &[u8],
        tags: &[Reference],
        locate: &dyn Fn(&Digest) -> PathBuf,
        created: &mut Vec<Digest>,
    ) -> Result<Prepared> {
        let manifest =
            Manifest::from_slice(manifest_bytes).map_err(|e| invalid("manifest", e.to_string()))?;
        let manifest_digest = Digest::of(manifest_bytes);
        let id = Digest::of(config_bytes);
        if id != manifest.config.digest {
            return Err(StoreError::DigestMismatch {
                what: format!("config of manifest {manifest_digest}"),
                expected: manifest.config.digest.clone(),
                actual: id,
            });
        }
        let config = ImageConfig::from_slice(config_bytes)
            .map_err(|e| invalid(&format!("config {id}"), e.to_string()))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(invalid(
                &format!("manifest {manifest_digest}"),
                format!(
                    "{} layers but config lists {} diff_ids",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        for l in &manifest.layers {
            if layer_compression(&l.media_type).is_none() {
                return Err(invalid(
                    &format!("layer {}", l.digest),
                    format!("unsupported media type {:?}", l.media_type),
                ));
            }
            if !locate(&l.digest).is_file() {
                return Err(StoreError::BlobNotFound(l.digest.clone()));
            }
        }
        let chains = chain_ids(diff_ids);
        let mut size = 0u64;
        for (i, l) in manifest.layers.iter().enumerate() {
            let (made, sz) =
                self.ensure_snapshot(&chains[i], &diff_ids[i], &locate(&l.digest), &l.digest)?;
            if made {
                created.push(chains[i].clone());
            }
            size += sz;
        }
        let mut norm = Vec::new();
        for t in tags {
            let t = t.clone().with_default_tag();
            if !norm.contains(&t) {
                norm.push(t);
            }
        }
        Ok(Prepared {
            manifest_bytes: manifest_bytes.to_vec(),
            config_bytes: config_bytes.to_vec(),
            row: ImageRow {
                id,
                manifest_digest,
                size,
                layers: manifest.layers,
                chain_ids: chains,
                parent: None,
            },
            tags: norm,
        })
    }

    /// Store manifest/config blobs and write all rows in one transaction.
    pub(crate) fn commit_prepared(&self, images: &[Prepared]) -> Result<()> {
        for p in images {
            self.put_blob(&p.manifest_bytes)?;
            self.put_blob(&p.config_bytes)?;
        }
        let mut c = self.conn();
        let tx = c.transaction().db("begin register")?;
        let now = chrono::Utc::now().to_rfc3339();
        for p in images {
            let r = &p.row;
            let parent: Option<String> = tx
                .query_row(
                    "SELECT parent FROM images WHERE id=?1",
                    [r.id.to_string()],
                    |x| x.get(0),
                )
                .optional()
                .db("read parent")?
                .flatten();
            tx.execute(
                "INSERT OR REPLACE INTO images (id, manifest_digest, size, layers, chain_ids, parent, added)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.id.to_string(),
                    r.manifest_digest.to_string(),
                    r.size as i64,
                    serde_json::to_string(&r.layers).expect("json"),
                    serde_json::to_string(&r.chain_ids).expect("json"),
                    r.parent.as_ref().map(|d| d.to_string()).or(parent),
                    now
                ],
            )
            .db("insert image")?;
            for t in &p.tags {
                if t.tag.is_some() {
                    let mut tagged = t.clone();
                    tagged.digest = None;
                    tx.execute(
                        "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)",
                        params![tagged.to_string(), r.id.to_string()],
                    )
                    .db("insert tag")?;
                }
                let md = t
                    .digest
                    .clone()
                    .unwrap_or_else(|| r.manifest_digest.clone());
                tx.execute(
                    "INSERT OR REPLACE INTO repo_digests (repo, manifest_digest, image_id) VALUES (?1, ?2, ?3)",
                    params![t.full_name(), md.to_string(), r.id.to_string()],
                )
                .db("insert repo digest")?;
            }
        }
        tx.commit().db("commit register")?;
        Ok(())
    }

    /// Record an image's parent (for locally built images; Docker's `Parent`).
    pub fn set_image_parent(&self, id: &Digest, parent: Option<&Digest>) -> Result<()> {
        let n = self
            .conn()
            .execute(
                "UPDATE images SET parent=?2 WHERE id=?1",
                params![id.to_string(), parent.map(|p| p.to_string())],
            )
            .db("set parent")?;
        if n == 0 {
            return Err(StoreError::ImageNotFound(id.to_string()));
        }
        Ok(())
    }

    fn record(&self, row: ImageRow) -> Result<ImageRecord> {
        let config_bytes = self.read_blob(&row.id)?;
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(|e| invalid(&format!("config {}", row.id), e.to_string()))?;
        let c = self.conn();
        let mut st = c
            .prepare("SELECT name FROM tags WHERE image_id=?1")
            .db("list tags")?;
        let mut repo_tags: Vec<String> = st
            .query_map([row.id.to_string()], |r| r.get::<_, String>(0))
            .db("list tags")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db("list tags")?
            .iter()
            .filter_map(|t| Reference::parse(t).ok().map(|r| r.familiar()))
            .collect();
        repo_tags.sort();
        let mut st = c
            .prepare("SELECT repo, manifest_digest FROM repo_digests WHERE image_id=?1")
            .db("list digests")?;
        let mut repo_digests: Vec<String> = st
            .query_map([row.id.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .db("list digests")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db("list digests")?
            .into_iter()
            .filter_map(|(repo, d)| {
                Reference::parse(&repo)
                    .ok()
                    .map(|r| format!("{}@{d}", r.familiar_name()))
            })
            .collect();
        repo_digests.sort();
        Ok(ImageRecord {
            created: config.created.clone(),
            config,
            id: row.id,
            manifest_digest: row.manifest_digest,
            repo_tags,
            repo_digests,
            size: row.size,
            layers: row.layers,
            parent: row.parent,
        })
    }

    pub(crate) fn image_by_id(&self, id: &Digest) -> Result<ImageRecord> {
        let row = self.image_row(id)?;
        self.record(row)
    }

    /// Resolve like Docker: full id (`sha256:…`), `name`, `name:tag`, `name@digest`, or an
    /// unambiguous hex prefix of the id.
    pub fn resolve(&self, s: &str) -> Result<Digest> {
        let not_found = || StoreError::ImageNotFound(s.to_string());
        if let Ok(d) = s.parse::<Digest>() {
            return self.image_row(&d).map(|r| r.id).map_err(|_| not_found());
        }
        let c = self.conn();
        if let Ok(r) = Reference::parse(s) {
            let found: Option<String> = if let Some(d) = &r.digest {
                c.query_row(
                    "SELECT image_id FROM repo_digests WHERE repo=?1 AND manifest_digest=?2",
                    params![r.full_name(), d.to_string()],
                    |x| x.get(0),
                )
                .optional()
                .db("resolve digest")?
                .or(c
                    .query_row(
                        "SELECT id FROM images WHERE manifest_digest=?1",
                        [d.to_string()],
                        |x| x.get(0),
                    )
                    .optional()
                    .db("resolve digest")?)
            } else {
                c.query_row(
                    "SELECT image_id FROM tags WHERE name=?1",
                    [r.with_default_tag().to_string()],
                    |x| x.get(0),
                )
                .optional()
                .db("resolve tag")?
            };
            if let Some(id) = found {
                return parse_digest(id).db("resolve");
            }
        }
        let prefix = s.strip_prefix("sha256:").unwrap_or(s);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let mut st = c
                .prepare("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1")
                .db("resolve prefix")?;
            let ids: Vec<String> = st
                .query_map(params![prefix, prefix.len() as i64], |x| x.get(0))
                .db("resolve prefix")?
                .collect::<rusqlite::Result<_>>()
                .db("resolve prefix")?;
            return match ids.len() {
                0 => Err(not_found()),
                1 => parse_digest(ids[0].clone()).db("resolve"),
                n => Err(StoreError::Ambiguous {
                    reference: s.to_string(),
                    count: n,
                }),
            };
        }
        Err(not_found())
    }

    /// Look an image up by id, id prefix or reference (see [`Store::resolve`]).
    pub fn image(&self, id_or_ref: &str) -> Result<ImageRecord> {
        let id = self.resolve(id_or_ref)?;
        self.image_by_id(&id)
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for row in self.image_rows()? {
            out.push(self.record(row)?);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Point `r` (default tag `latest`) at `image_id`, moving it if it pointed elsewhere.
    pub fn tag(&self, image_id: &Digest, r: &Reference) -> Result<()> {
        if r.digest.is_some() {
            return Err(invalid(
                "tag",
                format!("{} contains a digest; tag with name:tag", r.familiar()),
            ));
        }
        if r.familiar_name() == "sha256" {
            // `sha256:<x>` would read as an image ID (moby's reference store refuses it too).
            return Err(invalid(
                "tag",
                "refusing to create an ambiguous tag using digest algorithm as name",
            ));
        }
        self.image_row(image_id)?;
        let r = r.clone().with_default_tag();
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)",
                params![r.to_string(), image_id.to_string()],
            )
            .db("tag")?;
        Ok(())
    }

    /// Remove a tag (or a `name@digest` record).
    pub fn untag(&self, r: &Reference) -> Result<()> {
        let c = self.conn();
        let n = if let Some(d) = &r.digest {
            c.execute(
                "DELETE FROM repo_digests WHERE repo=?1 AND manifest_digest=?2",
                params![r.full_name(), d.to_string()],
            )
            .db("untag digest")?
        } else {
            c.execute(
                "DELETE FROM tags WHERE name=?1",
                [r.clone().with_default_tag().to_string()],
            )
            .db("untag")?
        };
        if n == 0 {
            return Err(StoreError::ImageNotFound(r.familiar()));
        }
        Ok(())
    }

    /// Delete an image with all its tags, then the blobs and snapshots no other image (or
    /// container) uses. The caller checks that no container uses the image.
    pub fn remove_image(&self, id: &Digest) -> Result<RemoveReport> {
        let _g = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        let row = self.image_row(id)?;
        let untagged = self.delete_image_rows(id)?;
        let (blobs, chains) = self.referenced()?;
        let mut report = RemoveReport {
            untagged,
            deleted: vec![row.id.clone()],
            bytes_freed: 0,
        };
        let mut mine: HashSet<Digest> = row.layers.iter().map(|l| l.digest.clone()).collect();
        mine.insert(row.manifest_digest.clone());
        mine.insert(row.id.clone());
        for d in mine.difference(&blobs) {
            report.bytes_freed += self.remove_blob(d)?;
        }
        for c in row.chain_ids.iter().rev() {
            if !chains.contains(c) {
                report.bytes_freed += self.remove_snapshot(c)?;
                report.deleted.push(c.clone());
            }
        }
        Ok(report)
    }

    /// Snapshot `fs` dirs of an image, bottom layer first.
    pub fn image_layers(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        let row = self.image_row(id)?;
        row.chain_ids.iter().map(|c| self.snapshot_fs(c)).collect()
    }

    /// The media type an image's manifest was stored with.
    pub fn manifest_media_type(&self, id: &Digest) -> Result<String> {
        let row = self.image_row(id)?;
        let b = self.read_blob(&row.manifest_digest)?;
        Ok(berth_oci::sniff_media_type(&b).unwrap_or_else(|| media_type::OCI_MANIFEST.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }
}
