//! Readiness probes: is a started node ready to serve?
//!
//! Either a TCP connect or an HTTP/1.1 `GET` expecting a 2xx status (and, optionally,
//! a substring of the body). Each attempt opens its own connection and drops it — no
//! pool, no keep-alive, as the etcd client does — so a probe never holds a socket into
//! a node the nemesis is about to partition. Only plain `http://` is supported: the
//! description loader rejects `https` URLs. A body is read frame by frame and only up
//! to [`BODY_CAP`] (or until `expect` is seen), then the connection is closed: a node
//! that answers 200 and never ends its body gets a quick "not ready", not the
//! harness's memory.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// How long to wait between attempts of [`Probe::wait_ready`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The most one attempt of [`Probe::wait_ready`] may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of a body is quoted in an error.
const BODY_QUOTE: usize = 200;
/// The most of a body an HTTP probe reads: `expect` must appear within it. A health
/// answer is short; a node that streams (or a wrong URL serving a large file) must not
/// make the harness hold what it sends.
pub const BODY_CAP: usize = 64 * 1024;

/// A probe expanded for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Ready when a TCP connection to `host:port` succeeds.
    Tcp(String),
    /// Ready when `GET url` answers 2xx (and its body contains `expect`, if given).
    Http { url: String, expect: Option<String> },
}

/// What the last probe attempt saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No connection (refused, unreachable, ...).
    #[error("connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    /// The attempt did not finish in time.
    #[error("{target}: no answer within {after:?}")]
    Timeout { target: String, after: Duration },
    /// An answer with a status other than 2xx.
    #[error("GET {url} answered HTTP {status}: {body:?}")]
    Status {
        url: String,
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A 2xx answer whose body (its first [`BODY_CAP`] bytes) lacked the expected text.
    #[error("GET {url} answered HTTP {status} but the body lacked {expect:?}{}: {body:?}", if *.cut { format!(" in its first {} KiB (the rest was not read)", BODY_CAP / 1024) } else { String::new() })]
    Body {
        url: String,
        status: u16,
        expect: String,
        body: String,
        /// The body was longer than [`BODY_CAP`] and only that much was read.
        cut: bool,
    },
    /// The HTTP exchange broke.
    #[error("GET {url}: {reason}")]
    Http { url: String, reason: String },
    /// The URL cannot be probed.
    #[error("cannot probe {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// [`Probe::wait_ready`] gave up.
    #[error("not ready after {total:?}; last attempt: {last}")]
    NotReady {
        total: Duration,
        last: Box<ProbeError>,
    },
}

impl Probe {
    /// What the probe talks to, for messages.
    pub fn target(&self) -> &str {
        match self {
            Probe::Tcp(addr) => addr,
            Probe::Http { url, .. } => url,
        }
    }

