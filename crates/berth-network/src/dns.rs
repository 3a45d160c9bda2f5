//! Embedded DNS for user-defined networks: a small DNS message codec (A/AAAA answers from the
//! network's container names and aliases) and a UDP server that forwards every other query to
//! the host's resolvers. The codec is pure; the server is a tokio task on the bridge gateway IP.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Names (lowercase, no trailing dot) → addresses, for one network.
pub type Records = HashMap<String, Vec<IpAddr>>;
/// Records shared between the manager (writer) and the server task (reader).
pub type SharedRecords = Arc<RwLock<Records>>;

/// The single question of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: u16,
    pub flags: u16,
    /// Lowercase, dot-separated, no trailing dot.
    pub name: String,
    pub qtype: u16,
    /// Offset just past the question section.
    pub end: usize,
}

/// Parse a standard query with exactly one question. `None` for anything else.
pub fn parse_query(buf: &[u8]) -> Option<Question> {
    if buf.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([buf[0], buf[1]]);
    let flags = u16::from_be_bytes([buf[2], buf[3]]);
    let qd = u16::from_be_bytes([buf[4], buf[5]]);
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qd != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels = vec![];
    loop {
        let len = *buf.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression is not valid in a query's question
        }
        let l = buf.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(l).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*buf.get(pos)?, *buf.get(pos + 1)?]);
    let end = pos + 4;
    if buf.len() < end {
        return None;
    }
    Some(Question {
        id,
        flags,
        name: labels.join("."),
        qtype,
        end,
    })
}

fn header(id: u16, query_flags: u16, rcode: u16, an: u16) -> Vec<u8> {
    // QR, AA, copy RD, RA
    let flags = 0x8000 | 0x0400 | (query_flags & 0x0100) | 0x0080 | (rcode & 0xf);
    let mut v = Vec::with_capacity(512);
    for x in [id, flags, 1, an, 0, 0] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v
}

/// Key of a record that only queries from `client` see (legacy endpoint links). A NUL
/// separates client and name: resolvers do not put one in a host name.
pub fn client_key(client: IpAddr, name: &str) -> String {
    format!("{client}\0{name}")
}

/// Answer `query` from `records` when the name is known (possibly with no record of the asked
/// type: NOERROR, empty). `None` means "not ours, forward it".
pub fn answer(query: &[u8], records: &Records) -> Option<Vec<u8>> {
    answer_for(query, records, None)
}

/// [`answer`] for a query from `client`: its own link aliases first, then the network's names.
pub fn answer_for(query: &[u8], records: &Records, client: Option<IpAddr>) -> Option<Vec<u8>> {
    let q = parse_query(query)?;
    let ips = client
        .and_then(|c| records.get(&client_key(c, &q.name)))
        .or_else(|| records.get(&q.name))?;
    let matching: Vec<&IpAddr> = ips
        .iter()
        .filter(|ip| match q.qtype {
            TYPE_A => ip.is_ipv4(),
            TYPE_AAAA => ip.is_ipv6(),
            _ => false,
        })
        .collect();
    let mut out = header(q.id, q.flags, 0, matching.len() as u16);
    out.extend_from_slice(&query[12..q.end]);
    for ip in matching {
        out.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
        let (ty, data) = match ip {
            IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
            IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
        };
        out.extend_from_slice(&ty.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    Some(out)
}

/// A SERVFAIL reply to `query` (used when no upstream answers).
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let q = parse_query(query)?;
    let mut out = header(q.id, q.flags, 2, 0);
    out.extend_from_slice(&query[12..q.end]);
    Some(out)
}

/// Build a recursive query for `name` (client side; used by tests and health checks).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [id, 0x0100, 1, 0, 0, 0] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    for l in name.trim_end_matches('.').split('.') {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v
}

/// Response code and A/AAAA addresses of a response (answers must use name pointers or plain
/// names; other record types are skipped).
pub fn parse_response(buf: &[u8]) -> Option<(u8, Vec<IpAddr>)> {
    if buf.len() < 12 {
        return None;
    }
    let rcode = buf[3] & 0xf;
    let qd = u16::from_be_bytes([buf[4], buf[5]]);
    let an = u16::from_be_bytes([buf[6], buf[7]]);
    let mut pos = 12;
    let skip_name = |mut p: usize| -> Option<usize> {
        loop {
            let b = *buf.get(p)?;
            if b & 0xc0 == 0xc0 {
                return Some(p + 2);
            }
            p += 1 + b as usize;
            if b == 0 {
                return Some(p);
            }
        }
    };
    for _ in 0..qd {
        pos = skip_name(pos)? + 4;
    }
    let mut ips = vec![];
    for _ in 0..an {
        pos = skip_name(pos)?;
        let ty = u16::from_be_bytes([*buf.get(pos)?, *buf.get(pos + 1)?]);
        let len = u16::from_be_bytes([*buf.get(pos + 8)?, *buf.get(pos + 9)?]) as usize;
        let data = buf.get(pos + 10..pos + 10 + len)?;
        match (ty, len) {
            (TYPE_A, 4) => ips.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (TYPE_AAAA, 16) => ips.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => {}
        }
        pos += 10 + len;
    }
    Some((rcode, ips))
}

/// The running server; dropping it stops the task and closes the socket.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    tcp_task: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
        self.tcp_task.abort();
    }
}

