//! Carrying out a `kube play` plan through the Engine API client, and `kube down`: the infra
//! image made on first use, the pod network, volumes (ConfigMap and Secret volumes filled
//! through a helper container, see [`crate::sources`]), each pod's infra container, its init
//! containers run to completion in order, then its containers started.

use berth_client::Client;
use serde_json::{json, Value};

use crate::play::{labels, Plan, PlannedPod, INFRA_IMAGE, NETWORK};

/// Why playing or taking down failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: berth_client::Error,
    },
    #[error(
        "init container {container} failed (exit {code}); the pod's containers were not started"
    )]
    InitFailed { container: String, code: i64 },
    #[error("kube play needs a static busybox for its pod infra image (looked for {0}): install busybox-static, or tag an image holding /bin/busybox as {INFRA_IMAGE}")]
    NoInfraSource(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn api(what: impl Into<String>) -> impl FnOnce(berth_client::Error) -> ApplyError {
    let what = what.into();
    move |source| ApplyError::Api { what, source }
}

use berth_client::escape as enc;

/// Progress lines (`Pod web  Started`).
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Where a static busybox may be on the client's machine.
const BUSYBOX: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// Whether an ELF file asks for no program interpreter (statically linked).
fn is_static_elf(data: &[u8]) -> bool {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at =
        |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap_or([0; 8])) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let off = phoff + i * phentsize;
        // PT_INTERP = 3.
        off + 4 > data.len()
            || u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) != 3
    })
}

/// The infra image: imported once from the client's static busybox.
async fn ensure_infra_image(c: &Client, out: Progress<'_>) -> Result<(), ApplyError> {
    if exists(c, &format!("/images/{}/json", enc(INFRA_IMAGE)), "image").await? {
        return Ok(());
    }
    let mut found = None;
    for p in BUSYBOX {
        if let Ok(data) = std::fs::read(p) {
            if is_static_elf(&data) {
                found = Some(data);
                break;
            }
        }
    }
    let data = found.ok_or_else(|| ApplyError::NoInfraSource(BUSYBOX.join(", ")))?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_cksum();
    let io = |e: std::io::Error| ApplyError::Io {
        path: "the infra image".into(),
        source: e,
    };
    tar.append_data(&mut h, "bin/busybox", data.as_slice())
        .map_err(io)?;
    let bytes = tar.into_inner().map_err(io)?;
    let (repo, tag) = INFRA_IMAGE
        .split_once(':')
        .unwrap_or((INFRA_IMAGE, "latest"));
    c.stream(
        hyper::Method::POST,
        &format!(
            "/images/create?fromSrc=-&repo={}&tag={}",
            enc(repo),
            enc(tag)
        ),
        berth_client::body::bytes(bytes),
        &[("Content-Type", "application/x-tar")],
    )
    .await
    .map_err(api(format!("import {INFRA_IMAGE}")))?
    .collect()
    .await
    .map_err(api(format!("import {INFRA_IMAGE}")))?;
    out(&format!(" Image {INFRA_IMAGE}  Created"));
    Ok(())
}

async fn exists(c: &Client, path: &str, what: &str) -> Result<bool, ApplyError> {
    c.exists(path).await.map_err(api(what.to_string()))
}

/// `kube play`: create and start every pod of the plan.
pub async fn play(
    c: &Client,
    plan: &Plan,
    play_id: &str,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    ensure_infra(c, out).await?;
    for pod in &plan.pods {
        play_pod(c, pod, play_id, out).await?;
    }
    Ok(())
}

/// What every pod needs: the infra image and the pod network.
pub async fn ensure_infra(c: &Client, out: Progress<'_>) -> Result<(), ApplyError> {
    ensure_infra_image(c, out).await?;
    if !exists(c, &format!("/networks/{NETWORK}"), "network").await? {
        let body = json!({"Name": NETWORK, "Driver": "bridge", "Labels": {labels::PLAY: "shared"}});
        c.post_json::<Value, _>("/networks/create", Some(&body))
            .await
            .map_err(api(format!("network {NETWORK}")))?;
        out(&format!(" Network {NETWORK}  Created"));
    }
    Ok(())
}

async fn create(c: &Client, name: &str, body: &Value) -> Result<String, ApplyError> {
    let v: Value = c
        .post_json(
            &format!("/containers/create?name={}", enc(name)),
            Some(body),
        )
        .await
        .map_err(api(format!("container {name}")))?;
    Ok(v["Id"].as_str().unwrap_or_default().to_string())
}

async fn start(c: &Client, id: &str, name: &str) -> Result<(), ApplyError> {
    c.post::<Value>(&format!("/containers/{id}/start"), None)
        .await
        .map_err(api(format!("container {name}")))
}

