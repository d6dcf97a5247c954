//! The host's only `unsafe`: the boundary with the operating system and the allocator.
//!
//! Owns the counting global allocator (bytes and allocations, for `/metrics` and the allocation
//! benchmarks), the few libc calls the server needs (page size, `RLIMIT_NOFILE`) and the one
//! write to the environment (library backtraces off, at startup). Everything else in the crate is
//! safe Rust; keep it that way by adding OS calls here, each `unsafe` block with its `// SAFETY:`
//! argument.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What [`CountingAlloc`] has counted, sharded: each of the first threads to allocate owns a
/// shard, and readers sum them. One pair of global counters would be a cache line that every
/// allocation on every core writes (under load ~3.5% of the server's CPU), and even a shard of
/// one's own costs two locked read-modify-writes per allocation if threads may share it. Owned
/// shards are written with a plain load and store instead; threads past the first `SHARDS - 1`
/// (and allocations during thread teardown) share shard [`SHARED`] with atomic adds.
#[repr(align(128))]
struct Shard {
    /// Bytes ever allocated (monotonic, so rates can be graphed).
    bytes: AtomicU64,
    /// Allocations ever made.
    count: AtomicU64,
}

const SHARDS: usize = 32;
/// The shard that threads without one of their own add to atomically.
const SHARED: usize = 0;
static COUNTERS: [Shard; SHARDS] = [const {
    Shard {
        bytes: AtomicU64::new(0),
        count: AtomicU64::new(0),
    }
}; SHARDS];
/// Owned shards handed out so far.
static OWNED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, chosen on its first allocation. Const-initialised and without a
    /// destructor, so using it allocates nothing and works until the thread is gone.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The system allocator, counting what passes through it. The `wasmgate` binary installs it as
/// `#[global_allocator]`; a library user that does not sees zeros in the allocation metrics.
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `CountingAlloc` upholds exactly `System`'s guarantees; the counters are relaxed atomics that never
// allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller guarantees `layout` has non-zero size, as `System.alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by this allocator (so by `System`) with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: `ptr`/`layout` come from this allocator and the caller guarantees `new_size` is
        // valid for `layout.align()`, as `System.realloc` requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(bytes: usize) {
    let shard = SHARD
        .try_with(|s| {
            if s.get() == usize::MAX {
                let n = OWNED.fetch_add(1, Ordering::Relaxed) + 1;
                s.set(if n < SHARDS { n } else { SHARED });
            }
            s.get()
        })
        .unwrap_or(SHARED);
    let counters = &COUNTERS[shard];
    let bytes = bytes as u64;
    if shard == SHARED {
        counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        counters.count.fetch_add(1, Ordering::Relaxed);
    } else {
        // Only this thread ever writes its owned shard, so a load and a store lose no update, and
        // a reader sees the old or the new value, never a torn one.
        let add = |c: &AtomicU64, n: u64| c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        add(&counters.bytes, bytes);
        add(&counters.count, 1);
    }
}

/// `(bytes allocated, allocations)` since the process started.
pub fn allocation_counters() -> (u64, u64) {
    COUNTERS.iter().fold((0, 0), |(bytes, count), s| {
        (
            bytes + s.bytes.load(Ordering::Relaxed),
            count + s.count.load(Ordering::Relaxed),
        )
    })
}

/// Resident set size in bytes (Linux `/proc/self/statm`), or `None` where unavailable.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions; it returns -1 on error, handled below.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// Whether the kernel offers the `PAGEMAP_SCAN` ioctl (Linux >= 6.7), which lets wasmtime reset
/// only the pages a guest dirtied (see `runtime::engine::tune_teardown`). Read from the kernel
/// release; `false` where unknown.
pub fn has_pagemap_scan() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 7)
}

/// Open file descriptors of this process (Linux `/proc/self/fd`), or `None` where unavailable.
pub fn open_fds() -> Option<u64> {
    // The directory handle itself is one of the entries while we count.
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

/// The soft `RLIMIT_NOFILE`: how many descriptors this process may hold.
pub fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` that outlives the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

/// Turns off the native backtrace that every library error would otherwise capture when the
/// user runs with `RUST_BACKTRACE=1`, unless `RUST_LIB_BACKTRACE` says otherwise.
///
/// wasmtime's error type captures a `std::backtrace::Backtrace` for every trap, and std decides
/// from `RUST_LIB_BACKTRACE`, falling back to `RUST_BACKTRACE`. A server answering traps at a
/// high rate would spend a quarter of its time unwinding native stacks nobody reads: with both
/// set, `bench/traps.sh` measures 0.72x the trapping requests per second. (The guest's own wasm
/// backtrace, which the logs show, is separate.) Panics still print their backtraces: the panic
/// hook reads only `RUST_BACKTRACE`. Returns whether the variable was set.
///
/// Must run before any thread exists and before the first backtrace capture (std caches its
/// reading); it does nothing when the process already has a second thread.
pub fn quiet_library_backtraces() -> bool {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_some() || !single_threaded() {
        return false;
    }
    // SAFETY: `set_var` is unsound only while another thread may read or write the environment;
    // `single_threaded` just counted this process's threads and found only the caller, and the
    // caller (the top of `cli::main`) starts none before this returns.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    true
}

/// Whether this process has exactly one thread (Linux `/proc/self/task`); `false` where unknown.
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Is this accept error a sign of resource exhaustion (back off), rather than a per-connection
/// failure (just go on)?
pub fn is_resource_exhaustion(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More threads than shards, owned and shared ones at once: nothing may be lost. (In unit
    /// tests `CountingAlloc` is not the global allocator, so only this test counts.)
    #[test]
    fn every_count_is_summed_whichever_shard_it_lands_in() {
        const THREADS: usize = SHARDS + 8;
        const PER_THREAD: u64 = 10_000;
        let (bytes_before, count_before) = allocation_counters();
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| (0..PER_THREAD).for_each(|_| count(8)));
            }
        });
        let (bytes, count) = allocation_counters();
        let expected = THREADS as u64 * PER_THREAD;
        assert_eq!(
            (bytes - bytes_before, count - count_before),
            (8 * expected, expected)
        );
    }

    #[test]
    fn process_readings_are_plausible() {
        assert!(resident_memory_bytes().unwrap() > 1024 * 1024);
        let fds = open_fds().unwrap();
        assert!(fds >= 3 && fds <= max_fds().unwrap(), "{fds}");
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_resource_exhaustion(&emfile));
        // Only a plausibility check: the answer depends on the machine's kernel.
        let _ = has_pagemap_scan();
        // The test harness runs tests on threads of their own: never single-threaded here, so
        // the environment must be left alone.
        assert!(!single_threaded());
        assert!(!quiet_library_backtraces());
        assert!(!is_resource_exhaustion(&std::io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
