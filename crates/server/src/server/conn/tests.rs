//! The connection driver over an in-memory pipe (`tokio::io::duplex`) with paused time, the way
//! mini-redis and hyper test theirs: keep-alive, pipelining, 100-continue, every timeout at its
//! deadline, the close after a framing error, shutdown and the per-connection request cap. Time
//! is virtual, so a 10 s timeout takes no time and lands exactly; the metrics the driver records
//! are read back from the rendered exposition, as an operator would.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::serve;
use crate::config::Config;
use crate::server::Context;
use crate::server::shutdown::{self, Trigger};
use crate::start::Parts;

/// Short, distinct timeouts so each test can tell which one fired.
const CONFIG: &str = r#"
[server]
max_requests_per_connection = 3

[timeouts]
header_read = "2s"
body_read = "3s"
body_total = "7s"
idle = "5s"
write = "4s"
linger = "100ms"

[runtime]
module_cache = false

[plugins.echo]
wasm = "tests/guests/echo.wat"

[[routes]]
method = "*"
path = "/echo"
plugin = "echo"
"#;

/// A server's parts with the echo guest loaded; no listener, no tasks.
async fn parts() -> Parts {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = Config::parse(CONFIG, std::path::Path::new("conn-test.toml"), &root)
        .expect("the test config is valid");
    let parts = Parts::new(&config).expect("the runtime starts");
    let report = parts.loader.load_all().await.expect("loads");
    assert!(report.refused.is_empty(), "{report:?}");
    parts
}

/// One connection served over a pipe of `capacity` bytes each way.
struct Pipe {
    client: DuplexStream,
    /// Bytes read and not yet consumed as a response.
    pending: Vec<u8>,
    task: JoinHandle<()>,
    trigger: Trigger,
    ctx: Arc<Context>,
}

