//! The one raw HTTP/1.1 client of the tests: exact bytes out, exact responses in.
//!
//! Owns framing responses the way a strict client would (status line, fields, Content-Length, or
//! to EOF without one) and saying precisely what went wrong when it cannot: every failure is an
//! `io::Error` (closed before a response head, malformed status line, cut short mid-body, ...),
//! never a panic, so a test decides whether a failure fails it (`?`) or is what it polls for
//! ([`answers_200`]). It must not know about servers, configs or metrics beyond fetching
//! `/metrics` text ([`scrape`]); well-behaved traffic that needs no byte-level control uses `ureq`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read may wait for the server before the client calls it an error: far longer than
/// any test's timeout, so it only fires on a real hang.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking client on one connection: send exact bytes, read exact responses.
pub struct RawClient {
    stream: TcpStream,
    /// Bytes read but not yet consumed by a response (the start of the next one, when pipelined).
    pending: Vec<u8>,
}

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; an error that quotes the body when it is not JSON.
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response body is not JSON ({e}): {:?}", self.text()),
            )
        })
    }
}

impl RawClient {
    /// Connects to `addr` (an error when the server is not, or no longer, accepting).
    pub fn connect(addr: SocketAddr) -> io::Result<RawClient> {
        let stream = TcpStream::connect(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connecting to {addr}: {e}")))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(RawClient {
            stream,
            pending: Vec::new(),
        })
    }

    /// This end's address: the peer address the server sees for this connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// Writes all of `bytes`; chainable (`c.send(a)?.send(b)?`).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<&mut Self> {
        self.stream
            .write_all(bytes)
            .map_err(|e| io::Error::new(e.kind(), format!("sending {} bytes: {e}", bytes.len())))?;
        Ok(self)
    }

    /// Bounds how long [`RawClient::send`] may block on a server that stopped reading.
    pub fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_write_timeout(Some(timeout))
    }

    /// Reads one response to a request that has a body in its answer.
    pub fn response(&mut self) -> io::Result<Response> {
        self.response_to(false)
    }

    /// Reads one response: Content-Length framed, or to EOF without one. `head_only` for the answer
    /// to a HEAD request (which announces a length it does not send).
    pub fn response_to(&mut self, head_only: bool) -> io::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill()? == 0 {
                return Err(closed(format!(
                    "connection closed before a response head; got {:?}",
                    String::from_utf8_lossy(&self.pending)
                )));
            }
        };
        let head = std::str::from_utf8(&self.pending[..head_end])
            .map_err(|_| malformed(format!("response head is not UTF-8: {:?}", self.pending)))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| malformed(format!("malformed status line {status_line:?}")))?;
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split_once(':')
                    .map(|(n, v)| (n.to_string(), v.trim().to_string()))
                    .ok_or_else(|| malformed(format!("header line without a colon: {l:?}")))
            })
            .collect::<io::Result<Vec<_>>>()?;
        self.pending.drain(..head_end);
        let length = match headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            Some((_, v)) => Some(
                v.parse::<usize>()
                    .map_err(|_| malformed(format!("malformed Content-Length {v:?}")))?,
            ),
            None => None,
        };
        let body = match length {
            _ if head_only || status == 100 || status == 204 || status == 304 => Vec::new(),
            Some(n) => {
                while self.pending.len() < n {
                    if self.fill()? == 0 {
                        return Err(closed(format!(
                            "connection closed mid-body: {} of {n} bytes",
                            self.pending.len()
                        )));
                    }
                }
                self.pending.drain(..n).collect()
            }
            None => {
                while self.fill()? > 0 {}
                std::mem::take(&mut self.pending)
            }
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The next response, or `None` if the server closes the connection before sending a byte of
    /// one (what a keep-alive request racing a graceful close may get). Half a response is an
    /// error, as is silence.
    pub fn response_or_close(&mut self) -> io::Result<Option<Response>> {
        if self.pending.is_empty() && self.fill()? == 0 {
            return Ok(None);
        }
        self.response().map(Some)
    }

    /// Whether the server has closed the connection (EOF or reset) with nothing more to read.
    /// Waits for that up to the read timeout; then it is an error (the server neither answered nor
    /// closed).
    pub fn is_closed(&mut self) -> io::Result<bool> {
        Ok(self.pending.is_empty() && self.fill()? == 0)
    }

    /// The socket, for tests that must misbehave below HTTP (a reset instead of a close).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Reads what is there (waiting up to the read timeout); 0 at EOF or on a reset.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(0),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!(
                    "reading a response: {e}; got {:?} so far",
                    String::from_utf8_lossy(&self.pending)
                ),
            )),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn closed(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, message)
}

fn malformed(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Sends `request` on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<Response> {
    RawClient::connect(addr)?.send(request)?.response()
}

/// `GET target` on a fresh connection (`Host: x`, keep-alive left to the server).
pub fn get(addr: SocketAddr, target: &str) -> io::Result<Response> {
    exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

/// Whether `GET path` is answered 200 right now. A refused, reset or cut-short exchange is `false`,
/// so it can be polled with [`super::eventually`] while a server starts or recovers.
pub fn answers_200(addr: SocketAddr, path: &str) -> bool {
    get(addr, path).is_ok_and(|resp| resp.status == 200)
}

/// The `/metrics` text of the server at `addr`, over HTTP, as an operator scrapes it.
pub fn scrape(addr: SocketAddr) -> io::Result<String> {
    let resp = get(addr, "/metrics")?;
    if resp.status != 200 {
        return Err(io::Error::other(format!(
            "GET /metrics answered {}: {}",
            resp.status,
            resp.text()
        )));
    }
    Ok(resp.text())
}
