//! Client sessions (`POST /session`): the client hijacks the connection and *serves* gRPC on
//! it (file sync, auth, secrets, ssh); berth is the HTTP/2 client. Sessions are registered by
//! their UUID for the builds that name them, and gone when the connection closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use hyper::client::conn::http2::SendRequest;
use hyper::header::HeaderMap;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};

use berth_api_types::ByteStream;

use crate::diffcopy::PacketConn;
use crate::grpc::{self, Body, Code, Status};
use crate::proto::fsutil::Packet;

pub const HEADER_UUID: &str = "x-docker-expose-session-uuid";
pub const HEADER_NAME: &str = "x-docker-expose-session-name";
pub const HEADER_SHARED_KEY: &str = "x-docker-expose-session-sharedkey";
pub const HEADER_METHOD: &str = "x-docker-expose-session-grpc-method";

pub const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";
pub const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";
pub const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";
pub const FILE_SEND: &str = "/moby.filesync.v1.FileSend/DiffCopy";
/// The metadata naming which of a solve's exporters a `FileSend` call is for.
const EXPORTER_ID: &str = "buildkit-attachable-exporter-id";
pub const CHECK_AGENT: &str = "/moby.sshforward.v1.SSH/CheckAgent";
pub const FORWARD_AGENT: &str = "/moby.sshforward.v1.SSH/ForwardAgent";
/// The metadata naming which forwarded agent a `ForwardAgent` stream is for.
const SSH_ID: &str = "buildkit.ssh.id";

/// One live session.
#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub name: String,
    /// What the client says sessions of the same directories share (BuildKit's shared key:
    /// what berth kept of their last sync is reused).
    pub shared_key: String,
    /// The gRPC methods the client serves (`/moby.filesync.v1.FileSync/DiffCopy`, …).
    pub methods: Vec<String>,
    send: SendRequest<Body>,
}

impl Session {
    pub fn supports(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    }

    /// The secret `id` from the client (`moby.buildkit.secrets.v1.Secrets/GetSecret`); None
    /// when the client has no such secret or serves no secrets at all.
    pub async fn get_secret(&self, id: &str) -> Result<Option<Vec<u8>>, Status> {
        if !self.supports(GET_SECRET) {
            return Ok(None);
        }
        let req = crate::proto::secrets::GetSecretRequest {
            id: id.to_string(),
            ..Default::default()
        };
        let mut send = self.send.clone();
        match grpc::call_unary::<_, crate::proto::secrets::GetSecretResponse>(
            &mut send,
            GET_SECRET,
            &[],
            &req,
        )
        .await
        {
            Ok(r) => Ok(Some(r.data)),
            Err(s) if s.code == Code::NotFound => Ok(None),
            Err(s) => Err(Status::new(
                s.code,
                format!("read secret {id} from the client: {}", s.message),
            )),
        }
    }

    /// The client's login for registry `host` (`moby.filesync.v1.Auth/Credentials`) as an
    /// `X-Registry-Auth` value; None when it has none or serves no auth.
    pub async fn registry_auth(&self, host: &str) -> Result<Option<String>, Status> {
        use base64::Engine as _;
        if !self.supports(CREDENTIALS) {
            return Ok(None);
        }
        let req = crate::proto::secrets::CredentialsRequest {
            host: host.to_string(),
        };
        let mut send = self.send.clone();
        let r = grpc::call_unary::<_, crate::proto::secrets::CredentialsResponse>(
            &mut send,
            CREDENTIALS,
            &[],
            &req,
        )
        .await
        .map_err(|s| {
            Status::new(
                s.code,
                format!("read the login for {host} from the client: {}", s.message),
            )
        })?;
        if r.secret.is_empty() {
            return Ok(None);
        }
        // An empty username means the secret is an identity token (BuildKit's authprovider).
        let json = if r.username.is_empty() {
            serde_json::json!({ "identitytoken": r.secret, "serveraddress": host })
        } else {
            serde_json::json!({ "username": r.username, "password": r.secret, "serveraddress": host })
        };
        Ok(Some(
            base64::engine::general_purpose::URL_SAFE.encode(json.to_string()),
        ))
    }

    /// Whether the client forwards the SSH agent `id` (`moby.sshforward.v1.SSH/CheckAgent`;
    /// the client answers an error for an ID it does not know). False when it forwards none.
    pub async fn has_agent(&self, id: &str) -> Result<bool, Status> {
        if !self.supports(CHECK_AGENT) {
            return Ok(false);
        }
        let req = crate::proto::sshforward::CheckAgentRequest { id: id.to_string() };
        let mut send = self.send.clone();
        match grpc::call_unary::<_, crate::proto::sshforward::CheckAgentResponse>(
            &mut send,
            CHECK_AGENT,
            &[],
            &req,
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code == Code::Unavailable => Err(Status::unavailable(format!(
                "ask the client for SSH agent {id}: {}",
                s.message
            ))),
            Err(_) => Ok(false),
        }
    }

