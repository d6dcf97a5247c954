//! The outbound client against a real upstream on a loopback port (a small scripted HTTP/1.1
//! server that counts its connections): what is allowed works, and every refusal happens before a
//! connection is made — the upstream's accept count says so. Names are pinned with
//! `[outbound] resolve`, so no test ever sends a DNS query or a packet beyond 127.0.0.1.
//!
//! `mod.rs` is the harness: the scripted upstream and the clients' constructors. `calls` holds
//! what one call does (allowed, refused, timed out, cut, invalid, failed), `redirects` what a
//! followed redirect does, `connections` what the plugin's connections do (the cap, the pool,
//! `busy`).

mod calls;
mod connections;
mod redirects;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::metrics::Sources;

/// What the upstream answers.
#[derive(Clone, Copy)]
enum Script {
    /// 200 with a small body.
    Ok,
    /// Waits this long, then answers 200.
    Slow(Duration),
    /// A chunked body that never ends.
    Endless,
    /// 302 to this URL (on the same upstream or another).
    RedirectTo(&'static str),
    /// 200 with a chunked body whose last chunk is written separately: the answer is complete
    /// only a moment after it starts, as a real upstream's often is.
    Chunked,
    /// This redirect status to this URL.
    Redirect(u16, &'static str),
    /// 200 with a small body, then closes the connection (without saying so) 50 ms later, as an
    /// upstream dropping idle connections does.
    OkThenClose,
    /// 200 with a body of this many bytes, framed by `Content-Length`.
    Sized(usize),
    /// 200 with a body of this many bytes, chunked (no length known in advance).
    ChunkedSized(usize),
    /// Bytes that are not HTTP.
    Garbage,
    /// Closes the connection as soon as the request's head has arrived, answering nothing.
    Hangup,
    /// Accepts and reads, and never writes a byte (a TLS handshake with it never completes).
    Silent,
}

/// A loopback upstream: its address, how many connections it accepted, the most it had open at
/// once, and the heads it received.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start(script: Script) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (a, o, p, h) = (accepted.clone(), open.clone(), peak.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                // Answers written in parts go out at once, not after the client's delayed ACK.
                let _ = sock.set_nodelay(true);
                a.fetch_add(1, Ordering::SeqCst);
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let (o, h) = (o.clone(), h.clone());
                tokio::spawn(async move {
                    serve(&mut sock, script, &h).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Upstream {
            addr,
            accepted,
            open,
            peak,
            heads,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The request heads received so far.
    fn received(&self) -> usize {
        self.heads.lock().unwrap().len()
    }

    /// The last request head received, lower-cased.
    fn last_head(&self) -> String {
        let heads = self.heads.lock().unwrap();
        heads.last().expect("a request").to_ascii_lowercase()
    }
}

/// Answers requests on one connection (keep-alive) until the client goes.
async fn serve(sock: &mut tokio::net::TcpStream, script: Script, heads: &Mutex<Vec<String>>) {
    if let Script::Silent = script {
        let mut sink = [0u8; 4096];
        while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        // A request body (Content-Length only: the client sends no chunked bodies) is read and
        // dropped, so the next request on the connection starts where it should.
        let length: usize = head
            .to_ascii_lowercase()
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..length);
        heads.lock().unwrap().push(head);
        let reply: Vec<u8> = match script {
            Script::Ok => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-up: 1\r\n\r\nhello".to_vec(),
            Script::Chunked => {
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
                if sock.write_all(head).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
                b"0\r\n\r\n".to_vec()
            }
            Script::OkThenClose => {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            Script::Redirect(status, to) => {
                format!("HTTP/1.1 {status} Redirect\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
                    .into_bytes()
            }
            Script::Slow(d) => {
                tokio::time::sleep(d).await;
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow".to_vec()
            }
            Script::RedirectTo(to) => {
                format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
                    .into_bytes()
            }
            Script::Sized(n) => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n");
                [head.into_bytes(), vec![b'x'; n]].concat()
            }
            Script::ChunkedSized(n) => {
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                let chunk = format!("{n:x}\r\n{}\r\n0\r\n\r\n", "x".repeat(n));
                [head, chunk.into_bytes()].concat()
            }
            Script::Garbage => b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
            Script::Hangup => return,
            Script::Silent => return,
            Script::Endless => {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let block = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                while sock.write_all(block.as_bytes()).await.is_ok() {}
                return;
            }
        };
        if sock.write_all(&reply).await.is_err() {
            return;
        }
    }
}

fn settings(f: impl FnOnce(&mut OutboundSettings)) -> OutboundSettings {
    let mut s = OutboundSettings::default();
    f(&mut s);
    s
}

/// A client with the default bounds, but a 5 s timeout.
fn client(settings: &OutboundSettings, allow: &[&str]) -> Arc<PluginClient> {
    bounded(settings, |_| {}, allow)
}

fn bounded(
    settings: &OutboundSettings,
    f: impl FnOnce(&mut Bounds),
    allow: &[&str],
) -> Arc<PluginClient> {
    let service = Outbound::new(settings, Arc::new(Metrics::new(Sources::none()))).unwrap();
    client_of(&service, f, allow)
}

/// The client of `service` for plugin `p`, allowed `allow`, with the default bounds but a 5 s
/// timeout, then changed by `f`.
fn client_of(service: &Outbound, f: impl FnOnce(&mut Bounds), allow: &[&str]) -> Arc<PluginClient> {
    let allow: Vec<AllowEntry> = allow
        .iter()
        .map(|e| AllowEntry::parse(e).unwrap())
        .collect();
    let mut bounds = Bounds {
        timeout: Duration::from_secs(5),
        ..Bounds::of(&PluginLimits::default())
    };
    f(&mut bounds);
    service.client("p", &allow, bounds).expect("a client")
}

/// A client allowed every loopback port, with at most `cap` calls in flight and connections per
/// destination.
fn capped(cap: u32) -> Arc<PluginClient> {
    bounded(
        &settings(|_| {}),
        |b| b.max_concurrency = cap,
        &["http://127.0.0.1:*"],
    )
}

fn get(url: &str) -> Call<'_> {
    Call {
        method: b"GET",
        url: url.as_bytes(),
        headers: Vec::new(),
        body: b"",
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Connections `c` holds to `url`'s destination (connecting, in use or idle): its places taken.
fn open_to(c: &PluginClient, url: &str) -> usize {
    let uri: hyper::Uri = url.parse().unwrap();
    c.connections
        .open(&connector::Destination::of(&uri).unwrap())
}

/// Polls `done` every 10 ms until it holds or `within` passes; whether it held.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}
