//! Micro-benchmarks: the request parser against httparse on the same inputs, the per-request cost
//! of a plugin (instantiate + call + teardown of the hello plugin), and route matching with 1,000
//! routes. Compare ratios within one run, not absolute numbers across runs: the machine is shared.

mod common;

use std::hint::black_box;
use std::path::Path;

use common::{Ours, Theirs, inputs};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmgate::config::{PluginGrants, PluginLimits, RuntimeSettings};
use wasmgate::routes::{Match, RouteTable, Target};
use wasmgate::runtime::{GuestRequest, Runtime};

/// Both parsers on every input of `common` (pipelined: every request of the buffer), brought to
/// the same information. `parser.rs` measures the same pairs in alternating rounds.
fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, input) in inputs() {
        group.throughput(Throughput::Bytes(input.len() as u64));
        let (mut ours, mut theirs) = (Ours::new(), Theirs::new());
        assert_eq!(ours.all(&input), theirs.all(&input));
        group.bench_with_input(BenchmarkId::new("wasmgate", name), &input, |b, i| {
            b.iter(|| ours.all(black_box(i)))
        });
        group.bench_with_input(BenchmarkId::new("httparse", name), &input, |b, i| {
            b.iter(|| theirs.all(black_box(i)))
        });
    }
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
