//! Pure image logic: stored images → Engine API views (summary, inspect, history), Docker's
//! `rmi` decision (which references to untag, whether to delete, which conflict to report) and
//! prune candidate selection. No I/O: `images/service.rs` applies the plans.

use std::collections::{HashMap, HashSet};

use berth_api_types::models::{
    HealthConfig, ImageConfig, ImageHistoryResponseItem, ImageInspectRootFs, ImageSummary,
};
use berth_api_types::{Filters, GraphDriver, ImageInspect, ImageMetadata, LegacyContainerConfig};
use berth_oci::{Digest, ImageRuntimeConfig, Reference};

use crate::error::{DaemonError, Result};
use crate::images::store::StoredImage;

/// Go's zero time, which Docker prints for unset times.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 → unix seconds (0 when absent or unparsable).
pub fn unix_created(created: Option<&str>) -> i64 {
    created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

pub fn labels(img: &StoredImage) -> HashMap<String, String> {
    img.config
        .config
        .labels
        .clone()
        .map(|l| l.into_iter().collect())
        .unwrap_or_default()
}

/// `GET /images/json` entry.
pub fn summary(img: &StoredImage, shared_size: Option<u64>, containers: i64) -> ImageSummary {
    ImageSummary {
        id: img.id.to_string(),
        parent_id: img
            .parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        created: unix_created(img.created.as_deref().or(img.config.created.as_deref())),
        size: img.size as i64,
        shared_size: shared_size.map(|s| s as i64).unwrap_or(-1),
        labels: labels(img),
        containers,
        manifests: None,
        descriptor: None,
    }
}

/// Images that are some image's parent (Docker's "has children").
pub fn parents(images: &[StoredImage]) -> HashSet<Digest> {
    images.iter().filter_map(|i| i.parent.clone()).collect()
}

/// `roots` and every image built on one of them, through any number of `parent` links
/// (moby's `populateImageFilterByParents`, for `ps --filter ancestor=`).
pub fn with_descendants(images: &[StoredImage], roots: HashSet<Digest>) -> HashSet<Digest> {
    let mut picked = roots;
    loop {
        let more: Vec<Digest> = images
            .iter()
            .filter(|i| !picked.contains(&i.id))
            .filter(|i| i.parent.as_ref().is_some_and(|p| picked.contains(p)))
            .map(|i| i.id.clone())
            .collect();
        if more.is_empty() {
            return picked;
        }
        picked.extend(more);
    }
}

fn untagged(img: &StoredImage) -> bool {
    img.repo_tags.is_empty() && img.repo_digests.is_empty()
}

/// Whether `images` (without `-a`) lists `img`: dockerd hides untagged images that have a
/// child, the intermediate images of a build; `all` shows them.
pub fn listed(img: &StoredImage, parents: &HashSet<Digest>, all: bool) -> bool {
    all || !untagged(img) || !parents.contains(&img.id)
}

/// The parent that deleting `deleted` leaves prunable, as dockerd's rmi and prune remove it
/// too: untagged, and no other image's parent. (Whether a container uses it is the caller's
/// to check.)
pub fn prunable_parent<'a>(
    images: &'a [StoredImage],
    deleted: &StoredImage,
) -> Option<&'a StoredImage> {
    let p = images
        .iter()
        .find(|i| Some(&i.id) == deleted.parent.as_ref())?;
    let other_child = images
        .iter()
        .any(|i| i.id != deleted.id && i.parent.as_ref() == Some(&p.id));
    (untagged(p) && !other_child).then_some(p)
}

/// The image's runtime config in the API's shape.
/// An image's HEALTHCHECK in the API's shape.
pub fn health_config(h: &berth_oci::HealthConfig) -> HealthConfig {
    HealthConfig {
        test: h.test.clone(),
        interval: h.interval,
        timeout: h.timeout,
        retries: h.retries,
        start_period: h.start_period,
        start_interval: h.start_interval,
    }
}

