//! The connector of one plugin's client: how a destination (scheme, host, port) becomes an open
//! connection, and the permit that connection carries for as long as it is open.
//!
//! Owns the connection cap: at most `max_outbound_concurrency` connections of a plugin per
//! destination, counting those connecting, in use and idle in the pool. The permit is taken
//! before the first packet and owned by the connection value ([`Conn`]) itself, so it comes back
//! exactly when hyper drops the connection — closed by the upstream, by the pool's idle timeout,
//! or after a cut-off body — whoever holds it. Also owns the steps of a connect, each under the
//! one `connect_timeout`: guarded resolution (`resolver`: every address passes the SSRF guard),
//! TCP to each admitted address in turn, and TLS (`tls`) with the URL's host as the SNI and
//! verified name. It must not decide which URLs a plugin may call (the allow-list is checked
//! before the client is asked) nor see requests: it hands hyper a byte stream.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper::rt::ReadBufCursor;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::OutboundError;
use super::resolver::GuardedResolver;
use super::tls;

tokio::task_local! {
    /// The bound of the call being sent (`PluginClient::bounded` sets it around the exchange):
    /// hyper-util asks the connector for a connection with nothing but the URI, and a call's
    /// wait for a connection place must end where the call's own wait for a place would.
    pub(super) static CALL_BOUND: Instant;
}

/// Where a connection goes, as the connection cap counts it: the pool keeps connections per
/// scheme and authority, and URLs are normalised before they get here (lower-case host, no
/// default port), so one destination is one pool entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Destination {
    https: bool,
    /// A name or an address; an IPv6 address without its brackets.
    host: String,
    port: u16,
}

