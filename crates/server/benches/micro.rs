//! Micro-benchmarks: the request parser against httparse on the same inputs, the per-request cost
//! of a plugin (instantiate + call + teardown of the hello plugin), the cost of ABI v2 over v1 for
//! the same guest, and route matching with 1,000 routes. Compare ratios within one run, not
//! absolute numbers across runs: the machine is shared.

mod common;

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{Ours, Theirs, inputs};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use wasmgate_abi::{Field, tag};
use wasmgate_server::RequestId;
use wasmgate_server::config::{PluginGrants, PluginLimits, ReuseSettings, RuntimeSettings};
use wasmgate_server::routes::{Match, RouteTable};
use wasmgate_server::runtime::{GuestRequest, HostEnv, Plugin, Preinit, Runtime, WarmPool};

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

/// A C reactor (plugins/hello-c, whose `_initialize` runs wasi-libc's constructors), built with
/// clang when it is installed; `None` (and the case skipped) when it is not.
fn hello_c_wasm() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!(
        "wasmgate-bench-hello-c-{}.wasm",
        std::process::id()
    ));
    let built = std::process::Command::new("clang")
        .args([
            "--target=wasm32-wasi",
            "-O2",
            "-mexec-model=reactor",
            "-std=c11",
            "-I",
        ])
        .arg(root.join("guest-sdk/c"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("plugins/hello-c/hello.c"))
        .status();
    match built {
        Ok(status) if status.success() => Some(out),
        _ => {
            eprintln!("plugin/hello_c_*: skipped (no clang with a wasm32-wasi sysroot)");
            None
        }
    }
}

/// What one plugin request costs the runtime, end to end (`Plugin::call`: an instance slot, a
/// store with its limits, instantiation, the call, reading the response, teardown):
/// - `hello_instantiate_call_teardown`: the Rust SDK hello plugin, a fresh instance (the default);
/// - `hello_reused`: the same, answered by a warm instance (reuse on: operator and guest opt in);
/// - `ok_wat_fresh`: tests/guests/ok.wat, the smallest guest there is, fresh;
/// - `hello_c_preinitialized` / `hello_c_initialize_per_request`: the C reactor from a snapshot
///   taken after `_initialize`, against running `_initialize` in every request.
fn plugin_call(c: &mut Criterion) {
    let runtime = Runtime::new(&RuntimeSettings::default()).unwrap();
    let limits = PluginLimits::default();
    let load = |name: &str, path: &Path, preinitialize: bool| {
        let grants = PluginGrants {
            vars: true,
            ..PluginGrants::default()
        };
        let bytes = std::fs::read(path).unwrap();
        runtime
            .load_bytes_with(name, &bytes, &grants, &limits, preinitialize)
            .unwrap()
    };
    let hello = load("hello", &hello_wasm(), true);
    let ok = load("ok", &guest_path("ok"), true);
    let req = abi_request(Vec::new());
    let env = Arc::new(HostEnv::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let warm = hello
        .warm_pool(
            ReuseSettings {
                max_requests: u32::MAX,
                idle_timeout: ReuseSettings::DEFAULT_IDLE_TIMEOUT,
            },
            1,
        )
        .expect("the hello plugin declares itself reusable");
    let call = |plugin: &Plugin, warm: Option<&Arc<WarmPool>>| {
        rt.block_on(plugin.call(
            black_box(&req),
            &limits,
            RequestId::from_bits(1),
            &env,
            warm,
        ))
        .unwrap()
    };
    assert!(
        hello.reusable(),
        "the hello plugin declares itself reusable"
    );
    c.bench_function("plugin/hello_instantiate_call_teardown", |b| {
        b.iter(|| call(&hello, None))
    });
    c.bench_function("plugin/hello_reused", |b| {
        b.iter(|| call(&hello, Some(&warm)))
    });
    c.bench_function("plugin/ok_wat_fresh", |b| b.iter(|| call(&ok, None)));
    if let Some(path) = hello_c_wasm() {
        let snap = load("hello_c", &path, true);
        let per_request = load("hello_c", &path, false);
        assert_eq!(snap.preinit(), &Preinit::Applied);
        c.bench_function("plugin/hello_c_preinitialized", |b| {
            b.iter(|| call(&snap, None))
        });
        c.bench_function("plugin/hello_c_initialize_per_request", |b| {
            b.iter(|| call(&per_request, None))
        });
        let _ = std::fs::remove_file(path);
    }
}

fn guest_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/guests/{name}.wat"))
}

/// The line of a hand-written guest that declares its ABI version.
fn version_line(n: i32) -> String {
    format!("(func (export \"wasmgate_abi_version\") (result i32) (i32.const {n}))")
}

/// `tests/guests/GUEST.wat` declaring ABI `version` (its only change), written to `dir`.
fn guest_as(guest: &str, version: i32, dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let wat = std::fs::read_to_string(root.join(format!("tests/guests/{guest}.wat")))
        .expect("a guest of tests/guests");
    let declared = [1, 2]
        .into_iter()
        .find(|&n| wat.contains(&version_line(n)))
        .expect("the guest declares its version on one line");
    let path = dir.join(format!("{guest}-v{version}.wat"));
    std::fs::write(
        &path,
        wat.replace(&version_line(declared), &version_line(version)),
    )
    .expect("writing a guest variant");
    path
}

