//! `splitbrain serve`: a small static file server for browsing the store, as `jepsen
//! serve` does.
//!
//! It binds to 127.0.0.1 only (the store holds histories and logs, never meant for the
//! network), serves `GET`/`HEAD` for files under the store with their content types,
//! answers a directory with its `index.html` or a listing, and refuses any path that
//! would leave the store: `..` segments are rejected outright, and the resolved path
//! (symlinks followed) must still lie under the resolved store. Plain `std::net`, one
//! short-lived thread per connection, `Connection: close`; it stops when the shutdown
//! flag is set.
//!
//! Binding to loopback is not enough on its own: a web page can rebind its own DNS name
//! to 127.0.0.1 and read whatever the server answers, so a request must name the server
//! by a loopback name in its `Host` header. Redirects are built from the cleaned path
//! (never from the raw target, where `//host` is a protocol-relative URL to another
//! site); files are streamed, not read whole; and at most [`MAX_CONNECTIONS`] are served
//! at once (the rest get `503`).

use crate::ReportError;
use maud::html;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest request head we read; anything longer is refused.
const MAX_HEAD: usize = 16 * 1024;
/// How often the accept loop looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(25);
/// Connections served at once; each holds a thread until it is answered or its read
/// times out.
pub const MAX_CONNECTIONS: usize = 64;

/// A bound server; [`Server::run`] serves until shutdown.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    root: Arc<PathBuf>,
    /// Connections being served now (bounded by [`MAX_CONNECTIONS`]).
    live: Arc<AtomicUsize>,
}

/// Holds one of the [`MAX_CONNECTIONS`] slots until dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(live: &Arc<AtomicUsize>) -> Option<Slot> {
        live.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_CONNECTIONS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(Arc::clone(live)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    /// Binds 127.0.0.1:`port` (0 for an ephemeral port) to serve `store`.
    pub fn bind(store: &Path, port: u16) -> Result<Server, ReportError> {
        let root = fs::canonicalize(store).map_err(|e| ReportError::io(store, e))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr).map_err(|e| ReportError::io(store, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ReportError::io(store, e))?;
        Ok(Server {
            listener,
            root: Arc::new(root),
            live: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, ReportError> {
        self.listener
            .local_addr()
            .map_err(|e| ReportError::io(self.root.as_path(), e))
    }

    /// Serves until `shutdown` becomes true.
    pub fn run(&self, shutdown: &AtomicBool) -> Result<(), ReportError> {
        while !shutdown.load(Ordering::SeqCst) {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let Some(slot) = Slot::take(&self.live) else {
                        // Answered from the accept loop without waiting, and the client
                        // is told rather than left hanging. What it already sent is
                        // read first: closing over unread data resets the connection,
                        // and the client would lose the answer.
                        let _ = stream.set_nonblocking(true);
                        let mut sink = [0u8; 2048];
                        let mut drained = 0;
                        while drained < MAX_HEAD {
                            match stream.read(&mut sink) {
                                Ok(n) if n > 0 => drained += n,
                                _ => break,
                            }
                        }
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                        let _ = write_response(
                            &mut stream,
                            Response::text("503 Service Unavailable", "too many connections\n"),
                            false,
                        );
                        let _ = stream.shutdown(std::net::Shutdown::Write);
                        continue;
                    };
                    let root = Arc::clone(&self.root);
                    let port = self.listener.local_addr().map(|a| a.port()).unwrap_or(0);
                    std::thread::spawn(move || {
                        let _slot = slot;
                        // A client that goes away mid-response is not our problem.
                        let _ = handle(stream, &root, port);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReportError::io(self.root.as_path(), e)),
            }
        }
        Ok(())
    }
}

/// Binds and serves `store` on 127.0.0.1:`port` until `shutdown` becomes true.
pub fn serve(store: &Path, port: u16, shutdown: &AtomicBool) -> Result<(), ReportError> {
    Server::bind(store, port)?.run(shutdown)
}

/// An HTTP response before it is written.
struct Response {
    status: &'static str,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Body,
}

/// What follows the head: bytes made here, or a file streamed from disk.
enum Body {
    Bytes(Vec<u8>),
    File { file: fs::File, len: u64 },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

impl Response {
    fn text(status: &'static str, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: Body::Bytes(body.as_bytes().to_vec()),
        }
    }
}

/// Whether a `Host` header value names this server by a loopback name: `localhost`,
/// `127.0.0.1` or `[::1]`, with no port or our own.
fn is_loopback_host(host: &str, port: u16) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let (name, given_port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && (n.starts_with('[') == n.ends_with(']')) => {
            (n.to_string(), Some(p.to_string()))
        }
        _ => (host.clone(), None),
    };
    let port_ok = given_port.is_none_or(|p| p == port.to_string());
    port_ok && matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]")
}

fn handle(mut stream: TcpStream, root: &Path, port: u16) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return write_response(
                &mut stream,
                Response::text("431 Request Header Fields Too Large", "request too large\n"),
                false,
            );
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let mut parts = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    let host = lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim())
    });
    let response = if host.is_none() {
        Response::text("400 Bad Request", "a Host header is required\n")
    } else if !host.is_some_and(|h| is_loopback_host(h, port)) {
        Response::text(
            "421 Misdirected Request",
            "this server answers only to localhost, 127.0.0.1 and [::1]\n",
        )
    } else if method != "GET" && method != "HEAD" {
        let mut r = Response::text("405 Method Not Allowed", "only GET and HEAD\n");
        r.headers.push(("Allow".into(), "GET, HEAD".into()));
        r
    } else {
        respond(root, target)
    };
    write_response(&mut stream, response, head_only)
}

