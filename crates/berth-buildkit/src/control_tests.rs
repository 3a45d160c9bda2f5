//! Control and the gateway bridge end to end over HTTP/2 (in-memory pipes): a client doing
//! what buildx does (Solve + Status + Ping + bridge Solve + Return), a fake client session
//! serving file sync, and a fake image service standing in for berth's builder.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_api_types::models::{
    ImageDeleteResponseItem, ImageHistoryResponseItem, ImagePruneResponse, ImageSummary,
};
use berth_api_types::{
    ApiError, ApiResult, BuildOptions, ByteStream, Filters, ImageInspect, ImageListOptions,
    ImageService, ImportOptions, JsonAux, JsonMessage, JsonStream,
};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

use super::*;
use crate::grpc::{call_unary, frame, Messages};
use crate::proto::fsutil::{mode, Packet, PacketType, Stat};
use crate::session;

const IMAGE: &str = "sha256:feedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeed";

#[derive(Default)]
struct FakeImages {
    builds: Mutex<Vec<(BuildOptions, Vec<String>)>>,
    tags: Mutex<Vec<(String, String, String)>>,
    /// Set when a build's message stream is dropped (the build cancelled).
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

/// Sets its flag when dropped.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn nope<T>() -> ApiResult<T> {
    Err(ApiError::not_implemented("not in this fake"))
}

#[async_trait]
impl ImageService for FakeImages {
    async fn list(&self, _: ImageListOptions) -> ApiResult<Vec<ImageSummary>> {
        nope()
    }
    async fn inspect(&self, _: &str) -> ApiResult<ImageInspect> {
        nope()
    }
    async fn history(&self, _: &str) -> ApiResult<Vec<ImageHistoryResponseItem>> {
        nope()
    }
    async fn tag(&self, name: &str, repo: &str, tag: &str) -> ApiResult<()> {
        self.tags
            .lock()
            .unwrap()
            .push((name.into(), repo.into(), tag.into()));
        Ok(())
    }
    async fn remove(&self, _: &str, _: bool, _: bool) -> ApiResult<Vec<ImageDeleteResponseItem>> {
        nope()
    }
    async fn prune(&self, _: &Filters) -> ApiResult<ImagePruneResponse> {
        nope()
    }
    async fn load(&self, _: ByteStream, _: bool) -> ApiResult<Vec<String>> {
        nope()
    }
    async fn save(&self, _: Vec<String>) -> ApiResult<ByteStream> {
        nope()
    }
    async fn import(&self, _: ByteStream, _: ImportOptions) -> ApiResult<String> {
        nope()
    }
    async fn build_cache(&self) -> ApiResult<Vec<berth_api_types::BuildCacheItem>> {
        Ok(vec![berth_api_types::BuildCacheItem {
            id: "step-cache-1".into(),
            typ: "regular".into(),
            description: "RUN make".into(),
            size: 4096,
            created_at: Some("2026-01-02T03:04:05Z".into()),
            usage_count: 2,
            ..Default::default()
        }])
    }
    async fn build(&self, mut body: ByteStream, opts: BuildOptions) -> ApiResult<JsonStream> {
        let mut tar = vec![];
        while let Some(c) = body.next().await {
            tar.extend_from_slice(&c.map_err(|e| ApiError::invalid(e.to_string()))?);
        }
        let mut a = tar::Archive::new(&tar[..]);
        let names = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        let fail = opts.build_args.contains_key("FAIL");
        if opts.build_args.contains_key("HANG") {
            self.builds.lock().unwrap().push((opts, vec![]));
            let flag = DropFlag(self.dropped.clone());
            let msgs = futures::stream::iter([JsonMessage::stream("Step 1/1 : RUN sleep\n")])
                .chain(futures::stream::pending())
                .map(move |m| {
                    let _ = &flag;
                    m
                });
            return Ok(Box::pin(msgs));
        }
        self.builds.lock().unwrap().push((opts, names));
        let mut msgs = vec![
            JsonMessage::stream("Step 1/1 : RUN make\n"),
            JsonMessage::stream(" ---> Running in 0123456789ab\n"),
            JsonMessage::stream("made\n"),
        ];
        if fail {
            msgs.push(JsonMessage::error(
                "The command '/bin/sh -c make' returned a non-zero code: 2",
            ));
        } else {
            msgs.push(JsonMessage::stream(" ---> feedfeedfeed\n"));
            msgs.push(JsonMessage {
                aux: Some(JsonAux::Built { id: IMAGE.into() }),
                ..Default::default()
            });
        }
        Ok(Box::pin(futures::stream::iter(msgs)))
    }
}

