//! berth's BuildKit API on a real daemon, driven by a client written here the way buildx
//! drives it (buildx itself is not installable on this machine, and Compose has no
//! `--output`): `POST /session` upgraded to h2c with the client serving file sync and
//! `FileSend`, `POST /grpc` with `Control.Solve` running `dockerfile.v0`, and the `local` and
//! `tar` exporters sending the built image's filesystem back — regular files, hard links,
//! symlinks — with nothing left mounted afterwards.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use berth_buildkit::diffcopy::{receive_to_vec, Limits, PacketConn};
use berth_buildkit::grpc::{self, Status};
use berth_buildkit::proto::control as pb;
use berth_buildkit::proto::sshforward::BytesMessage;
use berth_buildkit::{sender, session};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::common::cli::Daemon;

/// `POST path` upgraded to h2c, as the docker CLI's BuildKit client asks for it.
async fn upgrade(sock: &Path, path: &str, headers: &[(&str, &str)]) -> UnixStream {
    let mut s = UnixStream::connect(sock).await.unwrap();
    let mut req =
        format!("POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    // Byte by byte: what follows the head is already the other side's HTTP/2.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.unwrap());
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{path}: {head}");
    s
}

/// The client's side of a session: the context it serves and what it received.
#[derive(Default)]
struct Client {
    /// The next export is a directory (`local`), not one file.
    want_dir: AtomicBool,
    /// `tar`: the one file's bytes.
    file: Mutex<Vec<u8>>,
    /// `local`: the directory, as the tar berth's receiver makes of what arrived.
    dir: Mutex<Option<Vec<u8>>>,
}

/// Serve the session: the context (one tar file, indexed for fsutil's sender) for every
/// directory asked for, and the exports.
async fn serve_session(io: UnixStream, context_tar: PathBuf, client: Arc<Client>) {
    let entries = Arc::new(sender::index(&context_tar).unwrap());
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (entries, tar, client) = (entries.clone(), context_tar.clone(), client.clone());
        async move {
            Ok::<_, Infallible>(match req.uri().path() {
                session::DIFF_COPY => {
                    let (conn, response) = PacketConn::serve(req);
                    tokio::spawn(async move {
                        let _ = sender::send(conn, &tar, &entries).await;
                    });
                    response
                }
                session::FILE_SEND if client.want_dir.load(Ordering::SeqCst) => {
                    let (conn, response) = PacketConn::serve(req);
                    tokio::spawn(async move {
                        let got = receive_to_vec(conn, Limits::default()).await.unwrap();
                        *client.dir.lock().unwrap() = Some(got);
                    });
                    response
                }
                session::FILE_SEND => {
                    let mut m = grpc::Messages::new(req.into_body());
                    while let Some(chunk) = m.next::<BytesMessage>().await.unwrap() {
                        client.file.lock().unwrap().extend_from_slice(&chunk.data);
                    }
                    grpc::unary(Ok(BytesMessage::default()))
                }
                other => grpc::error_response(&Status::unimplemented(other.to_string())),
            })
        }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// A tar of the context directory `dir`.
fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

/// Regular files, links and dirs of a tar: path → content, `-> target` or `=> hard target`.
fn listing(tar_bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    use std::io::Read;
    let mut out = std::collections::BTreeMap::new();
    for e in tar::Archive::new(tar_bytes).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let what = match e.header().entry_type() {
            tar::EntryType::Regular => {
                let mut v = vec![];
                e.read_to_end(&mut v).unwrap();
                format!(
                    "{} bytes: {}",
                    v.len(),
                    String::from_utf8_lossy(&v[..v.len().min(16)])
                )
            }
            tar::EntryType::Symlink => format!("-> {}", e_link(&e)),
            tar::EntryType::Link => format!("=> {}", e_link(&e)),
            tar::EntryType::Directory => "dir".into(),
            t => format!("{t:?}"),
        };
        out.insert(path, what);
    }
    out
}

fn e_link<R: std::io::Read>(e: &tar::Entry<'_, R>) -> String {
    e.link_name()
        .unwrap()
        .map(|l| l.to_string_lossy().trim_start_matches("./").to_string())
        .unwrap_or_default()
}

#[test]
fn a_buildkit_client_builds_and_exports_to_local_and_tar() {
    let t = "a_buildkit_client_builds_and_exports_to_local_and_tar";
    let Some(d) = Daemon::start(t) else {
        return;
    };
    let ctx = d.dir.path().join("bk-context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY hello.txt /hello.txt\n\
         RUN echo built > /built.txt && ln /built.txt /hard.txt && ln -s /built.txt /soft.txt\n",
    )
    .unwrap();
    std::fs::write(ctx.join("hello.txt"), "from the client\n").unwrap();
    let context_tar = d.dir.path().join("bk-context.tar");
    tar_dir(&ctx, &context_tar);
    let sock = d.sock();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (local, file) = rt.block_on(async {
        let client = Arc::new(Client::default());
        let id = format!("bk{}", d.tag);
        let s = upgrade(
            &sock,
            "/session",
            &[
                (session::HEADER_UUID, &id),
                (session::HEADER_NAME, "e2e"),
                (session::HEADER_METHOD, session::DIFF_COPY),
                (session::HEADER_METHOD, session::FILE_SEND),
            ],
        )
        .await;
        tokio::spawn(serve_session(s, context_tar.clone(), client.clone()));
        let g = upgrade(&sock, "/grpc", &[]).await;
        let (send, conn) = hyper::client::conn::http2::handshake::<_, _, grpc::Body>(
            TokioExecutor::new(),
            TokioIo::new(g),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let solve = |r: &str, exporter: &str| {
            let req = pb::SolveRequest {
                r#ref: format!("{r}{}", d.tag),
                session: id.clone(),
                frontend: "dockerfile.v0".into(),
                exporters: vec![pb::Exporter {
                    r#type: exporter.into(),
                    attrs: Default::default(),
                }],
                ..Default::default()
            };
            let mut send = send.clone();
            async move {
                grpc::call_unary::<_, pb::SolveResponse>(
                    &mut send,
                    "/moby.buildkit.v1.Control/Solve",
                    &[],
                    &req,
                )
                .await
            }
        };
        client.want_dir.store(true, Ordering::SeqCst);
        let r = solve("local", "local").await.unwrap();
        assert!(r.exporter_response["containerimage.digest"].starts_with("sha256:"));
        let mut local = None;
        for _ in 0..200 {
            local = client.dir.lock().unwrap().clone();
            if local.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        client.want_dir.store(false, Ordering::SeqCst);
        solve("tar", "tar").await.unwrap();
        let file = client.file.lock().unwrap().clone();
        (local.expect("the local export arrived"), file)
    });
    for (what, tar) in [("local", &local), ("tar", &file)] {
        let l = listing(tar);
        assert_eq!(l["hello.txt"], "16 bytes: from the client\n", "{what}");
        assert_eq!(l["soft.txt"], "-> /built.txt", "{what}");
        // The hard link stays one: whichever of the two comes first holds the bytes.
        let (a, b) = (&l["built.txt"], &l["hard.txt"]);
        assert!(
            (a == "6 bytes: built\n" && b == "=> built.txt")
                || (b == "6 bytes: built\n" && a == "=> hard.txt"),
            "{what}: {a} / {b}"
        );
        assert!(
            l["bin/busybox"].contains("bytes"),
            "{what}: {:?}",
            l.get("bin/busybox")
        );
        assert_eq!(l["etc"], "dir", "{what}");
    }
    // The image's filesystem was mounted only while it was read.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = d.dir.path().display().to_string();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&root) && l.contains("build-")),
        "a scratch layer is still mounted:\n{mounts}"
    );
    d.finish();
}
