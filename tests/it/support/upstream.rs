//! A scripted HTTP/1.1 upstream on a loopback port, for plugins' outbound calls to reach, and the
//! test certificate authority its HTTPS variant serves with.
//!
//! Owns [`Upstream`]: a thread-per-connection server on `127.0.0.1:0` (plain or TLS through
//! rustls) that answers every request the way it was told ([`Answer`]: at once, late, with a body
//! that never ends, with a redirect), records each request head, and counts what the tests
//! assert on: connections accepted, connections open now, the most ever open at once, and the
//! most requests ever being answered at once. It
//! closes a keep-alive connection after [`Upstream::IDLE`] without a request, as real servers do,
//! so a client's pool drains. [`TestCa`] makes a CA and a leaf certificate with the `openssl` CLI.
//! It must not know about wasmgate: it is the far side of the wire, nothing more. It only ever
//! binds loopback.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

/// How the upstream answers each request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// At once: `200 text/plain` with the body `hello from upstream <path>`; a path
    /// `/status/NNN` answers status NNN instead (same body).
    Ok,
    /// As `Ok`, after this long (a slow upstream; a long delay stands for one that never answers).
    Delayed(Duration),
    /// `200` with a chunked body that never ends (until the client goes away).
    Endless,
    /// `302 Found` to this URL.
    RedirectTo(String),
}