/// The client's directories: `dockerfile` and `context`.
fn tree(dir: &str) -> Vec<(&'static str, &'static [u8])> {
    match dir {
        "dockerfile" => vec![(
            "Dockerfile",
            b"FROM busybox\nRUN --mount=type=secret,id=tok --mount=type=secret,id=gone make\n",
        )],
        "context" => vec![
            (".dockerignore", b"# keep it out\nsecret.txt\n"),
            ("Dockerfile", b"FROM busybox\nRUN make\n"),
            ("app.txt", b"app"),
            ("secret.txt", b"hunter2"),
        ],
        _ => vec![],
    }
}

/// The client's secrets provider: `tok` exists, anything else is NotFound.
async fn serve_secret(req: hyper::Request<Incoming>) -> hyper::Response<crate::grpc::Body> {
    use crate::proto::secrets::{GetSecretRequest, GetSecretResponse};
    let r: GetSecretRequest = crate::grpc::read_unary(req.into_body()).await.unwrap();
    crate::grpc::unary(match r.id.as_str() {
        "tok" => Ok(GetSecretResponse {
            data: b"s3cret".to_vec(),
        }),
        id => Err(crate::grpc::Status::not_found(format!(
            "secret {id} not found"
        ))),
    })
}

/// The client's auth provider: a login for Docker Hub only.
async fn serve_credentials(req: hyper::Request<Incoming>) -> hyper::Response<crate::grpc::Body> {
    use crate::proto::secrets::{CredentialsRequest, CredentialsResponse};
    let r: CredentialsRequest = crate::grpc::read_unary(req.into_body()).await.unwrap();
    crate::grpc::unary(Ok(match r.host.as_str() {
        "registry-1.docker.io" => CredentialsResponse {
            username: "alice".into(),
            secret: "pw".into(),
        },
        _ => CredentialsResponse::default(),
    }))
}

/// fsutil's sender for one DiffCopy call, filtering as the client does (exact names here).
async fn serve_diff_copy(
    req: hyper::Request<Incoming>,
    asked: Arc<Mutex<Vec<String>>>,
) -> hyper::Response<crate::grpc::Body> {
    let h = req.headers();
    let all = |k: &str| -> Vec<String> {
        h.get_all(k)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    };
    let dir = all("dir-name").pop().unwrap_or_default();
    let (follow, exclude) = (all("followpaths"), all("exclude-patterns"));
    asked
        .lock()
        .unwrap()
        .push(format!("{dir} follow={follow:?} exclude={exclude:?}"));
    let files: Vec<_> = tree(&dir)
        .into_iter()
        .filter(|(p, _)| follow.is_empty() || follow.iter().any(|f| f == p))
        .filter(|(p, _)| !exclude.iter().any(|x| x == p))
        .collect();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut incoming = Messages::new(req.into_body());
    tokio::spawn(async move {
        for (p, d) in &files {
            let st = Stat {
                path: p.to_string(),
                mode: 0o644,
                size: d.len() as i64,
                ..Default::default()
            };
            let pk = Packet {
                r#type: PacketType::Stat as i32,
                stat: Some(st),
                ..Default::default()
            };
            tx.send(frame(&pk)).await.unwrap();
        }
        tx.send(frame(&Packet::default())).await.unwrap();
        while let Ok(Some(p)) = incoming.next::<Packet>().await {
            match p.kind() {
                Some(PacketType::Req) => {
                    let data = files[p.id as usize].1;
                    for d in [data.to_vec(), vec![]] {
                        let q = Packet {
                            r#type: PacketType::Data as i32,
                            id: p.id,
                            data: d,
                            ..Default::default()
                        };
                        tx.send(frame(&q)).await.unwrap();
                    }
                }
                Some(PacketType::Fin) => {
                    let _ = tx.send(frame(&Packet::fin())).await;
                    break;
                }
                _ => {}
            }
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = hyper::Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
    r.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    r
}

struct Rig {
    kit: Arc<BuildKit>,
    images: Arc<FakeImages>,
    grpc: SendRequest<crate::grpc::Body>,
    asked: Arc<Mutex<Vec<String>>>,
    /// The client's end of the `/grpc` connection.
    client_conn: tokio::task::JoinHandle<()>,
}

/// berth's side on two pipes; the client's session served on the other end of one.
async fn rig(session_id: &str) -> Rig {
    let images = Arc::new(FakeImages::default());
    let kit = BuildKit::new(images.clone());
    // /session: berth is the HTTP/2 client, the fake client the server.
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let mut headers = hyper::HeaderMap::new();
    headers.insert(session::HEADER_UUID, session_id.parse().unwrap());
    headers.append(session::HEADER_METHOD, session::DIFF_COPY.parse().unwrap());
    headers.append(session::HEADER_METHOD, session::GET_SECRET.parse().unwrap());
    headers.append(
        session::HEADER_METHOD,
        session::CREDENTIALS.parse().unwrap(),
    );
    tokio::spawn(kit.sessions.clone().serve(ours, headers));
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let a2 = asked.clone();
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            let a = a2.clone();
            async move {
                Ok::<_, Infallible>(if req.uri().path() == session::GET_SECRET {
                    serve_secret(req).await
                } else if req.uri().path() == session::CREDENTIALS {
                    serve_credentials(req).await
                } else {
                    serve_diff_copy(req, a).await
                })
            }
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(theirs), svc)
            .await;
    });
    // /grpc: berth serves, the client calls.
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    tokio::spawn(crate::serve_grpc(kit.clone(), ours));
    let (grpc, conn) = hyper::client::conn::http2::handshake::<_, _, crate::grpc::Body>(
        TokioExecutor::new(),
        TokioIo::new(theirs),
    )
    .await
    .unwrap();
    let client_conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    Rig {
        kit,
        images,
        grpc,
        asked,
        client_conn,
    }
}

