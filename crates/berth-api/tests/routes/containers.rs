//! Every container and exec route against a recording fake: the typed arguments each request
//! reaches the service with (lenient booleans, unknown keys ignored, `create` never taken for
//! a container id), and the status each answers.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::StatusCode;
use berth_api::*;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{call, Recorder};

fn session() -> StreamSession {
    StreamSession {
        tty: true,
        run: Box::new(|mut io: Hijacked| {
            async move {
                use tokio::io::AsyncWriteExt;
                let _ = io.write_all(b"out").await;
            }
            .boxed()
        }),
    }
}

#[async_trait]
impl ContainerService for Recorder {
    async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        body: ContainerCreateRequest,
    ) -> ApiResult<models::ContainerCreateResponse> {
        let body = serde_json::to_value(&body.body).unwrap();
        self.rec(format!("create({name:?}, {platform:?}, {body})"));
        Ok(models::ContainerCreateResponse {
            id: "c1".into(),
            warnings: vec![],
        })
    }
    async fn start(&self, id: &str) -> ApiResult<bool> {
        self.rec(format!("start({id})"));
        Ok(id != "running")
    }
    async fn stop(&self, id: &str, sig: Option<String>, t: Option<i64>) -> ApiResult<bool> {
        self.rec(format!("stop({id}, {sig:?}, {t:?})"));
        Ok(id != "stopped")
    }
    async fn restart(&self, id: &str, sig: Option<String>, t: Option<i64>) -> ApiResult<()> {
        self.rec(format!("restart({id}, {sig:?}, {t:?})"));
        Ok(())
    }
    async fn kill(&self, id: &str, sig: Option<String>) -> ApiResult<()> {
        self.rec(format!("kill({id}, {sig:?})"));
        Ok(())
    }
    async fn wait(
        &self,
        id: &str,
        condition: &str,
    ) -> ApiResult<BoxFuture<'static, ContainerWaitResult>> {
        self.rec(format!("wait({id}, {condition:?})"));
        Ok(async {
            ContainerWaitResult {
                status_code: 3,
                error: None,
            }
        }
        .boxed())
    }
    async fn remove(&self, id: &str, force: bool, volumes: bool, link: bool) -> ApiResult<()> {
        self.rec(format!(
            "remove({id}, force={force}, volumes={volumes}, link={link})"
        ));
        match id {
            "missing" => Err(ApiError::not_found("No such container: missing")),
            _ => Ok(()),
        }
    }
    async fn inspect(&self, id: &str, size: bool) -> ApiResult<ContainerInspect> {
        self.rec(format!("inspect({id}, size={size})"));
        Ok(ContainerInspect {
            id: id.into(),
            ..Default::default()
        })
    }
    async fn list(&self, o: ContainerListOptions) -> ApiResult<Vec<ContainerSummaryView>> {
        let status = o.filters.get("status");
        self.rec(format!(
            "list(all={}, limit={:?}, size={}, status={status:?})",
            o.all, o.limit, o.size
        ));
        Ok(vec![ContainerSummaryView {
            id: "c1".into(),
            ..Default::default()
        }])
    }
    async fn logs(&self, id: &str, o: LogsOptions) -> ApiResult<LogsStream> {
        self.rec(format!(
            "logs({id}, follow={}, stdout={}, stderr={}, since={}, until={}, timestamps={}, tail={:?})",
            o.follow, o.stdout, o.stderr, o.since, o.until, o.timestamps, o.tail
        ));
        let body: ByteStream = Box::pin(futures::stream::iter([Ok(bytes::Bytes::from("log"))]));
        Ok(LogsStream {
            tty: true,
            body,
            rotated_away: false,
        })
    }
    async fn attach(&self, id: &str, o: AttachOptions) -> ApiResult<StreamSession> {
        self.rec(format!(
            "attach({id}, stdin={}, stdout={}, stderr={}, stream={}, logs={}, keys={:?})",
            o.stdin, o.stdout, o.stderr, o.stream, o.logs, o.detach_keys
        ));
        Ok(session())
    }
    async fn resize(&self, id: &str, h: u16, w: u16) -> ApiResult<()> {
        self.rec(format!("resize({id}, {h}, {w})"));
        Ok(())
    }
    async fn pause(&self, id: &str) -> ApiResult<()> {
        self.rec(format!("pause({id})"));
        Ok(())
    }
    async fn unpause(&self, id: &str) -> ApiResult<()> {
        self.rec(format!("unpause({id})"));
        Ok(())
    }
    async fn rename(&self, id: &str, new_name: &str) -> ApiResult<()> {
        self.rec(format!("rename({id}, {new_name})"));
        Ok(())
    }
    async fn update(
        &self,
        id: &str,
        req: berth_api_types::ContainerUpdateRequest,
    ) -> ApiResult<berth_api_types::ContainerUpdateResult> {
        let body = serde_json::to_value(&req.body).unwrap();
        let mut line = format!("update({id}, {body}");
        if !req.ext.is_empty() {
            line.push_str(&format!(", env_add={:?}", req.ext.env_add));
        }
        if req.dry_run {
            line.push_str(", dry run");
        }
        self.rec(format!("{line})"));
        Ok(Default::default())
    }
    async fn top(&self, id: &str, ps_args: &str) -> ApiResult<models::ContainerTopResponse> {
        self.rec(format!("top({id}, {ps_args:?})"));
        Ok(models::ContainerTopResponse {
            titles: Some(vec!["PID".into()]),
            processes: None,
        })
    }
    async fn stats(&self, id: &str, stream: bool) -> ApiResult<StatsStream> {
        self.rec(format!("stats({id}, stream={stream})"));
        let frames = (0..3).map(|i| ContainerStats {
            id: format!("frame{i}"),
            ..Default::default()
        });
        Ok(Box::pin(futures::stream::iter(frames)))
    }
    async fn prune(&self, f: Filters) -> ApiResult<models::ContainerPruneResponse> {
        self.rec(format!("prune(until={:?})", f.get("until")));
        Ok(models::ContainerPruneResponse::default())
    }
    async fn exec_create(&self, id: &str, body: ExecCreateRequest) -> ApiResult<String> {
        let body = serde_json::to_value(&body.config).unwrap();
        self.rec(format!("exec_create({id}, {body})"));
        Ok("e1".into())
    }
    async fn exec_start(
        &self,
        id: &str,
        detach: bool,
        tty: bool,
    ) -> ApiResult<Option<StreamSession>> {
        self.rec(format!("exec_start({id}, detach={detach}, tty={tty})"));
        Ok((!detach).then(session))
    }
    async fn exec_inspect(&self, id: &str) -> ApiResult<ExecInspect> {
        self.rec(format!("exec_inspect({id})"));
        Ok(ExecInspect {
            id: id.into(),
            ..Default::default()
        })
    }
    async fn exec_resize(&self, id: &str, h: u16, w: u16) -> ApiResult<()> {
        self.rec(format!("exec_resize({id}, {h}, {w})"));
        Ok(())
    }
}

