//! The ABI boundary, and the only module with `unsafe`: raw addresses in, raw addresses out, the
//! [`handler!`](crate::handler!) macro that generates the exports, the `wasmgate` host-function
//! imports and the WASI `random_get` import.
//!
//! It owns the memory contract of docs/ABI.md: `wasmgate_alloc` hands the host a buffer from the
//! global allocator and remembers it; `wasmgate_handle` takes exactly that buffer back
//! (refusing any address it did not hand out) and keeps the encoded response alive until the
//! next `wasmgate_handle` of the same instance (the host has read it by then), which frees it: a
//! fresh instance is dropped whole after one request anyway, and a reused one (see
//! [`reusable!`](crate::reusable!)) does not grow by one response per request. A host call's result
//! arrives the same way (the host calls `wasmgate_alloc` during the import call, then writes
//! `(ptr, len)` at `ret`), and `imports` (wasm32 only) takes it back by the same rule. It must
//! not contain any request, response or service logic: everything past "here is a `Vec<u8>`" is
//! in `handler` and `host`, safe and tested natively.
//!
//! Addresses are `i32` on the wire and read as unsigned 32-bit. On a native (64-bit) target the
//! exports still compile, so plugins build and test natively, but heap addresses do not fit:
//! `alloc` then reports failure (0) and `handle` traps, which is safe, merely useless. The
//! imports exist on `wasm32` only; natively `host` calls the stand-ins of `standin` instead.

use crate::handler::{self, IntoResponse};
use crate::request::Request;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ptr;