fn solve_req(r: &str, session: &str, exporter: &str) -> pb::SolveRequest {
    pb::SolveRequest {
        r#ref: r.into(),
        session: session.into(),
        exporters: vec![pb::Exporter {
            r#type: exporter.into(),
            attrs: HashMap::from([("name".to_string(), "app:v1,reg:5000/app".to_string())]),
        }],
        ..Default::default()
    }
}

fn bid(r: &str) -> Vec<(String, String)> {
    vec![(BUILD_ID.to_string(), r.to_string())]
}

async fn status_of(mut g: SendRequest<crate::grpc::Body>, r: &str) -> Vec<pb::StatusResponse> {
    let body = futures::stream::iter([frame(&pb::StatusRequest { r#ref: r.into() })]);
    g.ready().await.unwrap();
    let resp = g
        .send_request(crate::grpc::request(
            "/moby.buildkit.v1.Control/Status",
            &[],
            body,
        ))
        .await
        .unwrap();
    let mut m = crate::grpc::response_messages(resp).unwrap();
    let mut out = vec![];
    while let Some(u) = m.next::<pb::StatusResponse>().await.unwrap() {
        out.push(u);
    }
    out
}

#[tokio::test]
async fn a_buildx_style_build_runs_berths_builder_and_exports_an_image() {
    let mut rig = rig("sess1").await;
    // As buildx: Solve (no frontend), Status and the build function run concurrently.
    let mut g = rig.grpc.clone();
    let solve = tokio::spawn(async move {
        call_unary::<_, pb::SolveResponse>(
            &mut g,
            "/moby.buildkit.v1.Control/Solve",
            &[],
            &solve_req("r1", "sess1", "moby"),
        )
        .await
    });
    let status = tokio::spawn(status_of(rig.grpc.clone(), "r1"));
    let pong: gw::PongResponse = call_unary(
        &mut rig.grpc,
        "/moby.buildkit.v1.frontend.LLBBridge/Ping",
        &bid("r1"),
        &gw::PingRequest {},
    )
    .await
    .unwrap();
    assert!(pong.frontend_api_caps.iter().any(|c| c.id == "return"));
    let solved: gw::SolveResponse = call_unary(
        &mut rig.grpc,
        "/moby.buildkit.v1.frontend.LLBBridge/Solve",
        &bid("r1"),
        &gw::SolveRequest {
            frontend: "dockerfile.v0".into(),
            frontend_opt: HashMap::from([
                ("filename".to_string(), "Dockerfile".to_string()),
                ("build-arg:A".to_string(), "b".to_string()),
            ]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let result = solved.result.unwrap();
    let _: gw::ReturnResponse = call_unary(
        &mut rig.grpc,
        "/moby.buildkit.v1.frontend.LLBBridge/Return",
        &bid("r1"),
        &gw::ReturnRequest {
            result: Some(result),
            error: None,
        },
    )
    .await
    .unwrap();
    let resp = solve.await.unwrap().unwrap();
    assert_eq!(resp.exporter_response["containerimage.digest"], IMAGE);
    assert_eq!(resp.exporter_response["image.name"], "app:v1,reg:5000/app");
    assert_eq!(
        *rig.images.tags.lock().unwrap(),
        [
            (IMAGE.to_string(), "app".to_string(), "v1".to_string()),
            (IMAGE.into(), "reg:5000/app".into(), "latest".into())
        ]
    );
    // The Dockerfile came from the dockerfile dir, .dockerignore from the context; the
    // ignored file never left the client.
    let builds = rig.images.builds.lock().unwrap().clone();
    let (opts, names) = &builds[0];
    assert!(opts
        .dockerfile_inline
        .as_deref()
        .unwrap()
        .starts_with("FROM busybox\nRUN --mount=type=secret,id=tok"));
    // The secrets the Dockerfile reads came from the session; the one the client lacks is
    // left out (the builder fails only a step that requires it).
    assert_eq!(
        opts.secrets,
        [(
            "tok".to_string(),
            berth_api_types::SecretBytes(b"s3cret".to_vec())
        )]
        .into()
    );
    assert_eq!(
        opts.dockerignore_inline.as_deref(),
        Some("# keep it out\nsecret.txt\n")
    );
    assert_eq!(opts.build_args["A"], "b");
    // The login for the base image's registry, as an X-Registry-Auth value.
    let auth = {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(&opts.registry_auth["docker.io"].0)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&raw).unwrap()
    };
    assert_eq!(auth["username"], "alice");
    assert_eq!(auth["password"], "pw");
    assert_eq!(opts.registry_auth.len(), 1);
    assert_eq!(names, &[".dockerignore", "Dockerfile", "app.txt"]);
    assert_eq!(
        *rig.asked.lock().unwrap(),
        [
            r#"dockerfile follow=["Dockerfile", "Dockerfile.dockerignore"] exclude=[]"#,
            r#"context follow=[".dockerignore"] exclude=[]"#,
            r#"context follow=[] exclude=["secret.txt"]"#,
        ]
    );
    // Progress: the internal loads, the step with its output, all completed.
    let updates = status.await.unwrap();
    let vertices: Vec<_> = updates
        .iter()
        .flat_map(|u| &u.vertexes)
        .filter(|v| v.completed.is_some())
        .map(|v| v.name.as_str())
        .collect();
    assert!(vertices.contains(&"[internal] load build definition from Dockerfile"));
    assert!(vertices.contains(&"[1/1] RUN make"), "{vertices:?}");
    let logs: Vec<_> = updates.iter().flat_map(|u| &u.logs).collect();
    assert_eq!(logs[0].msg, b"made\n");
    assert_eq!(rig.kit.sessions.ids(), ["sess1"]);
}

#[tokio::test]
async fn a_failed_step_reaches_the_client_and_its_return() {
    let mut rig = rig("s2").await;
    let mut g = rig.grpc.clone();
    let solve = tokio::spawn(async move {
        call_unary::<_, pb::SolveResponse>(
            &mut g,
            "/moby.buildkit.v1.Control/Solve",
            &[],
            &solve_req("r2", "s2", "image"),
        )
        .await
    });
    let err = call_unary::<_, gw::SolveResponse>(
        &mut rig.grpc,
        "/moby.buildkit.v1.frontend.LLBBridge/Solve",
        &bid("r2"),
        &gw::SolveRequest {
            frontend: "dockerfile.v0".into(),
            frontend_opt: HashMap::from([("build-arg:FAIL".to_string(), "1".to_string())]),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("non-zero code: 2"), "{err}");
    // The build function returns its error; the solve fails with it.
    let _: gw::ReturnResponse = call_unary(
        &mut rig.grpc,
        "/moby.buildkit.v1.frontend.LLBBridge/Return",
        &bid("r2"),
        &gw::ReturnRequest {
            result: None,
            error: Some(gw::RpcStatus {
                code: 2,
                message: err.message.clone(),
            }),
        },
    )
    .await
    .unwrap();
    let e = solve.await.unwrap().unwrap_err();
    assert_eq!(e.code, Code::Unknown);
    assert!(e.message.contains("non-zero code: 2"));
    assert!(rig.images.tags.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_frontends_exporters_and_methods_are_named() {
    let mut rig = rig("s3").await;
    let call = |r: pb::SolveRequest| {
        let mut g = rig.grpc.clone();
        async move {
            call_unary::<_, pb::SolveResponse>(&mut g, "/moby.buildkit.v1.Control/Solve", &[], &r)
                .await
                .unwrap_err()
        }
    };
    let e = call(solve_req("x1", "s3", "bogus")).await;
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("\"bogus\""), "{}", e.message);
    let e = call(solve_req("x2", "s3", "tar")).await;
    assert_eq!(e.code, Code::Unimplemented);
    assert!(e.message.contains("\"tar\""), "{}", e.message);
    let mut r = solve_req("x3", "s3", "moby");
    r.frontend = "gateway.v0".into();
    let e = call(r).await;
    assert_eq!(e.code, Code::Unimplemented);
    assert!(e.message.contains("gateway.v0"));
    let mut r = solve_req("x4", "s3", "moby");
    r.definition = Some(vec![]);
    assert_eq!(call(r).await.code, Code::Unimplemented);

    let e = call_unary::<_, gw::SolveResponse>(
        &mut rig.grpc,
        "/moby.buildkit.v1.frontend.LLBBridge/Solve",
        &[],
        &gw::SolveRequest::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.code,
        Code::InvalidArgument,
        "a bridge call names its build"
    );
    let e = call_unary::<_, gw::PingRequest>(
        &mut rig.grpc,
        "/moby.buildkit.v1.Control/ListenBuildHistory",
        &[],
        &gw::PingRequest {},
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, Code::Unimplemented);
    assert!(e.message.contains("ListenBuildHistory"));
    let w: pb::ListWorkersResponse = call_unary(
        &mut rig.grpc,
        "/moby.buildkit.v1.Control/ListWorkers",
        &[],
        &pb::ListWorkersRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(w.record[0].platforms[0].os, "linux");
    // `docker buildx du`: the builder's cache entries as usage records.
    let du: pb::DiskUsageResponse = call_unary(
        &mut rig.grpc,
        "/moby.buildkit.v1.Control/DiskUsage",
        &[],
        &pb::DiskUsageRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(du.record.len(), 1);
    let r = &du.record[0];
    assert_eq!(
        (r.id.as_str(), r.size, r.usage_count),
        ("step-cache-1", 4096, 2)
    );
    assert_eq!(r.description, "RUN make");
    assert_eq!(r.created_at.as_ref().map(|t| t.seconds), Some(1767323045));
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_build() {
    let rig = rig("s4").await;
    let mut g = rig.grpc.clone();
    let mut req = solve_req("r4", "s4", "moby");
    req.frontend = "dockerfile.v0".into();
    req.frontend_attrs = HashMap::from([("build-arg:HANG".to_string(), "1".to_string())]);
    let solve = tokio::spawn(async move {
        call_unary::<_, pb::SolveResponse>(&mut g, "/moby.buildkit.v1.Control/Solve", &[], &req)
            .await
    });
    // The build is running (its stream never ends) when the client's connection drops.
    for _ in 0..200 {
        if !rig.images.builds.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(rig.images.builds.lock().unwrap().len(), 1);
    assert!(!rig.images.dropped.load(std::sync::atomic::Ordering::SeqCst));
    rig.client_conn.abort();
    drop(rig.grpc);
    solve.abort();
    for _ in 0..200 {
        if rig.images.dropped.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the build went on after its client went away");
}

#[test]
fn names_split_into_repository_and_tag() {
    assert_eq!(split_name("app").unwrap(), ("app".into(), "latest".into()));
    assert_eq!(
        split_name("docker.io/library/app:v1").unwrap(),
        ("docker.io/library/app".into(), "v1".into())
    );
    assert_eq!(
        split_name("localhost:5000/app").unwrap(),
        ("localhost:5000/app".into(), "latest".into())
    );
    assert!(split_name("app@sha256:abcd").is_err());
    let _ = mode::DIR;
}