impl Destination {
    /// The destination of `uri` (an absolute `http` or `https` URI).
    pub(super) fn of(uri: &Uri) -> Result<Destination, OutboundError> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(OutboundError::Invalid(format!(
                    "{uri}: only http and https URLs can be called"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| OutboundError::Invalid(format!("{uri} has no host")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Destination {
            https,
            host: host.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        match self.host.contains(':') {
            true => write!(f, "{scheme}://[{}]:{}", self.host, self.port),
            false => write!(f, "{scheme}://{}:{}", self.host, self.port),
        }
    }
}

/// One plugin's connection places: per destination, a semaphore of `max` permits.
#[derive(Debug)]
pub(super) struct Places {
    max: u32,
    by_destination: Mutex<HashMap<Destination, Arc<Semaphore>>>,
}

impl Places {
    pub(super) fn new(max: u32) -> Places {
        Places {
            max: max.max(1),
            by_destination: Mutex::default(),
        }
    }

    /// The semaphore of `to`, made on first use. Semaphores nobody holds or waits on (only the
    /// map refers to them) are dropped when a new destination is added, so the map is as large
    /// as the destinations with connections, not as every name a wildcard entry ever allowed.
    /// Both happen under the map's lock, and every permit and waiter keeps its semaphore alive,
    /// so a destination never has two semaphores at once.
    fn semaphore(&self, to: &Destination) -> Arc<Semaphore> {
        let mut map = self
            .by_destination
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(to) {
            return s.clone();
        }
        map.retain(|_, s| Arc::strong_count(s) > 1);
        let s = Arc::new(Semaphore::new(self.max as usize));
        map.insert(to.clone(), s.clone());
        s
    }

    /// Takes a place of `to` as a connection would, for tests that need one held.
    #[cfg(test)]
    pub(super) fn take(&self, to: &Destination) -> OwnedSemaphorePermit {
        self.semaphore(to)
            .try_acquire_owned()
            .expect("a free place")
    }

    /// Connections open (or connecting) to `to` now.
    #[cfg(test)]
    pub(super) fn open(&self, to: &Destination) -> usize {
        let map = self
            .by_destination
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.get(to)
            .map_or(0, |s| self.max as usize - s.available_permits())
    }
}

/// The connector hyper-util's client calls (as a `tower_service::Service<Uri>`) whenever it
/// wants a new connection; cheap to clone.
#[derive(Clone)]
pub(super) struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    plugin: String,
    resolver: GuardedResolver,
    tls: TlsConnector,
    connect_timeout: Duration,
    places: Arc<Places>,
}

impl Connector {
    pub(super) fn new(
        plugin: &str,
        resolver: GuardedResolver,
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
        places: Arc<Places>,
    ) -> Connector {
        Connector {
            inner: Arc::new(Inner {
                plugin: plugin.to_string(),
                resolver,
                tls: TlsConnector::from(tls),
                connect_timeout,
                places,
            }),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, OutboundError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), OutboundError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let inner = self.inner.clone();
        // hyper-util calls this while polling the call's own request future, so the call's bound
        // is in scope here; a connect it later finishes in the background keeps that bound.
        let bound = CALL_BOUND.try_with(|b| *b).ok();
        Box::pin(async move { inner.connect(uri, bound).await })
    }
}

impl Inner {
    /// A connection to `uri`'s destination holding one of its places, all within
    /// `connect_timeout`: waiting for a place (-> `busy`), then resolving and connecting
    /// (-> `connect`). When a call asks (`bound`: its own bound, [`CALL_BOUND`]), the wait for a
    /// place also ends at that bound, with `busy`: a call that never got its connection has not
    /// timed out (docs/configuration.md, `max_outbound_concurrency`). A place that comes free
    /// only as the bound passes is no place: the bound is checked first.
    ///
    /// The wait is short for a call: the plugin's calls in flight are capped at the same number,
    /// so when every place of a destination is taken, one of those connections is idle, on its
    /// way back to the pool (hyper-util races its pool checkout against this connect), or closing
    /// (a call that timed out mid-answer leaves a connection hyper closes a moment later). The
    /// `connect_timeout` bound matters for the connects hyper-util finishes in the background
    /// after a checkout won: they give up instead of waiting until an idle connection expires.
    async fn connect(&self, uri: Uri, bound: Option<Instant>) -> Result<Conn, OutboundError> {
        let to = Destination::of(&uri)?;
        let asked = Instant::now();
        let until = asked + self.connect_timeout;
        let place_until = bound.map_or(until, |b| b.min(until));
        let semaphore = self.places.semaphore(&to);
        let busy = || OutboundError::Busy {
            plugin: self.plugin.clone(),
            max: self.places.max,
            what: format!("connections open to {to}"),
            waited: place_until.saturating_duration_since(asked),
        };
        let place = match semaphore.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::select! {
                biased;
                () = tokio::time::sleep_until(place_until) => return Err(busy()),
                // Closed never happens (nobody closes it); treated as no place.
                p = semaphore.acquire_owned() => p.map_err(|_| busy())?,
            },
        };
        match tokio::time::timeout_at(until, self.establish(&to, until)).await {
            Ok(Ok(stream)) => Ok(Conn {
                io: TokioIo::new(stream),
                _place: place,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(OutboundError::Connect(format!(
                "no connection to {to} within {:?} (connect_timeout)",
                self.connect_timeout
            ))),
        }
    }

    /// Resolves, connects and (for https) shakes hands.
    async fn establish(&self, to: &Destination, until: Instant) -> Result<Stream, OutboundError> {
        let scheme = if to.https { "https" } else { "http" };
        let addrs = self.resolver.resolve(scheme, &to.host, to.port).await?;
        let tcp = connect_any(&addrs, to.port, until).await?;
        // Requests are written whole: no reason to hold the last segment back (Nagle).
        let _ = tcp.set_nodelay(true);
        if !to.https {
            return Ok(Stream::Plain(tcp));
        }
        let name = ServerName::try_from(to.host.clone())
            .map_err(|_| OutboundError::Invalid(format!("{} is not a TLS server name", to.host)))?;
        match self.tls.connect(name, tcp).await {
            Ok(tls) => Ok(Stream::Tls(Box::new(tls))),
            Err(e) if tls::is_tls(&e) => Err(OutboundError::Protocol(format!("TLS: {e}"))),
            Err(e) => Err(OutboundError::Connect(format!(
                "TLS handshake with {to}: {e}"
            ))),
        }
    }
}

/// A TCP connection to one of `addrs` (in order) on `port`. Each try gets an equal share of the
/// time left, so an address that never answers cannot use up the whole `connect_timeout` while
/// the next one would have.
async fn connect_any(
    addrs: &[IpAddr],
    port: u16,
    until: Instant,
) -> Result<TcpStream, OutboundError> {
    let mut failures = Vec::new();
    for (i, &ip) in addrs.iter().enumerate() {
        let to = SocketAddr::new(ip, port);
        let left = until.saturating_duration_since(Instant::now());
        let share = left / (addrs.len() - i) as u32;
        match tokio::time::timeout(share, TcpStream::connect(to)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => failures.push(format!("{to}: {e}")),
            Err(_) => failures.push(format!("{to}: no answer within {share:?}")),
        }
    }
    Err(OutboundError::Connect(failures.join("; ")))
}

/// A connection's bytes: plain TCP, or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection as hyper sees it: its bytes, and the place it holds under the connection
/// cap, given back when hyper drops it (the connection is closed then).
pub(super) struct Conn {
    io: TokioIo<Stream>,
    _place: OwnedSemaphorePermit,
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        hyper::rt::Read::poll_read(Pin::new(&mut self.get_mut().io), cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        hyper::rt::Write::poll_write(Pin::new(&mut self.get_mut().io), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        hyper::rt::Write::poll_write_vectored(Pin::new(&mut self.get_mut().io), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        hyper::rt::Write::is_write_vectored(&self.io)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_flush(Pin::new(&mut self.get_mut().io), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_shutdown(Pin::new(&mut self.get_mut().io), cx)
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        // Not proxied, HTTP/1.1 only (ALPN offers nothing else): the defaults.
        Connected::new()
    }
}
