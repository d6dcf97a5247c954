//! The one wasmtime `Engine` (its `Config` and pooling allocator) and the one epoch ticker.
//!
//! Owns every engine-wide knob, so tuning instance creation/teardown cost happens in this file
//! only. Must not know about plugins, requests or WASI.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::{RuntimeError, chain};
use crate::config::RuntimeSettings;

/// Stack the host functions (WASI calls, our stdout capture, tracing) get on a guest's fiber stack
/// on top of the wasm stack limit. wasmtime's default fiber stack is 2 MiB for a 512 KiB wasm
/// stack; we keep at least that much headroom whatever `max_stack_bytes` is.
const HOST_STACK_HEADROOM: usize = 1536 * 1024;

/// Linear memories a plugin may define: one, its exported `memory` (the ABI passes every pointer
/// in it). A pool slot holds exactly this many.
pub(crate) const MAX_MEMORIES: u32 = 1;
/// Tables a plugin may define (a compiled Rust or C module has at most one, for indirect calls).
pub(crate) const MAX_TABLES: u32 = 1;
/// Elements a plugin's table may start with or grow to: each pool slot reserves this many
/// pointer-sized entries (wasmtime's default, named here so that the load check and the pool
/// agree, and docs/ABI.md can cite it).
pub(crate) const MAX_TABLE_ELEMENTS: usize = 20_000;

/// Builds the engine: fuel and epoch instrumentation, async execution on fibers, the wasm features
/// plugins may use, and a pooling allocator sized from `settings`.
pub(crate) fn build_engine(
    settings: &RuntimeSettings,
    cache_dir: Option<&std::path::Path>,
) -> Result<Engine, RuntimeError> {
    let mut config = Config::new();
    if let Some(dir) = cache_dir {
        config.cache(module_cache(dir));
    }
    // Async support is always on in wasmtime 48 (`Config::async_support` is a deprecated no-op);
    // we only ever use the `*_async` entry points so guests run on fibers and can yield.
    config.consume_fuel(true);
    config.epoch_interruption(true);
    wasm_features(&mut config);
    config.max_wasm_stack(settings.max_stack_bytes);
    let fiber_stack = settings
        .max_stack_bytes
        .saturating_add(HOST_STACK_HEADROOM)
        .next_multiple_of(64 * 1024);
    config.async_stack_size(fiber_stack);
    // Stacks are pooled across guests but not zeroed on reuse: zeroing costs a memset/madvise per
    // call, and compiled wasm never reads a stack slot before writing it. Revisit if a
    // defence-in-depth requirement appears.
    config.async_stack_zeroing(false);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
        settings,
    )?));
    Engine::new(&config).map_err(|e| RuntimeError::Engine(chain(&e)))
}

/// The WebAssembly features a plugin may use (docs/ABI.md "Module kind" lists them). On: what
/// Rust and C toolchains emit for `wasm32-wasip1` (the MVP with mutable globals, sign extension,
/// saturating conversions, multi-value, bulk memory, reference types), and the finished, purely
/// computational proposals a guest may opt into: 128-bit SIMD, relaxed SIMD, tail calls,
/// extended constants. Off, so a module using them is refused at load with the proposal's name:
/// threads and shared memory (an instance per request has no one to share with), 64-bit and
/// multiple memories (the ABI is one 32-bit memory), garbage collection and typed function
/// references (a GC heap per pool slot for no guest we ship), exception handling and stack
/// switching (unwinding across host calls is not part of the ABI), and the still-moving wide
/// arithmetic and custom page sizes.
fn wasm_features(config: &mut Config) {
    config
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .wasm_threads(false)
        .wasm_memory64(false)
        .wasm_multi_memory(false)
        .wasm_gc(false)
        .wasm_function_references(false)
        .wasm_exceptions(false)
        .wasm_stack_switching(false)
        .wasm_wide_arithmetic(false)
        .wasm_custom_page_sizes(false);
}

/// wasmtime's compiled-module cache in `dir`, or `None` (with a warning) when the directory cannot
/// be created or used: a failing cache disk costs compile time, never the server.
fn module_cache(dir: &std::path::Path) -> Option<wasmtime::Cache> {
    let usable = std::fs::create_dir_all(dir).and_then(|()| {
        let probe = dir.join(".wasmgate-write-probe");
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(probe)
    });
    if let Err(err) = usable {
        tracing::warn!(dir = %dir.display(), error = %err, "module cache directory unusable; compiling every plugin load");
        return None;
    }
    let mut config = wasmtime::CacheConfig::new();
    config.with_directory(dir);
    match wasmtime::Cache::new(config) {
        Ok(cache) => Some(cache),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "module cache unavailable; compiling every plugin load");
            None
        }
    }
}

