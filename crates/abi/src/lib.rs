//! # wasmgate-abi: the plugin ABI, written once
//!
//! The contract between the wasmgate host and a plugin (docs/ABI.md) as code, shared by both
//! sides: the host encodes requests and decodes responses with it, the guest SDK does the reverse
//! with the very same functions, so the two cannot drift apart. It owns:
//!
//! - the versions ([`AbiVersion`]) and the names of the exports a plugin provides ([`exports`]);
//! - the byte codec ([`RawRequest`], [`RawResponse`]): little-endian `u32`s and length-prefixed
//!   byte strings, v2's trailing list of tagged request fields ([`Field`], [`tag`]);
//! - the host's refusal rules for responses ([`Refusal`], [`check_status`], [`check_header`]),
//!   built on the HTTP token and field-value rules of `wasmgate-http`;
//! - v2's host functions: the `wasmgate` import module ([`HOST_FUNCTIONS`]), their error codes
//!   ([`Errno`]) and grants ([`Grant`]), and the encodings that travel through them
//!   ([`OutboundRequest`], [`KeyPage`]).
//!
//! It is pure and safe (`forbid(unsafe_code)`), allocates only what it returns, and never
//! panics on bytes it decodes: a host uses it on untrusted guest output. It must not know about
//! pointers, engines, sockets or statuses beyond the 200..=599 rule.
//!
//! ```
//! use wasmgate_abi::{AbiVersion, RawRequest, RawResponse};
//!
//! let req = RawRequest { method: b"GET", path: b"/", ..RawRequest::default() };
//! let bytes = req.encode(AbiVersion::V1)?;
//! assert_eq!(RawRequest::decode(&bytes, AbiVersion::V1)?, req);
//!
//! let resp = RawResponse { status: 204, headers: vec![(b"x-a", b"1")], body: b"" };
//! assert_eq!(RawResponse::decode(&resp.encode()?)?, resp);
//! assert!(resp.refusal().is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod cursor;
mod hostcall;
mod message;
mod refusal;
#[cfg(test)]
mod tests;

pub use hostcall::{
    ABSENT, Errno, Grant, HOST_FUNCTIONS, HostFn, KeyPage, MODULE as HOST_MODULE, NO_EXPIRY,
    OutboundRequest, Param, ValType, host_function,
};
pub use message::{DecodeError, EncodeError, Field, RawPair, RawRequest, RawResponse, tag};
pub use refusal::{HOST_OWNED_HEADERS, MAX_RESPONSE_HEADERS, Refusal, check_header, check_status};

/// The ABI versions, as `wasmgate_abi_version()` returns them. A host dispatches on it: each
/// version fixes the request layout, the imports a module may have and the exports it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AbiVersion {
    /// Bytes in, bytes out; imports only from `wasi_snapshot_preview1`.
    V1 = 1,
    /// v1 plus a trailing list of tagged request fields and host functions in the `wasmgate`
    /// import module.
    V2 = 2,
}

impl AbiVersion {
    /// Every version this crate speaks, oldest first.
    pub const ALL: [AbiVersion; 2] = [AbiVersion::V1, AbiVersion::V2];
    /// The newest version: what the SDK's `wasmgate_abi_version()` returns.
    pub const LATEST: AbiVersion = AbiVersion::V2;

    /// The version a module declared, if this crate speaks it.
    ///
    /// ```
    /// use wasmgate_abi::AbiVersion;
    /// assert_eq!(AbiVersion::from_declared(2), Some(AbiVersion::V2));
    /// assert_eq!(AbiVersion::from_declared(3), None);
    /// ```
    pub fn from_declared(n: i32) -> Option<AbiVersion> {
        AbiVersion::ALL.into_iter().find(|v| v.number() == n)
    }

    /// The number `wasmgate_abi_version()` returns for this version.
    pub fn number(self) -> i32 {
        self as i32
    }
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// The names of the exports docs/ABI.md defines, as the host looks them up and the SDK's
/// `handler!` macro defines them.
pub mod exports {
    /// The module's one linear memory.
    pub const MEMORY: &str = "memory";
    /// `() -> i32`: the ABI version the module implements.
    pub const ABI_VERSION: &str = "wasmgate_abi_version";
    /// `(size: i32) -> i32`: the address of `size` writable bytes, or 0.
    pub const ALLOC: &str = "wasmgate_alloc";
    /// `(ptr: i32, len: i32) -> i64`: handles one request, returns `(resp_ptr << 32) | resp_len`.
    pub const HANDLE: &str = "wasmgate_handle";
    /// `() -> ()`, optional: a reactor's initialisation, run once per instance before anything.
    pub const INITIALIZE: &str = "_initialize";
}

/// Splits `wasmgate_handle`'s return value into `(resp_ptr, resp_len)`, both unsigned 32-bit
/// (docs/ABI.md, Clarifications 1).
///
/// ```
/// assert_eq!(wasmgate_abi::split_handle_result(0x10_0000_002d), (0x10, 0x2d));
/// assert_eq!(wasmgate_abi::split_handle_result(-1), (u32::MAX, u32::MAX));
/// ```
pub fn split_handle_result(r: i64) -> (u32, u32) {
    let r = r as u64;
    ((r >> 32) as u32, r as u32)
}

/// Why `[resp_ptr, resp_ptr + resp_len)` cannot be read as a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// `resp_len` is larger than the route's `max_response_bytes`.
    TooLarge {
        /// The length the guest returned.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The range is not inside the guest's memory.
    OutOfBounds {
        /// The address the guest returned.
        ptr: u32,
        /// The length the guest returned.
        len: u32,
        /// The size of the guest's memory then.
        memory_size: usize,
    },
}

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeError::TooLarge { len, max } => {
                write!(f, "response length {len} exceeds the limit of {max} bytes")
            }
            RangeError::OutOfBounds {
                ptr,
                len,
                memory_size,
            } => write!(
                f,
                "response [{ptr:#x}, +{len}) lies outside guest memory of {memory_size} bytes"
            ),
        }
    }
}

impl std::error::Error for RangeError {}

/// Checks the response `[ptr, ptr + len)` a guest returned against the response cap and the size
/// of its memory, and returns it as a range into memory. The cap is checked first: an oversize
/// answer is reported as such even when it also points outside memory.
///
/// ```
/// use wasmgate_abi::{RangeError, response_range};
///
/// assert_eq!(response_range(16, 8, 100, 24), Ok(16..24));
/// assert!(matches!(response_range(16, 9, 100, 24), Err(RangeError::OutOfBounds { .. })));
/// assert!(matches!(response_range(0, 101, 100, 1 << 20), Err(RangeError::TooLarge { .. })));
/// ```
pub fn response_range(
    ptr: u32,
    len: u32,
    max_response_bytes: u32,
    memory_size: usize,
) -> Result<std::ops::Range<usize>, RangeError> {
    if len > max_response_bytes {
        return Err(RangeError::TooLarge {
            len,
            max: max_response_bytes,
        });
    }
    let start = ptr as usize;
    match start.checked_add(len as usize) {
        Some(end) if end <= memory_size => Ok(start..end),
        _ => Err(RangeError::OutOfBounds {
            ptr,
            len,
            memory_size,
        }),
    }
}

/// Packs a response's address and length the way `wasmgate_handle` returns them.
///
/// ```
/// let r = wasmgate_abi::pack_handle_result(0x10, 45);
/// assert_eq!(wasmgate_abi::split_handle_result(r), (0x10, 45));
/// ```
pub fn pack_handle_result(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}