    /// A new connection to the client's SSH agent `id` (`ForwardAgent`, a stream of byte
    /// chunks each way), as the near end of an in-memory pipe.
    pub async fn forward_agent(&self, id: &str) -> Result<tokio::io::DuplexStream, Status> {
        use crate::proto::sshforward::BytesMessage;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (tx, rx) = mpsc::channel::<BytesMessage>(16);
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|m| (grpc::frame(&m), rx))
        });
        let md = [(SSH_ID.to_string(), id.to_string())];
        let req = grpc::request(FORWARD_AGENT, &md, frames);
        let mut send = self.ready().await?;
        // The client answers (headers included) only once the agent has something to say,
        // which needs the request's bytes first: the answer is awaited by the pump, not here.
        let answer = send.send_request(req);
        let (near, far) = tokio::io::duplex(64 << 10);
        let (mut rd, mut wr) = tokio::io::split(far);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 << 10];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let chunk = BytesMessage {
                    data: buf[..n].to_vec(),
                };
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            // Dropping `tx` ends the request stream: the client's CloseSend.
        });
        let session = self.id.clone();
        tokio::spawn(async move {
            let msgs = match answer.await {
                Ok(r) => grpc::response_messages(r),
                Err(e) => Err(Status::unavailable(e.to_string())),
            };
            let mut msgs = match msgs {
                Ok(m) => m,
                Err(s) => {
                    tracing::warn!(session, "forward the SSH agent: {}", s.message);
                    return;
                }
            };
            while let Ok(Some(m)) = msgs.next::<BytesMessage>().await {
                if wr.write_all(&m.data).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        Ok(near)
    }

    /// Open `moby.filesync.v1.FileSync/DiffCopy` for directory `dir` (`context`,
    /// `dockerfile`, …), with the client-side filters as metadata.
    pub async fn diff_copy(
        &self,
        dir: &str,
        follow_paths: &[String],
        exclude_patterns: &[String],
    ) -> Result<PacketConn, Status> {
        self.require(DIFF_COPY)?;
        let mut md = vec![("dir-name".to_string(), dir.to_string())];
        md.extend(
            follow_paths
                .iter()
                .map(|p| ("followpaths".into(), p.clone())),
        );
        md.extend(
            exclude_patterns
                .iter()
                .map(|p| ("exclude-patterns".into(), p.clone())),
        );
        self.packets(DIFF_COPY, &encode_metadata(md)).await
    }

    /// Open `moby.filesync.v1.FileSend/DiffCopy` for the solve's exporter `exporter` (its
    /// index): berth sends the client a directory as fsutil's sender.
    pub async fn file_send_dir(&self, exporter: usize) -> Result<PacketConn, Status> {
        self.require(FILE_SEND)?;
        let md = [(EXPORTER_ID.to_string(), exporter.to_string())];
        self.packets(FILE_SEND, &md).await
    }

    /// Send the client one file (`FileSend/DiffCopy` as a stream of byte chunks) for the
    /// solve's exporter `exporter`; done when the client has taken it all.
    pub async fn file_send(&self, exporter: usize, mut data: ByteStream) -> Result<u64, Status> {
        use crate::proto::sshforward::BytesMessage;
        self.require(FILE_SEND)?;
        let md = [(EXPORTER_ID.to_string(), exporter.to_string())];
        let (tx, rx) = mpsc::channel::<BytesMessage>(8);
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|m| (grpc::frame(&m), rx))
        });
        let mut send = self.ready().await?;
        let answer = send.send_request(grpc::request(FILE_SEND, &md, frames));
        let feed = async move {
            let mut sent = 0u64;
            while let Some(chunk) = data.next().await {
                let chunk = chunk.map_err(|e| Status::internal(format!("export: {e}")))?;
                // BuildKit's writer keeps messages under 3 MiB.
                for part in chunk.chunks(1 << 20) {
                    sent += part.len() as u64;
                    let m = BytesMessage {
                        data: part.to_vec(),
                    };
                    if tx.send(m).await.is_err() {
                        return Err(Status::unavailable("the client stopped taking the export"));
                    }
                }
            }
            Ok(sent)
        };
        let taken = async {
            let resp = answer
                .await
                .map_err(|e| Status::unavailable(format!("session {}: {e}", self.id)))?;
            let mut msgs = grpc::response_messages(resp)?;
            while msgs.next::<BytesMessage>().await?.is_some() {}
            Ok::<_, Status>(())
        };
        let (sent, taken) = tokio::join!(feed, taken);
        taken?;
        sent
    }

    fn require(&self, method: &str) -> Result<(), Status> {
        if self.supports(method) {
            return Ok(());
        }
        Err(Status::unimplemented(format!(
            "the client's session {} does not serve {method}",
            self.id
        )))
    }

    /// The connection, ready for a new stream.
    async fn ready(&self) -> Result<SendRequest<Body>, Status> {
        let mut send = self.send.clone();
        send.ready()
            .await
            .map_err(|e| Status::unavailable(format!("session {} is gone: {e}", self.id)))?;
        Ok(send)
    }

    /// A stream of fsutil packets each way on `path`.
    async fn packets(&self, path: &str, md: &[(String, String)]) -> Result<PacketConn, Status> {
        let (tx, rx) = mpsc::channel::<Packet>(64);
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|p| (grpc::frame(&p), rx))
        });
        let req = grpc::request(path, md, frames);
        let mut send = self.ready().await?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| Status::unavailable(format!("session {}: {e}", self.id)))?;
        let rx = crate::diffcopy::packets_of(grpc::response_messages(resp)?);
        Ok(PacketConn { tx, rx })
    }
}

