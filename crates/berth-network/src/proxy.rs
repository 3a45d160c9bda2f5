//! The userland proxy for published ports DNAT cannot serve (as docker-proxy): IPv6 loopback
//! (`[::1]`: IPv6 has no `route_localnet`, so nothing can be translated out of `lo`) and IPv6
//! host addresses of a container without IPv6; it also answers `[::1]` for a port DNATed on
//! `::`. TCP connections are copied both ways with half-close; UDP datagrams are relayed per
//! client address, each flow ending after an idle timeout.
//!
//! A [`Proxy`] owns its bound socket: stopping it (or dropping it) closes the listener and
//! every connection it relays.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// How long a UDP flow lives without a datagram in either direction.
pub const UDP_IDLE: Duration = Duration::from_secs(60);
/// Most UDP flows per published port; datagrams of further clients are dropped meanwhile.
const MAX_UDP_FLOWS: usize = 1024;
/// How long a TCP connection to the container may take before the client is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running proxy for one published port. Dropping it stops it; [`Proxy::stop`] also waits
/// until its socket is closed, so the port can be published again right after.
#[derive(Debug)]
pub struct Proxy {
    task: JoinHandle<()>,
    local: SocketAddr,
}

impl Proxy {
    /// Relay every connection accepted on `listener` (bound, listening) to `target`.
    /// Must be called inside a tokio runtime.
    pub fn tcp(listener: std::net::TcpListener, target: SocketAddr) -> io::Result<Proxy> {
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let task = tokio::spawn(serve_tcp(listener, target));
        Ok(Proxy { task, local })
    }

    /// Relay datagrams arriving on `socket` to `target` and the replies back, one flow (and
    /// one socket towards `target`) per client address, ended after `idle` without traffic.
    /// Must be called inside a tokio runtime.
    pub fn udp(
        socket: std::net::UdpSocket,
        target: SocketAddr,
        idle: Duration,
    ) -> io::Result<Proxy> {
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let socket = UdpSocket::from_std(socket)?;
        let task = tokio::spawn(serve_udp(Arc::new(socket), target, idle));
        Ok(Proxy { task, local })
    }

    /// The host address and port the proxy serves.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stop the proxy and wait until its socket is closed (its connections are being
    /// dropped).
    pub async fn stop(mut self) {
        self.task.abort();
        // Resolves once the task's future (listener, connection set) has been dropped.
        let _ = (&mut self.task).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_tcp(listener: TcpListener, target: SocketAddr) {
    // Owned by this task: aborting it drops the set, which aborts every relay.
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    relays.spawn(relay_tcp(client, target));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(%target, error = %e, "port proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
        }
    }
}

/// Copy one connection both ways; an EOF from either side is passed on as a shutdown of the
/// other side's write half, and the relay ends when both directions have.
async fn relay_tcp(mut client: TcpStream, target: SocketAddr) {
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%target, error = %e, "port proxy: container refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%target, "port proxy: container did not answer");
            return;
        }
    };
    let mut upstream = upstream;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// One UDP client's flow: the socket connected to the container and when it last carried a
/// datagram.
struct Flow {
    upstream: Arc<UdpSocket>,
    last: Mutex<Instant>,
}

