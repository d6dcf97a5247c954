//! Micro-benchmarks: the request parser against httparse on the same inputs, the per-request cost
//! of a plugin (instantiate + call + teardown of the hello plugin), and route matching with 1,000
//! routes. Compare ratios within one run, not absolute numbers across runs: the machine is shared.

mod common;

use std::hint::black_box;
use std::path::Path;

use common::{Ours, Theirs, inputs};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use wasmgate_server::RequestId;
use wasmgate_server::config::{PluginGrants, PluginLimits, RuntimeSettings};
use wasmgate_server::routes::{Match, RouteTable};
use wasmgate_server::runtime::{GuestRequest, HostEnv, Runtime};

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

/// The hello plugin, built by cargo in the plugins workspace (its own target directory, so this
/// never waits on the lock of the `cargo bench` that runs us).
fn hello_wasm() -> std::path::PathBuf {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "-p",
            "hello",
        ])
        .current_dir(&plugins)
        .status()
        .expect("run cargo for the hello plugin");
    assert!(status.success(), "building the hello plugin failed");
    plugins.join("target/wasm32-wasip1/release/hello.wasm")
}

fn plugin_call(c: &mut Criterion) {
    let runtime = Runtime::new(&RuntimeSettings::default()).unwrap();
    let plugin = runtime
        .load(
            "hello",
            &hello_wasm(),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap();
    let limits = PluginLimits::default();
    let req = GuestRequest {
        method: b"GET",
        target: b"/hello/world",
        path: b"/hello/world",
        version: b"HTTP/1.1",
        headers: vec![(b"Host", b"localhost"), (b"Accept", b"*/*")],
        params: vec![(b"name", b"world")],
        ..GuestRequest::default()
    };
    let env = Arc::new(HostEnv::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.bench_function("plugin/hello_instantiate_call_teardown", |b| {
        b.iter(|| {
            rt.block_on(plugin.call(
                black_box(&req),
                &limits,
                RequestId::from_bits(1),
                &env,
                None,
            ))
            .unwrap()
        })
    });
}

fn routes(c: &mut Criterion) {
    let mut table = RouteTable::with_native_routes(|_| String::from("native"));
    for i in 0..1000 {
        let target = format!("p{i}");
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
