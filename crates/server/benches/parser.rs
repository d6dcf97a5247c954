//! Parser vs httparse, alternating, robust to a noisy machine; and allocations per request.
//!
//! `cargo bench -p wasmgate-server --bench parser` (bench/run.sh runs it). For each input (see
//! `common`), rounds alternate between wasmgate's parser and httparse, each timing a batch of
//! parses of ~2 ms; the figure per parser is the median over the rounds, and the ratio is
//! httparse's time over ours (>= 1.0 means ours is at least as fast). Alternating rounds put both
//! under the same background load, which criterion's one-after-the-other groups do not.
//!
//! Allocations are counted with the host's own counting allocator (`wasmgate_server::sys::CountingAlloc`,
//! installed here as the global allocator, as the `wasmgate` binary does): after one warm-up parse
//! (which sizes the reused headers `Vec`), N parses must allocate nothing; then the same with a
//! fresh body buffer per request, as the server's connection loop does, which may allocate what
//! the body needs and nothing else. Output lines start with `parser:` and `alloc:`; run.sh
//! copies them into docs/BENCHMARKS.md.

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{Ours, Theirs, inputs};
use wasmgate_server::sys::{CountingAlloc, allocation_counters};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--quick` may follow.
    let quick = std::env::args().any(|a| a == "--quick") || std::env::var_os("QUICK").is_some();
    let rounds = if quick { 7 } else { 31 };
    for (name, input) in inputs() {
        let (mut ours, mut theirs) = (Ours::new(), Theirs::new());
        // Both parsers must see the same requests the same way.
        let (mut a, mut b) = (0, 0);
        while a < input.len() {
            let (x, y) = (ours.one(&input[a..]), theirs.one(&input[b..]));
            assert_eq!(x, y, "{name}: the parsers disagree");
            assert_eq!(ours.body, theirs.body, "{name}: bodies differ");
            (a, b) = (a + x.consumed, b + y.consumed);
        }
        allocations(name, &input, &mut ours);
        let batch = batch_size(|| ours.all(black_box(&input)));
        let (mut t_ours, mut t_theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first too, so neither always runs on a warmer cache.
            let mut run_ours = || time(batch, || ours.all(black_box(&input)));
            let mut run_theirs = || time(batch, || theirs.all(black_box(&input)));
            if round % 2 == 0 {
                t_ours.push(run_ours());
                t_theirs.push(run_theirs());
            } else {
                t_theirs.push(run_theirs());
                t_ours.push(run_ours());
            }
        }
        let (o, t) = (median(&mut t_ours), median(&mut t_theirs));
        println!(
            "parser: {name:<12} bytes={:<5} wasmgate={o:>8.1}ns httparse={t:>8.1}ns ratio={:.2}x",
            input.len(),
            t / o
        );
    }
}

/// Allocations per request: heads only (must be 0), and with a fresh body buffer each time.
fn allocations(name: &str, input: &[u8], ours: &mut Ours) {
    const N: u64 = 10_000;
    ours.all(input); // warm-up: the headers Vec reaches its size once per connection
    let (bytes0, n0) = allocation_counters();
    for _ in 0..N {
        black_box(ours.all(black_box(input)));
    }
    let (bytes1, n1) = allocation_counters();
    let mut fresh = 0usize;
    let (bytes2, n2) = allocation_counters();
    for _ in 0..N {
        ours.body = Vec::new();
        fresh += ours.all(black_box(input));
    }
    let (bytes3, n3) = allocation_counters();
    let per = |d: u64| d as f64 / N as f64;
    println!(
        "alloc: {name:<12} reused buffers: {:.2} allocs/{:.0} B per input; fresh body buffer: {:.2} allocs/{:.0} B per input ({} requests per input)",
        per(n1 - n0),
        per(bytes1 - bytes0),
        per(n3 - n2),
        per(bytes3 - bytes2),
        fresh as u64 / N
    );
    assert_eq!(n1, n0, "{name}: the parser allocated with reused buffers");
}

/// How many runs of `f` take about 2 ms.
fn batch_size(mut f: impl FnMut() -> usize) -> u32 {
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_micros() < 2_000 {
        black_box(f());
        n += 1;
    }
    n
}

/// Nanoseconds per run of `f`, over `n` runs.
fn time(n: u32, mut f: impl FnMut() -> usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