pub fn api_config(c: &ImageRuntimeConfig) -> ImageConfig {
    ImageConfig {
        user: c.user.clone(),
        exposed_ports: c
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect()),
        env: c.env.clone(),
        cmd: c.cmd.clone(),
        healthcheck: c.healthcheck.as_ref().map(health_config),
        args_escaped: c.args_escaped,
        volumes: c.volumes.as_ref().map(|m| m.keys().cloned().collect()),
        working_dir: c.working_dir.clone(),
        entrypoint: c.entrypoint.clone(),
        on_build: c.on_build.clone(),
        labels: c.labels.clone().map(|l| l.into_iter().collect()),
        stop_signal: c.stop_signal.clone(),
        shell: c.shell.clone(),
    }
}

/// A string field of the image config beyond the OCI ones (moby's V1 fields); empty if absent.
fn extra_str(img: &StoredImage, key: &str) -> String {
    img.config
        .extra
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// `GET /images/{name}/json`. `layer_dirs` are the unpacked layers, bottom first. The legacy
/// `Container`/`ContainerConfig`/`DockerVersion` come from the config's V1 fields.
pub fn inspect(img: &StoredImage, layer_dirs: &[std::path::PathBuf]) -> ImageInspect {
    let mut data = std::collections::BTreeMap::new();
    if let Some((top, lower)) = layer_dirs.split_last() {
        data.insert("UpperDir".to_string(), top.display().to_string());
        if !lower.is_empty() {
            let l: Vec<String> = lower
                .iter()
                .rev()
                .map(|p| p.display().to_string())
                .collect();
            data.insert("LowerDir".to_string(), l.join(":"));
        }
    }
    let comment = img
        .config
        .history
        .last()
        .and_then(|h| h.comment.clone())
        .unwrap_or_default();
    ImageInspect {
        id: img.id.to_string(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        parent: img
            .parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        comment,
        created: img
            .config
            .created
            .clone()
            .or_else(|| img.created.clone())
            .unwrap_or_else(|| ZERO_TIME.into()),
        container: extra_str(img, "container"),
        container_config: Some(LegacyContainerConfig::from_stored(
            img.config.extra.get("container_config"),
        )),
        docker_version: extra_str(img, "docker_version"),
        author: img.config.author.clone().unwrap_or_default(),
        config: api_config(&img.config.config),
        architecture: img.config.architecture.clone(),
        variant: img.config.variant.clone().unwrap_or_default(),
        os: img.config.os.clone(),
        size: img.size as i64,
        virtual_size: None,
        graph_driver: GraphDriver {
            name: "overlay2".into(),
            data,
        },
        root_fs: ImageInspectRootFs {
            typ: "layers".into(),
            layers: Some(
                img.config
                    .rootfs
                    .diff_ids
                    .iter()
                    .map(|d| d.to_string())
                    .collect(),
            ),
        },
        metadata: ImageMetadata {
            last_tag_time: ZERO_TIME.into(),
        },
    }
}

/// `GET /images/{name}/history`, newest first. `layer_sizes` are per layer, bottom first.
pub fn history(img: &StoredImage, layer_sizes: &[u64]) -> Vec<ImageHistoryResponseItem> {
    let mut items = Vec::new();
    let mut layer = 0usize;
    if img.config.history.is_empty() {
        for s in layer_sizes {
            items.push(ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: unix_created(img.config.created.as_deref()),
                created_by: String::new(),
                tags: vec![],
                size: *s as i64,
                comment: String::new(),
            });
        }
    }
    for h in &img.config.history {
        let size = if h.empty_layer {
            0
        } else {
            let s = layer_sizes.get(layer).copied().unwrap_or(0);
            layer += 1;
            s
        };
        items.push(ImageHistoryResponseItem {
            id: "<missing>".into(),
            created: unix_created(h.created.as_deref()),
            created_by: h.created_by.clone().unwrap_or_default(),
            tags: vec![],
            size: size as i64,
            comment: h.comment.clone().unwrap_or_default(),
        });
    }
    items.reverse();
    if let Some(top) = items.first_mut() {
        top.id = img.id.to_string();
        top.tags = img.repo_tags.clone();
    }
    items
}

/// One step of an `rmi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteStep {
    Untag(Reference),
    Remove,
}

/// Does `name` refer to the image by (a prefix of) its ID rather than by a reference?
pub fn is_id_reference(name: &str, id: &Digest) -> bool {
    !name.is_empty() && (id.to_string().starts_with(name) || id.hex().starts_with(name))
}