fn app_with(rec: &Arc<Recorder>) -> axum::Router {
    app(Services {
        images: Arc::new(super::Fake::default()),
        system: Arc::new(super::Fake::default()),
        volumes: Arc::new(NoVolumes),
        container_fs: Arc::new(NoContainerFs),
        containers: rec.clone(),
        networks: Arc::new(NoNetworks),
    })
}

/// Each request, the status it must answer and the one call it must make (None: no call).
async fn check(cases: &[(&str, &str, &str, StatusCode, Option<&str>)]) {
    for (method, uri, body, status, want) in cases {
        let rec = Arc::new(Recorder::default());
        let (got, _, out) = call(&app_with(&rec), method, uri, Body::from(body.to_string())).await;
        let calls = rec.calls.lock().unwrap().clone();
        assert_eq!(
            got,
            *status,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&out)
        );
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(calls, want, "{method} {uri}");
    }
}

const OK: StatusCode = StatusCode::OK;
const NO_CONTENT: StatusCode = StatusCode::NO_CONTENT;

#[tokio::test]
async fn lifecycle_routes_pass_typed_arguments() {
    check(&[
        (
            "POST",
            "/v1.45/containers/create?name=web&platform=linux%2Famd64&unknown=x",
            r#"{"Image":"busybox","Cmd":"true"}"#,
            StatusCode::CREATED,
            Some(r#"create(Some("web"), Some("linux/amd64"), {"Cmd":["true"],"Image":"busybox"})"#),
        ),
        (
            "POST",
            "/containers/create",
            "",
            StatusCode::CREATED,
            Some("create(None, None, {})"),
        ),
        (
            "POST",
            "/containers/c1/start",
            "",
            NO_CONTENT,
            Some("start(c1)"),
        ),
        (
            "POST",
            "/containers/running/start",
            "",
            StatusCode::NOT_MODIFIED,
            Some("start(running)"),
        ),
        // `create` is a container name here, not the create route.
        (
            "POST",
            "/containers/create/start",
            "",
            NO_CONTENT,
            Some("start(create)"),
        ),
        (
            "POST",
            "/containers/c1/stop?t=5&signal=SIGINT",
            "",
            NO_CONTENT,
            Some(r#"stop(c1, Some("SIGINT"), Some(5))"#),
        ),
        (
            "POST",
            "/containers/stopped/stop?timeout=2",
            "",
            StatusCode::NOT_MODIFIED,
            Some("stop(stopped, None, Some(2))"),
        ),
        (
            "POST",
            "/containers/c1/stop?t=soon",
            "",
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "POST",
            "/containers/c1/restart?t=0",
            "",
            NO_CONTENT,
            Some("restart(c1, None, Some(0))"),
        ),
        (
            "POST",
            "/containers/c1/kill?signal=HUP",
            "",
            NO_CONTENT,
            Some(r#"kill(c1, Some("HUP"))"#),
        ),
        (
            "POST",
            "/containers/c1/pause",
            "",
            NO_CONTENT,
            Some("pause(c1)"),
        ),
        (
            "POST",
            "/containers/c1/unpause",
            "",
            NO_CONTENT,
            Some("unpause(c1)"),
        ),
        (
            "POST",
            "/containers/c1/rename?name=c2",
            "",
            NO_CONTENT,
            Some("rename(c1, c2)"),
        ),
        (
            "POST",
            "/containers/c1/resize?h=40&w=120",
            "",
            OK,
            Some("resize(c1, 40, 120)"),
        ),
        (
            "POST",
            "/containers/c1/resize?h=tall",
            "",
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "POST",
            "/containers/c1/update",
            r#"{"Memory":1}"#,
            OK,
            Some(r#"update(c1, {"Memory":1})"#),
        ),
        // Before API 1.40 the PIDs limit is not updatable (dockerd's router drops it).
        (
            "POST",
            "/v1.39/containers/c1/update",
            r#"{"Memory":1,"PidsLimit":16}"#,
            OK,
            Some(r#"update(c1, {"Memory":1})"#),
        ),
        (
            "POST",
            "/v1.40/containers/c1/update",
            r#"{"PidsLimit":16}"#,
            OK,
            Some(r#"update(c1, {"PidsLimit":16})"#),
        ),
        // berth's extension: its keys leave Docker's body, `dryRun` reaches the service.
        (
            "POST",
            "/containers/c1/update?dryRun=1",
            r#"{"Memory":1,"EnvAdd":["A=1"]}"#,
            OK,
            Some(r#"update(c1, {"Memory":1}, env_add=["A=1"], dry run)"#),
        ),
        (
            "POST",
            "/containers/c1/update",
            r#"{"EnvAdd":"A=1"}"#,
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "POST",
            "/containers/c1/wait?condition=next-exit",
            "",
            OK,
            Some(r#"wait(c1, "next-exit")"#),
        ),
        (
            "POST",
            "/containers/prune?filters=%7B%22until%22%3A%5B%2210m%22%5D%7D",
            "",
            OK,
            Some(r#"prune(until=["10m"])"#),
        ),
    ])
    .await;
}

#[tokio::test]
async fn remove_reads_docker_booleans() {
    check(&[
        (
            "DELETE",
            "/containers/x?force=1&v=true",
            "",
            NO_CONTENT,
            Some("remove(x, force=true, volumes=true, link=false)"),
        ),
        (
            "DELETE",
            "/v1.41/containers/x?force=True&v=0&link=false",
            "",
            NO_CONTENT,
            Some("remove(x, force=true, volumes=false, link=false)"),
        ),
        (
            "DELETE",
            "/containers/x",
            "",
            NO_CONTENT,
            Some("remove(x, force=false, volumes=false, link=false)"),
        ),
        (
            "DELETE",
            "/containers/missing",
            "",
            StatusCode::NOT_FOUND,
            Some("remove(missing, force=false, volumes=false, link=false)"),
        ),
        // A legacy link needs link=1; else the two segments name no container.
        (
            "DELETE",
            "/containers/web/db?link=1",
            "",
            NO_CONTENT,
            Some("remove(web/db, force=false, volumes=false, link=true)"),
        ),
        (
            "DELETE",
            "/containers/web/db",
            "",
            StatusCode::NOT_FOUND,
            None,
        ),
    ])
    .await;
}

#[tokio::test]
async fn read_routes_pass_typed_arguments() {
    let f = "%7B%22status%22%3A%5B%22exited%22%5D%7D";
    check(&[
        (
            "GET",
            &format!("/containers/json?all=1&limit=2&size=true&filters={f}"),
            "",
            OK,
            Some(r#"list(all=true, limit=Some(2), size=true, status=["exited"])"#),
        ),
        (
            "GET",
            "/containers/json?limit=-1",
            "",
            OK,
            Some("list(all=false, limit=None, size=false, status=[])"),
        ),
        ("GET", "/containers/json?filters=nonsense", "", StatusCode::BAD_REQUEST, None),
        // A container named `json`.
        ("GET", "/containers/json/json", "", OK, Some("inspect(json, size=false)")),
        ("GET", "/containers/c1/json?size=1", "", OK, Some("inspect(c1, size=true)")),
        (
            "GET",
            "/containers/c1/logs?stdout=1&follow=true&since=12.5&tail=10&timestamps=1",
            "",
            OK,
            Some("logs(c1, follow=true, stdout=true, stderr=false, since=12.5, until=0, timestamps=true, tail=Some(10))"),
        ),
        (
            "GET",
            "/containers/c1/logs?tail=all&stderr=1",
            "",
            OK,
            Some("logs(c1, follow=false, stdout=false, stderr=true, since=0, until=0, timestamps=false, tail=None)"),
        ),
        ("GET", "/containers/c1/logs", "", StatusCode::BAD_REQUEST, None),
        (
            "GET",
            "/containers/c1/top?ps_args=aux",
            "",
            OK,
            Some(r#"top(c1, "aux")"#),
        ),
        ("GET", "/containers/c1/stats", "", OK, Some("stats(c1, stream=true)")),
        (
            "GET",
            "/containers/c1/stats?stream=0&one-shot=1",
            "",
            OK,
            Some("stats(c1, stream=false)"),
        ),
        // Not streaming and not one-shot: a primed stream whose first frame is sent.
        (
            "GET",
            "/containers/c1/stats?stream=false",
            "",
            OK,
            Some("stats(c1, stream=true)"),
        ),
    ])
    .await;
}

#[tokio::test]
async fn stats_without_stream_sends_one_frame() {
    let rec = Arc::new(Recorder::default());
    let (s, _, body) = call(
        &app_with(&rec),
        "GET",
        "/containers/c1/stats?stream=false",
        Body::empty(),
    )
    .await;
    assert_eq!(s, OK);
    let body = String::from_utf8(body).unwrap();
    assert_eq!(body.lines().count(), 1, "{body}");
    let frame: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(frame["id"], "frame0", "{body}");
}

#[tokio::test]
async fn attach_and_exec_routes_pass_typed_arguments() {
    check(&[
        (
            "POST",
            "/containers/c1/attach?stdin=1&stdout=true&stderr=0&stream=1&logs=yes&detachKeys=ctrl-x",
            "",
            OK,
            Some(r#"attach(c1, stdin=true, stdout=true, stderr=false, stream=true, logs=true, keys=Some("ctrl-x"))"#),
        ),
        (
            "POST",
            "/containers/c1/attach?detachKeys=",
            "",
            OK,
            Some(r#"attach(c1, stdin=false, stdout=false, stderr=false, stream=false, logs=false, keys=Some(""))"#),
        ),
        (
            "POST",
            "/containers/c1/exec",
            r#"{"Cmd":["ls"]}"#,
            StatusCode::CREATED,
            Some(r#"exec_create(c1, {"Cmd":["ls"]})"#),
        ),
        ("GET", "/exec/e1/json", "", OK, Some("exec_inspect(e1)")),
        // berth's exec websocket: without an upgrade it is refused before the exec is used up.
        (
            "GET",
            "/berth/exec/e1/ws?tty=1",
            "",
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "POST",
            "/exec/e1/resize?h=10&w=20",
            "",
            OK,
            Some("exec_resize(e1, 10, 20)"),
        ),
        (
            "POST",
            "/exec/e1/start",
            r#"{"Detach":true}"#,
            OK,
            Some("exec_start(e1, detach=true, tty=false)"),
        ),
        (
            "POST",
            "/exec/e1/start",
            r#"{"Tty":true}"#,
            OK,
            Some("exec_start(e1, detach=false, tty=true)"),
        ),
    ])
    .await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404_without_a_call() {
    check(&[
        (
            "POST",
            "/containers/c1/nonsense",
            "",
            StatusCode::NOT_FOUND,
            None,
        ),
        ("GET", "/containers/c1", "", StatusCode::NOT_FOUND, None),
        (
            "GET",
            "/containers/c1/start",
            "",
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "PUT",
            "/containers/c1/json",
            "",
            StatusCode::NOT_FOUND,
            None,
        ),
        ("GET", "/exec/e1/start", "", StatusCode::NOT_FOUND, None),
        ("POST", "/exec/e1", "", StatusCode::NOT_FOUND, None),
        ("GET", "/containers/json/", "", StatusCode::NOT_FOUND, None),
        ("OPTIONS", "/containers/c1/json", "", OK, None),
    ])
    .await;
}