/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The answer from berth's own records, if the name is one of them.
fn local_answer(query: &[u8], peer: IpAddr, records: &SharedRecords) -> Option<Vec<u8>> {
    let r = records.read().unwrap_or_else(|p| p.into_inner());
    answer_for(query, &r, Some(peer))
}

/// The upstreams' answer (over UDP), else SERVFAIL.
async fn upstream_answer(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    match forward(query, upstreams).await {
        Some(r) => Some(r),
        None => servfail(query),
    }
}

/// One TCP client: length-prefixed queries (RFC 1035 4.2.2) until it closes or idles.
async fn serve_tcp(
    mut conn: TcpStream,
    peer: IpAddr,
    records: SharedRecords,
    upstreams: Arc<Vec<SocketAddr>>,
) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
        if tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut query))
            .await
            .map_or(true, |r| r.is_err())
        {
            return;
        }
        let resp = match local_answer(&query, peer, &records) {
            Some(r) => Some(r),
            None => upstream_answer(&query, &upstreams).await,
        };
        let Some(resp) = resp else {
            return;
        };
        let Ok(n) = u16::try_from(resp.len()) else {
            return;
        };
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&resp);
        if conn.write_all(&out).await.is_err() {
            return;
        }
    }
}

impl DnsServer {
    /// Bind UDP `bind` and TCP on the same address, serve `records`, forwarding other names to
    /// `upstreams` in order (over UDP).
    pub async fn start(
        bind: SocketAddr,
        records: SharedRecords,
        upstreams: Vec<SocketAddr>,
    ) -> io::Result<Self> {
        let sock = Arc::new(UdpSocket::bind(bind).await?);
        let addr = sock.local_addr()?;
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(%addr, "embedded dns listening (udp and tcp)");
        let upstreams = Arc::new(upstreams);
        let (tcp_records, tcp_upstreams) = (records.clone(), upstreams.clone());
        let tcp_task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((conn, peer)) => {
                        tokio::spawn(serve_tcp(
                            conn,
                            peer.ip(),
                            tcp_records.clone(),
                            tcp_upstreams.clone(),
                        ));
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "dns tcp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, peer) = match sock.recv_from(&mut buf).await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "dns receive failed");
                        continue;
                    }
                };
                let query = buf[..n].to_vec();
                if let Some(resp) = local_answer(&query, peer.ip(), &records) {
                    let _ = sock.send_to(&resp, peer).await;
                    continue;
                }
                let (sock, upstreams) = (sock.clone(), upstreams.clone());
                tokio::spawn(async move {
                    if let Some(r) = upstream_answer(&query, &upstreams).await {
                        let _ = sock.send_to(&r, peer).await;
                    }
                });
            }
        });
        Ok(DnsServer {
            addr,
            task,
            tcp_task,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn forward(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let id = parse_query(query)?.id;
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.send_to(query, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(UPSTREAM_TIMEOUT, s.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) if from == *up && n >= 2 && buf[..2] == id.to_be_bytes() => {
                buf.truncate(n);
                return Some(buf);
            }
            _ => tracing::debug!(upstream = %up, "upstream dns did not answer"),
        }
    }
    None
}

/// Upstream resolvers from the host's resolv.conf text (port 53). Loopback resolvers are kept:
/// the daemon forwards from the host namespace, where they are reachable.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    crate::files::parse_nameservers(text)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_known_names_and_defers_others() {
        let mut r = Records::new();
        r.insert(
            "web".into(),
            vec!["10.1.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
        );
        let q = build_query(7, "WEB", TYPE_A);
        let resp = answer(&q, &r).unwrap();
        assert_eq!(
            parse_response(&resp).unwrap(),
            (0, vec!["10.1.0.2".parse().unwrap()])
        );
        assert_eq!(&resp[..2], &7u16.to_be_bytes());
        let resp6 = answer(&build_query(8, "web.", TYPE_AAAA), &r).unwrap();
        assert_eq!(
            parse_response(&resp6).unwrap().1,
            vec!["fd00::2".parse::<IpAddr>().unwrap()]
        );
        let mx = answer(&build_query(9, "web", 15), &r).unwrap();
        assert_eq!(parse_response(&mx).unwrap(), (0, vec![]));
        assert!(answer(&build_query(9, "example.com", TYPE_A), &r).is_none());
        assert_eq!(parse_response(&servfail(&q).unwrap()).unwrap().0, 2);
    }

    #[test]
    fn link_aliases_answer_only_their_client() {
        let mut r = Records::new();
        let me: IpAddr = "10.1.0.3".parse().unwrap();
        let up: IpAddr = "10.1.0.9".parse().unwrap();
        r.insert(client_key(me, "bar"), vec![up]);
        let q = build_query(3, "bar", TYPE_A);
        let resp = answer_for(&q, &r, Some(me)).unwrap();
        assert_eq!(parse_response(&resp).unwrap(), (0, vec![up]));
        assert!(answer_for(&q, &r, Some("10.1.0.4".parse().unwrap())).is_none());
        assert!(answer(&q, &r).is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_query(&[0u8; 5]).is_none());
        let mut q = build_query(1, "a", TYPE_A);
        q[2] |= 0x80; // a response, not a query
        assert!(parse_query(&q).is_none());
        let mut q = build_query(1, "abc", TYPE_A);
        q.truncate(q.len() - 3);
        assert!(parse_query(&q).is_none());
    }
}