/// What `docker save NAME` saves when NAME is a repository without tag or digest: every image
/// of that repository, each with its tags there (an image there only by digest is saved
/// untagged), as dockerd's `parseNames`. None when NAME has a tag or digest, is a full ID, or
/// no image is in that repository (then it is resolved as usual: an ID prefix).
pub fn save_repository(
    name: &str,
    images: &[StoredImage],
) -> Option<Vec<(StoredImage, Vec<Reference>)>> {
    let full_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    let r = Reference::parse(name).ok()?;
    if full_id || r.tag.is_some() || r.digest.is_some() || r.familiar_name() == "sha256" {
        return None;
    }
    let repo = r.full_name();
    let mut out: Vec<(StoredImage, Vec<Reference>)> = Vec::new();
    for img in images {
        let mut tags = Vec::new();
        let mut here = false;
        for t in all_refs(img).into_iter().filter(|t| t.full_name() == repo) {
            here = true;
            if t.tag.is_some() {
                tags.push(t);
            }
        }
        if here {
            tags.sort_by_key(|t| t.familiar());
            out.push((img.clone(), tags));
        }
    }
    (!out.is_empty()).then_some(out)
}

fn all_refs(img: &StoredImage) -> Vec<Reference> {
    img.repo_tags
        .iter()
        .chain(&img.repo_digests)
        .filter_map(|s| Reference::parse(s).ok())
        .collect()
}

/// Docker's rmi decision. By reference: untag it (and same-repo digest refs when it was the
/// repo's last tag); delete only when nothing references the image any more. By ID: untag
/// everything and delete, unless the image is in several repositories (then `force` needed).
/// An image other images are built on (`has_children`) is never deleted: by ID that is a
/// conflict even with `force`; by reference only the reference goes, as dockerd does.
pub fn plan_delete(
    name: &str,
    img: &StoredImage,
    force: bool,
    used_by: Option<&str>,
    has_children: bool,
) -> Result<Vec<DeleteStep>> {
    let short = &img.id.hex()[..12];
    let mut refs = all_refs(img);
    let mut steps = Vec::new();
    if !is_id_reference(name, &img.id) {
        let r = Reference::parse(name)
            .map_err(|e| DaemonError::Invalid(e.to_string()))?
            .with_default_tag();
        refs.retain(|x| *x != r);
        steps.push(DeleteStep::Untag(r.clone()));
        if r.digest.is_none()
            && !refs
                .iter()
                .any(|x| x.digest.is_none() && x.full_name() == r.full_name())
        {
            let (same, other): (Vec<_>, Vec<_>) = refs
                .into_iter()
                .partition(|x| x.digest.is_some() && x.full_name() == r.full_name());
            steps.extend(same.into_iter().map(DeleteStep::Untag));
            refs = other;
        }
        if !refs.is_empty() {
            return Ok(steps);
        }
        if let (Some(c), false) = (used_by, force) {
            return Err(DaemonError::Conflict(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - \
                 container {c} is using its referenced image {short}"
            )));
        }
        if has_children {
            return Ok(steps);
        }
    } else {
        if has_children {
            return Err(DaemonError::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image has dependent \
                 child images"
            )));
        }
        if let (Some(c), false) = (used_by, force) {
            return Err(DaemonError::Conflict(format!(
                "conflict: unable to delete {short} (must be forced) - image is being used by \
                 container {c}"
            )));
        }
        let tags = refs.iter().filter(|r| r.digest.is_none()).count();
        let single_repo = refs
            .windows(2)
            .all(|w| w[0].full_name() == w[1].full_name());
        let single = tags <= 1 && single_repo;
        if !force && !single {
            return Err(DaemonError::Conflict(format!(
                "conflict: unable to delete {short} (must be forced) - image is referenced in \
                 multiple repositories"
            )));
        }
        steps.extend(refs.into_iter().map(DeleteStep::Untag));
    }
    steps.push(DeleteStep::Remove);
    Ok(steps)
}