fn write_response(stream: &mut TcpStream, r: Response, head_only: bool) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if !head_only {
        match r.body {
            Body::Bytes(bytes) => stream.write_all(&bytes)?,
            Body::File { file, len } => {
                // Exactly the length announced, even if the file grew meanwhile.
                let sent = std::io::copy(&mut file.take(len), stream)?;
                if sent < len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was sent",
                    ));
                }
            }
        }
    }
    stream.flush()
}

/// Maps a request target to a response. Pure apart from reading the file system.
fn respond(root: &Path, target: &str) -> Response {
    let path_part = target.split(['?', '#']).next().unwrap_or("");
    if !path_part.starts_with('/') {
        return Response::text("400 Bad Request", "bad request target\n");
    }
    let Some(decoded) = percent_decode(path_part) else {
        return Response::text("400 Bad Request", "bad percent-encoding\n");
    };
    let segments: Vec<&str> = decoded
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segments
        .iter()
        .any(|s| *s == ".." || s.contains('\\') || s.contains('\0'))
    {
        return Response::text("403 Forbidden", "path leaves the store\n");
    }
    let mut path = root.to_path_buf();
    path.extend(&segments);
    let Ok(resolved) = fs::canonicalize(&path) else {
        return Response::text("404 Not Found", "not found\n");
    };
    if !resolved.starts_with(root) {
        return Response::text("403 Forbidden", "path leaves the store\n");
    }
    if resolved.is_dir() {
        if !path_part.ends_with('/') {
            // Relative links in a directory's page need the trailing slash. The location
            // is rebuilt from the cleaned segments: the raw `//name` would be a
            // protocol-relative URL, a redirect to the host `name`.
            let cleaned: String = segments
                .iter()
                .map(|s| format!("/{}", percent_encode(s)))
                .collect();
            let mut r = Response::text("301 Moved Permanently", "moved\n");
            r.headers.push(("Location".into(), format!("{cleaned}/")));
            return r;
        }
        let index = resolved.join("index.html");
        if index.is_file() {
            return file_response(&index);
        }
        return listing(&resolved, &decoded);
    }
    file_response(&resolved)
}

