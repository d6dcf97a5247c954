//! The byte encoding of docs/ABI.md (version 1): requests and responses as sequences of
//! little-endian `u32`s and length-prefixed byte strings.
//!
//! This module owns the layout and nothing else. It is pure and safe: it never touches pointers,
//! never validates HTTP semantics (header syntax, status ranges — that is
//! [`Response`](crate::Response)'s job, mirroring the host's refusals), and never converts bytes
//! to text. Decoding must return an error for every malformed input and must never panic, because
//! a host can reuse it on untrusted guest output. Both directions exist on both sides so that
//! round trips can be tested natively.
//!
//! ```
//! use wasmgate_sdk::wire::RawResponse;
//!
//! let resp = RawResponse { status: 204, headers: vec![(b"x-a", b"1")], body: b"" };
//! let bytes = resp.encode()?;
//! assert_eq!(bytes.len(), 4 + 4 + (4 + 3 + 4 + 1) + 4);
//! assert_eq!(RawResponse::decode(&bytes)?, resp);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use cursor::{
    BODY, HEADERS, METHOD, PARAMS, PATH, QUERY, Reader, TARGET, VERSION, Writer, pairs_len,
};
use std::fmt;

mod cursor;
#[cfg(test)]
mod tests;

/// A `(name, value)` pair as raw bytes: headers and route params.
///
/// ```
/// let host: wasmgate_sdk::wire::RawPair<'_> = (b"Host", b"example.org");
/// assert_eq!(host.0, b"Host");
/// ```
pub type RawPair<'a> = (&'a [u8], &'a [u8]);

/// A request as laid out on the wire, borrowing from the encoded buffer.
///
/// Fields are bytes, not text: the ABI promises nothing about UTF-8 here, and the SDK's
/// [`Request`](crate::Request) decides how to present them.
///
/// ```
/// use wasmgate_sdk::wire::RawRequest;
///
/// let req = RawRequest { method: b"GET", target: b"/a?b=1", path: b"/a", query: b"b=1",
///                        version: b"HTTP/1.1", ..RawRequest::default() };
/// let bytes = req.encode()?;
/// assert_eq!(RawRequest::decode(&bytes)?, req);
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
}

/// A response as laid out on the wire (what `wasmgate_handle` points at).
///
/// ```
/// use wasmgate_sdk::wire::RawResponse;
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
/// use wasmgate_sdk::wire::{DecodeError, RawResponse};
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
/// use wasmgate_sdk::wire::EncodeError;
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

impl<'a> RawRequest<'a> {
    /// Decodes a request; the buffer must contain exactly one encoding and nothing else.
    ///
    /// ```
    /// use wasmgate_sdk::wire::{DecodeError, RawRequest};
    ///
    /// assert!(matches!(RawRequest::decode(b""), Err(DecodeError::Truncated { field: "method length", .. })));
    /// ```
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let req = RawRequest {
            method: r.str(METHOD)?,
            target: r.str(TARGET)?,
            path: r.str(PATH)?,
            query: r.str(QUERY)?,
            version: r.str(VERSION)?,
            headers: r.pairs(HEADERS)?,
            params: r.pairs(PARAMS)?,
            body: r.str(BODY)?,
        };
        r.finish()?;
        Ok(req)
    }

    /// Encodes the request into a buffer of exactly the right size.
    ///
    /// ```
    /// use wasmgate_sdk::wire::RawRequest;
    ///
    /// // 5 empty strings, 2 zero counts, an empty body: 8 × 4 bytes.
    /// assert_eq!(RawRequest::default().encode()?.len(), 32);
    /// # Ok::<(), wasmgate_sdk::wire::EncodeError>(())
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let strs = [
            self.method,
            self.target,
            self.path,
            self.query,
            self.version,
            self.body,
        ];
        let len = strs.iter().map(|s| 4 + s.len()).sum::<usize>()
            + pairs_len(&self.headers)
            + pairs_len(&self.params);
        let mut w = Writer::with_total(len)?;
        w.str(METHOD, self.method)?;
        w.str(TARGET, self.target)?;
        w.str(PATH, self.path)?;
        w.str(QUERY, self.query)?;
        w.str(VERSION, self.version)?;
        w.pairs(HEADERS, &self.headers)?;
        w.pairs(PARAMS, &self.params)?;
        w.str(BODY, self.body)?;
        Ok(w.buf)
    }
}

impl<'a> RawResponse<'a> {
    /// Decodes a response the way the host does: exactly `buf.len()` bytes, no more, no less.
    ///
    /// ```
    /// use wasmgate_sdk::wire::{DecodeError, RawResponse};
    ///
    /// let mut bytes = RawResponse { status: 200, ..Default::default() }.encode()?;
    /// bytes.push(0);
    /// assert_eq!(RawResponse::decode(&bytes), Err(DecodeError::TrailingBytes { offset: 12, count: 1 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let resp = RawResponse {
            status: r.u32("status")?,
            headers: r.pairs(HEADERS)?,
            body: r.str(BODY)?,
        };
        r.finish()?;
        Ok(resp)
    }

    /// Encodes the response into a buffer of exactly the right size.
    ///
    /// ```
    /// use wasmgate_sdk::wire::RawResponse;
    ///
    /// let resp = RawResponse { status: 404, headers: vec![(b"a", b"b")], body: b"no" };
    /// assert_eq!(resp.encode()?.len(), 4 + 4 + 4 + 1 + 4 + 1 + 4 + 2);
    /// # Ok::<(), wasmgate_sdk::wire::EncodeError>(())
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let len = 4 + pairs_len(&self.headers) + 4 + self.body.len();
        let mut w = Writer::with_total(len)?;
        w.buf.extend_from_slice(&self.status.to_le_bytes());
        w.pairs(HEADERS, &self.headers)?;
        w.str(BODY, self.body)?;
        Ok(w.buf)
    }
}
