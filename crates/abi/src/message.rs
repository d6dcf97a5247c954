//! What crosses the boundary: a request, a response and v2's tagged fields as borrowed byte
//! slices, and the errors of encoding and decoding them.
//!
//! This module owns the shapes and their error types; the byte layout lives in `codec` and the
//! reading and writing mechanics in `cursor`, both of which build on these types (and neither of
//! which this module knows about).

use std::fmt;

/// A `(name, value)` pair as raw bytes: headers and route params.
///
/// ```
/// let host: wasmgate_abi::RawPair<'_> = (b"Host", b"example.org");
/// assert_eq!(host.0, b"Host");
/// ```
pub type RawPair<'a> = (&'a [u8], &'a [u8]);

/// A request as laid out on the wire, borrowing from the encoded buffer.
///
/// Fields are bytes, not text: the ABI promises nothing about UTF-8 here, and the SDK's
/// `Request` decides how to present them. `fields` is v2's trailing list; a v1 encoding has none
/// (encoding for v1 leaves it out, decoding v1 gives an empty list).
///
/// ```
/// use wasmgate_abi::{AbiVersion, Field, RawRequest, tag};
///
/// let req = RawRequest { method: b"GET", target: b"/a?b=1", path: b"/a", query: b"b=1",
///                        version: b"HTTP/1.1",
///                        fields: vec![Field { tag: tag::ROUTE, value: b"/a" }],
///                        ..RawRequest::default() };
/// let bytes = req.encode(AbiVersion::V2)?;
/// assert_eq!(RawRequest::decode(&bytes, AbiVersion::V2)?, req);
/// assert_eq!(req.field(tag::ROUTE), Some(&b"/a"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawRequest<'a> {
    /// Method, case as received, e.g. `GET`.
    pub method: &'a [u8],
    /// Raw request-target, e.g. `/echo/a%20b?x=1`.
    pub target: &'a [u8],
    /// Path part of the target, still percent-encoded.
    pub path: &'a [u8],
    /// Part of the target after the first `?`, without it; empty if none.
    pub query: &'a [u8],
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: &'a [u8],
    /// Header fields in received order, names case as received.
    pub headers: Vec<RawPair<'a>>,
    /// Route parameters, already percent-decoded by the host.
    pub params: Vec<RawPair<'a>>,
    /// The whole body, de-chunked.
    pub body: &'a [u8],
    /// v2 only: tagged fields after the body, in the order sent (see [`tag`]).
    pub fields: Vec<Field<'a>>,
}

/// One tagged field of a v2 request. A reader skips tags it does not know, which is what lets a
/// later host add fields without a new ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// What the value is: one of [`tag`], or a tag this reader does not know.
    pub tag: u32,
    /// The value's bytes (their meaning is the tag's).
    pub value: &'a [u8],
}

/// The tags of v2 request fields (docs/ABI.md, "v2 request fields"). Values are ASCII text.
pub mod tag {
    /// The TCP peer the request came from, `ip:port` (`[v6]:port` for IPv6).
    pub const PEER_ADDR: u32 = 1;
    /// The client's IP address: the forwarded client (`Forwarded` / `X-Forwarded-For`) when the
    /// peer is a configured trusted proxy, else the peer's IP.
    pub const CLIENT_ADDR: u32 = 2;
    /// The route pattern that matched, as written in the configuration, e.g. `/l/:code`.
    pub const ROUTE: u32 = 3;
    /// The request id: the same id as in the host's log lines and its response header.
    pub const REQUEST_ID: u32 = 4;
}

/// A response as laid out on the wire (what `wasmgate_handle` points at); the same in every
/// version. Whether the host accepts it is [`RawResponse::refusal`]'s question.
///
/// ```
/// use wasmgate_abi::RawResponse;
///
/// let bytes = RawResponse { status: 200, headers: vec![], body: b"hi" }.encode()?;
/// assert_eq!(bytes, [200, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'h', b'i']);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawResponse<'a> {
    /// The status as encoded; the ABI allows only 200..=599 but the wire carries any `u32`.
    pub status: u32,
    /// Header fields, in the order they will be sent.
    pub headers: Vec<RawPair<'a>>,
    /// The body.
    pub body: &'a [u8],
}

/// Why bytes are not a valid encoding. Offsets are from the start of the buffer, so a message
/// can point at the exact byte.
///
/// ```
/// use wasmgate_abi::{DecodeError, RawResponse};
///
/// // A status and a header count, then the body's length is missing.
/// let err = RawResponse::decode(&[200, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
/// assert_eq!(err, DecodeError::Truncated { field: "body length", offset: 8 });
/// assert_eq!(err.to_string(), "truncated: body length (4 bytes) missing at offset 8");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A `u32` (a length, a count or the status) is cut off by the end of the buffer.
    Truncated {
        /// Which field, e.g. `"header count"`.
        field: &'static str,
        /// Where the `u32` should have started.
        offset: usize,
    },
    /// A `str` declares more bytes than remain in the buffer.
    LengthPastEnd {
        /// Which field, e.g. `"body"`.
        field: &'static str,
        /// Where the string's bytes start (after its length).
        offset: usize,
        /// The declared length.
        len: u32,
        /// How many bytes actually remain.
        remaining: usize,
    },
    /// Bytes remain after the last field; the ABI requires an exact fit.
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { field, offset } => {
                write!(f, "truncated: {field} (4 bytes) missing at offset {offset}")
            }
            Self::LengthPastEnd {
                field,
                offset,
                len,
                remaining,
            } => write!(
                f,
                "{field} at offset {offset} declares {len} bytes but only {remaining} remain"
            ),
            Self::TrailingBytes { offset, count } => {
                write!(
                    f,
                    "{count} trailing bytes after the last field, at offset {offset}"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A value does not fit the encoding: every length, count and the total size are `u32`.
///
/// Only reachable with more than 4 GiB of data, so never on `wasm32`; it exists so that encoding
/// on a 64-bit host cannot silently truncate.
///
/// ```
/// use wasmgate_abi::EncodeError;
///
/// let err = EncodeError { field: "body", len: 1 << 33 };
/// assert_eq!(err.to_string(), "body is 8589934592 bytes; the ABI limit is 4294967295");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// Which field overflowed, or `"total"` for the whole encoding.
    pub field: &'static str,
    /// Its size.
    pub len: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {} bytes; the ABI limit is {}",
            self.field,
            self.len,
            u32::MAX
        )
    }
}

impl std::error::Error for EncodeError {}
