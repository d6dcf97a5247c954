//! The outbound client against a real upstream on a loopback port (a small scripted HTTP/1.1
//! server that counts its connections): what is allowed works, and every refusal happens before a
//! connection is made — the upstream's accept count says so. Names are pinned with
//! `[outbound] resolve`, so no test ever sends a DNS query or a packet beyond 127.0.0.1.

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
}

/// A loopback upstream: its address, how many connections it accepted, the most it had open at
/// once, and the heads it received.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
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
}

/// Answers requests on one connection (keep-alive) until the client goes.
async fn serve(sock: &mut tokio::net::TcpStream, script: Script, heads: &Mutex<Vec<String>>) {
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
        heads.lock().unwrap().push(head);
        let reply: Vec<u8> = match script {
            Script::Ok => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-up: 1\r\n\r\nhello".to_vec(),
            Script::Slow(d) => {
                tokio::time::sleep(d).await;
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow".to_vec()
            }
            Script::RedirectTo(to) => {
                format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
                    .into_bytes()
            }
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
    let allow: Vec<AllowEntry> = allow
        .iter()
        .map(|e| AllowEntry::parse(e).unwrap())
        .collect();
    let mut bounds = Bounds {
        timeout: Duration::from_secs(5),
        ..Bounds::of(&PluginLimits::default())
    };
    f(&mut bounds);
    service
        .client("p", &allow, bounds)
        .unwrap()
        .expect("a client")
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

#[tokio::test]
async fn an_allowed_call_works_and_carries_the_hosts_headers() {
    let up = Upstream::start(Script::Ok).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let forwarded = Forwarded {
        request_id: Some("00000000000000ab".into()),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
    };
    let answer = c
        .send(get(&up.url("/x")), &forwarded, later())
        .await
        .unwrap();
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"hello"[..])
    );
    assert!(answer.headers.iter().any(|(n, v)| n == "x-up" && v == b"1"));
    let head = up.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /x http/1.1\r\n"), "{head}");
    assert!(head.contains("user-agent: wasmgate/"), "{head}");
    assert!(head.contains("x-request-id: 00000000000000ab"), "{head}");
    assert!(head.contains("traceparent: 00-0af7651916cd43dd"), "{head}");
    // The connection is reused for the next call.
    c.send(get(&up.url("/y")), &forwarded, later())
        .await
        .unwrap();
    assert_eq!(up.accepted(), 1);
}

#[tokio::test]
async fn a_host_not_on_the_list_is_refused_without_a_connection_naming_the_entry() {
    let up = Upstream::start(Script::Ok).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.2:*"]);
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later())
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::NotAllowed { .. }), "{err}");
    let port = up.addr.port();
    assert!(
        err.to_string().contains(&format!(
            "add \"http://127.0.0.1:{port}\" to its allowed_outbound_hosts"
        )),
        "{err}"
    );
    // Another scheme, another port: not allowed either.
    let c = client(&settings(|_| {}), &[&format!("https://127.0.0.1:{port}")]);
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later())
        .await;
    assert!(matches!(err, Err(OutboundError::NotAllowed { .. })));
    assert_eq!(up.accepted(), 0);
}

