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

use crate::ReportError;
use maud::html;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest request head we read; anything longer is refused.
const MAX_HEAD: usize = 16 * 1024;
/// How often the accept loop looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(25);

/// A bound server; [`Server::run`] serves until shutdown.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    root: Arc<PathBuf>,
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
                Ok((stream, _)) => {
                    let root = Arc::clone(&self.root);
                    std::thread::spawn(move || {
                        // A client that goes away mid-response is not our problem.
                        let _ = handle(stream, &root);
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
    body: Vec<u8>,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }
}

fn handle(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
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
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    let response = if method != "GET" && method != "HEAD" {
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
        stream.write_all(&r.body)?;
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
            // Relative links in a directory's page need the trailing slash.
            let mut r = Response::text("301 Moved Permanently", "moved\n");
            r.headers.push(("Location".into(), format!("{path_part}/")));
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
    match fs::read(path) {
        Ok(body) => Response {
            status: "200 OK",
            content_type: content_type(path),
            headers: Vec::new(),
            body,
        },
        Err(_) => Response::text("404 Not Found", "not found\n"),
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
        body: body.into_string().into_bytes(),
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

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
