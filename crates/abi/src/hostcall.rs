//! ABI v2 host functions: the `wasmgate` import module, the calling convention's error codes
//! ([`Errno`]), the grant each function needs ([`Grant`]), and the encodings of the values that
//! travel through them (outbound requests, key lists).
//!
//! The table [`HOST_FUNCTIONS`] is what a host links and validates against and what a guest
//! imports; docs/ABI.md "Host functions" is its prose. This module owns names, types and
//! encodings only: what a function *does* is the host's services' business.

use crate::cursor::{BODY, HEADERS, Reader, StrField, Writer, field, pairs_len};
use crate::message::{DecodeError, EncodeError, RawPair};

/// The import module of every host function.
pub const MODULE: &str = "wasmgate";

/// What a host function returns: 0 on success, else the reason it failed. A failure of a host
/// service is a value the guest handles (it decides the HTTP status), never a trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Errno {
    /// Success: the result, if any, is at `ret`.
    Ok = 0,
    /// The variable or key does not exist.
    NotFound = 1,
    /// An argument is malformed (not UTF-8 where text is required, a bad encoding, a pointer
    /// outside memory, a value that is not a number for an increment).
    Invalid = 2,
    /// Not granted to this plugin: a store missing from its `kv` grant, a URL no entry of its
    /// `allowed_outbound_hosts` allows. The message names the entry to add.
    Denied = 3,
    /// A key, value, request or response is larger than its limit.
    TooLarge = 4,
    /// A per-request limit is reached (store operations, outbound calls).
    LimitReached = 5,
    /// A compare-and-swap found another value than the expected one.
    Conflict = 6,
    /// The backend (store, upstream) is down or refused the operation.
    Unavailable = 7,
    /// The operation's bound passed: its own timeout, or the request's deadline.
    Timeout = 8,
    /// The destination's name did not resolve.
    Dns = 9,
    /// No connection could be made to the destination.
    Connect = 10,
    /// The plugin's outbound concurrency cap is reached.
    Busy = 11,
    /// The destination resolved to an address the SSRF guard refuses (private, loopback,
    /// link-local, metadata) and no allow-list entry names it explicitly.
    AddressBlocked = 12,
    /// The peer broke its protocol (invalid HTTP, a TLS failure).
    Protocol = 13,
    /// `wasmgate_alloc` returned 0 for the result buffer.
    NoMemory = 14,
}

impl Errno {
    /// Every code, in numeric order.
    pub const ALL: [Errno; 15] = [
        Errno::Ok,
        Errno::NotFound,
        Errno::Invalid,
        Errno::Denied,
        Errno::TooLarge,
        Errno::LimitReached,
        Errno::Conflict,
        Errno::Unavailable,
        Errno::Timeout,
        Errno::Dns,
        Errno::Connect,
        Errno::Busy,
        Errno::AddressBlocked,
        Errno::Protocol,
        Errno::NoMemory,
    ];

    /// The code as the `i32` a host function returns.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The code an `i32` names, if any.
    ///
    /// ```
    /// use wasmgate_abi::Errno;
    /// assert_eq!(Errno::from_code(6), Some(Errno::Conflict));
    /// assert_eq!(Errno::from_code(-1), None);
    /// ```
    pub fn from_code(code: i32) -> Option<Errno> {
        Errno::ALL.into_iter().find(|e| e.code() == code)
    }

    /// A stable snake_case name, e.g. `address_blocked` (docs, logs, metric labels).
    pub fn name(self) -> &'static str {
        match self {
            Errno::Ok => "ok",
            Errno::NotFound => "not_found",
            Errno::Invalid => "invalid",
            Errno::Denied => "denied",
            Errno::TooLarge => "too_large",
            Errno::LimitReached => "limit_reached",
            Errno::Conflict => "conflict",
            Errno::Unavailable => "unavailable",
            Errno::Timeout => "timeout",
            Errno::Dns => "dns",
            Errno::Connect => "connect",
            Errno::Busy => "busy",
            Errno::AddressBlocked => "address_blocked",
            Errno::Protocol => "protocol",
            Errno::NoMemory => "no_memory",
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The configuration key of `[plugins.NAME]` that grants a group of host functions. A module that
/// imports a function whose grant its entry lacks is refused at load, with this name in the
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// `[plugins.NAME.vars]`: configuration variables and secrets.
    Vars,
    /// `kv = ["STORE", ...]`: key-value stores.
    Kv,
    /// `allowed_outbound_hosts = ["https://api.example.com", ...]`: outbound HTTP.
    Outbound,
}

impl Grant {
    /// How to write the grant in the configuration, for messages.
    pub fn config_hint(self) -> &'static str {
        match self {
            Grant::Vars => "a `[plugins.NAME.vars]` table",
            Grant::Kv => "`kv = [\"STORE\"]`",
            Grant::Outbound => "`allowed_outbound_hosts = [\"https://HOST\"]`",
        }
    }
}