/// Parse Docker's `until`: unix seconds, RFC 3339, or a Go duration back from `now`.
pub fn parse_until(s: &str, now: i64) -> Result<i64> {
    if let Ok(secs) = s.split('.').next().unwrap_or("").parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let n: f64 = num
            .parse()
            .map_err(|_| DaemonError::Invalid(format!("invalid until filter {s:?}")))?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(DaemonError::Invalid(format!("invalid until filter {s:?}"))),
        };
    }
    if !num.is_empty() || s.is_empty() {
        return Err(DaemonError::Invalid(format!("invalid until filter {s:?}")));
    }
    Ok(now - total as i64)
}

/// Images `docker image prune` removes: dangling ones (or every unused one with
/// `dangling=false`), filtered by `until` and `label`/`label!`.
pub fn prune_candidates<'a>(
    images: &'a [StoredImage],
    f: &Filters,
    in_use: &dyn Fn(&Digest) -> bool,
    now: i64,
) -> Result<Vec<&'a StoredImage>> {
    f.validate(&["dangling", "until", "label", "label!"])?;
    let dangling_only = f.bool_value("dangling")?.unwrap_or(true);
    let until = f
        .get("until")
        .into_iter()
        .map(|u| parse_until(u, now))
        .collect::<Result<Vec<_>>>()?;
    let parents = parents(images);
    Ok(images
        .iter()
        .filter(|i| !dangling_only || i.repo_tags.is_empty())
        // An untagged image with a child is an intermediate image: its child's deletion
        // prunes it (dockerd's prune skips it the same way).
        .filter(|i| !(untagged(i) && parents.contains(&i.id)))
        .filter(|i| !in_use(&i.id))
        .filter(|i| {
            let c = unix_created(i.created.as_deref().or(i.config.created.as_deref()));
            until.iter().all(|u| c < *u)
        })
        .filter(|i| {
            let l = labels(i);
            f.labels_match("label", &l)
                && !f.get("label!").iter().any(|n| match n.split_once('=') {
                    Some((k, v)) => l.get(k).is_some_and(|x| x == v),
                    None => l.contains_key(*n),
                })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::{History, ImageConfig as OciConfig};

    fn img(tags: &[&str], digests: &[&str]) -> StoredImage {
        StoredImage {
            id: Digest::of(b"cfg"),
            manifest_digest: Digest::of(b"man"),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            config: OciConfig {
                created: Some("2024-01-02T03:04:05Z".into()),
                architecture: "amd64".into(),
                os: "linux".into(),
                history: vec![
                    History {
                        created_by: Some("ADD rootfs".into()),
                        ..Default::default()
                    },
                    History {
                        created_by: Some("CMD [\"sh\"]".into()),
                        empty_layer: true,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            created: None,
            size: 42,
            layers: vec![],
            parent: None,
        }
    }

    fn child_of(parent: &StoredImage, seed: &[u8], tags: &[&str]) -> StoredImage {
        let mut c = img(tags, &[]);
        c.id = Digest::of(seed);
        c.parent = Some(parent.id.clone());
        c
    }

    #[test]
    fn save_of_a_bare_repository_takes_all_its_tags() {
        let a = img(&["app:1", "app:2", "other:1"], &[]);
        let mut b = img(&["app:latest"], &[]);
        b.id = Digest::of(b"b");
        let mut c = img(
            &[],
            &["app@sha256:0123456789012345678901234567890123456789012345678901234567890123"],
        );
        c.id = Digest::of(b"c");
        let all = vec![a.clone(), b.clone(), c.clone()];
        let names = |v: Option<Vec<(StoredImage, Vec<Reference>)>>| -> Vec<(Digest, Vec<String>)> {
            v.unwrap()
                .into_iter()
                .map(|(i, r)| (i.id, r.iter().map(|r| r.familiar()).collect()))
                .collect()
        };
        assert_eq!(
            names(save_repository("app", &all)),
            [
                (a.id.clone(), vec!["app:1".to_string(), "app:2".into()]),
                (b.id.clone(), vec!["app:latest".to_string()]),
                (c.id.clone(), vec![]),
            ]
        );
        assert_eq!(
            names(save_repository("docker.io/library/other", &all)),
            [(a.id.clone(), vec!["other:1".to_string()])]
        );
        for n in ["app:1", "nosuch", "sha256", a.id.hex()] {
            assert!(save_repository(n, &all).is_none(), "{n}");
        }
    }

    #[test]
    fn descendants_follow_parent_links_at_any_depth() {
        let base = img(&["busybox:latest"], &[]);
        let step = child_of(&base, b"step", &[]);
        let top = child_of(&step, b"top", &["app:latest"]);
        let mut lone = img(&[], &[]);
        lone.id = Digest::of(b"lone");
        let other = child_of(&lone, b"other", &["x:1"]);
        let all = vec![base.clone(), step.clone(), top.clone(), other];
        let got = with_descendants(&all, HashSet::from([base.id.clone()]));
        assert_eq!(
            got,
            HashSet::from([base.id, step.id.clone(), top.id.clone()])
        );
        let got = with_descendants(&all, HashSet::from([step.id.clone()]));
        assert_eq!(got, HashSet::from([step.id, top.id]));
    }

    #[test]
    fn intermediate_images_are_hidden_without_all_and_pruned_with_their_child() {
        let base = img(&["busybox:latest"], &[]);
        let step = child_of(&base, b"step", &[]);
        let top = child_of(&step, b"top", &["app:latest"]);
        let dangling = child_of(&base, b"dangling", &[]);
        let all = vec![base.clone(), step.clone(), top.clone(), dangling.clone()];
        let p = parents(&all);
        let shown: Vec<bool> = all.iter().map(|i| listed(i, &p, false)).collect();
        assert_eq!(
            shown,
            [true, false, true, true],
            "only the intermediate is hidden"
        );
        assert!(
            all.iter().all(|i| listed(i, &p, true)),
            "-a shows every image"
        );
        // Deleting the top image makes its untagged parent prunable, but never a tagged one
        // or one with another child.
        assert_eq!(prunable_parent(&all, &top).map(|i| &i.id), Some(&step.id));
        assert!(prunable_parent(&all, &step).is_none(), "busybox is tagged");
        let sibling = child_of(&step, b"sibling", &["other:1"]);
        let mut two = all.clone();
        two.push(sibling);
        assert!(
            prunable_parent(&two, &top).is_none(),
            "step has another child"
        );
        // prune: the dangling head goes, the intermediate waits for its child.
        let none = |_: &Digest| false;
        let c = prune_candidates(&all, &Filters::default(), &none, 0).unwrap();
        let ids: Vec<&Digest> = c.iter().map(|i| &i.id).collect();
        assert_eq!(ids, [&dangling.id]);
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap().with_default_tag()
    }

    #[test]
    fn rmi_by_tag_with_other_tags_only_untags() {
        let i = img(&["busybox:latest", "busybox:v1"], &[]);
        let p = plan_delete("busybox", &i, false, None, false).unwrap();
        assert_eq!(p, vec![DeleteStep::Untag(r("busybox:latest"))]);
    }

    #[test]
    fn rmi_last_tag_untags_digests_of_same_repo_and_deletes() {
        let d = format!("busybox@sha256:{}", "e".repeat(64));
        let i = img(&["busybox:latest"], &[&d]);
        let p = plan_delete("busybox:latest", &i, false, None, false).unwrap();
        assert_eq!(
            p,
            vec![
                DeleteStep::Untag(r("busybox:latest")),
                DeleteStep::Untag(Reference::parse(&d).unwrap()),
                DeleteStep::Remove
            ]
        );
    }

    #[test]
    fn rmi_by_id_in_multiple_repos_needs_force() {
        let i = img(&["busybox:latest", "other:1"], &[]);
        let id = i.id.hex()[..12].to_string();
        let e = plan_delete(&id, &i, false, None, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")
        );
        let p = plan_delete(&id, &i, true, None, false).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[2], DeleteStep::Remove);
        // One repo, one tag: no force needed.
        let single = img(&["busybox:latest"], &[]);
        assert_eq!(
            plan_delete(&id, &single, false, None, false).unwrap().len(),
            2
        );
    }

    #[test]
    fn an_image_with_children_is_only_untagged_and_never_deleted_by_id() {
        let i = img(&["base:latest"], &[]);
        let p = plan_delete("base", &i, false, None, true).unwrap();
        assert_eq!(p, vec![DeleteStep::Untag(r("base:latest"))]);
        let id = i.id.hex()[..12].to_string();
        for force in [false, true] {
            let e = plan_delete(&id, &i, force, None, true).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("conflict: unable to delete {id} (cannot be forced) - image has dependent child images")
            );
            assert_eq!(e.kind(), crate::error::ErrorKind::Conflict);
        }
    }

    #[test]
    fn rmi_of_image_in_use_is_a_conflict() {
        let i = img(&["busybox:latest"], &[]);
        let e = plan_delete("busybox", &i, false, Some("abc123"), false).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Conflict);
        assert!(e
            .to_string()
            .contains("container abc123 is using its referenced image"));
        assert!(plan_delete("busybox", &i, true, Some("abc123"), false).is_ok());
    }

    #[test]
    fn history_maps_layers_to_non_empty_steps() {
        let i = img(&["busybox:latest"], &[]);
        let h = history(&i, &[1000]);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].id, i.id.to_string());
        assert_eq!(h[0].tags, vec!["busybox:latest"]);
        assert_eq!(h[0].size, 0);
        assert_eq!(h[1].id, "<missing>");
        assert_eq!(h[1].size, 1000);
        assert_eq!(h[1].created_by, "ADD rootfs");
    }

    #[test]
    fn views() {
        let i = img(&["busybox:latest"], &[]);
        let s = summary(&i, None, 0);
        assert_eq!(s.created, 1704164645);
        assert_eq!(s.shared_size, -1);
        let dirs = vec!["/s/1".into(), "/s/2".into(), "/s/3".into()];
        let v = inspect(&i, &dirs);
        assert_eq!(v.graph_driver.data["UpperDir"], "/s/3");
        assert_eq!(v.graph_driver.data["LowerDir"], "/s/2:/s/1");
        assert_eq!(v.created, "2024-01-02T03:04:05Z");
    }

    #[test]
    fn inspect_carries_the_legacy_container_fields() {
        let mut i = img(&["busybox:latest"], &[]);
        let zero = inspect(&i, &[]);
        assert_eq!(
            zero.container_config,
            Some(LegacyContainerConfig::default())
        );
        assert_eq!(
            (zero.container.as_str(), zero.docker_version.as_str()),
            ("", "")
        );
        let json = serde_json::to_value(&zero).unwrap();
        assert_eq!(
            (&json["Container"], &json["DockerVersion"]),
            (&"".into(), &"".into())
        );
        i.config.extra.insert(
            "container_config".into(),
            serde_json::json!({"Cmd": ["/bin/sh", "-c", "#(nop) ", "VOLUME [/data]"],
                               "Volumes": {"/data": {}}}),
        );
        i.config
            .extra
            .insert("container".into(), serde_json::json!("c0ffee"));
        i.config
            .extra
            .insert("docker_version".into(), serde_json::json!("20.10.24"));
        let v = inspect(&i, &[]);
        let cc = v.container_config.unwrap();
        assert!(cc.volumes.unwrap().contains_key("/data"));
        assert_eq!(cc.cmd.unwrap()[2], "#(nop) ");
        assert_eq!(v.container, "c0ffee");
        assert_eq!(v.docker_version, "20.10.24");
    }

    #[test]
    fn until_forms() {
        assert_eq!(parse_until("100", 0).unwrap(), 100);
        assert_eq!(parse_until("1h30m", 10_000).unwrap(), 10_000 - 5400);
        assert_eq!(parse_until("2024-01-02T03:04:05Z", 0).unwrap(), 1704164645);
        assert!(parse_until("soon", 0).is_err());
    }

    #[test]
    fn prune_selects_dangling_unless_told_otherwise() {
        let a = img(&["busybox:latest"], &[]);
        let mut b = img(&[], &[]);
        b.id = Digest::of(b"other");
        let all = vec![a, b];
        let none = |_: &Digest| false;
        let f = Filters::default();
        let c = prune_candidates(&all, &f, &none, 0).unwrap();
        assert_eq!(c.len(), 1);
        assert!(c[0].repo_tags.is_empty());
        let f = Filters::parse(r#"{"dangling":["false"]}"#).unwrap();
        assert_eq!(prune_candidates(&all, &f, &none, 0).unwrap().len(), 2);
        let used = |d: &Digest| *d == Digest::of(b"other");
        assert_eq!(prune_candidates(&all, &f, &used, 0).unwrap().len(), 1);
    }
}
