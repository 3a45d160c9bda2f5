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
    /// Pushes: (name, tag, registry auth).
    pushes: Mutex<Vec<(String, String, Option<String>)>>,
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
    async fn save(&self, names: Vec<String>) -> ApiResult<ByteStream> {
        let b = Bytes::from(format!("ARCHIVE OF {}", names.join(",")));
        Ok(Box::pin(futures::stream::iter([Ok(b)])))
    }
    async fn export_rootfs(&self, name: &str) -> ApiResult<ByteStream> {
        assert_eq!(name, IMAGE);
        Ok(Box::pin(futures::stream::iter([Ok(Bytes::from(
            rootfs_tar(),
        ))])))
    }
    async fn push(&self, o: berth_api_types::PushOptions) -> ApiResult<JsonStream> {
        self.pushes
            .lock()
            .unwrap()
            .push((o.name.clone(), o.tag.clone(), o.registry_auth.clone()));
        let mut msgs = vec![JsonMessage::stream("pushed\n")];
        if o.name.contains("denied") {
            msgs.push(JsonMessage::error("denied: requested access is refused"));
        }
        Ok(Box::pin(futures::stream::iter(msgs)))
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

/// The built image's filesystem: a dir, a file in it, a symlink to it.
fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(vec![]);
    for (path, kind, data, link) in [
        ("etc/", tar::EntryType::Directory, &b""[..], ""),
        ("etc/hello", tar::EntryType::Regular, &b"hi there"[..], ""),
        ("link", tar::EntryType::Symlink, &b""[..], "etc/hello"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// What the fake client received through `FileSend` (an export), by how it was sent.
#[derive(Default)]
struct Received {
    /// Byte chunks (`tar`, `docker`, `oci`), concatenated.
    bytes: Vec<u8>,
    /// A directory (`local`), as the tar berth's own receiver makes of it.
    dir: Vec<u8>,
}

/// The client's `FileSend/DiffCopy`: a file as byte chunks, or (`dir` set) a directory as
/// fsutil's receiver.
async fn serve_file_send(
    req: hyper::Request<Incoming>,
    dir: bool,
    got: Arc<Mutex<Received>>,
) -> hyper::Response<crate::grpc::Body> {
    assert_eq!(
        crate::grpc::metadata(req.headers(), "buildkit-attachable-exporter-id"),
        Some("0")
    );
    if !dir {
        let mut incoming = Messages::new(req.into_body());
        while let Some(m) = incoming
            .next::<crate::proto::sshforward::BytesMessage>()
            .await
            .unwrap()
        {
            got.lock().unwrap().bytes.extend_from_slice(&m.data);
        }
        return crate::grpc::unary(Ok(crate::proto::sshforward::BytesMessage::default()));
    }
    let (conn, response) = crate::diffcopy::PacketConn::serve(req);
    tokio::spawn(async move {
        let tar = crate::diffcopy::receive_to_vec(conn, crate::diffcopy::Limits::default())
            .await
            .unwrap();
        got.lock().unwrap().dir = tar;
    });
    response
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
    /// What the client received through `FileSend`, and whether it takes a directory.
    received: Arc<Mutex<Received>>,
    takes_dir: Arc<std::sync::atomic::AtomicBool>,
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
    headers.append(session::HEADER_METHOD, session::FILE_SEND.parse().unwrap());
    tokio::spawn(kit.sessions.clone().serve(ours, headers));
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let received: Arc<Mutex<Received>> = Arc::default();
    let takes_dir: Arc<std::sync::atomic::AtomicBool> = Arc::default();
    let (a2, r2, d2) = (asked.clone(), received.clone(), takes_dir.clone());
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            let (a, r, d) = (a2.clone(), r2.clone(), d2.clone());
            async move {
                Ok::<_, Infallible>(if req.uri().path() == session::GET_SECRET {
                    serve_secret(req).await
                } else if req.uri().path() == session::CREDENTIALS {
                    serve_credentials(req).await
                } else if req.uri().path() == session::FILE_SEND {
                    serve_file_send(req, d.load(std::sync::atomic::Ordering::SeqCst), r).await
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
        received,
        takes_dir,
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
    let mut r = solve_req("x2", "s3", "image");
    r.exporters[0].attrs = HashMap::from([("push".to_string(), "true".to_string())]);
    let e = call(r).await;
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.message.contains("push=true needs a name"),
        "{}",
        e.message
    );
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

/// A `Control.Solve` running the `dockerfile.v0` frontend itself, exporting with `exporter`.
async fn solve_exporting(
    rig: &Rig,
    r: &str,
    session: &str,
    exporter: &str,
    attrs: &[(&str, &str)],
) -> Result<pb::SolveResponse, crate::grpc::Status> {
    let mut req = solve_req(r, session, exporter);
    req.frontend = "dockerfile.v0".into();
    req.exporters[0].attrs = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut g = rig.grpc.clone();
    call_unary(&mut g, "/moby.buildkit.v1.Control/Solve", &[], &req).await
}

/// The regular files and symlinks of a tar: path → content or `-> target`.
fn tar_listing(tar_bytes: &[u8]) -> Vec<(String, String)> {
    use std::io::Read;
    let mut out = vec![];
    for e in tar::Archive::new(tar_bytes).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let what = match e.header().entry_type() {
            tar::EntryType::Regular => {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                s
            }
            tar::EntryType::Symlink => {
                format!("-> {}", e.link_name().unwrap().unwrap().display())
            }
            tar::EntryType::Directory => "dir".into(),
            t => format!("{t:?}"),
        };
        out.push((path, what));
    }
    out.sort();
    out
}

#[tokio::test]
async fn exporters_send_the_image_or_its_filesystem_back_to_the_client() {
    let rig = rig("sx").await;
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // tar: the filesystem as one tar, byte for byte what the image service exported.
    let resp = solve_exporting(&rig, "e1", "sx", "tar", &[]).await.unwrap();
    assert_eq!(resp.exporter_response["containerimage.digest"], IMAGE);
    assert_eq!(
        std::mem::take(&mut rig.received.lock().unwrap().bytes),
        rootfs_tar()
    );

    // docker / oci: the saved archive of the image under its names.
    solve_exporting(&rig, "e2", "sx", "docker", &[("name", "out:1")])
        .await
        .unwrap();
    assert_eq!(
        std::mem::take(&mut rig.received.lock().unwrap().bytes),
        b"ARCHIVE OF out:1"
    );
    assert!(rig.images.tags.lock().unwrap().contains(&(
        IMAGE.to_string(),
        "out".to_string(),
        "1".to_string()
    )));
    solve_exporting(&rig, "e3", "sx", "oci", &[]).await.unwrap();
    assert_eq!(
        std::mem::take(&mut rig.received.lock().unwrap().bytes),
        format!("ARCHIVE OF {IMAGE}").as_bytes()
    );

    // local: the files themselves, through fsutil's protocol (berth's receiver on the
    // client's side here), symlinks kept.
    rig.takes_dir
        .store(true, std::sync::atomic::Ordering::SeqCst);
    solve_exporting(&rig, "e4", "sx", "local", &[])
        .await
        .unwrap();
    let mut dir = vec![];
    for _ in 0..100 {
        dir = rig.received.lock().unwrap().dir.clone();
        if !dir.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        tar_listing(&dir),
        pairs(&[
            ("etc", "dir"),
            ("etc/hello", "hi there"),
            ("link", "-> etc/hello")
        ])
    );
}

#[tokio::test]
async fn push_true_pushes_each_name_with_the_clients_login() {
    let rig = rig("sp").await;
    solve_exporting(
        &rig,
        "p1",
        "sp",
        "image",
        &[
            ("name", "docker.io/team/app:2,127.0.0.1:5000/app"),
            ("push", "true"),
        ],
    )
    .await
    .unwrap();
    let pushes = rig.images.pushes.lock().unwrap().clone();
    assert_eq!(pushes.len(), 2);
    assert_eq!(
        (pushes[0].0.as_str(), pushes[0].1.as_str()),
        ("docker.io/team/app", "2")
    );
    // The client shares a login for Docker Hub only (see serve_credentials).
    assert!(pushes[0].2.is_some());
    assert_eq!(
        (pushes[1].0.as_str(), pushes[1].1.as_str(), &pushes[1].2),
        ("127.0.0.1:5000/app", "latest", &None)
    );
    // A refused push fails the solve with the registry's words.
    let e = solve_exporting(
        &rig,
        "p2",
        "sp",
        "image",
        &[("name", "denied/app"), ("push", "true")],
    )
    .await
    .unwrap_err();
    assert!(
        e.message.contains("requested access is refused"),
        "{}",
        e.message
    );
}