    /// One attempt, given at most `limit`.
    pub async fn check_once(&self, limit: Duration) -> Result<(), ProbeError> {
        let attempt = async {
            match self {
                Probe::Tcp(addr) => connect(addr).await.map(drop),
                Probe::Http { url, expect } => http_get(url, expect.as_deref()).await,
            }
        };
        match timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ProbeError::Timeout {
                target: self.target().to_string(),
                after: limit,
            }),
        }
    }

    /// Polls every [`POLL_INTERVAL`] until an attempt succeeds or `total` has passed;
    /// the error carries what the last attempt saw.
    pub async fn wait_ready(&self, total: Duration) -> Result<(), ProbeError> {
        let deadline = Instant::now() + total;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last = match self.check_once(left.min(ATTEMPT_TIMEOUT)).await {
                Ok(()) => return Ok(()),
                // A URL that cannot be probed never will be.
                Err(e @ ProbeError::BadUrl { .. }) => return Err(e),
                Err(e) => e,
            };
            let now = Instant::now();
            if now + POLL_INTERVAL >= deadline {
                return Err(ProbeError::NotReady {
                    total,
                    last: Box::new(last),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

async fn connect(addr: &str) -> Result<TcpStream, ProbeError> {
    TcpStream::connect(addr)
        .await
        .map_err(|e| ProbeError::Connect {
            target: addr.to_string(),
            reason: e.to_string(),
        })
}

/// Splits `http://host:port/path` into (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), ProbeError> {
    let bad = |reason: &str| ProbeError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: hyper::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only plain http:// URLs are supported"));
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".to_string());
    Ok((format!("{host}:{port}"), path))
}

fn quote(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(BODY_QUOTE)]).into_owned()
}

async fn http_get(url: &str, expect: Option<&str>) -> Result<(), ProbeError> {
    let (addr, path) = split_url(url)?;
    let stream = connect(&addr).await?;
    let broke = |e: hyper::Error| ProbeError::Http {
        url: url.to_string(),
        reason: e.to_string(),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(broke)?;
    // Aborted on every return, which closes the socket: a server still sending (a body
    // we stopped reading) must not keep the task and its buffers alive.
    let connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| ProbeError::BadUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let response = sender.send_request(request).await.map_err(broke)?;
    let status = response.status().as_u16();
    let ok = (200..300).contains(&status);
    // Only as much body as the answer needs: none for a bare 2xx, a quote for an error
    // status, up to BODY_CAP (or the expected text) otherwise.
    let want = match (ok, expect) {
        (true, None) => 0,
        (false, _) => BODY_QUOTE,
        (true, Some(_)) => BODY_CAP,
    };
    let mut body = response.into_body();
    let mut read: Vec<u8> = Vec::new();
    let mut cut = false;
    let mut found = false;
    while read.len() < want && !found {
        match body.frame().await {
            None => break,
            Some(frame) => {
                if let Ok(data) = frame.map_err(broke)?.into_data() {
                    let room = want - read.len();
                    cut |= data.len() > room;
                    let before = read.len();
                    read.extend_from_slice(&data[..data.len().min(room)]);
                    // Search only where the new bytes can complete a match, so many
                    // tiny frames cost no more than one large one.
                    if let Some(e) = expect {
                        let from = before.saturating_sub(e.len().saturating_sub(1));
                        found = contains(&read[from..], e.as_bytes());
                    }
                }
            }
        }
    }
    if read.len() >= want && want > 0 && !body.is_end_stream() {
        cut = true;
    }
    drop(connection);
    if !ok {
        return Err(ProbeError::Status {
            url: url.to_string(),
            status,
            body: quote(&read),
        });
    }
    if let Some(expect) = expect {
        if !contains(&read, expect.as_bytes()) {
            return Err(ProbeError::Body {
                url: url.to_string(),
                status,
                expect: expect.to_string(),
                body: quote(&read),
                cut,
            });
        }
    }
    Ok(())
}

/// Whether `needle` occurs in `hay` (bytes, so a body cut inside a UTF-8 character
/// still matches what came before it).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server on 127.0.0.1:0 answering every request with `status` and `body`, until
    /// the returned handle is aborted.
    async fn server(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (addr, task)
    }

    /// An address nothing listens on: bound, then released.
    async fn closed_addr() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        addr
    }

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn http_ok_with_expected_body() {
        let (addr, task) = server("200 OK", r#"{"health":"true","reason":""}"#).await;
        let probe = Probe::Http {
            url: format!("http://{addr}/health"),
            expect: Some(r#""health":"true""#.into()),
        };
        assert_eq!(probe.check_once(LIMIT).await, Ok(()));
        assert_eq!(probe.wait_ready(LIMIT).await, Ok(()));
        task.abort();
    }

    #[tokio::test]
    async fn http_wrong_body() {
        let (addr, task) = server("200 OK", r#"{"health":"false"}"#).await;
        let probe = Probe::Http {
            url: format!("http://{addr}/health"),
            expect: Some(r#""health":"true""#.into()),
        };
        let err = probe.check_once(LIMIT).await.expect_err("wrong body");
        assert!(matches!(err, ProbeError::Body { status: 200, .. }), "{err}");
        assert!(err.to_string().contains("lacked"), "{err}");
        task.abort();
    }

    #[tokio::test]
    async fn http_503_is_not_ready() {
        let (addr, task) = server("503 Service Unavailable", "no leader").await;
        let probe = Probe::Http {
            url: format!("http://{addr}/health"),
            expect: None,
        };
        let err = probe
            .wait_ready(Duration::from_millis(350))
            .await
            .expect_err("503");
        let ProbeError::NotReady { last, .. } = &err else {
            panic!("expected NotReady, got {err}");
        };
        assert!(
            matches!(**last, ProbeError::Status { status: 503, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("HTTP 503"), "{err}");
        task.abort();
    }

    #[tokio::test]
    async fn refused_tcp_and_http() {
        let addr = closed_addr().await;
        let tcp = Probe::Tcp(addr.clone());
        let err = tcp.check_once(LIMIT).await.expect_err("refused");
        assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
        let http = Probe::Http {
            url: format!("http://{addr}/"),
            expect: None,
        };
        let err = http
            .wait_ready(Duration::from_millis(250))
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn tcp_ok() {
        let (addr, task) = server("200 OK", "").await;
        assert_eq!(Probe::Tcp(addr).check_once(LIMIT).await, Ok(()));
        task.abort();
    }

    /// A server answering its first request with 200 and a chunked body that never
    /// ends: `head`, then filler, until the client goes away (or 10 s pass). The handle
    /// gives how many bytes it managed to send.
    async fn endless(head: &'static str) -> (String, tokio::task::JoinHandle<u64>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return 0;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return 0,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let mut sent = 0u64;
            let start = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{head}\r\n",
                head.len()
            );
            if socket.write_all(start.as_bytes()).await.is_err() {
                return sent;
            }
            sent += start.len() as u64;
            let filler = vec![b'.'; 65536];
            let chunk = [
                format!("{:x}\r\n", filler.len()).into_bytes(),
                filler,
                b"\r\n".to_vec(),
            ]
            .concat();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match timeout(Duration::from_secs(1), socket.write_all(&chunk)).await {
                    Ok(Ok(())) => sent += chunk.len() as u64,
                    Ok(Err(_)) => break,
                    Err(_) => continue,
                }
            }
            sent
        });
        (addr, task)
    }

    #[tokio::test]
    async fn an_endless_body_is_read_only_up_to_the_cap() {
        // The expected text early in an endless body: ready at once.
        let (addr, task) = endless(r#"{"health":"true"}"#).await;
        let probe = Probe::Http {
            url: format!("http://{addr}/health"),
            expect: Some(r#""health":"true""#.into()),
        };
        let started = Instant::now();
        assert_eq!(probe.check_once(LIMIT).await, Ok(()));
        assert!(started.elapsed() < LIMIT);
        let sent = timeout(LIMIT, task)
            .await
            .expect("server ends")
            .expect("server");
        // What the server got out before the probe hung up: the probe cannot have held
        // more. Loopback socket buffers account for a few MB of it.
        assert!(sent < 64 << 20, "the server sent {sent} bytes");

        // The expected text absent: not ready, said without reading forever.
        let (addr, task) = endless("starting").await;
        let probe = Probe::Http {
            url: format!("http://{addr}/health"),
            expect: Some(r#""health":"true""#.into()),
        };
        let err = probe.check_once(LIMIT).await.expect_err("never says it");
        assert!(matches!(err, ProbeError::Body { status: 200, .. }), "{err}");
        assert!(err.to_string().contains("first"), "{err}");
        let sent = timeout(LIMIT, task)
            .await
            .expect("server ends")
            .expect("server");
        assert!(sent < 64 << 20, "the server sent {sent} bytes");
    }

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(
            split_url("http://10.0.0.1:2379/health").expect("valid"),
            ("10.0.0.1:2379".to_string(), "/health".to_string())
        );
        assert_eq!(
            split_url("http://h").expect("valid"),
            ("h:80".to_string(), "/".to_string())
        );
        assert!(split_url("https://h/").is_err());
    }
}