/// A forwarded SSH agent of a session, as the builder reaches it.
pub struct SessionAgent {
    pub session: Session,
    pub id: String,
}

#[async_trait::async_trait]
impl berth_api_types::SshAgent for SessionAgent {
    async fn connect(&self) -> std::io::Result<tokio::io::DuplexStream> {
        self.session
            .forward_agent(&self.id)
            .await
            .map_err(|s| std::io::Error::other(s.message))
    }
}

/// BuildKit's `encodeOpts`: when any value of a key is not plain printable ASCII, every value
/// of that key is URL-query-escaped and the key gets a `<key>-encoded: 1` companion.
fn encode_metadata(md: Vec<(String, String)>) -> Vec<(String, String)> {
    let plain = |v: &str| v.bytes().all(|b| (0x20..0x7f).contains(&b));
    let mut encoded: Vec<String> = vec![];
    for (k, v) in &md {
        if !plain(v) && !encoded.contains(k) {
            encoded.push(k.clone());
        }
    }
    let escape = |v: &str| {
        let mut e = String::new();
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                e.push(b as char);
            } else {
                e.push_str(&format!("%{b:02X}"));
            }
        }
        e
    };
    let mut out: Vec<(String, String)> = md
        .into_iter()
        .map(|(k, v)| {
            if encoded.contains(&k) {
                let e = escape(&v);
                (k, e)
            } else {
                (k, v)
            }
        })
        .collect();
    out.extend(
        encoded
            .into_iter()
            .map(|k| (format!("{k}-encoded"), "1".into())),
    );
    out
}

/// The live sessions, by UUID.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    changed: Notify,
}

impl Sessions {
    /// The session `id`, waiting up to `wait` for its client to connect it.
    pub async fn get(&self, id: &str, wait: Duration) -> Result<Session, Status> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(s) = self.live.lock().ok().and_then(|m| m.get(id).cloned()) {
                return Ok(s);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Status::new(
                    Code::FailedPrecondition,
                    format!("no active session for {id}: the client did not connect it"),
                ));
            }
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.live
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Serve one hijacked `/session` connection until it closes: berth speaks HTTP/2 as the
    /// client on it.
    pub async fn serve<IO>(self: Arc<Self>, io: IO, headers: HeaderMap) -> Result<(), Status>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let id = grpc::metadata(&headers, HEADER_UUID)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Status::invalid(format!("a session needs the {HEADER_UUID} header")))?
            .to_string();
        // File sync streams the whole context through this connection: wider flow-control
        // windows than hyper's default 64 KiB, which stalls the client between updates.
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(8 << 20)
            .handshake::<_, Body>(TokioIo::new(io))
            .await
            .map_err(|e| Status::unavailable(format!("session {id}: HTTP/2 handshake: {e}")))?;
        let session = Session {
            id: id.clone(),
            name: grpc::metadata(&headers, HEADER_NAME)
                .unwrap_or_default()
                .to_string(),
            shared_key: grpc::metadata(&headers, HEADER_SHARED_KEY)
                .unwrap_or_default()
                .to_string(),
            methods: headers
                .get_all(HEADER_METHOD)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect(),
            send,
        };
        {
            let mut live = self
                .live
                .lock()
                .map_err(|_| Status::internal("session registry poisoned"))?;
            if live.contains_key(&id) {
                return Err(Status::new(
                    Code::AlreadyExists,
                    format!("session {id} is already connected"),
                ));
            }
            live.insert(id.clone(), session);
        }
        self.changed.notify_waiters();
        tracing::debug!(session = %id, "buildkit session connected");
        let r = conn.await;
        if let Ok(mut live) = self.live.lock() {
            live.remove(&id);
        }
        self.changed.notify_waiters();
        tracing::debug!(session = %id, "buildkit session closed");
        r.map_err(|e| Status::unavailable(format!("session {id}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_encoded_as_buildkit_decodes_it() {
        let md = encode_metadata(vec![
            ("dir-name".into(), "context".into()),
            ("exclude-patterns".into(), "*.log".into()),
            ("exclude-patterns".into(), "naïve".into()),
        ]);
        assert_eq!(
            md,
            [
                ("dir-name".to_string(), "context".to_string()),
                ("exclude-patterns".into(), "%2A.log".into()),
                ("exclude-patterns".into(), "na%C3%AFve".into()),
                ("exclude-patterns-encoded".into(), "1".into()),
            ]
        );
    }
}
