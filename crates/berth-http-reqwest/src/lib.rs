//! berth-http's port over reqwest (rustls; webpki and system roots plus per-host CAs and
//! client certificates): the HTTP client the `berth` binary hands the engine.

use std::sync::Arc;

use berth_http::{
    ClientOptions, ConnectError, Connector, Error, ErrorKind, Request, Response, Transport,
};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};

/// Builds reqwest clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReqwestConnector;

impl ReqwestConnector {
    /// The connector as the engine takes it.
    pub fn shared() -> Arc<dyn Connector> {
        Arc::new(ReqwestConnector)
    }
}

impl Connector for ReqwestConnector {
    fn client(&self, opts: &ClientOptions) -> Result<Arc<dyn Transport>, ConnectError> {
        let mut b = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .danger_accept_invalid_certs(!opts.verify_tls);
        if let Some(t) = opts.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(t) = opts.read_timeout {
            b = b.read_timeout(t);
        }
        for ca in &opts.extra_roots {
            let certs = reqwest::Certificate::from_pem_bundle(&ca.pem).map_err(|e| {
                ConnectError::Certificate {
                    path: ca.path.clone(),
                    detail: chain(&e),
                }
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(id) = &opts.identity {
            let identity =
                reqwest::Identity::from_pem(&id.pem).map_err(|e| ConnectError::Certificate {
                    path: id.path.clone(),
                    detail: chain(&e),
                })?;
            b = b.identity(identity);
        }
        let client = b.build().map_err(|e| ConnectError::Other(chain(&e)))?;
        Ok(Arc::new(ReqwestTransport(client)))
    }
}

/// One reqwest client (its connection pool) behind the port.
#[derive(Debug, Clone)]
pub struct ReqwestTransport(reqwest::Client);

impl Transport for ReqwestTransport {
    fn send(&self, req: Request) -> BoxFuture<'static, Result<Response, Error>> {
        let mut rb = self
            .0
            .request(req.method, req.url.as_str())
            .headers(req.headers);
        if let Some(body) = req.body {
            rb = rb.body(body);
        }
        Box::pin(async move {
            let resp = rb.send().await.map_err(|e| port_error(&e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let len = resp.content_length();
            let body = resp.bytes_stream().map_err(|e| port_error(&e)).boxed();
            Ok(Response::new(status, headers, len, body))
        })
    }
}

fn port_error(e: &reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_builder() {
        ErrorKind::InvalidRequest
    } else {
        ErrorKind::Transport
    };
    Error::new(kind, chain(e))
}

/// An error and its sources, joined with ": " (a source already in the text is skipped).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_http::{Pem, StatusCode};
    use std::io::{Read, Write};

    #[test]
    fn a_bad_ca_file_is_named() {
        let opts = ClientOptions {
            extra_roots: vec![Pem {
                path: "/etc/berth/certs.d/r:5000/ca.crt".into(),
                pem: b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
                    .to_vec(),
            }],
            ..ClientOptions::default()
        };
        let err = ReqwestConnector.client(&opts).err().expect("refused");
        assert!(
            err.to_string()
                .starts_with("/etc/berth/certs.d/r:5000/ca.crt: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_answer_streams_its_body_and_a_closed_port_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b\r\nConnection: close\r\n\r\nhello")
                .unwrap();
            req
        });
        let t = ReqwestConnector.client(&ClientOptions::default()).unwrap();
        let resp = t
            .send(
                Request::new(berth_http::Method::PUT, format!("http://{addr}/p?q=1"))
                    .body("xyz".into()),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.content_length(), Some(5));
        assert_eq!(resp.headers()["x-a"], "b");
        assert_eq!(resp.bytes().await.unwrap(), "hello");
        let req = server.join().unwrap();
        assert!(req.starts_with("PUT /p?q=1 HTTP/1.1\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\nxyz"), "{req}");
        assert!(
            req.to_ascii_lowercase().contains("user-agent: berth/"),
            "{req}"
        );

        // Nothing listens on the port any more.
        let e = t
            .send(Request::get(format!("http://{addr}/")))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transport, "{e}");
        let e = t.send(Request::get("not a url")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{e}");
    }
}