fn file_response(path: &Path) -> Response {
    let opened = fs::File::open(path).and_then(|file| {
        let meta = file.metadata()?;
        Ok((file, meta))
    });
    match opened {
        Ok((file, meta)) if meta.is_file() => Response {
            status: "200 OK",
            content_type: content_type(path),
            headers: Vec::new(),
            body: Body::File {
                file,
                len: meta.len(),
            },
        },
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

/// A directory listing (a run directory has no `index.html`).
fn listing(dir: &Path, shown_as: &str) -> Response {
    let mut names: Vec<(String, bool)> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let is_dir = e.path().is_dir();
                    (e.file_name().to_string_lossy().into_owned(), is_dir)
                })
                .filter(|(n, _)| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let body = html! {
        (maud::DOCTYPE)
        html { head { meta charset="utf-8"; title { "splitbrain store: " (shown_as) } }
            body style="font-family:sans-serif" {
                h1 { (shown_as) }
                ul {
                    li { a href="../" { "../" } }
                    @for (n, is_dir) in &names {
                        @let link = if *is_dir { format!("{}/", percent_encode(n)) } else { percent_encode(n) };
                        li { a href=(link) { (n) @if *is_dir { "/" } } }
                    }
                }
            }
        }
    };
    Response {
        status: "200 OK",
        content_type: "text/html; charset=utf-8",
        headers: Vec::new(),
        body: Body::Bytes(body.into_string().into_bytes()),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        // Histories, logs, Markdown and EDN are meant to be read in the browser.
        "jsonl" | "log" | "txt" | "md" | "edn" | "toml" | "out" | "err" => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn get(addr: SocketAddr, target: &str) -> (String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        (head.to_string(), body.to_string())
    }

    #[test]
    fn serves_files_on_loopback_and_refuses_traversal() {
        let base = std::env::temp_dir().join(format!("splitbrain-serve-{}", std::process::id()));
        let store = base.join("store");
        let run = store.join("reg/20261126T150000");
        fs::create_dir_all(&run).unwrap();
        fs::write(store.join("index.html"), "<h1>runs</h1>").unwrap();
        fs::write(run.join("results.json"), "{\"verdict\":\"valid\"}").unwrap();
        fs::write(base.join("secret.txt"), "do not serve").unwrap();

        let server = Server::bind(&store, 0).unwrap();
        let addr = server.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || server.run(&stop))
        };

        let (head, body) = get(addr, "/");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/html"));
        assert_eq!(body, "<h1>runs</h1>");
        let (head, body) = get(addr, "/reg/20261126T150000/results.json");
        assert!(head.contains("application/json"), "{head}");
        assert!(body.contains("valid"));
        let (head, _) = get(addr, "/reg/20261126T150000");
        assert!(
            head.starts_with("HTTP/1.1 301") && head.contains("Location: /reg/20261126T150000/"),
            "{head}"
        );
        let (head, body) = get(addr, "/reg/20261126T150000/");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body.contains("results.json"), "listing: {body}");
        for bad in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/reg/..%2F..%2Fsecret.txt",
        ] {
            let (head, body) = get(addr, bad);
            assert!(head.starts_with("HTTP/1.1 403"), "{bad}: {head}");
            assert!(!body.contains("do not serve"));
        }
        let (head, _) = get(addr, "/nope.html");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");

        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap().unwrap();
        fs::remove_dir_all(&base).unwrap();
    }

    /// A server on an ephemeral port over `store`, stopped when the guard drops.
    struct Running {
        addr: SocketAddr,
        live: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<Result<(), ReportError>>>,
    }

    impl Running {
        fn start(store: &Path) -> Running {
            let server = Server::bind(store, 0).unwrap();
            let addr = server.local_addr().unwrap();
            let live = Arc::clone(&server.live);
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || server.run(&stop))
            };
            Running {
                addr,
                live,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn temp_store(name: &str) -> PathBuf {
        let base =
            std::env::temp_dir().join(format!("splitbrain-serve-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("store/reg")).unwrap();
        fs::write(
            base.join("store/reg/results.json"),
            "{\"verdict\":\"valid\"}",
        )
        .unwrap();
        base
    }

    /// Sends `request` as is and reads the whole answer.
    fn raw(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_foreign_host_header_is_refused() {
        // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1
        // sends its own name as Host; only loopback names may read the store.
        let base = temp_store("host");
        let server = Running::start(&base.join("store"));
        let port = server.addr.port();
        for host in [
            "evil.example".to_string(),
            format!("evil.example:{port}"),
            format!("127.0.0.1.evil.example:{port}"),
            "".to_string(),
        ] {
            let out = raw(
                server.addr,
                &format!("GET /reg/results.json HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            );
            assert!(
                out.starts_with("HTTP/1.1 421") || out.starts_with("HTTP/1.1 400"),
                "{host}: {out}"
            );
            assert!(!out.contains("verdict"), "{host}: {out}");
        }
        let out = raw(server.addr, "GET /reg/results.json HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400"), "no Host: {out}");
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            "localhost".to_string(),
            format!("LOCALHOST:{port}"),
        ] {
            let out = raw(
                server.addr,
                &format!("GET /reg/results.json HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            );
            assert!(
                out.starts_with("HTTP/1.1 200") && out.contains("verdict"),
                "{host}: {out}"
            );
        }
        drop(server);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_redirect_never_leaves_the_server() {
        // `//reg` is a directory of the store; redirecting to `//reg/` would send the
        // browser to the host `reg` (a protocol-relative URL).
        let base = temp_store("redirect");
        let server = Running::start(&base.join("store"));
        for target in ["//reg", "///reg", "/./reg", "//reg?x=1"] {
            let out = raw(
                server.addr,
                &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            );
            assert!(out.starts_with("HTTP/1.1 301"), "{target}: {out}");
            let location = out
                .lines()
                .find_map(|l| l.strip_prefix("Location: "))
                .unwrap_or_default();
            assert_eq!(location, "/reg/", "{target}: {out}");
        }
        drop(server);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn large_files_are_served_whole() {
        let base = temp_store("large");
        // Bigger than any buffer the server uses, with content that shows misordering.
        let body: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
        fs::write(base.join("store/reg/history.jsonl"), &body).unwrap();
        let server = Running::start(&base.join("store"));
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /reg/history.jsonl HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&out[..split]);
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(out[split + 4..] == body[..], "the body differs");
        drop(server);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn connections_are_bounded() {
        let base = temp_store("bounded");
        let server = Running::start(&base.join("store"));
        // Connections that never send a request hold their slot until the read timeout.
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(server.addr).unwrap())
            .collect();
        // Wait until the server has taken all of them in.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while server.live.load(Ordering::SeqCst) < MAX_CONNECTIONS
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = raw(
            server.addr,
            "GET /reg/results.json HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 503"), "{out}");
        drop(idle);
        drop(server);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