/// Pooling allocator: every instance gets a pre-reserved slot (memory, table, fiber stack,
/// instance metadata), so "fresh instance per request" is a slot reuse plus a copy-on-write reset
/// of linear memory instead of mmap/munmap per request.
///
/// Sizing, and why:
/// - one slot per allowed concurrent instance (`max_instances`) for each resource kind: a module
///   is one core instance with one memory and one table; the runtime's semaphore makes a request
///   wait for a slot instead of failing when all are busy;
/// - except fiber stacks: [`STACKS_PER_SLOT`] per slot, because a running call nests one level
///   (see its doc), so that no call ever finds the stack pool empty;
/// - `max_memory_size` = `settings.max_memory_bytes`: the largest memory any plugin may be
///   configured with; the per-plugin cap (`PluginLimits::max_memory_bytes`) is enforced below it
///   by the store's `ResourceLimiter`, which is what lets us tell a memory-limit failure apart;
/// - the virtual reservation per slot stays wasmtime's default (4 GiB + guard on 64-bit) so
///   32-bit memories need no explicit bounds checks: this costs address space only
///   (`max_instances` x ~4 GiB, e.g. 1 TiB of the 128 TiB on x86_64 Linux), not RSS;
/// - component instances are not used (plain core modules), so none are pooled.
fn pooling_config(settings: &RuntimeSettings) -> Result<PoolingAllocationConfig, RuntimeError> {
    let slots = settings.max_instances.max(1);
    let stacks = total_stacks(slots)?;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(stacks)
        .total_gc_heaps(slots)
        .total_component_instances(0)
        .max_memories_per_module(MAX_MEMORIES)
        .max_tables_per_module(MAX_TABLES)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX));
    tune_teardown(&mut pool, settings.keep_resident_bytes);
    Ok(pool)
}

/// Fiber stacks one instance slot may hold at once. Every store that runs wasm holds a slot
/// (requests, warm instances, the load check, the pre-initialization run) for as long as it lives,
/// and a store holds:
/// - one stack for the wasm call it runs (`call_async` and `instantiate_async` run on a fiber),
///   which it keeps cached after the call, so an idle warm store still holds it;
/// - one more while a host function hands its result back through `wasmgate_alloc`
///   (`hostcalls::give`): wasmtime runs a `call_async` made from inside a host function on a NEW
///   fiber, and refuses a sync `call` from a fiber. `hostcalls` refuses a host call made from
///   inside that `wasmgate_alloc`, so the nesting never goes deeper than this one level.
///
/// So `max_instances` x 2 stacks can never run out (docs/decisions/0003-performance.md, "Fiber
/// stacks"); a slot-sized pool made the second stack of a saturated server a guest trap.
pub(crate) const STACKS_PER_SLOT: u32 = 2;

/// The stack pool for `slots` instance slots, refused when it does not fit a `u32` (wasmtime's
/// count) rather than silently wrapped.
pub(crate) fn total_stacks(slots: u32) -> Result<u32, RuntimeError> {
    slots.checked_mul(STACKS_PER_SLOT).ok_or_else(|| {
        RuntimeError::Engine(format!(
            "max_instances = {slots} needs {STACKS_PER_SLOT} fiber stacks per instance, more \
             than {} in all",
            u32::MAX
        ))
    })
}

/// THE place to tune per-instance teardown/reuse cost (wasmtime issue 8034; measurements and the
/// profile in docs/decisions/0003-performance.md).
///
/// By default wasmtime resets a finished instance's slot with `madvise(MADV_DONTNEED)`: cheap to
/// call, but it edits page tables and shoots down TLBs on every CPU running the process (IPIs),
/// and the next instance in the slot page-faults every page back in. With a fresh instance per
/// request that was most of a plugin call: ~40 µs per call of the hello plugin, against ~10 µs
/// with the settings below.
///
/// - `linear_memory_keep_resident` / `table_keep_resident`: reset up to this much by copying
///   (from the module's initial image, or zeros) instead, and keep those pages mapped;
/// - `pagemap_scan(Auto)`: on Linux >= 6.7, ask the kernel which pages the guest actually wrote
///   (`PAGEMAP_SCAN`) and copy only those, so the cost follows the guest's dirty set (a few pages
///   for a small Rust guest: the top of its 1 MiB stack, its data and its heap), not the budget;
///   without it the first `keep_resident_bytes` are always reset, so small values suit old kernels;
/// - fiber stacks are not zeroed at all (`async_stack_zeroing(false)`, above), so
///   `async_stack_keep_resident` does not apply; decommit batching and warm-slot counts stay at
///   wasmtime's defaults (with everything kept resident there is nothing left to batch).
fn tune_teardown(pool: &mut PoolingAllocationConfig, keep_resident_bytes: usize) {
    pool.linear_memory_keep_resident(keep_resident_bytes)
        .table_keep_resident(keep_resident_bytes.min(TABLE_KEEP_RESIDENT))
        .pagemap_scan(wasmtime::Enabled::Auto);
    if keep_resident_bytes > 64 * 1024 && !crate::sys::has_pagemap_scan() {
        tracing::warn!(
            keep_resident_bytes,
            "this kernel has no PAGEMAP_SCAN (Linux < 6.7): every plugin call resets \
             keep_resident_bytes of memory by copying; set [runtime] keep_resident_bytes = \"64KiB\""
        );
    }
}

/// Most table bytes kept resident: a table is 8 bytes per element and small modules have a few
/// hundred elements, so 64 KiB covers them; larger tables go back to `madvise`.
const TABLE_KEEP_RESIDENT: usize = 64 * 1024;

/// The single epoch ticker: a thread that advances the engine's epoch every `tick` until it is
/// dropped. Per-store deadlines are expressed in ticks of this clock, so no request ever creates
/// a timer of its own for guest CPU.
pub(crate) struct EpochTicker {
    /// Dropping the sender wakes the thread with `Disconnected`, which ends it.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> Result<EpochTicker, RuntimeError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let engine = engine.clone();
        let tick = tick.max(Duration::from_micros(100));
        let thread = std::thread::Builder::new()
            .name("wasmgate-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })
            .map_err(RuntimeError::Ticker)?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            // The thread wakes at once on disconnect; joining makes "stopped" observable.
            let _ = t.join();
        }
    }
}