/// A WebAssembly value type of a host function's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValType {
    /// `i32`: pointers, lengths, counts, error codes.
    I32,
    /// `i64`: TTLs in milliseconds, increments.
    I64,
}

/// One argument of a host function, as the guest passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// A byte string in guest memory: two `i32`s, `(ptr, len)`.
    Bytes,
    /// A byte string that may be absent: `(ptr, len)` with `len = ABSENT` for "none".
    MaybeBytes,
    /// A count, as an `i32` read unsigned.
    U32,
    /// A signed 64-bit number (`i64`).
    I64,
}

/// One host function: its name in the [`MODULE`], its arguments, and its grant. Its WebAssembly
/// type is the arguments expanded ([`HostFn::wasm_params`]), then `ret: i32`, returning `i32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFn {
    /// The import name, e.g. `kv_get`.
    pub name: &'static str,
    /// Arguments before `ret`, in order.
    pub args: &'static [Param],
    /// Grant needed to import it.
    pub grant: Grant,
}

impl HostFn {
    /// The parameter types of the import: each argument expanded, then `ret` (an `i32` address of
    /// 8 bytes where the host writes `(result_ptr, result_len)`).
    ///
    /// ```
    /// use wasmgate_abi::{host_function, ValType::{I32, I64}};
    /// assert_eq!(host_function("kv_incr").unwrap().wasm_params(), [I32, I32, I32, I32, I64, I32]);
    /// ```
    pub fn wasm_params(&self) -> Vec<ValType> {
        let mut out = Vec::with_capacity(2 * self.args.len() + 1);
        for a in self.args {
            match a {
                Param::Bytes | Param::MaybeBytes => out.extend([ValType::I32, ValType::I32]),
                Param::U32 => out.push(ValType::I32),
                Param::I64 => out.push(ValType::I64),
            }
        }
        out.push(ValType::I32);
        out
    }
}

use Param::{Bytes, I64, MaybeBytes, U32};

/// Every host function of ABI v2. Each returns one `i32`: an [`Errno`] code.
pub const HOST_FUNCTIONS: &[HostFn] = &[
    // var_get(name) -> the variable's value.
    HostFn {
        name: "var_get",
        args: &[Bytes],
        grant: Grant::Vars,
    },
    // kv_open(store) -> nothing: checks the store is granted.
    HostFn {
        name: "kv_open",
        args: &[Bytes],
        grant: Grant::Kv,
    },
    // kv_get(store, key) -> the value.
    HostFn {
        name: "kv_get",
        args: &[Bytes, Bytes],
        grant: Grant::Kv,
    },
    // kv_set(store, key, value, ttl_ms) -> nothing.
    HostFn {
        name: "kv_set",
        args: &[Bytes, Bytes, Bytes, I64],
        grant: Grant::Kv,
    },
    // kv_delete(store, key) -> nothing; not_found when absent.
    HostFn {
        name: "kv_delete",
        args: &[Bytes, Bytes],
        grant: Grant::Kv,
    },
    // kv_exists(store, key) -> nothing: ok or not_found.
    HostFn {
        name: "kv_exists",
        args: &[Bytes, Bytes],
        grant: Grant::Kv,
    },
    // kv_incr(store, key, delta) -> the new value, 8 bytes little-endian.
    HostFn {
        name: "kv_incr",
        args: &[Bytes, Bytes, I64],
        grant: Grant::Kv,
    },
    // kv_incr_ttl(store, key, delta, ttl_ms) -> the new value, 8 bytes little-endian; the TTL
    // is given only to a key this call creates (a fixed window: one call per hit).
    HostFn {
        name: "kv_incr_ttl",
        args: &[Bytes, Bytes, I64, I64],
        grant: Grant::Kv,
    },
    // kv_ttl(store, key) -> the remaining time to live in ms, 8 bytes little-endian
    // (NO_EXPIRY: none); not_found when absent.
    HostFn {
        name: "kv_ttl",
        args: &[Bytes, Bytes],
        grant: Grant::Kv,
    },
    // kv_cas(store, key, expected (ABSENT: must be absent), new, ttl_ms) -> nothing; conflict.
    HostFn {
        name: "kv_cas",
        args: &[Bytes, Bytes, MaybeBytes, Bytes, I64],
        grant: Grant::Kv,
    },
    // kv_list(store, prefix, cursor, limit) -> a KeyPage.
    HostFn {
        name: "kv_list",
        args: &[Bytes, Bytes, Bytes, U32],
        grant: Grant::Kv,
    },
    // http_send(request: an OutboundRequest) -> a response in the RawResponse layout.
    HostFn {
        name: "http_send",
        args: &[Bytes],
        grant: Grant::Outbound,
    },
    // http_send_timeout(request, timeout_ms) -> as http_send, ending `timeout` after at most
    // `timeout_ms` (<= 0: no bound of the guest's; the host's own bounds apply either way).
    HostFn {
        name: "http_send_timeout",
        args: &[Bytes, I64],
        grant: Grant::Outbound,
    },
];