#[tokio::test]
async fn an_allowed_name_resolving_to_a_guarded_address_is_refused_before_connecting() {
    let up = Upstream::start(Script::Ok).await;
    let s = settings(|s| {
        s.resolve
            .insert("api.test".into(), "127.0.0.1".parse().unwrap());
    });
    let c = client(&s, &["http://api.test:*"]);
    let url = format!("http://api.test:{}/", up.addr.port());
    let err = c
        .send(get(&url), &Forwarded::default(), later())
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::AddressBlocked { .. }), "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");
    assert_eq!(up.accepted(), 0, "no connection was made");
    // Naming the address itself allows it.
    let c = client(&s, &["http://api.test:*", "http://127.0.0.1:*"]);
    let answer = c
        .send(get(&url), &Forwarded::default(), later())
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn redirects_are_returned_unless_followed_and_followed_ones_are_checked() {
    let other = Upstream::start(Script::Ok).await;
    let target: &'static str =
        Box::leak(format!("http://other.test:{}/", other.addr.port()).into_boxed_str());
    let up = Upstream::start(Script::RedirectTo(target)).await;
    let pinned = |s: &mut OutboundSettings| {
        s.resolve
            .insert("other.test".into(), "127.0.0.1".parse().unwrap());
    };
    // Not followed by default: the plugin gets the 302.
    let c = client(&settings(pinned), &["http://127.0.0.1:*"]);
    let answer = c
        .send(get(&up.url("/")), &Forwarded::default(), later())
        .await
        .unwrap();
    assert_eq!(answer.status, 302);
    // Followed, to a host not on the list: refused, and the other upstream never sees a connection.
    let c = client(
        &settings(|s| {
            pinned(s);
            s.max_redirects = 3;
        }),
        &["http://127.0.0.1:*"],
    );
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later())
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::NotAllowed { .. }), "{err}");
    assert_eq!(other.accepted(), 0);
}

#[tokio::test]
async fn a_slow_upstream_times_out_at_the_calls_bound_and_at_the_deadline() {
    let up = Upstream::start(Script::Slow(Duration::from_secs(5))).await;
    let c = bounded(
        &settings(|_| {}),
        |b| b.timeout = Duration::from_millis(300),
        &["http://127.0.0.1:*"],
    );
    let started = Instant::now();
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later())
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The inbound request's deadline comes first when it is nearer.
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_millis(100);
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap() {
    let up = Upstream::start(Script::Endless).await;
    let c = bounded(
        &settings(|_| {}),
        |b| b.max_response_bytes = 100_000,
        &["http://127.0.0.1:*"],
    );
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later())
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::TooLarge(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_bounds_connections_to_the_upstream() {
    let up = Upstream::start(Script::Slow(Duration::from_millis(30))).await;
    let c = bounded(
        &settings(|_| {}),
        |b| b.max_concurrency = 4,
        &["http://127.0.0.1:*"],
    );
    let url = up.url("/");
    let calls: Vec<_> = (0..24)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { c.send(get(&url), &Forwarded::default(), later()).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status, 200);
    }
    let peak = up.peak.load(Ordering::SeqCst);
    assert!(peak <= 4, "{peak} connections open at once");
    assert!(
        up.accepted() <= 4,
        "connections are reused: {}",
        up.accepted()
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_and_bad_input_is_invalid() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let url = format!("http://127.0.0.1:{port}/");
    let err = c
        .send(get(&url), &Forwarded::default(), later())
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Connect(_)), "{err}");
    let err = c
        .send(get("not a url"), &Forwarded::default(), later())
        .await;
    assert!(matches!(err, Err(OutboundError::Invalid(_))));
    let mut call = get(&url);
    call.headers = vec![(b"host", b"evil")];
    let err = c.send(call, &Forwarded::default(), later()).await;
    assert!(
        matches!(err, Err(OutboundError::Invalid(_))),
        "the host owns Host"
    );
    let big = vec![0u8; PluginLimits::default().max_outbound_request_bytes + 1];
    let call = Call {
        method: b"POST",
        url: url.as_bytes(),
        headers: Vec::new(),
        body: &big,
    };
    let err = c.send(call, &Forwarded::default(), later()).await;
    assert!(matches!(err, Err(OutboundError::TooLarge(_))));
}

#[test]
fn a_tls_failure_inside_an_io_error_is_recognised() {
    // What the connector hands hyper when the certificate does not verify (tokio-rustls's
    // io::Error inside the connector's): classified `connect` before `is_tls` looked inside.
    let failure = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, failure.clone());
    let connector = std::io::Error::other(tls);
    assert!(is_tls(&connector));
    assert!(is_tls(&failure));
    assert!(!is_tls(&std::io::Error::other("connection refused")));
}
