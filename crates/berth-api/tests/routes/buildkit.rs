//! `/grpc` and `/session`: the h2c upgrades BuildKit clients hijack, served on a real loopback
//! listener (an upgrade needs a connection, not a oneshot).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use berth_api::listen::{serve, Limits, Listener};
use berth_buildkit::grpc::{call_unary, Code};
use berth_buildkit::proto::control as pb;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::setup;

async fn server() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (_, app) = setup();
    tokio::spawn(serve(
        Listener::Tcp(l, None),
        app,
        Limits::default(),
        async {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// Send `head` and read the response head (up to the blank line).
async fn request_head(addr: std::net::SocketAddr, head: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.push(b[0]);
    }
    (s, String::from_utf8_lossy(&got).to_lowercase())
}

#[tokio::test]
async fn grpc_upgrades_to_h2c_and_serves_buildkit_control() {
    let (addr, _stop) = server().await;
    let (s, head) = request_head(
        addr,
        "POST /v1.47/grpc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: h2c"), "{head}");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake::<_, _, berth_buildkit::grpc::Body>(
            TokioExecutor::new(),
            TokioIo::new(s),
        )
        .await
        .unwrap();
    tokio::spawn(conn);
    let w: pb::ListWorkersResponse = call_unary(
        &mut send,
        "/moby.buildkit.v1.Control/ListWorkers",
        &[],
        &pb::ListWorkersRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(w.record[0].id, "berth");
    let bad = pb::SolveRequest {
        r#ref: "r".into(),
        exporters: vec![pb::Exporter {
            r#type: "floppy".into(),
            attrs: HashMap::new(),
        }],
        ..Default::default()
    };
    let e =
        call_unary::<_, pb::SolveResponse>(&mut send, "/moby.buildkit.v1.Control/Solve", &[], &bad)
            .await
            .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("floppy"), "{}", e.message);
}

#[tokio::test]
async fn session_upgrade_lets_a_build_call_the_clients_file_sync() {
    let (addr, _stop) = server().await;
    let (s, head) = request_head(
        addr,
        "POST /v1.47/session HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
         X-Docker-Expose-Session-Uuid: sess-route\r\nX-Docker-Expose-Session-Name: t\r\n\
         X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy\r\n\
         Content-Length: 0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // The client's side: an HTTP/2 server refusing every directory, recording what is asked.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let dir = req
                .headers()
                .get("dir-name")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let _ = seen_tx.send(format!("{} {dir}", req.uri().path()));
            async move {
                Ok::<_, Infallible>(berth_buildkit::grpc::error_response(
                    &berth_buildkit::grpc::Status::not_found(format!(
                        "no access allowed to dir {dir:?}"
                    )),
                ))
            }
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(s), svc)
            .await;
    });
    // A direct dockerfile.v0 solve naming the session reads the Dockerfile through it.
    let (g, head) = request_head(
        addr,
        "POST /grpc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake::<_, _, berth_buildkit::grpc::Body>(
            TokioExecutor::new(),
            TokioIo::new(g),
        )
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = pb::SolveRequest {
        r#ref: "direct".into(),
        session: "sess-route".into(),
        frontend: "dockerfile.v0".into(),
        ..Default::default()
    };
    let e =
        call_unary::<_, pb::SolveResponse>(&mut send, "/moby.buildkit.v1.Control/Solve", &[], &req)
            .await
            .unwrap_err();
    assert_eq!(e.code, Code::NotFound, "{e}");
    assert!(e
        .message
        .contains("no access allowed to dir \"dockerfile\""));
    assert_eq!(
        seen_rx.recv().await.unwrap(),
        "/moby.filesync.v1.FileSync/DiffCopy dockerfile"
    );
}

#[tokio::test]
async fn without_the_h2c_upgrade_or_a_session_id_the_request_is_refused() {
    let (addr, _stop) = server().await;
    for (head, needle) in [
        (
            "POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "no upgrade proto",
        ),
        (
            "POST /session HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n",
            "protocol websocket not supported",
        ),
        (
            "POST /session HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
            "x-docker-expose-session-uuid",
        ),
    ] {
        let (mut s, got) = request_head(addr, head).await;
        assert!(got.starts_with("http/1.1 400"), "{got}");
        let mut body = vec![0u8; 512];
        let n = s.read(&mut body).await.unwrap();
        let body = String::from_utf8_lossy(&body[..n]).to_lowercase();
        assert!(body.contains(needle), "{body}");
    }
}