/// What the accept loop and the connection threads share.
#[derive(Default)]
struct State {
    accepted: AtomicUsize,
    open: AtomicUsize,
    peak: AtomicUsize,
    peak_established: AtomicUsize,
    answering: AtomicUsize,
    peak_answering: AtomicUsize,
    heads: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A running upstream; stops accepting on drop (its connection threads end with their
/// connections, or at once when they are waiting).
pub struct Upstream {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Upstream {
    /// How long a connection may sit idle between requests before the upstream closes it.
    pub const IDLE: Duration = Duration::from_millis(500);

    /// A plain-HTTP upstream on a free loopback port.
    pub fn start(answer: Answer) -> io::Result<Upstream> {
        Upstream::launch(answer, None)
    }

    /// An HTTPS upstream on a free loopback port, presenting `ca`'s leaf certificate.
    pub fn start_tls(answer: Answer, ca: &TestCa) -> anyhow::Result<Upstream> {
        let tls = ca.server_config()?;
        Ok(Upstream::launch(answer, Some(tls))?)
    }

    fn launch(answer: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::Builder::new()
            .name(format!("upstream-{}", addr.port()))
            .spawn(move || accept_loop(listener, answer, tls, shared))?;
        Ok(Upstream { addr, state })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// The most connections ever open at once.
    pub fn peak(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// The most connections the kernel ever had established to this upstream at once, read from
    /// `/proc/net/tcp` at each accept (0 where that cannot be read; an overlap shorter than the
    /// 2 ms the accept loop waits to confirm a new peak is not seen). Unlike [`Upstream::peak`],
    /// a connection the client has closed is not counted (its socket here is in `CLOSE_WAIT`),
    /// even while this upstream's thread for it still sleeps through a delayed answer: what a
    /// client really holds open. Sampling at each accept sees the peak, which only an accept can
    /// raise.
    pub fn peak_established(&self) -> usize {
        self.state.peak_established.load(Ordering::SeqCst)
    }

    /// The most requests ever being answered at once (from the end of a head to the end of its
    /// answer).
    pub fn peak_requests(&self) -> usize {
        self.state.peak_answering.load(Ordering::SeqCst)
    }

    /// Every request head received, oldest first, as sent (request line and fields).
    pub fn heads(&self) -> Vec<String> {
        self.state
            .heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The value of field `name` (case-insensitive) in the last request head received.
    pub fn last_header(&self, name: &str) -> Option<String> {
        let heads = self.heads();
        header_of(heads.last()?, name)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which sees `stop` and ends without counting this connection.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// The value of field `name` (case-insensitive) in the request head `head`.
pub fn header_of(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn accept_loop(
    listener: TcpListener,
    answer: Answer,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<State>,
) {
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        state.accepted.fetch_add(1, Ordering::SeqCst);
        let now = state.open.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now, Ordering::SeqCst);
        if let Ok(port) = listener.local_addr().map(|a| a.port()) {
            // A reading that would raise the peak is read again 2 ms later, the lower one kept:
            // the close of a connection the client ended just before this one's connect can
            // still be on its way through loopback (another CPU's backlog) at the accept.
            let mut established = established_to(port);
            if established > state.peak_established.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
                established = established.min(established_to(port));
            }
            state
                .peak_established
                .fetch_max(established, Ordering::SeqCst);
        }
        let (answer, tls, conn_state) = (answer.clone(), tls.clone(), state.clone());
        let spawned = std::thread::Builder::new()
            .name("upstream-conn".into())
            .spawn(move || {
                let _ = stream.set_read_timeout(Some(Upstream::IDLE));
                let _ = stream.set_nodelay(true);
                let state = conn_state;
                let _ = match tls.map(rustls::ServerConnection::new) {
                    None => serve(stream, &answer, &state),
                    Some(Ok(conn)) => {
                        serve(rustls::StreamOwned::new(conn, stream), &answer, &state)
                    }
                    Some(Err(e)) => Err(io::Error::other(e)),
                };
                state.open.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            state.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The TCP connections to local port `port` in state ESTABLISHED, from `/proc/net/tcp` (IPv4:
/// this upstream binds 127.0.0.1); 0 when it cannot be read.
fn established_to(port: u16) -> usize {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "01"
        })
        .count()
}

/// Answers requests on one connection until the client goes, it idles past [`Upstream::IDLE`],
/// or the upstream stops.
fn serve(mut conn: impl Read + Write, answer: &Answer, state: &State) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(head_end) = read_head(&mut conn, &mut buf)? else {
            return Ok(());
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        // The plugin's calls here have no body; one with a Content-Length is read and dropped.
        let length: usize = header_of(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            if fill(&mut conn, &mut buf)? == 0 {
                return Ok(());
            }
        }
        buf.drain(..length);
        let path = head.split(' ').nth(1).unwrap_or_default().to_string();
        state
            .heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(head);
        let _answering = Answering::begin(state);
        match answer {
            Answer::Ok => conn.write_all(&ok(&path))?,
            Answer::Delayed(delay) => {
                let until = Instant::now() + *delay;
                while Instant::now() < until {
                    if state.stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                conn.write_all(&ok(&path))?;
            }
            Answer::RedirectTo(to) => conn.write_all(
                format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
                    .as_bytes(),
            )?,
            Answer::Endless => {
                conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
                )?;
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                while !state.stop.load(Ordering::SeqCst) {
                    conn.write_all(chunk.as_bytes())?;
                }
                return Ok(());
            }
        }
        conn.flush()?;
    }
}

/// One request being answered, counted from its creation to its drop.
struct Answering<'a>(&'a State);

impl<'a> Answering<'a> {
    fn begin(state: &'a State) -> Answering<'a> {
        let now = state.answering.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak_answering.fetch_max(now, Ordering::SeqCst);
        Answering(state)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The `Ok` answer for `path`.
fn ok(path: &str) -> Vec<u8> {
    let status: u16 = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let body = format!("hello from upstream {path}");
    format!(
        "HTTP/1.1 {status} Whatever\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads until `buf` holds a whole head; its length, or `None` when the client closed (or went
/// idle) between requests.
fn read_head(conn: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(i + 4));
        }
        match fill(conn, buf) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
}

fn fill(conn: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = conn.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// A certificate authority made for one test, and a leaf certificate it signed for one DNS name,
/// in a directory of the test's (`openssl` CLI; EC P-256 keys, valid two days).
pub struct TestCa {
    /// The CA certificate, PEM: what `[outbound] ca_file` names.
    pub ca_pem: PathBuf,
    leaf_der: PathBuf,
    key_der: PathBuf,
}

impl TestCa {
    /// Makes the CA and a leaf for `name` (its only subjectAltName) in `dir`.
    pub fn generate(dir: &Path, name: &str) -> anyhow::Result<TestCa> {
        let p = |f: &str| dir.join(f);
        std::fs::write(
            p("leaf.ext"),
            format!(
                "subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )?;
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let ca_subject = ["-subj", "/CN=wasmgate test CA"];
        let ca_ext = [
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ];
        let ca_out = ["-keyout", "ca.key", "-out", "ca.pem"];
        let req_ca = ["req", "-x509", "-nodes", "-days", "2"];
        openssl(
            dir,
            &[&req_ca[..], &ec, &ca_subject, &ca_ext, &ca_out].concat(),
        )?;
        let leaf_subject = format!("/CN={name}");
        let leaf_out = ["-keyout", "leaf.key", "-out", "leaf.csr"];
        let req_leaf = ["req", "-nodes", "-subj", leaf_subject.as_str()];
        openssl(dir, &[&req_leaf[..], &ec, &leaf_out].concat())?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-days",
                "2",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "leaf.ext",
                "-outform",
                "DER",
                "-out",
                "leaf.der",
            ],
        )?;
        openssl(
            dir,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "leaf.key",
                "-outform",
                "DER",
                "-out",
                "leaf.key.der",
            ],
        )?;
        Ok(TestCa {
            ca_pem: p("ca.pem"),
            leaf_der: p("leaf.der"),
            key_der: p("leaf.key.der"),
        })
    }

    fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let cert = CertificateDer::from(std::fs::read(&self.leaf_der)?);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(&self.key_der)?));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
        Ok(Arc::new(config))
    }
}

/// Runs `openssl ARGS` in `dir`; its stderr in the error.
fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .context("running openssl (is it installed?)")?;
    ensure!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
