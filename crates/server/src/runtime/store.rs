//! An instance's `Store` and one request's bounds on it: its WASI context, its host-function
//! context, its memory limiter, its fuel and its deadline (re-armed per request on a warm one).
//!
//! Everything that bounds a single call is installed here, in one function, so it is easy to see
//! that every store gets every limit. Must not know about the ABI or about modules.

use std::time::Instant;

use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};

use super::error::DeadlineExceeded;
use super::hostcalls::HostCtx;
use super::wasi::GuestWasi;

/// Per-store state (`T` of `Store<T>`).
pub(crate) struct StoreData {
    /// WASI, built on the guest's first WASI call.
    pub(crate) wasi: GuestWasi,
    pub(crate) limiter: MemoryLimiter,
    /// What the `wasmgate` host functions serve this request from (`None` for the load check).
    pub(crate) host: Option<HostCtx>,
    /// Whether the host is inside a call it made back into the guest from a host function (the
    /// hand-back through `wasmgate_alloc`). That call runs on a second fiber stack, so it may not
    /// nest again: `hostcalls` refuses a host call made while this is set, which is what bounds a
    /// store to the stacks `engine::STACKS_PER_SLOT` provides.
    pub(crate) called_back: bool,
}

/// Caps linear memory at the plugin's `max_memory_bytes` and remembers that it said no, so that
/// the trap that usually follows (a Rust guest aborts on allocation failure) is reported as
/// `memory_limit` rather than as a generic trap.
pub(crate) struct MemoryLimiter {
    max_bytes: u64,
    denied: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(max_bytes: u64) -> MemoryLimiter {
        MemoryLimiter {
            max_bytes,
            denied: false,
        }
    }

    pub(crate) fn denied(&self) -> bool {
        self.denied
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // `maximum` is the module's own maximum or the pool slot size; going past either fails
        // too, and is the same failure from the guest's point of view.
        let over_ours = desired as u64 > self.max_bytes;
        let over_theirs = maximum.is_some_and(|m| desired > m);
        if over_ours || over_theirs {
            self.denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The OS refused memory we allowed: still "the guest could not get its memory".
        self.denied = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pool's `table_elements`, which wasmtime enforces itself.
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

/// Creates a store for one request, armed with its limits (see [`arm`]).
pub(crate) fn new_store(
    engine: &Engine,
    wasi: GuestWasi,
    host: Option<HostCtx>,
    max_memory_bytes: u64,
    fuel: u64,
    deadline: Instant,
) -> wasmtime::Result<Store<StoreData>> {
    let data = StoreData {
        wasi,
        limiter: MemoryLimiter::new(max_memory_bytes),
        host,
        called_back: false,
    };
    let mut store = Store::new(engine, data);
    store.limiter(|d| &mut d.limiter);
    arm(&mut store, max_memory_bytes, fuel, deadline)?;
    Ok(store)
}

/// Gives `store` one request's limits: a fresh memory limiter, `fuel` to burn (whatever the last
/// request left), and a wall-clock `deadline`. What a fresh store gets, and what a warm instance
/// gets again before each request it serves.
///
/// The epoch callback runs once per epoch tick while the guest executes: past the deadline it
/// raises [`DeadlineExceeded`] (classified as `deadline`), otherwise it extends the deadline by
/// one tick and yields to the async executor with `tokio::task::yield_now`. That yield is the
/// fairness mechanism (docs/decisions/0001-guest-fairness.md): a spinning guest gives its tokio
/// worker back every tick. `yield_now` rather than wasmtime's plain `Yield` because tokio defers
/// it until the worker has polled its I/O and timer driver, so timers and sockets of other tasks
/// on the same worker get serviced between guest slices.
pub(crate) fn arm(
    store: &mut Store<StoreData>,
    max_memory_bytes: u64,
    fuel: u64,
    deadline: Instant,
) -> wasmtime::Result<()> {
    store.data_mut().limiter = MemoryLimiter::new(max_memory_bytes);
    store.set_fuel(fuel)?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            return Err(DeadlineExceeded.into());
        }
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    Ok(())
}