impl Flow {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
    fn idle_for(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>>;

fn unspecified_like(target: SocketAddr) -> SocketAddr {
    let ip = match target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

async fn serve_udp(down: Arc<UdpSocket>, target: SocketAddr, idle: Duration) {
    let flows: Flows = Arc::default();
    let mut replies = JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            got = down.recv_from(&mut buf) => {
                let Ok((n, client)) = got else { continue };
                let known = flows.lock().unwrap_or_else(|p| p.into_inner()).get(&client).cloned();
                let flow = match known {
                    Some(f) => f,
                    None => {
                        if flows.lock().unwrap_or_else(|p| p.into_inner()).len() >= MAX_UDP_FLOWS {
                            continue;
                        }
                        let Some(f) = open_flow(target).await else { continue };
                        flows
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(client, f.clone());
                        replies.spawn(relay_replies(
                            f.clone(),
                            down.clone(),
                            client,
                            idle,
                            flows.clone(),
                        ));
                        f
                    }
                };
                flow.touch();
                let _ = flow.upstream.send(&buf[..n]).await;
            }
            Some(_) = replies.join_next(), if !replies.is_empty() => {}
        }
    }
}

async fn open_flow(target: SocketAddr) -> Option<Arc<Flow>> {
    let s = UdpSocket::bind(unspecified_like(target)).await.ok()?;
    s.connect(target).await.ok()?;
    Some(Arc::new(Flow {
        upstream: Arc::new(s),
        last: Mutex::new(Instant::now()),
    }))
}

/// Send the container's replies of one flow back to its client until the flow is idle.
async fn relay_replies(
    flow: Arc<Flow>,
    down: Arc<UdpSocket>,
    client: SocketAddr,
    idle: Duration,
    flows: Flows,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let wait = idle.saturating_sub(flow.idle_for());
        if wait.is_zero() {
            break;
        }
        match tokio::time::timeout(wait, flow.upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                flow.touch();
                let _ = down.send_to(&buf[..n], client).await;
            }
            // An ICMP error (port unreachable) for an earlier datagram: the flow stays.
            Ok(Err(_)) => {}
            Err(_) => {}
        }
    }
    let mut g = flows.lock().unwrap_or_else(|p| p.into_inner());
    if g.get(&client).is_some_and(|f| Arc::ptr_eq(f, &flow)) {
        g.remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A TCP echo server that answers after the client's EOF (so it needs half-close).
    async fn echo_after_eof() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut got = vec![];
                    s.read_to_end(&mut got).await.unwrap();
                    got.reverse();
                    s.write_all(&got).await.unwrap();
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn tcp_relays_with_half_close_and_stop_frees_the_port() {
        let target = echo_after_eof().await;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = Proxy::tcp(l, target).unwrap();
        let at = p.local_addr();
        let mut c = TcpStream::connect(at).await.unwrap();
        c.write_all(b"abc").await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = vec![];
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"cba");
        // An open relay is cut when the proxy stops, and the port is free at once.
        let mut open = TcpStream::connect(at).await.unwrap();
        open.write_all(b"x").await.unwrap();
        p.stop().await;
        std::net::TcpListener::bind(at).expect("port still held after stop");
        let mut rest = vec![];
        let n = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest))
            .await
            .expect("relayed connection kept open after stop");
        assert!(n.is_err() || rest.is_empty(), "{rest:?}");
    }

    #[tokio::test]
    async fn tcp_client_closed_when_the_container_refuses() {
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = gone.local_addr().unwrap();
        drop(gone);
        let p = Proxy::tcp(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), target).unwrap();
        let mut c = TcpStream::connect(p.local_addr()).await.unwrap();
        let mut buf = vec![];
        let r = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut buf)).await;
        assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    }

    #[tokio::test]
    async fn udp_flows_per_client_and_idle_expiry() {
        // The "container": answers each datagram with its sender's port, so two clients
        // relayed through one proxy show two flows (two upstream sockets).
        let srv = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = srv.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            while let Ok((n, from)) = srv.recv_from(&mut b).await {
                let mut out = b[..n].to_vec();
                out.extend_from_slice(format!(":{}", from.port()).as_bytes());
                let _ = srv.send_to(&out, from).await;
            }
        });
        let idle = Duration::from_millis(300);
        let p = Proxy::udp(
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            target,
            idle,
        )
        .unwrap();
        let to = p.local_addr();
        let ask = move |c: Arc<UdpSocket>, msg: &'static str| async move {
            c.send_to(msg.as_bytes(), to).await.unwrap();
            let mut b = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
                .await
                .expect("no reply through the proxy")
                .unwrap();
            String::from_utf8_lossy(&b[..n]).into_owned()
        };
        let a = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let ra = ask(a.clone(), "a").await;
        let rb = ask(b.clone(), "b").await;
        let port = |r: &str| r.split_once(':').unwrap().1.to_string();
        assert!(ra.starts_with("a:") && rb.starts_with("b:"), "{ra} {rb}");
        assert_ne!(port(&ra), port(&rb), "two clients shared one flow");
        // The same client within the idle time: the same flow.
        assert_eq!(port(&ask(a.clone(), "a").await), port(&ra));
        // After the idle time: a new flow (a new upstream socket).
        tokio::time::sleep(idle * 3).await;
        assert_ne!(port(&ask(a.clone(), "a").await), port(&ra));
        p.stop().await;
    }
}
