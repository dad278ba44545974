//! A raw HTTP/1.1 client over a TCP socket, so every request reaches the server exactly as
//! written (malformed percent-encoding, odd methods, oversized heads) rather than as a client
//! library would normalise it.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any single reply may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A request to send as written.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &str, target: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(target: impl Into<String>) -> Self {
        Self::new("GET", target)
    }

    pub fn key(self, key: &str) -> Self {
        self.header("authorization", &format!("Bearer {key}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        let mut r = self.header("content-type", "application/json");
        r.body = body.into();
        r
    }

    /// The bytes on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: keyflow.test\r\nconnection: close\r\n",
            self.method, self.target
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.body.is_empty() || self.method == "POST" {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Everything the request carries, to tell an echo of the caller's own input from a leak.
    pub fn text(&self) -> String {
        let mut t = decode(&self.target);
        t.push_str(&String::from_utf8_lossy(&self.body));
        for (_, v) in &self.headers {
            t.push_str(v);
        }
        t
    }
}

/// A reply; `status` 0 when the server closed the connection without one.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A 4xx/5xx in the API's error shape; its `code`.
    pub fn error_code(&self) -> Option<String> {
        let j = self.json();
        let code = j["error"]["code"].as_str()?;
        j["error"]["message"].as_str().filter(|m| !m.is_empty())?;
        Some(code.to_owned())
    }
}

/// `%xx` decoded, lossily (for comparing what a caller sent with what came back).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters: one path segment or query value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One connection, read as it arrives.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Conn {
    pub async fn open(addr: SocketAddr, wire: &[u8]) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect to the API");
        // The server may answer and close before reading everything (a refused head): what it
        // answered is still read below.
        let _ = stream.write_all(wire).await;
        Self {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Reads more; false at end of stream, on a reset, or after `wait`.
    async fn fill(&mut self, wait: Duration) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(wait, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Ok(_) => {
                self.eof = true;
                false
            }
            Err(_) => false,
        }
    }

    fn take_line(&mut self) -> Option<String> {
        let at = self.buf.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
        self.buf.drain(..at + 2);
        Some(line)
    }

    /// The status line and headers; status 0 if the connection ended first.
    pub async fn head(&mut self) -> Reply {
        let mut reply = Reply::default();
        while !self.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            if !self.fill(TIMEOUT).await {
                return reply;
            }
        }
        let status = self.take_line().unwrap_or_default();
        reply.status = status
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        while let Some(line) = self.take_line() {
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                reply
                    .headers
                    .push((k.trim().to_lowercase(), v.trim().to_owned()));
            }
        }
        reply
    }

    /// The next chunk of a chunked body, waiting at most `wait`; `None` at its end or on timeout.
    pub async fn chunk(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..at])
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim(),
                    16,
                )
                .ok()?;
                if self.buf.len() >= at + 2 + size + 2 {
                    let data = self.buf[at + 2..at + 2 + size].to_vec();
                    self.buf.drain(..at + 2 + size + 2);
                    return (size > 0).then_some(data);
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.fill(left).await {
                return None;
            }
        }
    }

    /// The whole body, by `Content-Length`, chunks, or until the server closes.
    pub async fn body(&mut self, head: &Reply) -> Vec<u8> {
        if head.header("transfer-encoding") == Some("chunked") {
            let mut out = Vec::new();
            while let Some(c) = self.chunk(TIMEOUT).await {
                out.extend_from_slice(&c);
            }
            return out;
        }
        let want = head.header("content-length").and_then(|v| v.parse().ok());
        loop {
            if want.is_some_and(|n| self.buf.len() >= n) {
                break;
            }
            if !self.fill(TIMEOUT).await {
                break;
            }
        }
        let n = want.unwrap_or(self.buf.len()).min(self.buf.len());
        self.buf.drain(..n).collect()
    }
}

/// Sends `req` and reads the whole reply.
pub async fn send(addr: SocketAddr, req: &Req) -> Reply {
    send_raw(addr, &req.bytes()).await
}

/// Sends bytes as they are and reads the whole reply.
pub async fn send_raw(addr: SocketAddr, wire: &[u8]) -> Reply {
    let mut c = Conn::open(addr, wire).await;
    let mut reply = c.head().await;
    if reply.status != 0 {
        reply.body = c.body(&reply).await;
    }
    reply
}
