//! Integration tests against a real `docker-registry` on 127.0.0.1, images put in by skopeo.

mod harness;
mod servers;

use std::collections::HashMap;
use std::time::Duration;

use berth_oci::{media_type, Descriptor, Digest, Index, Manifest, Platform, Reference};
use berth_registry::{
    BlobPush, BlobTarget, Client, Credentials, DirBlobStore, ErrorKind, Progress, ProgressSink,
    PullOptions, PulledImage, PushOptions, PushedImage, RegistryConfig, RegistryError,
};
use harness::*;

fn r(addr: &str, repo: &str) -> Reference {
    Reference::parse(&format!("{addr}/{repo}")).unwrap()
}

fn statuses(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Progress>) -> Vec<Progress> {
    let mut v = Vec::new();
    while let Ok(p) = rx.try_recv() {
        v.push(p);
    }
    v
}

async fn pull_ok(c: &Client, reference: &Reference, st: &DirBlobStore) -> PulledImage {
    c.pull(reference, st, &PullOptions::default())
        .await
        .unwrap()
}

/// Push what `p` pulled (from `st`) to `to`.
async fn push_ok(
    c: &Client,
    p: &PulledImage,
    to: &Reference,
    st: &DirBlobStore,
    opts: &PushOptions,
) -> PushedImage {
    c.push(to, &p.manifest, &p.manifest_media_type, st, opts)
        .await
        .unwrap()
}