/// The host function named `name`, if there is one.
///
/// ```
/// let f = wasmgate_abi::host_function("kv_get").unwrap();
/// assert_eq!(f.grant, wasmgate_abi::Grant::Kv);
/// assert!(wasmgate_abi::host_function("kv_frobnicate").is_none());
/// ```
pub fn host_function(name: &str) -> Option<&'static HostFn> {
    HOST_FUNCTIONS.iter().find(|f| f.name == name)
}

/// What `kv_ttl` answers for a key that never expires (a live key's remaining time is >= 1 ms).
pub const NO_EXPIRY: i64 = -1;

/// The length of a [`Param::MaybeBytes`] that is absent (`kv_cas`'s "the key must be absent").
pub const ABSENT: u32 = u32::MAX;

const METHOD: StrField = field("method", "method length");
const URL: StrField = field("url", "url length");
const KEY: StrField = field("key", "key length");
const CURSOR: StrField = field("cursor", "cursor length");

/// An outbound HTTP request, as `http_send` takes it:
/// `str method, str url, u32 header_count, header_count × (str name, str value), str body`.
///
/// ```
/// use wasmgate_abi::OutboundRequest;
///
/// let req = OutboundRequest { method: b"GET", url: b"https://example.org/", headers: vec![], body: b"" };
/// assert_eq!(OutboundRequest::decode(&req.encode()?)?, req);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a [u8],
    /// The absolute URL, e.g. `https://api.example.com/v1/things?x=1`.
    pub url: &'a [u8],
    /// Header fields to send, in order.
    pub headers: Vec<RawPair<'a>>,
    /// The body (empty for none).
    pub body: &'a [u8],
}

impl<'a> OutboundRequest<'a> {
    /// Decodes one encoding, exactly.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let req = OutboundRequest {
            method: r.str(METHOD)?,
            url: r.str(URL)?,
            headers: r.pairs(HEADERS)?,
            body: r.str(BODY)?,
        };
        r.finish()?;
        Ok(req)
    }

    /// Encodes into a buffer of exactly the right size.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let len = 4
            + self.method.len()
            + 4
            + self.url.len()
            + pairs_len(&self.headers)
            + 4
            + self.body.len();
        let mut w = Writer::with_total(len)?;
        w.str(METHOD, self.method)?;
        w.str(URL, self.url)?;
        w.pairs(HEADERS, &self.headers)?;
        w.str(BODY, self.body)?;
        Ok(w.buf)
    }
}

/// One page of keys, as `kv_list` returns it: `u32 count, count × str key, str next_cursor`.
/// An empty `next` means the listing is complete; otherwise pass it back as the cursor.
///
/// ```
/// use wasmgate_abi::KeyPage;
///
/// let page = KeyPage { keys: vec![b"a", b"b"], next: b"b" };
/// assert_eq!(KeyPage::decode(&page.encode()?)?, page);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage<'a> {
    /// Keys in ascending byte order.
    pub keys: Vec<&'a [u8]>,
    /// Where the next page starts (empty: no next page).
    pub next: &'a [u8],
}

impl<'a> KeyPage<'a> {
    /// Decodes one encoding, exactly.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let count = r.u32("key count")?;
        let plausible = r.remaining() / 4;
        let mut keys = Vec::with_capacity(plausible.min(count as usize));
        for _ in 0..count {
            keys.push(r.str(KEY)?);
        }
        let next = r.str(CURSOR)?;
        r.finish()?;
        Ok(KeyPage { keys, next })
    }

    /// Encodes into a buffer of exactly the right size.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let len = 4 + self.keys.iter().map(|k| 4 + k.len()).sum::<usize>() + 4 + self.next.len();
        let mut w = Writer::with_total(len)?;
        w.count("key count", self.keys.len())?;
        for k in &self.keys {
            w.str(KEY, k)?;
        }
        w.str(CURSOR, self.next)?;
        Ok(w.buf)
    }
}
