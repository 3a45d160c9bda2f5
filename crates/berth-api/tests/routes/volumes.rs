//! Volume and container-filesystem routes against a recording fake: the typed arguments each
//! request reaches the service with.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::StatusCode;
use berth_api::models::{FilesystemChange, VolumePruneResponse};
use berth_api::*;

use super::{call, Recorder};

fn stat(name: &str) -> PathStat {
    PathStat {
        name: name.into(),
        size: 3,
        mode: 0o644,
        mtime: "2020-01-01T00:00:00Z".into(),
        link_target: String::new(),
    }
}

fn bytes(b: &'static [u8]) -> ByteStream {
    Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(b))]))
}

#[async_trait]
impl VolumeService for Recorder {
    async fn create(&self, req: VolumeCreateBody) -> ApiResult<VolumeInfo> {
        self.rec(format!("create({:?})", req.name));
        Ok(VolumeInfo::default())
    }
    async fn list(&self) -> ApiResult<Vec<VolumeInfo>> {
        self.rec("list".into());
        Ok(vec![])
    }
    async fn inspect(&self, name: &str) -> ApiResult<VolumeInfo> {
        self.rec(format!("inspect({name})"));
        Ok(VolumeInfo::default())
    }
    async fn remove(&self, name: &str, force: bool) -> ApiResult<()> {
        self.rec(format!("remove({name}, force={force})"));
        Ok(())
    }
    async fn prune(&self, f: &Filters, all: bool) -> ApiResult<VolumePruneResponse> {
        self.rec(format!("prune(label={:?}, all={all})", f.get("label")));
        Ok(VolumePruneResponse::default())
    }
}

#[async_trait]
impl ContainerFsService for Recorder {
    async fn stat_path(&self, id: &str, path: &str) -> ApiResult<PathStat> {
        self.rec(format!("stat_path({id}, {path})"));
        Ok(stat("f"))
    }
    async fn get_archive(&self, id: &str, path: &str) -> ApiResult<(PathStat, ByteStream)> {
        self.rec(format!("get_archive({id}, {path})"));
        Ok((stat("f"), bytes(b"tar")))
    }
    async fn put_archive(&self, id: &str, o: ExtractOptions, _: ByteStream) -> ApiResult<()> {
        self.rec(format!(
            "put_archive({id}, {}, no_overwrite={}, copy_uid_gid={})",
            o.path, o.no_overwrite_dir_non_dir, o.copy_uid_gid
        ));
        Ok(())
    }
    async fn changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>> {
        self.rec(format!("changes({id})"));
        Ok(vec![])
    }
    async fn export(&self, id: &str) -> ApiResult<ByteStream> {
        self.rec(format!("export({id})"));
        Ok(bytes(b"tar"))
    }
}

#[tokio::test]
async fn volume_and_archive_routes_pass_typed_arguments() {
    let label = "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D";
    let cases: Vec<(&str, String, StatusCode, Option<&str>)> = vec![
        (
            "DELETE",
            "/volumes/v1?force=1".into(),
            StatusCode::NO_CONTENT,
            Some("remove(v1, force=true)"),
        ),
        (
            "DELETE",
            "/volumes/v1?force=false".into(),
            StatusCode::NO_CONTENT,
            Some("remove(v1, force=false)"),
        ),
        (
            "GET",
            "/volumes/v1".into(),
            StatusCode::OK,
            Some("inspect(v1)"),
        ),
        ("GET", "/volumes?x=1".into(), StatusCode::OK, Some("list")),
        // dockerd 20.10 requires a body: "got EOF while reading request body".
        (
            "POST",
            "/volumes/create".into(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        // Before 1.42 prune takes named volumes too.
        (
            "POST",
            format!("/v1.41/volumes/prune?filters={label}"),
            StatusCode::OK,
            Some(r#"prune(label=["a=b"], all=true)"#),
        ),
        (
            "POST",
            format!("/v1.45/volumes/prune?filters={label}"),
            StatusCode::OK,
            Some(r#"prune(label=["a=b"], all=false)"#),
        ),
        (
            "HEAD",
            "/containers/c1/archive?path=%2Fetc".into(),
            StatusCode::OK,
            Some("stat_path(c1, /etc)"),
        ),
        (
            "GET",
            "/containers/c1/archive?path=/etc/hosts".into(),
            StatusCode::OK,
            Some("get_archive(c1, /etc/hosts)"),
        ),
        (
            "PUT",
            "/containers/c1/archive?path=/tmp&noOverwriteDirNonDir=1&copyUIDGID=true".into(),
            StatusCode::OK,
            Some("put_archive(c1, /tmp, no_overwrite=true, copy_uid_gid=true)"),
        ),
        (
            "PUT",
            "/containers/c1/archive?path=/tmp".into(),
            StatusCode::OK,
            Some("put_archive(c1, /tmp, no_overwrite=false, copy_uid_gid=false)"),
        ),
        (
            "GET",
            "/containers/c1/archive".into(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "GET",
            "/containers/c1/changes".into(),
            StatusCode::OK,
            Some("changes(c1)"),
        ),
        (
            "GET",
            "/containers/c1/export".into(),
            StatusCode::OK,
            Some("export(c1)"),
        ),
        (
            "POST",
            "/containers/c1/archive?path=/".into(),
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for (method, uri, status, want) in cases {
        let rec = Arc::new(Recorder::default());
        let app = app(Services {
            images: Arc::new(super::Fake::default()),
            system: Arc::new(super::Fake::default()),
            volumes: rec.clone(),
            container_fs: rec.clone(),
            containers: Arc::new(NoContainers),
            networks: Arc::new(NoNetworks),
        });
        let (got, headers, body) = call(&app, method, &uri, Body::empty()).await;
        assert_eq!(
            got,
            status,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&body)
        );
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(*rec.calls.lock().unwrap(), want, "{method} {uri}");
        if method == "HEAD" || (method == "GET" && uri.contains("archive?")) {
            assert!(
                headers.contains_key("x-docker-container-path-stat"),
                "{uri}"
            );
        }
    }
}

/// The list is `{Volumes, Warnings: null}`; prune's counts are present even when nothing went.
#[tokio::test]
async fn list_and_prune_bodies_are_dockers() {
    let rec = Arc::new(Recorder::default());
    let app = app(Services {
        images: Arc::new(super::Fake::default()),
        system: Arc::new(super::Fake::default()),
        volumes: rec.clone(),
        container_fs: rec,
        containers: Arc::new(NoContainers),
        networks: Arc::new(NoNetworks),
    });
    let (_, _, body) = call(&app, "GET", "/volumes", Body::empty()).await;
    assert_eq!(
        super::json(&body),
        serde_json::json!({"Volumes": [], "Warnings": null})
    );
    let (_, _, body) = call(&app, "POST", "/volumes/prune", Body::empty()).await;
    assert_eq!(
        super::json(&body),
        serde_json::json!({"VolumesDeleted": [], "SpaceReclaimed": 0})
    );
}
