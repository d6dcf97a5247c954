//! The hyper reference for `bench/run.sh`: the fastest idiomatic Rust HTTP/1.1 server we can write
//! in a few lines, answering the same bytes as wasmgate's routes so that every wasmgate figure can
//! be read as a ratio against it.
//!
//! - `GET /health` -> `200 {"status":"ok","uptime":N}` (application/json), like wasmgate's native
//!   route, uptime formatted per request as wasmgate does;
//! - `GET /hello/NAME` -> `200 {"message":"Hello, NAME!"}` (application/json), like the hello plugin
//!   (NAME is echoed without percent-decoding: the benchmark only sends plain names);
//! - anything else -> 404.
//!
//! Multi-threaded tokio with `WORKERS` worker threads (default 2, the same as wasmgate on this
//! machine), HTTP/1.1 keep-alive, TCP_NODELAY. Usage: `hyper-ref [ADDR]` (default
//! 127.0.0.1:18081); prints `hyper-ref listening on http://ADDR` once bound.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn answer(req: &Request<hyper::body::Incoming>, started: Instant) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let body = if req.method() != Method::GET {
        None
    } else if path == "/health" {
        let uptime = started.elapsed().as_secs();
        Some(format!(r#"{{"status":"ok","uptime":{uptime}}}"#))
    } else if let Some(name) = path.strip_prefix("/hello/").filter(|n| !n.contains('/')) {
        Some(format!(r#"{{"message":"Hello, {name}!"}}"#))
    } else {
        None
    };
    match body {
        Some(body) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        None => {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    }
}

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()
        .expect("ADDR must be ip:port");
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        println!("hyper-ref listening on http://{}", listener.local_addr().unwrap());
        let started = Instant::now();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(move |req| async move {
                    Ok::<_, Infallible>(answer(&req, started))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