thread_local! {
    /// `(address, capacity)` of every buffer handed out by `alloc` and not yet taken back: the
    /// request, and in v2 the result of each host call. Borrowed only inside `alloc` and
    /// `reclaim`, never across a host call, because the host calls `alloc` during one.
    static LIVE: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
    /// The last encoded response: the host reads it after `wasmgate_handle` returns, so it lives
    /// until the next call of this instance.
    static LAST_RESPONSE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `wasmgate_alloc(size)`: the address of `size` writable bytes, or 0 if they cannot be had.
///
/// The buffer is not zeroed: the host overwrites all of it before `wasmgate_handle` (ABI call
/// sequence, step 3), and zeroing would cost about one instruction per byte — as much fuel as
/// the rest of the SDK spends on a large body. A failed reservation returns 0 (the host answers
/// 500, or a host call returns `no_memory`) instead of aborting, as the ABI asks.
pub fn alloc(size: i32) -> i32 {
    let size = size as u32 as usize;
    let mut buf = Vec::<u8>::new();
    if buf.try_reserve_exact(size).is_err() {
        return 0;
    }
    let mut buf = ManuallyDrop::new(buf);
    let addr = buf.as_mut_ptr().expose_provenance();
    match u32::try_from(addr) {
        Ok(addr32) if addr32 != 0 => {
            LIVE.with_borrow_mut(|live| live.push((addr, buf.capacity())));
            addr32 as i32
        }
        // Only on 64-bit native targets: give the memory back and report failure.
        _ => {
            drop(ManuallyDrop::into_inner(buf));
            0
        }
    }
}

/// Takes back the buffer `alloc` handed out at `addr`, as a `Vec` of its first `len` bytes
/// (which the host has written). Refuses an address `alloc` did not hand out, or already took
/// back, and a `len` past the buffer's capacity: both mean the host broke the ABI.
fn reclaim(addr: usize, len: usize) -> Result<Vec<u8>, String> {
    let taken = LIVE.with_borrow_mut(|live| {
        let i = live.iter().position(|&(a, _)| a == addr)?;
        Some(live.swap_remove(i).1)
    });
    let Some(capacity) = taken else {
        return Err(format!(
            "address {addr:#x} was not returned by wasmgate_alloc"
        ));
    };
    if len > capacity {
        // The entry is gone from LIVE; the buffer stays leaked, which is harmless.
        return Err(format!(
            "len {len} is larger than the {capacity} bytes wasmgate_alloc gave"
        ));
    }
    // SAFETY: `(addr, capacity)` comes from a `Vec<u8>` that `alloc` leaked with exactly this
    // capacity, through the global allocator, and whose address it exposed; we just removed the
    // entry from LIVE, so this is the only reconstruction and nothing else aliases it.
    // `len <= capacity` was checked above. The first `len` bytes were initialized by the host,
    // which writes the request (ABI call sequence, step 3) or a host call's result (docs/ABI.md,
    // "Host functions") there before handing us the address — the same way foreign code
    // initializes a buffer handed to it, like `read(2)` into a `Vec`'s spare capacity followed by
    // `set_len`.
    Ok(unsafe { Vec::from_raw_parts(ptr::with_exposed_provenance_mut(addr), len, capacity) })
}

/// `wasmgate_handle(ptr, len)`: takes back the request buffer, runs the handler, returns
/// `(resp_ptr << 32) | resp_len`. The response stays allocated until the next call of this
/// instance (see module docs).
///
/// # Panics
/// (That is, traps.) If `ptr` was not returned by `alloc`, or `len` exceeds what was allocated:
/// the host broke the ABI and there is nothing sensible to answer.
pub fn handle<R: IntoResponse>(ptr: i32, len: i32, handler: impl FnOnce(Request) -> R) -> i64 {
    handler::install_panic_hook();
    // The previous response of this instance has been read: free it before building the next.
    LAST_RESPONSE.with_borrow_mut(|last| *last = Vec::new());
    let input = reclaim(ptr as u32 as usize, len as u32 as usize)
        .unwrap_or_else(|e| panic!("wasmgate_handle: {e}"));
    let output = handler::serve(input, handler);
    let resp_ptr = u32::try_from(output.as_ptr().addr())
        .expect("wasmgate_handle: response address does not fit 32 bits (native target?)");
    // `serve` guarantees the encoding fits a u32 (wire::EncodeError otherwise).
    let resp_len = output.len() as u32;
    // Moving the Vec moves no bytes: the address handed to the host stays valid.
    LAST_RESPONSE.with_borrow_mut(|last| *last = output);
    ((u64::from(resp_ptr) << 32) | u64::from(resp_len)) as i64
}

/// The `wasmgate` host functions (docs/ABI.md, "The functions"), as safe functions: byte slices
/// in, the error code and the result (or the failure's message) out. Called by `host` only.
///
/// Each import is referenced from exactly one wrapper, so a plugin that never calls, say,
/// `kv_incr` has no `kv_incr` import once the linker has dropped the unused wrapper (the host
/// refuses imports that the plugin's configuration does not grant).
#[cfg(target_arch = "wasm32")]
pub(crate) mod imports {
    use super::reclaim;
    use crate::outcome::Outcome;
    use crate::wire::{ABSENT, Errno};

    /// The raw imports; only the wrappers below call them.
    mod ffi {
        #[link(wasm_import_module = "wasmgate")]
        unsafe extern "C" {
            pub(super) fn var_get(name: *const u8, name_len: usize, ret: *mut u8) -> i32;
            pub(super) fn kv_open(store: *const u8, store_len: usize, ret: *mut u8) -> i32;
            pub(super) fn kv_get(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_set(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                v: *const u8,
                v_len: usize,
                ttl_ms: i64,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_delete(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_exists(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_incr(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                delta: i64,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_cas(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                expected: *const u8,
                expected_len: usize,
                new: *const u8,
                new_len: usize,
                ttl_ms: i64,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_list(
                s: *const u8,
                s_len: usize,
                prefix: *const u8,
                prefix_len: usize,
                cursor: *const u8,
                cursor_len: usize,
                limit: u32,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_incr_ttl(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                delta: i64,
                ttl_ms: i64,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn kv_ttl(
                s: *const u8,
                s_len: usize,
                k: *const u8,
                k_len: usize,
                ret: *mut u8,
            ) -> i32;
            pub(super) fn http_send(request: *const u8, request_len: usize, ret: *mut u8) -> i32;
            pub(super) fn http_send_timeout(
                request: *const u8,
                request_len: usize,
                timeout_ms: i64,
                ret: *mut u8,
            ) -> i32;
        }
    }

    /// Makes one host call through `import`, which gets the address of the 8-byte `ret`, and
    /// takes its result back from `ret`: `(0, 0)` is empty, anything else must be a buffer
    /// `alloc` handed out during the call.
    fn call(import: impl FnOnce(*mut u8) -> i32) -> Outcome {
        let mut ret = [0u8; 8];
        let code = import(ret.as_mut_ptr());
        let [p0, p1, p2, p3, l0, l1, l2, l3] = ret;
        let addr = u32::from_le_bytes([p0, p1, p2, p3]) as usize;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        if (addr, len) == (0, 0) {
            return Outcome {
                code,
                bytes: Vec::new(),
            };
        }
        match reclaim(addr, len) {
            Ok(bytes) => Outcome { code, bytes },
            Err(e) => Outcome {
                code: Errno::Protocol.code(),
                bytes: format!("the host's result (code {code}) is unusable: {e}").into_bytes(),
            },
        }
    }

    // The argument shared by the `unsafe` blocks below ("the host-call contract"): every
    // `(ptr, len)` pair is `(slice.as_ptr(), slice.len())` of a slice borrowed for the whole
    // call, which the host only reads (and copies before doing anything else); `ret` is `call`'s
    // live 8-byte array, which the host only writes. During the call the host may call
    // `wasmgate_alloc`, which borrows `LIVE` briefly and touches nothing we hold. The
    // signatures are docs/ABI.md's ("The functions"): on wasm32 pointers and `usize` are `i32`.

    pub(crate) fn var_get(name: &[u8]) -> Outcome {
        // SAFETY: the host-call contract above; `name` lives through the call.
        call(|ret| unsafe { ffi::var_get(name.as_ptr(), name.len(), ret) })
    }

    pub(crate) fn kv_open(store: &[u8]) -> Outcome {
        // SAFETY: the host-call contract above; `store` lives through the call.
        call(|ret| unsafe { ffi::kv_open(store.as_ptr(), store.len(), ret) })
    }

    pub(crate) fn kv_get(store: &[u8], key: &[u8]) -> Outcome {
        // SAFETY: the host-call contract above; `store` and `key` live through the call.
        call(|ret| unsafe {
            ffi::kv_get(store.as_ptr(), store.len(), key.as_ptr(), key.len(), ret)
        })
    }

    pub(crate) fn kv_set(store: &[u8], key: &[u8], value: &[u8], ttl_ms: i64) -> Outcome {
        let (s, k, v) = (store, key, value);
        // SAFETY: the host-call contract above; `store`, `key`, `value` live through the call.
        call(|ret| unsafe {
            ffi::kv_set(
                s.as_ptr(),
                s.len(),
                k.as_ptr(),
                k.len(),
                v.as_ptr(),
                v.len(),
                ttl_ms,
                ret,
            )
        })
    }

    pub(crate) fn kv_delete(store: &[u8], key: &[u8]) -> Outcome {
        // SAFETY: the host-call contract above; `store` and `key` live through the call.
        call(|ret| unsafe {
            ffi::kv_delete(store.as_ptr(), store.len(), key.as_ptr(), key.len(), ret)
        })
    }

    pub(crate) fn kv_exists(store: &[u8], key: &[u8]) -> Outcome {
        // SAFETY: the host-call contract above; `store` and `key` live through the call.
        call(|ret| unsafe {
            ffi::kv_exists(store.as_ptr(), store.len(), key.as_ptr(), key.len(), ret)
        })
    }

    pub(crate) fn kv_incr(store: &[u8], key: &[u8], delta: i64) -> Outcome {
        let (s, k) = (store, key);
        // SAFETY: the host-call contract above; `store` and `key` live through the call.
        call(|ret| unsafe { ffi::kv_incr(s.as_ptr(), s.len(), k.as_ptr(), k.len(), delta, ret) })
    }

    pub(crate) fn kv_incr_ttl(store: &[u8], key: &[u8], delta: i64, ttl_ms: i64) -> Outcome {
        let (s, k) = (store, key);
        // SAFETY: the host-call contract above; `store` and `key` live through the call.
        call(|ret| unsafe {
            ffi::kv_incr_ttl(s.as_ptr(), s.len(), k.as_ptr(), k.len(), delta, ttl_ms, ret)
        })
    }

    pub(crate) fn kv_ttl(store: &[u8], key: &[u8]) -> Outcome {
        // SAFETY: the host-call contract above; `store` and `key` live through the call.
        call(|ret| unsafe {
            ffi::kv_ttl(store.as_ptr(), store.len(), key.as_ptr(), key.len(), ret)
        })
    }

    pub(crate) fn kv_cas(
        store: &[u8],
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
        ttl_ms: i64,
    ) -> Outcome {
        let (s, k, n) = (store, key, new);
        // "Only if absent" is a length of 0xffff_ffff (wire::ABSENT) with any pointer.
        let (e, e_len) = match expected {
            Some(e) => (e.as_ptr(), e.len()),
            None => (std::ptr::null(), ABSENT as usize),
        };
        // SAFETY: the host-call contract above; `store`, `key`, `new` and a present `expected`
        // live through the call. An absent `expected` has the length ABSENT, which the host
        // reads as "must be absent", never as bytes at the null pointer.
        call(|ret| unsafe {
            ffi::kv_cas(
                s.as_ptr(),
                s.len(),
                k.as_ptr(),
                k.len(),
                e,
                e_len,
                n.as_ptr(),
                n.len(),
                ttl_ms,
                ret,
            )
        })
    }

    pub(crate) fn kv_list(store: &[u8], prefix: &[u8], cursor: &[u8], limit: u32) -> Outcome {
        let (s, p, c) = (store, prefix, cursor);
        // SAFETY: the host-call contract above; `store`, `prefix`, `cursor` live through it.
        call(|ret| unsafe {
            ffi::kv_list(
                s.as_ptr(),
                s.len(),
                p.as_ptr(),
                p.len(),
                c.as_ptr(),
                c.len(),
                limit,
                ret,
            )
        })
    }

    pub(crate) fn http_send(request: &[u8]) -> Outcome {
        // SAFETY: the host-call contract above; `request` lives through the call.
        call(|ret| unsafe { ffi::http_send(request.as_ptr(), request.len(), ret) })
    }

    pub(crate) fn http_send_timeout(request: &[u8], timeout_ms: i64) -> Outcome {
        let r = request;
        // SAFETY: the host-call contract above; `request` lives through the call.
        call(|ret| unsafe { ffi::http_send_timeout(r.as_ptr(), r.len(), timeout_ms, ret) })
    }
}

/// Fills `buf` from WASI `random_get` (the host's CSPRNG). Returns the WASI errno on failure.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub(crate) fn wasi_random_get(buf: &mut [u8]) -> Result<(), i32> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        /// `random_get(buf: pointer, buf_len: size) -> errno` from WASI preview 1.
        fn random_get(buf: *mut u8, buf_len: usize) -> i32;
    }
    // SAFETY: `buf` is a valid, exclusively borrowed region of `buf.len()` writable bytes, which
    // is exactly what `random_get` writes to; it keeps no reference after returning.
    match unsafe { random_get(buf.as_mut_ptr(), buf.len()) } {
        0 => Ok(()),
        errno => Err(errno),
    }
}

/// Exports a handler as this plugin's entry point: generates `wasmgate_abi_version`,
/// `wasmgate_alloc` and `wasmgate_handle` (docs/ABI.md). Use it once per plugin crate, at the
/// top level. The handler is any `fn(Request) -> R` or closure `|req| ...` with
/// `R:` [`IntoResponse`]: a [`Response`](crate::Response) or a `Result`. It is called once per
/// request (each request gets a fresh instance).
///
/// ```rust,standalone_crate
/// use wasmgate_sdk::{Request, Response};
///
/// fn handle(req: Request) -> Response {
///     Response::text(200, format!("you asked for {}\n", req.path()))
/// }
///
/// wasmgate_sdk::handler!(handle);
///
/// assert_eq!(wasmgate_abi_version(), 2);
/// ```
///
/// A plugin serving several routes hands the request to a [`Router`](crate::Router) in a
/// closure:
///
/// ```rust,standalone_crate
/// use wasmgate_sdk::{Request, Response, Router};
///
/// fn routes() -> Router {
///     Router::new()
///         .get("/items", |_req: Request| Response::json(200, &["a", "b"]))
///         .post("/items", |_req: Request| Response::new(201))
/// }
///
/// wasmgate_sdk::handler!(|req| routes().handle(req));
/// ```
#[macro_export]
macro_rules! handler {
    ($handler:expr $(,)?) => {
        // SAFETY (for the three `no_mangle` attributes): these names are the ABI's, reserved for
        // this macro, which a crate invokes once; the host calls them with the documented types.
        // They are ordinary safe functions that forward to the SDK.

        /// ABI version implemented by this plugin (docs/ABI.md).
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmgate_abi_version() -> i32 {
            $crate::ABI_VERSION
        }

        /// Buffer for the host to write the encoded request (or a host call's result) into; 0
        /// on failure.
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmgate_alloc(size: i32) -> i32 {
            $crate::__rt::alloc(size)
        }

        /// Handles the request at `[ptr, ptr+len)`; returns `(resp_ptr << 32) | resp_len`.
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmgate_handle(ptr: i32, len: i32) -> i64 {
            $crate::__rt::handle(ptr, len, $handler)
        }
    };
}

/// Declares that an instance of this plugin may serve more than one request (docs/ABI.md,
/// `wasmgate_reusable`): generates the export returning 1. Reuse then happens only where the
/// operator turns it on (`[plugins.NAME] reuse = { max_requests = N }`), and an instance is
/// thrown away after any failure.
///
/// Use it when the handler keeps nothing from one request that a later request must not see:
/// globals, `static`s, `thread_local!`s and caches live on in a warm instance (that is the
/// point: a cache built once serves many requests). The SDK itself is safe to reuse: it frees
/// each request and each response.
///
/// ```rust,standalone_crate
/// wasmgate_sdk::handler!(|_req| wasmgate_sdk::Response::text(200, "hi\n"));
/// wasmgate_sdk::reusable!();
///
/// assert_eq!(wasmgate_reusable(), 1);
/// ```
#[macro_export]
macro_rules! reusable {
    () => {
        /// This plugin's instances may serve more than one request (docs/ABI.md).
        // SAFETY: the name is the ABI's, reserved for this macro, invoked once per crate.
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmgate_reusable() -> i32 {
            1
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    // On 64-bit hosts heap addresses rarely fit in 32 bits; these tests check the safe refusals
    // and, when an address does fit, the full round trip.

    #[test]
    fn handle_refuses_unknown_addresses() {
        let err = std::panic::catch_unwind(|| handle(0x1234, 4, |_| crate::Response::ok()));
        assert!(err.is_err());
    }

    #[test]
    fn reclaim_refuses_addresses_it_did_not_hand_out() {
        let err = reclaim(0x1234, 1).unwrap_err();
        assert_eq!(err, "address 0x1234 was not returned by wasmgate_alloc");
    }

    #[test]
    fn alloc_fails_cleanly_or_refuses_a_length_past_the_buffer() {
        let p = alloc(40);
        if p == 0 {
            return; // 64-bit address: reported as a failure, as documented.
        }
        // A host would now write 40 bytes, which a safe test cannot do. Claiming more than was
        // allocated must trap before anything is read.
        let res = std::panic::catch_unwind(|| handle(p, 41, |_| crate::Response::ok()));
        assert!(res.is_err());
    }
}