/// `GET /hello/world` as a v1 guest sees it, plus `fields` (v2 metadata; none for v1).
fn abi_request(fields: Vec<Field<'_>>) -> GuestRequest<'_> {
    GuestRequest {
        method: b"GET",
        target: b"/hello/world",
        path: b"/hello/world",
        version: b"HTTP/1.1",
        headers: vec![(b"Host", b"localhost"), (b"Accept", b"*/*")],
        params: vec![(b"name", b"world")],
        fields,
        ..GuestRequest::default()
    }
}

/// A request id as text, on the stack, as the dispatcher formats it (16 lowercase hex digits).
fn id_text(bits: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = b"0123456789abcdef"[((bits >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// The v2 fields, formatted per request as the dispatcher does for a v2 plugin (`Meta::new` in
/// dispatch.rs: the peer and client addresses as `String`s, the id on the stack; the route is the
/// configured pattern, borrowed), handed to `f`.
fn with_v2_fields<R>(peer: SocketAddr, f: impl FnOnce(Vec<Field<'_>>) -> R) -> R {
    let (peer_text, client_text) = (peer.to_string(), peer.ip().to_string());
    let id = id_text(1);
    f(v2_fields(&peer_text, &client_text, &id))
}

fn v2_fields<'a>(peer: &'a str, client: &'a str, id: &'a [u8]) -> Vec<Field<'a>> {
    vec![
        Field {
            tag: tag::PEER_ADDR,
            value: peer.as_bytes(),
        },
        Field {
            tag: tag::CLIENT_ADDR,
            value: client.as_bytes(),
        },
        Field {
            tag: tag::ROUTE,
            value: b"/hello/:name",
        },
        Field {
            tag: tag::REQUEST_ID,
            value: id,
        },
    ]
}

/// Whether the command line's filter (if any) selects the `abi` group.
fn abi_selected() -> bool {
    let mut filters = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let first = filters.next();
    first.is_none_or(|f| f.contains("abi") || "abi/".contains(f.as_str()))
}

/// Microseconds per call of `f`, over `n` calls.
fn micros_per_call(n: u32, f: &mut dyn FnMut()) -> f64 {
    let t = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// The median of `v`.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// ABI v2 against v1: the same hand-written guest declaring one version or the other, called with
/// the same request in the same run, making no host call. `ok` (tests/guests/ok.wat) answers a
/// fixed response without reading the request; `mirror` (tests/guests/mirror_v2.wat) answers the
/// whole encoded request, so the v2 fields are written by the host and read back by the guest.
/// `abi/v2/*` also formats the metadata per request, as the dispatcher does for a v2 plugin.
///
/// Criterion measures `abi/v1/*` and `abi/v2/*` one after the other, which on a shared machine
/// puts them under different background load; so the group first times them in alternating
/// rounds (as `parser.rs` does for the parsers: batches of ~5 ms, the order rotating each round,
/// medians over 61 rounds) and prints one `abi:` line per guest: v1, v2 with its fields prebuilt
/// (the plugin call alone), v2 with its fields formatted per request, the ratios to v1, and the
/// formatting alone.
fn abi_versions(c: &mut Criterion) {
    let runtime = Runtime::new(&RuntimeSettings::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("wasmgate-bench-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let limits = PluginLimits::default();
    let env = Arc::new(HostEnv::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let (peer_text, client_text, id) = (peer.to_string(), peer.ip().to_string(), id_text(1));
    let call = |plugin: &Plugin, req: &GuestRequest<'_>| {
        rt.block_on(plugin.call(black_box(req), &limits, RequestId::from_bits(1), &env, None))
            .unwrap()
    };
    let mut group = c.benchmark_group("abi");
    for (name, guest) in [("ok", "ok"), ("mirror", "mirror_v2")] {
        let load = |version| {
            let path = guest_as(guest, version, &dir);
            runtime
                .load(name, &path, &PluginGrants::default(), &limits)
                .unwrap()
        };
        let (v1, v2) = (load(1), load(2));
        assert_eq!(v1.abi_version().number(), 1);
        assert_eq!(v2.abi_version().number(), 2);
        let mut run_v1 = || {
            black_box(call(&v1, &abi_request(Vec::new())));
        };
        let mut run_v2_prebuilt = || {
            let fields = v2_fields(&peer_text, &client_text, &id);
            black_box(call(&v2, &abi_request(fields)));
        };
        let mut run_v2 = || {
            black_box(with_v2_fields(peer, |fields| {
                call(&v2, &abi_request(fields))
            }));
        };
        // The formatting alone, to say where the difference goes.
        let mut run_format = || {
            black_box(with_v2_fields(peer, |fields| black_box(fields).len()));
        };
        if abi_selected() {
            let runs: [&mut dyn FnMut(); 4] = [
                &mut run_v1,
                &mut run_v2_prebuilt,
                &mut run_v2,
                &mut run_format,
            ];
            let start = std::time::Instant::now();
            let mut batch = 0u32;
            while start.elapsed().as_micros() < 5_000 {
                runs[0]();
                batch += 1;
            }
            let mut times: [Vec<f64>; 4] = Default::default();
            for round in 0..61 {
                for k in 0..4 {
                    let i = (k + round) % 4;
                    times[i].push(micros_per_call(batch, runs[i]));
                }
            }
            let [t1, t2p, t2, tf] = &mut times;
            let (m1, m2p, m2, mf) = (median(t1), median(t2p), median(t2), median(tf));
            println!(
                "abi: {name:<7} v1={m1:.2}µs v2(fields prebuilt)={m2p:.2}µs ({:.3}x) v2(fields formatted)={m2:.2}µs ({:.3}x) formatting alone={:.0}ns; 61 rotating rounds of {batch} calls",
                m2p / m1,
                m2 / m1,
                mf * 1000.0
            );
        }
        group.bench_function(BenchmarkId::new("v1", name), |b| b.iter(&mut run_v1));
        group.bench_function(BenchmarkId::new("v2", name), |b| b.iter(&mut run_v2));
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
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

criterion_group!(benches, parser, plugin_call, abi_versions, routes);
criterion_main!(benches);