impl Pipe {
    fn open(ctx: &Arc<Context>, capacity: usize) -> Pipe {
        let (client, server) = tokio::io::duplex(capacity);
        let (trigger, signal) = shutdown::channel();
        let handle = ctx.registry.open();
        let peer = "127.0.0.1:40000".parse().expect("an address");
        let task = tokio::spawn(serve(server, peer, ctx.clone(), handle, signal));
        Pipe {
            client,
            pending: Vec::new(),
            task,
            trigger,
            ctx: ctx.clone(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.client
            .write_all(bytes)
            .await
            .expect("the server reads");
    }

    /// Reads one response: status, headers (lowercase names), body (Content-Length framed).
    async fn response(&mut self) -> Option<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) =
                parsed.parse(&self.pending).expect("a valid response head")
            {
                let status = parsed.code.expect("a status");
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().expect("a length"));
                if self.pending.len() >= head_len + len {
                    let body = self.pending[head_len..head_len + len].to_vec();
                    self.pending.drain(..head_len + len);
                    return Some(Response {
                        status,
                        headers,
                        body,
                    });
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.client.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closed its end (no more bytes, end of stream).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.client.read_to_end(&mut rest).await.is_ok() && rest.is_empty()
    }

    /// Waits for the connection's task to end (the close is counted when it does).
    async fn finished(&mut self) {
        (&mut self.task)
            .await
            .expect("the connection task does not panic");
    }

    fn metric(&self, sample: &str) -> f64 {
        let text = self.ctx.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test(start_paused = true)]
async fn keep_alive_serves_requests_until_the_per_connection_cap() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    for i in 1..=3 {
        pipe.send(HEALTH).await;
        let resp = pipe.response().await.expect("an answer");
        assert_eq!(resp.status, 200);
        // `max_requests_per_connection = 3`: the third answer says it is the last.
        let last = i == 3;
        assert_eq!(resp.header("connection") == Some("close"), last, "#{i}");
    }
    assert!(pipe.closed().await);
    pipe.finished().await;
    assert_eq!(
        pipe.metric(r#"wasmgate_connections_closed_total{reason="max_requests"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_answered_in_order() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(
        b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let statuses: Vec<u16> = [
        pipe.response().await,
        pipe.response().await,
        pipe.response().await,
    ]
    .into_iter()
    .map(|r| r.expect("three answers").status)
    .collect();
    assert_eq!(statuses, [404, 200, 200]);
    assert!(pipe.closed().await, "`Connection: close` on the last one");
    pipe.finished().await;
}

#[tokio::test(start_paused = true)]
async fn a_body_is_never_parsed_as_a_request() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    let smuggled = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    req.extend_from_slice(smuggled);
    pipe.send(&req).await;
    let resp = pipe.response().await.expect("an answer");
    assert_eq!((resp.status, &resp.body[..]), (200, &smuggled[..]));
    pipe.send(HEALTH).await;
    assert_eq!(pipe.response().await.expect("a second answer").status, 200);
}

#[tokio::test(start_paused = true)]
async fn http10_closes_unless_it_asks_for_keep_alive() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let resp = pipe.response().await.expect("an answer");
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    pipe.send(b"GET /health HTTP/1.0\r\n\r\n").await;
    assert_eq!(pipe.response().await.expect("an answer").status, 200);
    assert!(pipe.closed().await);
    pipe.finished().await;
    assert_eq!(
        pipe.metric(r#"wasmgate_connections_closed_total{reason="requested"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .await;
    let interim = pipe.response().await.expect("an interim answer");
    assert_eq!(interim.status, 100);
    pipe.send(b"body").await;
    let resp = pipe.response().await.expect("the final answer");
    assert_eq!((resp.status, &resp.body[..]), (200, &b"body"[..]));
}

#[tokio::test(start_paused = true)]
async fn expect_100_continue_to_no_route_is_refused_without_the_body() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(
        b"POST /nope HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .await;
    let resp = pipe.response().await.expect("a refusal, no 100");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(pipe.closed().await);
}

#[tokio::test(start_paused = true)]
async fn a_framing_error_is_answered_then_the_connection_closes() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    // Both Content-Length and Transfer-Encoding: a smuggling attempt. The follower must never be
    // read as a request.
    pipe.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    let resp = pipe.response().await.expect("a refusal");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(pipe.response().await.is_none(), "nothing after the refusal");
    pipe.finished().await;
    assert_eq!(
        pipe.metric(r#"wasmgate_parse_errors_total{kind="content_length_with_transfer_encoding"}"#),
        1.0
    );
    assert_eq!(
        pipe.metric(r#"wasmgate_connections_closed_total{reason="bad_request"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn an_incomplete_head_gets_408_at_header_read() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    let start = Instant::now();
    pipe.send(b"GET /health HT").await;
    let resp = pipe.response().await.expect("a 408");
    assert_eq!(resp.status, 408);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(pipe.closed().await);
    assert_eq!(
        pipe.metric(r#"wasmgate_timeouts_total{kind="header_read"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_without_an_answer_at_header_read() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    let start = Instant::now();
    assert!(pipe.closed().await);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    pipe.finished().await;
    assert_eq!(
        pipe.metric(r#"wasmgate_connections_closed_total{reason="header_timeout"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_closes_at_idle() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(HEALTH).await;
    pipe.response().await.expect("an answer");
    let start = Instant::now();
    assert!(pipe.closed().await);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(pipe.metric(r#"wasmgate_timeouts_total{kind="idle"}"#), 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_gets_408_at_body_read() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    let start = Instant::now();
    let resp = pipe.response().await.expect("a 408");
    assert_eq!(resp.status, 408);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(
        pipe.metric(r#"wasmgate_timeouts_total{kind="body_read"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_dripped_body_gets_408_at_body_total() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        .await;
    let start = Instant::now();
    // One byte every 2 s: never a 3 s stall, but the whole body is due within 7 s.
    let dripper = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if pipe.client.write_all(b"x").await.is_err() {
                break;
            }
        }
    };
    dripper.await;
    let resp = pipe.response().await.expect("a 408");
    assert_eq!(resp.status, 408);
    assert!(start.elapsed() >= Duration::from_secs(7));
    assert_eq!(
        pipe.metric(r#"wasmgate_timeouts_total{kind="body_total"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_closed_at_write() {
    let parts = parts().await;
    // A pipe smaller than the response: the write blocks until the client reads, which it never
    // does.
    let mut pipe = Pipe::open(&parts.ctx, 512);
    pipe.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let start = Instant::now();
    pipe.finished().await;
    assert_eq!(start.elapsed(), Duration::from_secs(4));
    assert_eq!(pipe.metric(r#"wasmgate_timeouts_total{kind="write"}"#), 1.0);
    assert_eq!(
        pipe.metric(r#"wasmgate_connections_closed_total{reason="write_timeout"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_an_idle_connection_at_once_and_ends_keep_alive() {
    let parts = parts().await;
    let mut pipe = Pipe::open(&parts.ctx, 64 * 1024);
    pipe.send(HEALTH).await;
    pipe.response().await.expect("an answer");
    let start = Instant::now();
    pipe.trigger.trigger();
    assert!(pipe.closed().await);
    assert_eq!(start.elapsed(), Duration::ZERO);
    pipe.finished().await;
    assert_eq!(
        pipe.metric(r#"wasmgate_connections_closed_total{reason="shutdown"}"#),
        1.0
    );
    // A request in flight when shutdown begins is answered, with `Connection: close`.
    let mut busy = Pipe::open(&parts.ctx, 64 * 1024);
    busy.send(b"GET /health HTTP/1.1\r\nHost: t\r\n").await;
    busy.trigger.trigger();
    busy.send(b"\r\n").await;
    let resp = busy.response().await.expect("an answer");
    assert_eq!(resp.header("connection"), Some("close"));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_goes_away_is_counted_as_client_closed() {
    let parts = parts().await;
    let pipe = Pipe::open(&parts.ctx, 64 * 1024);
    let Pipe {
        client, task, ctx, ..
    } = pipe;
    drop(client);
    task.await.expect("the connection ends");
    let text = ctx.metrics.render();
    assert!(
        text.contains(r#"wasmgate_connections_closed_total{reason="client_closed"} 1"#),
        "{text}"
    );
}
