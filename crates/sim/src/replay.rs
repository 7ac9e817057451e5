//! Golden HTTP answers, replayed byte for byte.
//!
//! A [`Fixture`] is one HTTP response as a vendor's own code writes it
//! (status line with its reason phrase, headers, body), kept in a text file
//! under `crates/<vendor>/tests/fixtures/` with the citation of that code
//! in `#` comment lines at the top:
//!
//! ```text
//! # pve-http-server src/PVE/APIServer/AnyEvent.pm handle_api2_request:
//! # a failed authentication is a 401 with the message as reason, no body.
//! HTTP/1.1 401 Authentication failed!
//! Connection: close
//!
//! ```
//!
//! A [`ReplayServer`] on `127.0.0.1:0` answers requests with fixtures in
//! order (the last one repeats), so an adapter's whole HTTP path (reason
//! phrases, empty bodies, decoding) is exercised against the real shapes,
//! and records what it was asked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One recorded HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// The `#` lines at the top: where the shape comes from.
    pub citation: Vec<String>,
    /// The response as sent on the wire.
    pub raw: Vec<u8>,
}

impl Fixture {
    /// Parses fixture text: `#` citation lines, then the status line and
    /// headers (line endings become CRLF), a blank line, and the body,
    /// sent as written (a trailing newline is dropped). `Content-Length` is
    /// added when the headers do not say how the body ends.
    pub fn parse(text: &str) -> Fixture {
        let mut citation = Vec::new();
        let mut rest = text;
        while let Some(line) = rest.strip_prefix('#') {
            let (first, tail) = line.split_once('\n').unwrap_or((line, ""));
            citation.push(first.trim().to_owned());
            rest = tail;
        }
        let (head, body) = match rest.split_once("\n\n") {
            Some((h, b)) => (h, b.strip_suffix('\n').unwrap_or(b)),
            None => (rest.trim_end_matches('\n'), ""),
        };
        let mut raw = Vec::new();
        let mut has_length = false;
        for line in head.lines() {
            let line = line.trim_end_matches('\r');
            let lower = line.to_ascii_lowercase();
            has_length |=
                lower.starts_with("content-length:") || lower.starts_with("transfer-encoding:");
            raw.extend_from_slice(line.as_bytes());
            raw.extend_from_slice(b"\r\n");
        }
        if !has_length {
            raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(body.as_bytes());
        Fixture { citation, raw }
    }

    /// Reads and parses a fixture file.
    pub fn load(path: impl AsRef<Path>) -> std::io::Result<Fixture> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    /// Loads `tests/fixtures/{name}` under `crate_dir` (pass
    /// `env!("CARGO_MANIFEST_DIR")`), refusing a fixture that cites no
    /// source.
    pub fn cited(crate_dir: &str, name: &str) -> std::io::Result<Fixture> {
        let path = Path::new(crate_dir).join("tests/fixtures").join(name);
        let f = Self::load(&path)?;
        if f.citation.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} cites no source in its # lines", path.display()),
            ));
        }
        Ok(f)
    }

    /// A response from raw bytes, sent exactly as given.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Fixture {
        Fixture {
            citation: Vec::new(),
            raw: bytes.into(),
        }
    }
}

/// One request a [`ReplayServer`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers (names lower-cased).
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback server answering with fixtures, one connection per request.
#[derive(Debug)]
pub struct ReplayServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl ReplayServer {
    /// Serves the cited fixtures `names` of `crate_dir` (see
    /// [`Fixture::cited`]) in order; the last one repeats.
    pub async fn start_cited(crate_dir: &str, names: &[&str]) -> std::io::Result<ReplayServer> {
        let answers = names
            .iter()
            .map(|n| Fixture::cited(crate_dir, n))
            .collect::<std::io::Result<Vec<_>>>()?;
        Self::start(answers).await
    }

    /// Serves `answers` in order on `127.0.0.1:0`; the last one repeats.
    pub async fn start(answers: Vec<Fixture>) -> std::io::Result<ReplayServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((mut socket, _)) = listener.accept().await {
                let Some(answer) = answers.get(n.min(answers.len().saturating_sub(1))) else {
                    return;
                };
                n += 1;
                let answer = answer.raw.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    if let Some(req) = read_request(&mut socket).await {
                        seen.lock().unwrap_or_else(|p| p.into_inner()).push(req);
                    }
                    let _ = socket.write_all(&answer).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Ok(ReplayServer {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head (and skips its body), at most 64 KiB.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end - 4;
    while have < length.min(1 << 20) {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Some(Recorded {
        method,
        target,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_keep_their_citation_and_wire_form() {
        let f = Fixture::parse(
            "# pve-http-server AnyEvent.pm\n# second line\nHTTP/1.1 401 Authentication failed!\nConnection: close\n\n",
        );
        assert_eq!(f.citation, ["pve-http-server AnyEvent.pm", "second line"]);
        assert_eq!(
            String::from_utf8(f.raw).unwrap(),
            "HTTP/1.1 401 Authentication failed!\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let f = Fixture::parse("HTTP/1.1 200 OK\n\n{\"data\":1}\n");
        assert!(String::from_utf8(f.raw)
            .unwrap()
            .ends_with("Content-Length: 10\r\n\r\n{\"data\":1}"));
    }
}
