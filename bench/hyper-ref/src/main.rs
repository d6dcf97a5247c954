//! The hyper references for `bench/run.sh`: the fastest idiomatic Rust HTTP/1.1 server we can write
//! in a few lines, answering the same bytes as wasmgate's routes so that every wasmgate figure can
//! be read as a ratio against it.
//!
//! - `GET /health` -> `200 {"status":"ok","uptime":N}` (application/json), like wasmgate's native
//!   route, uptime formatted per request as wasmgate does;
//! - `GET /hello/NAME` -> `200 {"message":"Hello, NAME!"}` (application/json), like the hello plugin
//!   (NAME is echoed without percent-decoding: the benchmark only sends plain names);
//! - `GET /ok` -> what the wasm guest given as second argument answers (bench/run.sh passes
//!   tests/guests/ok.wat: `200`, `X-Guest: ok`, `hello from ok.wat\n`), produced by calling
//!   wasmtime directly, see [`Guest`]: the "hyper + wasmtime" reference, so that wasmgate's own
//!   per-call overhead around an instance is measured, not guessed (issue 14);
//! - anything else -> 404.
//!
//! Multi-threaded tokio with `WORKERS` worker threads (default 2, the same as wasmgate on this
//! machine), HTTP/1.1 keep-alive, TCP_NODELAY. Usage: `hyper-ref [ADDR [GUEST.wat|GUEST.wasm]]`
//! (default 127.0.0.1:18081; without a guest `/ok` is 404); prints `hyper-ref listening on
//! http://ADDR` once bound.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime::{
    Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Module, ModuleExport,
    PoolingAllocationConfig, Store,
};

/// A wasmgate ABI v1 guest (docs/ABI.md) called the leanest way wasmtime allows, with the engine
/// settings wasmgate's `runtime/engine.rs` uses at its defaults (wasmgate.toml): pooling allocator
/// (256 slots, 256 MiB memories, 1 MiB kept resident and reset by copy with PAGEMAP_SCAN, stacks
/// not zeroed), async calls on fibers, fuel (100,000,000 per request) and epoch interruption (a
/// 1 ms ticker; a guest yields to tokio at each tick). Per request: a fresh instance from an
/// `InstancePre` in a fresh `Store<()>`, one call `wasmgate_handle(0, 0)`, the response decoded
/// from linear memory, the store dropped. Deliberately absent, so the difference with wasmgate
/// serving the same guest is wasmgate's own cost: WASI, request encoding and `wasmgate_alloc`
/// (the trivial guest reads no request), limits beyond fuel, admission, metrics, logging.
struct Guest {
    pre: InstancePre<()>,
    memory: ModuleExport,
    handle: ModuleExport,
}

impl Guest {
    fn load(path: &str) -> wasmtime::Result<Guest> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(256)
            .total_memories(256)
            .total_tables(256)
            .total_stacks(256)
            .total_component_instances(0)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(256 << 20)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 << 10)
            .async_stack_size(2 << 20)
            .async_stack_zeroing(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let ticker = engine.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(1));
                ticker.increment_epoch();
            }
        });
        let module = Module::from_file(&engine, path)?; // .wat text too (the `wat` feature)
        let export = |name| {
            module
                .get_export_index(name)
                .ok_or_else(|| wasmtime::format_err!("no export {name}"))
        };
        Ok(Guest {
            memory: export("memory")?,
            handle: export("wasmgate_handle")?,
            pre: Linker::new(&engine).instantiate_pre(&module)?,
        })
    }

    /// One request: fresh instance, `wasmgate_handle(0, 0)`, the v1 response decoded.
    async fn call(&self) -> wasmtime::Result<Response<Full<Bytes>>> {
        let mut store = Store::new(self.pre.module().engine(), ());
        store.set_fuel(100_000_000)?;
        store.epoch_deadline_async_yield_and_update(1);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let handle = instance
            .get_module_export(&mut store, &self.handle)
            .and_then(Extern::into_func)
            .ok_or_else(|| wasmtime::format_err!("wasmgate_handle is not a function"))?
            .typed::<(i32, i32), i64>(&store)?;
        let r = handle.call_async(&mut store, (0, 0)).await? as u64;
        let Some(Extern::Memory(memory)) = instance.get_module_export(&mut store, &self.memory)
        else {
            wasmtime::bail!("memory is not a memory");
        };
        let (ptr, len) = ((r >> 32) as usize, (r & 0xffff_ffff) as usize);
        let bytes = memory
            .data(&store)
            .get(ptr..ptr.saturating_add(len))
            .ok_or_else(|| wasmtime::format_err!("response outside memory"))?;
        decode_v1(bytes).ok_or_else(|| wasmtime::format_err!("malformed response"))
    }
}

/// docs/ABI.md "Response", v1: `status u32 | header_count u32 | (name str, value str)* | body
/// str`, where `str` = u32 length + bytes, all little-endian. No checks beyond what HTTP needs.
fn decode_v1(mut b: &[u8]) -> Option<Response<Full<Bytes>>> {
    fn u32le(b: &mut &[u8]) -> Option<u32> {
        let (n, rest) = b.split_first_chunk::<4>()?;
        *b = rest;
        Some(u32::from_le_bytes(*n))
    }
    fn str<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let n = u32le(b)? as usize;
        let (s, rest) = b.split_at_checked(n)?;
        *b = rest;
        Some(s)
    }
    let status = StatusCode::from_u16(u16::try_from(u32le(&mut b)?).ok()?).ok()?;
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    for _ in 0..u32le(&mut b)? {
        let name = HeaderName::from_bytes(str(&mut b)?).ok()?;
        let value = HeaderValue::from_bytes(str(&mut b)?).ok()?;
        resp.headers_mut().append(name, value);
    }
    *resp.body_mut() = Full::new(Bytes::copy_from_slice(str(&mut b)?));
    Some(resp)
}

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
        None => status(StatusCode::NOT_FOUND),
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = code;
    resp
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()
        .expect("ADDR must be ip:port");
    // Leaked, so that a request copies a reference instead of touching a shared refcount.
    let guest: Option<&'static Guest> = args.next().map(|path| {
        let guest = Guest::load(&path).unwrap_or_else(|e| panic!("loading {path}: {e:?}"));
        &*Box::leak(Box::new(guest))
    });
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
        println!(
            "hyper-ref listening on http://{}",
            listener.local_addr().unwrap()
        );
        let started = Instant::now();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(move |req| async move {
                    let resp = match guest {
                        Some(g) if req.method() == Method::GET && req.uri().path() == "/ok" => {
                            g.call().await.unwrap_or_else(|e| {
                                eprintln!("hyper-ref: /ok: {e:?}");
                                status(StatusCode::INTERNAL_SERVER_ERROR)
                            })
                        }
                        _ => answer(&req, started),
                    };
                    Ok::<_, Infallible>(resp)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
