//! berth-buildkit: BuildKit's API (what `docker buildx build` and `docker compose build` speak)
//! over berth's own builder. berth-api hands it the two hijacked connections dockerd serves:
//! `/grpc`, where berth serves `moby.buildkit.v1.Control` and the gateway bridge over HTTP/2
//! ([`serve_grpc`]), and `/session`, where the *client* serves file sync and berth calls it
//! ([`session::Sessions::serve`]); exports go back through it ([`sender`]). Builds run through berth-api-types' image service — the
//! same builder and cache as the classic `POST /build`.

pub mod context_cache;
pub mod control;
pub mod diffcopy;
pub mod frontend;
pub mod grpc;
pub mod progress;
pub mod proto;
pub mod sender;
pub mod session;

use std::convert::Infallible;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

pub use control::BuildKit;

/// Serve BuildKit's gRPC services on one hijacked `/grpc` connection (HTTP/2 without TLS)
/// until the client closes it.
pub async fn serve_grpc<IO>(kit: Arc<BuildKit>, io: IO) -> Result<(), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let kit = kit.clone();
        async move { Ok::<_, Infallible>(kit.dispatch(req).await) }
    });
    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc)
        .await
}