fn has(events: &[Progress], status: &str) -> bool {
    events.iter().any(|p| p.status.starts_with(status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_and_digest_matches_skopeo() {
    let Some((reg, bb)) = registry_with_busybox("pull_by_tag_and_digest_matches_skopeo") else {
        return;
    };
    reg.put_archive(&bb, "library/busybox:1.36");
    reg.put_archive(&bb, "library/busybox:stable");
    let (sk_digest, sk_layers) = reg.inspect("library/busybox:latest");

    let c = client();
    let (_d, st) = store();
    let (sink, mut rx) = ProgressSink::channel();
    let opts = PullOptions {
        progress: sink,
        ..Default::default()
    };
    let p = c
        .pull(&r(&reg.addr, "library/busybox:latest"), &st, &opts)
        .await
        .unwrap();
    assert_eq!(p.digest.to_string(), sk_digest);
    assert_eq!(p.manifest_digest, p.digest);
    assert_eq!(Digest::of(&p.manifest), p.digest);
    let layers: Vec<String> = p.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(layers, sk_layers);
    assert_eq!(Digest::of(&p.config), p.config_digest);
    assert_eq!(p.fetched_blobs, 2, "config and one layer");
    for l in &p.layers {
        assert!(st.has_blob(&l.digest).unwrap());
        assert_eq!(Digest::of(&st.read_blob(&l.digest).unwrap()), l.digest);
    }
    let ev = statuses(&mut rx);
    for s in [
        "Pulling from library/busybox",
        "Pulling fs layer",
        "Downloading",
        "Download complete",
        "Pull complete",
        "Digest: sha256:",
    ] {
        assert!(has(&ev, s), "no {s:?} in {ev:?}");
    }
    let dl = ev.iter().rfind(|p| p.status == "Downloading").unwrap();
    let detail = dl.progress_detail.unwrap();
    assert_eq!(detail.current, detail.total);
    assert_eq!(detail.total, p.layers[0].size as u64);

    // By digest into a fresh store: same documents.
    let (_d2, st2) = store();
    let by_digest = r(&reg.addr, &format!("library/busybox@{}", p.digest));
    let p2 = c
        .pull(&by_digest, &st2, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(p2.digest, p.digest);
    assert_eq!(p2.manifest, p.manifest);
    assert_eq!(p2.config, p.config);

    // A second pull into the first store fetches nothing.
    let (sink, mut rx) = ProgressSink::channel();
    let opts = PullOptions {
        progress: sink,
        ..Default::default()
    };
    let again = c
        .pull(&r(&reg.addr, "library/busybox:latest"), &st, &opts)
        .await
        .unwrap();
    assert_eq!((again.fetched_blobs, again.fetched_bytes), (0, 0));
    let ev = statuses(&mut rx);
    assert!(
        has(&ev, "Already exists") && !has(&ev, "Downloading"),
        "{ev:?}"
    );

    // --all-tags: the tag list, also across pages.
    let mut tags = c
        .list_tags(&r(&reg.addr, "library/busybox"), None)
        .await
        .unwrap();
    tags.sort();
    assert_eq!(tags, ["1.36", "latest", "stable"]);
    let mut paged = c
        .list_tags_paged(&r(&reg.addr, "library/busybox"), None, Some(1))
        .await
        .unwrap();
    paged.sort();
    assert_eq!(paged, tags);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_roundtrip_mount_and_chunked() {
    let Some((reg, _)) = registry_with_busybox("push_roundtrip_mount_and_chunked") else {
        return;
    };
    let (sk_digest, sk_layers) = reg.inspect("library/busybox:latest");
    let c = client();
    let (_d, st) = store();
    let p = pull_ok(&c, &r(&reg.addr, "library/busybox:latest"), &st).await;

    // Monolithic upload to a new repository.
    let (sink, mut rx) = ProgressSink::channel();
    let opts = PushOptions {
        progress: sink,
        ..Default::default()
    };
    let pushed = push_ok(&c, &p, &r(&reg.addr, "library/copy:v1"), &st, &opts).await;
    assert_eq!(pushed.digest, p.manifest_digest);
    assert!(pushed
        .blobs
        .iter()
        .all(|(_, b)| *b == BlobPush::Uploaded { chunked: false }));
    assert_eq!(
        reg.inspect("library/copy:v1"),
        (sk_digest.clone(), sk_layers.clone())
    );
    let ev = statuses(&mut rx);
    for s in [
        "The push refers to repository",
        "Preparing",
        "Pushing",
        "Pushed",
        "v1: digest: sha256:",
    ] {
        assert!(has(&ev, s), "no {s:?} in {ev:?}");
    }

    // Again: every blob is already there.
    let again = push_ok(
        &c,
        &p,
        &r(&reg.addr, "library/copy:v2"),
        &st,
        &PushOptions::default(),
    )
    .await;
    assert!(again.blobs.iter().all(|(_, b)| *b == BlobPush::Exists));

    // Cross-repository mount from the repository the blobs came from.
    let mount_from: HashMap<Digest, String> = p
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .chain([p.config_digest.clone()])
        .map(|d| (d, "library/busybox".to_string()))
        .collect();
    let (sink, mut rx) = ProgressSink::channel();
    let mounted = push_ok(
        &c,
        &p,
        &r(&reg.addr, "other/mounted:v1"),
        &st,
        &PushOptions {
            mount_from,
            progress: sink,
            ..Default::default()
        },
    )
    .await;
    assert!(
        mounted
            .blobs
            .iter()
            .all(|(_, b)| *b == BlobPush::Mounted("library/busybox".into())),
        "{:?}",
        mounted.blobs
    );
    assert!(has(&statuses(&mut rx), "Mounted from library/busybox"));
    assert_eq!(reg.inspect("other/mounted:v1").0, sk_digest);

    // Chunked upload (PATCH with Content-Range) of the ~1 MiB layer in 256 KiB chunks.
    let chunky = Client::new(
        RegistryConfig {
            chunk_size: 256 << 10,
            ..fast_config()
        },
        berth_http_reqwest::ReqwestConnector::shared(),
    );
    let ch = push_ok(
        &chunky,
        &p,
        &r(&reg.addr, "library/chunked:v1"),
        &st,
        &PushOptions::default(),
    )
    .await;
    let layer = &p.layers[0].digest;
    assert!(ch
        .blobs
        .iter()
        .any(|(d, b)| d == layer && *b == BlobPush::Uploaded { chunked: true }));
    assert_eq!(reg.inspect("library/chunked:v1"), (sk_digest, sk_layers));
    // Its content is intact: a fresh pull verifies every digest.
    let (_d3, st3) = store();
    pull_ok(&c, &r(&reg.addr, "library/chunked:v1"), &st3).await;
    assert!(st3.has_blob(layer).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_selects_platform() {
    let Some((reg, _)) = registry_with_busybox("index_selects_platform") else {
        return;
    };
    let c = client();
    let (_d, st) = store();
    let p = pull_ok(&c, &r(&reg.addr, "library/busybox:latest"), &st).await;
    // A second manifest (same blobs, an annotation) standing in for another platform.
    let mut m2 = Manifest::from_slice(&p.manifest).unwrap();
    m2.annotations = Some([("berth.test".to_string(), "s390x".to_string())].into());
    let m2b = m2.to_vec();
    let m2d = c
        .push(
            &r(&reg.addr, &format!("library/busybox@{}", Digest::of(&m2b))),
            &m2b,
            media_type::OCI_MANIFEST,
            &st,
            &PushOptions::default(),
        )
        .await
        .unwrap()
        .digest;
    let mut other = Descriptor::new(media_type::OCI_MANIFEST, m2d.clone(), m2b.len() as i64);
    other.platform = Some(Platform::parse("linux/s390x").unwrap());
    let mut host = Descriptor::new(
        media_type::OCI_MANIFEST,
        p.manifest_digest.clone(),
        p.manifest.len() as i64,
    );
    host.platform = Some(Platform::host());
    let idx = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests: vec![other, host],
        annotations: None,
    };
    let idxb = idx.to_vec();
    let idx_digest = c
        .push(
            &r(&reg.addr, "library/busybox:multi"),
            &idxb,
            media_type::OCI_INDEX,
            &st,
            &PushOptions::default(),
        )
        .await
        .unwrap()
        .digest;

    let multi = r(&reg.addr, "library/busybox:multi");
    let got = c.pull(&multi, &st, &PullOptions::default()).await.unwrap();
    assert_eq!(got.digest, idx_digest);
    assert_eq!(got.index.as_deref(), Some(&idxb[..]));
    assert_eq!(got.manifest_digest, p.manifest_digest);
    let s390 = PullOptions {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..Default::default()
    };
    assert_eq!(
        c.pull(&multi, &st, &s390).await.unwrap().manifest_digest,
        m2d
    );
    let riscv = PullOptions {
        platform: Some(Platform::parse("linux/riscv64").unwrap()),
        ..Default::default()
    };
    let e = c.pull(&multi, &st, &riscv).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string()
            .contains("no matching manifest for linux/riscv64"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_htpasswd() {
    if !prerequisites("basic_auth_with_htpasswd")
        || !berth_testutil::require_cmds("basic_auth_with_htpasswd", &["htpasswd"])
    {
        return;
    }
    let Some(bb) = busybox("basic_auth_with_htpasswd") else {
        return;
    };
    let reg = Registry::start_with(Some(("alice", "s3cret")));
    reg.put_archive(&bb, "library/busybox:latest");
    let image = r(&reg.addr, "library/busybox:latest");
    let good = Credentials::basic("alice", "s3cret");
    let bad = Credentials::basic("alice", "wrong");

    let c = client();
    assert_eq!(c.login(&reg.addr, &good).await.unwrap(), "Login Succeeded");
    let e = c.login(&reg.addr, &bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains(&reg.addr), "{e}");

    let (_d, st) = store();
    let with = |c: Option<Credentials>| PullOptions {
        credentials: c,
        ..Default::default()
    };
    let p = c
        .pull(&image, &st, &with(Some(good.clone())))
        .await
        .unwrap();

    let (_d2, st2) = store();
    let e = c.pull(&image, &st2, &with(Some(bad))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains(&reg.addr), "{e}");
    let e = c.pull(&image, &st2, &with(None)).await.unwrap_err();
    assert!(matches!(e, RegistryError::AccessDenied { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!(
        "pull access denied for {}/library/busybox, repository does not exist or may require 'docker login'",
        reg.addr
    )));

    // Credentials from a docker config.json (`auths` with base64 user:password).
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let from_file = Client::new(
        RegistryConfig {
            docker_config: Some(cfg),
            ..fast_config()
        },
        berth_http_reqwest::ReqwestConnector::shared(),
    );
    let (_d3, st3) = store();
    from_file.pull(&image, &st3, &with(None)).await.unwrap();

    // Push with basic auth too.
    let pushed = push_ok(
        &c,
        &p,
        &r(&reg.addr, "alice/copy:v1"),
        &st,
        &PushOptions {
            credentials: Some(good),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(reg.inspect("alice/copy:v1").0, pushed.digest.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow() {
    let Some((reg, _)) = registry_with_busybox("bearer_token_flow") else {
        return;
    };
    let front = servers::TokenFront::start(&reg.addr, "bob", "pw").await;
    let image = r(&front.addr, "library/busybox:latest");
    let creds = Some(Credentials::basic("bob", "pw"));
    let opts = PullOptions {
        credentials: creds.clone(),
        ..Default::default()
    };
    let c = client();
    let (_d, st) = store();
    let p = c.pull(&image, &st, &opts).await.unwrap();
    assert_eq!(p.fetched_blobs, 2);
    // One token served the whole pull (manifest, config, layer): it was cached per scope.
    assert_eq!(
        front.state.issued.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert!(front
        .state
        .scopes
        .lock()
        .unwrap()
        .contains(&"repository:library/busybox:pull".to_string()));

    // Tokens expire: the next request gets a 401, the client fetches a new one and goes on.
    front.revoke_all();
    let (_d2, st2) = store();
    c.pull(&image, &st2, &opts).await.unwrap();
    assert_eq!(
        front.state.issued.load(std::sync::atomic::Ordering::SeqCst),
        2
    );

    // An identity (refresh) token is exchanged with the OAuth2 POST grant.
    let with = |c: Credentials| PullOptions {
        credentials: Some(c),
        ..Default::default()
    };
    let (_d4, st4) = store();
    let before = front.state.issued.load(std::sync::atomic::Ordering::SeqCst);
    c.pull(
        &image,
        &st4,
        &with(Credentials::IdentityToken("refresh-ok".into())),
    )
    .await
    .unwrap();
    assert!(front
        .state
        .tokens
        .lock()
        .unwrap()
        .iter()
        .any(|t| t.starts_with("oauth-")));
    let e = c
        .pull(
            &image,
            &st4,
            &with(Credentials::IdentityToken("stale".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    // A registry token (X-Registry-Auth `registrytoken`) is sent as is: nothing is issued.
    let issued = front.state.issued.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(issued, before + 1);
    let tok = front
        .state
        .tokens
        .lock()
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .clone();
    let (_d5, st5) = store();
    client()
        .pull(&image, &st5, &with(Credentials::RegistryToken(tok)))
        .await
        .unwrap();
    assert_eq!(
        front.state.issued.load(std::sync::atomic::Ordering::SeqCst),
        issued
    );

    // Push asks for pull,push on the target repository.
    let pushed = push_ok(
        &c,
        &p,
        &r(&front.addr, "bob/copy:v1"),
        &st,
        &PushOptions {
            credentials: creds.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(pushed.digest, p.manifest_digest);
    assert!(front
        .state
        .scopes
        .lock()
        .unwrap()
        .contains(&"repository:bob/copy:pull,push".to_string()));

    // Wrong password: the token service refuses, the error says unauthorized and names it.
    let bad = PullOptions {
        credentials: Some(Credentials::basic("bob", "nope")),
        ..Default::default()
    };
    let (_d3, st3) = store();
    let e = c.pull(&image, &st3, &bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(
        e.to_string().contains("incorrect username or password"),
        "{e}"
    );
    assert!(e.to_string().contains(&front.addr), "{e}");
    assert_eq!(
        c.login(&front.addr, &Credentials::basic("bob", "pw"))
            .await
            .unwrap(),
        "Login Succeeded"
    );
    let e = c
        .login(&front.addr, &Credentials::basic("bob", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_connection_cut() {
    let Some((reg, _)) = registry_with_busybox("resume_after_connection_cut") else {
        return;
    };
    let (_, layers) = reg.inspect("library/busybox:latest");
    let layer: Digest = layers[0].parse().unwrap();
    let proxy = CuttingProxy::start(&reg.addr, &format!("blobs/{layer}"), 300_000);
    let image = r(&proxy.addr, "library/busybox:latest");

    // Without retries the cut fails the pull and leaves the partial blob.
    let once = Client::new(
        RegistryConfig {
            retries: 0,
            ..fast_config()
        },
        berth_http_reqwest::ReqwestConnector::shared(),
    );
    let (_d, st) = store();
    let e = once
        .pull(&image, &st, &PullOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let partial = std::fs::metadata(st.ingest_path(&layer)).unwrap().len();
    assert!(partial > 0 && partial < 300_000, "partial {partial}");
    assert!(!st.has_blob(&layer).unwrap());

    // The next pull asks only for the rest.
    once.pull(&image, &st, &PullOptions::default())
        .await
        .unwrap();
    assert!(st.has_blob(&layer).unwrap());
    let want = format!("range=bytes={partial}-");
    assert!(
        proxy
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(&layer.to_string()) && l.ends_with(&want)),
        "no ranged request in {:?}",
        proxy.log.lock().unwrap()
    );

    // With retries (the default) one pull survives the cut by resuming.
    proxy
        .cut_armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    proxy.log.lock().unwrap().clear();
    let (_d2, st2) = store();
    client()
        .pull(&image, &st2, &PullOptions::default())
        .await
        .unwrap();
    assert!(st2.has_blob(&layer).unwrap());
    assert!(proxy
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("range=bytes=")));

    // A server that ignores Range (200 instead of 206): the partial is dropped and the
    // whole blob fetched again, still verified.
    proxy
        .cut_armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    proxy
        .strip_range
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (_d3, st3) = store();
    once.pull(&image, &st3, &PullOptions::default())
        .await
        .unwrap_err();
    assert!(st3.ingest_path(&layer).exists());
    let p = pull_ok(&once, &image, &st3).await;
    assert!(st3.has_blob(&layer).unwrap());
    assert_eq!(
        p.fetched_bytes, p.layers[0].size as u64,
        "whole layer again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_mismatch_stores_nothing() {
    let Some((reg, _)) = registry_with_busybox("digest_mismatch_stores_nothing") else {
        return;
    };
    let (_, layers) = reg.inspect("library/busybox:latest");
    let layer: Digest = layers[0].parse().unwrap();
    // A corrupt partial left by an earlier attempt: the resumed blob fails to verify, the
    // partial is dropped and the blob fetched whole.
    let (_d0, st0) = store();
    std::fs::write(st0.ingest_path(&layer), vec![0u8; 4096]).unwrap();
    let p = pull_ok(&client(), &r(&reg.addr, "library/busybox:latest"), &st0).await;
    assert!(st0.has_blob(&layer).unwrap());
    assert_eq!(p.layers[0].digest, layer);

    // Corrupt the blob in the registry's storage (same length).
    let path = reg.blob_data_path(layer.hex());
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&path, data).unwrap();

    let (_d, st) = store();
    let e = client()
        .pull(
            &r(&reg.addr, "library/busybox:latest"),
            &st,
            &PullOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let msg = e.to_string();
    assert!(
        msg.contains(&reg.addr) && msg.contains(&layer.to_string()),
        "{msg}"
    );
    assert!(!st.has_blob(&layer).unwrap());
    assert!(!st.ingest_path(&layer).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tag_and_repository_are_not_found() {
    let Some((reg, _)) = registry_with_busybox("unknown_tag_and_repository_are_not_found") else {
        return;
    };
    let c = client();
    let (_d, st) = store();
    let e = c
        .pull(
            &r(&reg.addr, "library/busybox:nope"),
            &st,
            &PullOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "manifest for {}/library/busybox:nope not found: manifest unknown: manifest unknown",
            reg.addr
        )
    );
    let e = c
        .pull(
            &r(&reg.addr, "library/nothere:latest"),
            &st,
            &PullOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("{}/library/nothere", reg.addr)),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_registry_times_out() {
    let hang = HangingServer::start();
    let c = Client::new(
        RegistryConfig {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            retries: 0,
            ..RegistryConfig::default()
        },
        berth_http_reqwest::ReqwestConnector::shared(),
    );
    let (_d, st) = store();
    let e = c
        .pull(
            &r(&hang.addr, "library/busybox:latest"),
            &st,
            &PullOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains(&hang.addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_manifests() {
    let fake = servers::FakeRegistry::start().await;
    let c = client();
    let (_d, st) = store();
    let pull = |tag: &str| {
        let reference = r(&fake.addr, &format!("bad/x:{tag}"));
        let c = c.clone();
        let st = st.clone();
        async move { c.pull(&reference, &st, &PullOptions::default()).await }
    };
    let e = pull("big").await.unwrap_err();
    assert!(matches!(e, RegistryError::ManifestTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("4 MiB"));
    let e = pull("garbage").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let msg = e.to_string();
    assert!(
        msg.contains("bad/x:garbage") && msg.contains(&fake.addr),
        "{msg}"
    );
    let e = pull("schema1").await.unwrap_err();
    assert!(e.to_string().contains("schema 1"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_for_any_registry() {
    let Some((full, _)) = registry_with_busybox("mirrors_for_any_registry") else {
        return;
    };
    let empty = Registry::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut mirrors = std::collections::BTreeMap::new();
    // `empty` is mirrored by a dead mirror and then by `full`.
    mirrors.insert(
        empty.addr.clone(),
        vec![dead.clone(), format!("http://{}", full.addr)],
    );
    // `full` is mirrored by `empty`, which lacks the image: fall back to upstream.
    mirrors.insert(full.addr.clone(), vec![format!("http://{}", empty.addr)]);
    let c = Client::new(
        RegistryConfig {
            registry_mirrors: mirrors,
            retries: 0,
            ..fast_config()
        },
        berth_http_reqwest::ReqwestConnector::shared(),
    );
    let (_d, st) = store();
    let p = pull_ok(&c, &r(&empty.addr, "library/busybox:latest"), &st).await;
    assert!(p.from_mirror);
    assert_eq!(p.source, format!("http://{}", full.addr));

    let (_d2, st2) = store();
    let p = pull_ok(&c, &r(&full.addr, "library/busybox:latest"), &st2).await;
    assert!(!p.from_mirror);
    assert_eq!(p.source, format!("http://{}", full.addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_certs_d_ca() {
    if !prerequisites("https_with_certs_d_ca")
        || !berth_testutil::require_cmds("https_with_certs_d_ca", &["openssl"])
    {
        return;
    }
    let Some(bb) = busybox("https_with_certs_d_ca") else {
        return;
    };
    let reg = Registry::start_full(None, true);
    reg.put_archive(&bb, "library/busybox:latest");
    let image = r(&reg.addr, "library/busybox:latest");
    // Verify certificates even on loopback: only the certs.d CA makes the server trusted.
    let verifying = |certs_dir: Option<std::path::PathBuf>| {
        Client::new(
            RegistryConfig {
                loopback_insecure: false,
                certs_dir,
                retries: 0,
                ..fast_config()
            },
            berth_http_reqwest::ReqwestConnector::shared(),
        )
    };
    let (_d, st) = store();
    let e = verifying(None)
        .pull(&image, &st, &PullOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    let p = pull_ok(
        &verifying(Some(reg.dir.path().join("certs.d"))),
        &image,
        &st,
    )
    .await;
    assert_eq!(p.source, format!("https://{}", reg.addr));
    // Docker's default for loopback: https without verification works too.
    let (_d2, st2) = store();
    assert_eq!(pull_ok(&client(), &image, &st2).await.source, p.source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_share_blobs() {
    let Some((reg, _)) = registry_with_busybox("concurrent_pulls_share_blobs") else {
        return;
    };
    let c = client();
    let (_d, st) = store();
    let image = r(&reg.addr, "library/busybox:latest");
    let (a, b) = tokio::join!(pull_ok(&c, &image, &st), pull_ok(&c, &image, &st));
    // Each blob was downloaded once; the other pull waited and found it stored.
    assert_eq!(a.fetched_blobs + b.fetched_blobs, 2);
    for l in &a.layers {
        assert_eq!(Digest::of(&st.read_blob(&l.digest).unwrap()), l.digest);
    }
}

/// A fake v1 search endpoint on plain-http loopback (insecure: https fails, http answers):
/// the query and credentials arrive as dockerd sends them, the answer is decoded. A real
/// distribution registry has no search: a clear, typed error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_v1_endpoint_and_registries_without_it() {
    use axum::extract::Query;
    use axum::http::HeaderMap;
    use axum::routing::get;

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/v1/search",
        get(
            move |Query(q): Query<HashMap<String, String>>, h: HeaderMap| async move {
                let auth = h
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                s2.lock()
                    .unwrap()
                    .push(format!("q={} n={} auth={auth}", q["q"], q["n"]));
                axum::Json(serde_json::json!({
                    "query": q["q"], "num_results": 1,
                    "results": [{"name": "team/app", "description": "an app", "star_count": 7,
                                 "is_official": false, "is_automated": true}]
                }))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let c = client();
    let found = c
        .search(&addr, "team/app", 10, Some(&Credentials::basic("u", "p")))
        .await
        .unwrap();
    assert_eq!(found.results.len(), 1);
    assert_eq!(found.results[0].name, "team/app");
    assert_eq!(found.results[0].star_count, 7);
    assert!(found.results[0].is_automated);
    assert_eq!(
        *seen.lock().unwrap(),
        ["q=team/app n=10 auth=Basic dTpw".to_string()]
    );
    task.abort();

    let Some((reg, _)) = registry_with_busybox("search_v1_endpoint_and_registries_without_it")
    else {
        return;
    };
    let e = c.search(&reg.addr, "busybox", 25, None).await.unwrap_err();
    assert!(
        matches!(e, RegistryError::SearchUnsupported { status: 404, .. }),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::NotImplemented);
    assert!(
        e.to_string()
            .starts_with(&format!("registry {} does not support search", reg.addr)),
        "{e}"
    );
}