async fn play_pod(
    c: &Client,
    pod: &PlannedPod,
    play_id: &str,
    out: Progress<'_>,
) -> Result<(), ApplyError> {
    for (v, _) in &pod.volumes {
        if !exists(c, &format!("/volumes/{}", enc(v)), "volume").await? {
            let body = json!({"Name": v, "Labels": {labels::PLAY: play_id, labels::POD: pod.name}});
            c.post_json::<Value, _>("/volumes/create", Some(&body))
                .await
                .map_err(api(format!("volume {v}")))?;
            out(&format!(" Volume {v}  Created"));
        }
    }
    fill(c, pod, play_id).await?;
    let infra_name = format!("{}-infra", pod.name);
    let infra = create(c, &infra_name, &pod.infra).await?;
    start(c, &infra, &infra_name).await?;
    for ct in pod.containers.iter().filter(|c| c.init) {
        let id = create(c, &ct.name, &ct.body).await?;
        start(c, &id, &ct.name).await?;
        let waited: Value = c
            .post_json(&format!("/containers/{id}/wait"), None::<&Value>)
            .await
            .map_err(api(format!("container {}", ct.name)))?;
        let code = waited["StatusCode"].as_i64().unwrap_or(0);
        if code != 0 {
            return Err(ApplyError::InitFailed {
                container: ct.name.clone(),
                code,
            });
        }
        out(&format!(" Container {}  Completed", ct.name));
    }
    for ct in pod.containers.iter().filter(|c| !c.init) {
        let id = create(c, &ct.name, &ct.body).await?;
        start(c, &id, &ct.name).await?;
    }
    out(&format!(" Pod {}  Started", pod.name));
    Ok(())
}

/// Write the files of the pod's ConfigMap and Secret volumes: one helper container (created,
/// never started; `<pod>--fill`, a name no pod container can have) mounting them all, one
/// archive PUT, the helper removed whatever happened.
async fn fill(c: &Client, pod: &PlannedPod, play_id: &str) -> Result<(), ApplyError> {
    if pod.filled.is_empty() {
        return Ok(());
    }
    let name = format!("{}--fill", pod.name);
    let mounts: Vec<Value> = pod
        .filled
        .iter()
        .map(|f| json!({"Type": "volume", "Source": f.volume, "Target": format!("/fill/{}", f.mount)}))
        .collect();
    let body = json!({
        "Image": INFRA_IMAGE,
        "Cmd": ["/bin/busybox", "true"],
        "Labels": {labels::PLAY: play_id, labels::POD: pod.name},
        "HostConfig": {"NetworkMode": "none", "Mounts": mounts},
    });
    let id = create(c, &name, &body).await?;
    let written = async {
        let tar = crate::sources::tar(&pod.filled).map_err(|e| ApplyError::Io {
            path: format!("the files of pod {}", pod.name),
            source: e,
        })?;
        c.stream(
            hyper::Method::PUT,
            &format!("/containers/{id}/archive?path=/fill"),
            berth_client::body::bytes(tar),
            &[("Content-Type", "application/x-tar")],
        )
        .await
        .map_err(api(format!("volumes of pod {}", pod.name)))?
        .collect()
        .await
        .map_err(api(format!("volumes of pod {}", pod.name)))?;
        Ok(())
    }
    .await;
    let removed = c
        .delete_if_exists(&format!("/containers/{id}?force=1"))
        .await
        .map_err(api(format!("container {name}")));
    written.and(removed.map(|_| ()))
}

/// `kube down`: remove the plan's pods (their containers, infra and emptyDir volumes);
/// claims' volumes are kept, as Kubernetes keeps a PersistentVolume's data.
pub async fn down(c: &Client, plan: &Plan, out: Progress<'_>) -> Result<(), ApplyError> {
    for pod in &plan.pods {
        let filters = enc(&json!({"label": [format!("{}={}", labels::POD, pod.name)]}).to_string());
        let list: Vec<Value> = c
            .get_json(&format!("/containers/json?all=1&filters={filters}"))
            .await
            .map_err(api("list containers"))?;
        // The infra last: the others live in its namespaces.
        let mut list = list;
        list.sort_by_key(|x| x["Labels"][labels::INFRA].as_str() == Some("true"));
        for x in list {
            let id = x["Id"].as_str().unwrap_or_default();
            c.delete_if_exists(&format!("/containers/{id}?force=1&v=1"))
                .await
                .map_err(api(format!("container {id}")))?;
        }
        for (v, temporary) in &pod.volumes {
            if *temporary {
                c.delete_if_exists(&format!("/volumes/{}", enc(v)))
                    .await
                    .map_err(api(format!("volume {v}")))?;
            }
        }
        out(&format!(" Pod {}  Removed", pod.name));
    }
    // The shared network goes with the last played pod.
    let filters = enc(&json!({"label": [labels::PLAY]}).to_string());
    let left: Vec<Value> = c
        .get_json(&format!("/containers/json?all=1&filters={filters}"))
        .await
        .map_err(api("list containers"))?;
    if left.is_empty()
        && c.delete_if_exists(&format!("/networks/{NETWORK}"))
            .await
            .map_err(api(format!("network {NETWORK}")))?
    {
        out(&format!(" Network {NETWORK}  Removed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit little-endian ELF header with one program header of `p_type`.
    fn elf(p_type: u32) -> Vec<u8> {
        let mut d = vec![0u8; 64 + 56];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = 2; // 64-bit
        d[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        d[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        d[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        d[64..68].copy_from_slice(&p_type.to_le_bytes());
        d
    }

    #[test]
    fn static_elves_have_no_interpreter() {
        assert!(is_static_elf(&elf(1))); // PT_LOAD only
        assert!(!is_static_elf(&elf(3))); // PT_INTERP
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        // The test binary itself is dynamically linked.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
    }
}
