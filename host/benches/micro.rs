//! Micro-benchmarks: the request parser against httparse on the same inputs, the per-request cost
//! of a plugin (instantiate + call + teardown of the hello plugin), and route matching with 1,000
//! routes. Compare ratios within one run, not absolute numbers across runs: the machine is shared.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmgate::config::{HttpLimits, PluginGrants, PluginLimits, RuntimeSettings};
use wasmgate::http::{BodyDecoder, BodyStatus, Parser, Status};
use wasmgate::routes::{Match, RouteTable, Target};
use wasmgate::runtime::{GuestRequest, Runtime};

const BROWSER_GET: &[u8] =
    b"GET /articles/2024/wasm-on-the-server?ref=home&utm_source=news HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=3f9a1c0e7b2d4a6f8e1c; theme=dark; consent=yes\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Priority: u=0, i\r\n\r\n";

const JSON_POST: &[u8] = b"POST /api/users HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\n\
Accept: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo\r\n\
Content-Length: 58\r\n\r\n{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\",\"age\":36}";

const CHUNKED_POST: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
10\r\n0123456789abcdef\r\n10;ext=1\r\n0123456789abcdef\r\n8\r\n01234567\r\n0\r\nTrailer: x\r\n\r\n";

/// Ours: parse a head, then decode the body the head declares; returns bytes consumed.
fn ours(parser: &mut Parser, input: &[u8], body: &mut Vec<u8>, limits: &HttpLimits) -> usize {
    parser.reset();
    body.clear();
    let Ok(Status::Complete) = parser.parse(input) else {
        panic!("valid input")
    };
    let head = parser.head();
    let mut decoder = BodyDecoder::new(head.framing, limits);
    let (used, status) = decoder.decode(&input[head.head_len..], body).unwrap();
    assert_eq!(status, BodyStatus::Complete);
    head.head_len + used
}

/// httparse on the same input, brought to the same information (it does not frame bodies: we
/// read Content-Length ourselves, as a server using it must).
fn theirs(input: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(n) = req.parse(input).unwrap() else {
        panic!("valid input")
    };
    let len = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    black_box(&input[n..n + len]);
    n + len
}

fn parser(c: &mut Criterion) {
    let limits = HttpLimits::default();
    let pipelined: Vec<u8> = BROWSER_GET
        .iter()
        .chain(JSON_POST)
        .chain(BROWSER_GET)
        .copied()
        .collect();
    let mut group = c.benchmark_group("parse");
    for (name, input) in [("browser_get", BROWSER_GET), ("json_post", JSON_POST)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        let mut p = Parser::new(limits);
        let mut body = Vec::with_capacity(1024);
        assert_eq!(ours(&mut p, input, &mut body, &limits), theirs(input));
        group.bench_with_input(BenchmarkId::new("wasmgate", name), input, |b, i| {
            b.iter(|| ours(&mut p, black_box(i), &mut body, &limits))
        });
        group.bench_with_input(BenchmarkId::new("httparse", name), input, |b, i| {
            b.iter(|| theirs(black_box(i)))
        });
    }
    group.throughput(Throughput::Bytes(pipelined.len() as u64));
    let mut p = Parser::new(limits);
    let mut body = Vec::with_capacity(1024);
    group.bench_function("wasmgate/pipelined_3", |b| {
        b.iter(|| {
            let mut at = 0;
            while at < pipelined.len() {
                at += ours(&mut p, black_box(&pipelined[at..]), &mut body, &limits);
            }
        })
    });
    group.bench_function("httparse/pipelined_3", |b| {
        b.iter(|| {
            let mut at = 0;
            while at < pipelined.len() {
                at += theirs(black_box(&pipelined[at..]));
            }
        })
    });
    group.throughput(Throughput::Bytes(CHUNKED_POST.len() as u64));
    group.bench_function("wasmgate/chunked", |b| {
        b.iter(|| ours(&mut p, black_box(CHUNKED_POST), &mut body, &limits))
    });
    group.finish();
}

fn plugin_call(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let crates = [("hello".to_string(), root.join("plugins/hello"))];
    let wasm =
        wasmgate::builder::build_plugins(root, &crates, false).expect("build the hello plugin");
    let runtime = Runtime::new(&RuntimeSettings::default()).unwrap();
    let plugin = runtime
        .load("hello", &wasm[0], &PluginGrants::default())
        .unwrap();
    let limits = PluginLimits::default();
    let headers: [(&str, &[u8]); 2] = [("Host", b"localhost"), ("Accept", b"*/*")];
    let params = [("name", "world".to_string())];
    let req = GuestRequest {
        method: "GET",
        target: "/hello/world",
        path: "/hello/world",
        query: "",
        version: "HTTP/1.1",
        headers: &headers,
        params: &params,
        body: b"",
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.bench_function("plugin/hello_instantiate_call_teardown", |b| {
        b.iter(|| {
            rt.block_on(plugin.call(black_box(&req), &limits, 1))
                .unwrap()
        })
    });
}

fn routes(c: &mut Criterion) {
    let mut table = RouteTable::with_native_routes();
    for i in 0..1000 {
        let target = Target::Plugin {
            plugin: format!("p{i}").into(),
            limits: PluginLimits::default(),
        };
        let pattern = match i % 4 {
            0 => format!("/api/v1/resource{i}"),
            1 => format!("/api/v1/resource{i}/:id"),
            2 => format!("/api/v2/resource{i}/:id/items/:item"),
            _ => format!("/static{i}/*path"),
        };
        table
            .insert(&["GET".to_string()], &pattern, target)
            .unwrap();
    }
    let mut group = c.benchmark_group("routes_1000");
    for path in [
        "/api/v1/resource500",
        "/api/v2/resource998/42/items/7",
        "/static999/css/site.css",
        "/nope/nothing",
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(path), path, |b, p| {
            b.iter(|| matches!(table.matches("GET", black_box(p)), Match::Found { .. }))
        });
    }
    group.finish();
}

criterion_group!(benches, parser, plugin_call, routes);
criterion_main!(benches);
