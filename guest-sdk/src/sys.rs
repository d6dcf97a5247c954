//! The ABI boundary, and the only module with `unsafe`: raw addresses in, raw addresses out, the
//! [`handler!`](crate::handler!) macro that generates the exports, and the WASI `random_get`
//! import.
//!
//! It owns the memory contract of docs/ABI.md: `wasmgate_alloc` hands the host a buffer from the
//! global allocator and remembers it; `wasmgate_handle` takes exactly that buffer back
//! (refusing any address it did not hand out) and leaks the encoded response, which is sound and
//! cheap because the host drops the whole instance after one request. It must not contain any
//! request or response logic: everything past "here is a `Vec<u8>`" is in `handler`, safe and
//! tested natively.
//!
//! Addresses are `i32` on the wire and read as unsigned 32-bit. On a native (64-bit) target the
//! exports still compile, so plugins build and test natively, but heap addresses do not fit:
//! `alloc` then reports failure (0) and `handle` traps, which is safe, merely useless.

use crate::handler::{self, IntoResponse};
use crate::request::Request;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ptr;

thread_local! {
    /// `(address, capacity)` of every buffer handed out by `alloc` and not yet taken back. The
    /// ABI asks for one per request; a short list costs nothing and tolerates a host that asks
    /// twice.
    static LIVE: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// `wasmgate_alloc(size)`: the address of `size` writable bytes, or 0 if they cannot be had.
///
/// The buffer is not zeroed: the host overwrites all of it before `wasmgate_handle` (ABI call
/// sequence, step 3), and zeroing would cost about one instruction per byte — as much fuel as
/// the rest of the SDK spends on a large body. A failed reservation returns 0 (the host answers
/// 500) instead of aborting, as the ABI asks.
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

/// `wasmgate_handle(ptr, len)`: takes back the request buffer, runs the handler, returns
/// `(resp_ptr << 32) | resp_len`. The response buffer is leaked on purpose (see module docs).
///
/// # Panics
/// (That is, traps.) If `ptr` was not returned by `alloc`, or `len` exceeds what was allocated:
/// the host broke the ABI and there is nothing sensible to answer.
pub fn handle<R: IntoResponse>(ptr: i32, len: i32, handler: impl FnOnce(Request) -> R) -> i64 {
    handler::install_panic_hook();
    let (addr, len) = (ptr as u32 as usize, len as u32 as usize);
    let taken = LIVE.with_borrow_mut(|live| {
        let i = live.iter().position(|&(a, _)| a == addr)?;
        Some(live.swap_remove(i).1)
    });
    let Some(capacity) = taken else {
        panic!("wasmgate_handle: address {addr:#x} was not returned by wasmgate_alloc");
    };
    assert!(
        len <= capacity,
        "wasmgate_handle: len {len} is larger than the {capacity} bytes wasmgate_alloc gave"
    );
    // SAFETY: `(addr, capacity)` comes from a `Vec<u8>` that `alloc` leaked with exactly this
    // capacity, through the global allocator, and whose address it exposed; we just removed the
    // entry from LIVE, so this is the only reconstruction and nothing else aliases it.
    // `len <= capacity` was checked above. The first `len` bytes were initialized by the host,
    // which writes the whole request there before calling us (ABI call sequence, step 3) — the
    // same way foreign code initializes a buffer handed to it, like `read(2)` into a `Vec`'s
    // spare capacity followed by `set_len`.
    let input =
        unsafe { Vec::from_raw_parts(ptr::with_exposed_provenance_mut(addr), len, capacity) };
    let output: &'static [u8] = handler::serve(input, handler).leak();
    let resp_ptr = u32::try_from(output.as_ptr().addr())
        .expect("wasmgate_handle: response address does not fit 32 bits (native target?)");
    // `serve` guarantees the encoding fits a u32 (wire::EncodeError otherwise).
    let resp_len = output.len() as u32;
    ((u64::from(resp_ptr) << 32) | u64::from(resp_len)) as i64
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
/// top level. The handler is any `fn(Request) -> R` (or closure) with `R:` [`IntoResponse`]:
/// a [`Response`](crate::Response) or a `Result`.
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
/// assert_eq!(wasmgate_abi_version(), 1);
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

        /// Buffer for the host to write the encoded request into; 0 on failure.
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
