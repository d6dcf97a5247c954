//! The byte encoding of docs/ABI.md: requests and responses as sequences of little-endian `u32`s
//! and length-prefixed byte strings, and v2's trailing list of tagged request fields.
//!
//! This module owns the layout and nothing else. It never validates HTTP semantics (header
//! syntax, status ranges: that is `refusal`) and never converts bytes to text. Decoding returns an
//! error for every malformed input and never panics, because a host decodes untrusted guest
//! output with it. Both directions exist so that both sides, and round trips, use one codec.
//!
//! ```
//! use wasmgate_abi::RawResponse;
//!
//! let resp = RawResponse { status: 204, headers: vec![(b"x-a", b"1")], body: b"" };
//! let bytes = resp.encode()?;
//! assert_eq!(bytes.len(), 4 + 4 + (4 + 3 + 4 + 1) + 4);
//! assert_eq!(RawResponse::decode(&bytes)?, resp);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::AbiVersion;
use crate::cursor::{
    BODY, FIELDS, HEADERS, METHOD, PARAMS, PATH, QUERY, Reader, TARGET, VERSION, Writer,
    fields_len, pairs_len,
};
use crate::message::{DecodeError, EncodeError, RawRequest, RawResponse};

impl<'a> RawRequest<'a> {
    /// Decodes a request encoded for `version`; the buffer must contain exactly one encoding and
    /// nothing else.
    ///
    /// ```
    /// use wasmgate_abi::{AbiVersion, DecodeError, RawRequest};
    ///
    /// let err = RawRequest::decode(b"", AbiVersion::V1).unwrap_err();
    /// assert!(matches!(err, DecodeError::Truncated { field: "method length", .. }));
    /// ```
    pub fn decode(buf: &'a [u8], version: AbiVersion) -> Result<Self, DecodeError> {
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
            fields: match version {
                AbiVersion::V1 => Vec::new(),
                AbiVersion::V2 => r.fields(FIELDS)?,
            },
        };
        r.finish()?;
        Ok(req)
    }

    /// The exact length of the encoding for `version`.
    ///
    /// ```
    /// use wasmgate_abi::{AbiVersion, RawRequest};
    ///
    /// // 5 empty strings, 2 zero counts, an empty body: 8 × 4 bytes; v2 adds a field count.
    /// assert_eq!(RawRequest::default().encoded_len(AbiVersion::V1), 32);
    /// assert_eq!(RawRequest::default().encoded_len(AbiVersion::V2), 36);
    /// ```
    pub fn encoded_len(&self, version: AbiVersion) -> usize {
        let strs = [
            self.method,
            self.target,
            self.path,
            self.query,
            self.version,
            self.body,
        ];
        let v1 = strs.iter().map(|s| 4 + s.len()).sum::<usize>()
            + pairs_len(&self.headers)
            + pairs_len(&self.params);
        match version {
            AbiVersion::V1 => v1,
            AbiVersion::V2 => v1 + fields_len(&self.fields),
        }
    }

    /// Encodes the request for `version` into a buffer of exactly the right size. A v1 encoding
    /// leaves `fields` out: v1 has no place for them.
    ///
    /// ```
    /// use wasmgate_abi::{AbiVersion, RawRequest};
    ///
    /// assert_eq!(RawRequest::default().encode(AbiVersion::V1)?.len(), 32);
    /// # Ok::<(), wasmgate_abi::EncodeError>(())
    /// ```
    pub fn encode(&self, version: AbiVersion) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::with_total(self.encoded_len(version))?;
        w.str(METHOD, self.method)?;
        w.str(TARGET, self.target)?;
        w.str(PATH, self.path)?;
        w.str(QUERY, self.query)?;
        w.str(VERSION, self.version)?;
        w.pairs(HEADERS, &self.headers)?;
        w.pairs(PARAMS, &self.params)?;
        w.str(BODY, self.body)?;
        if version == AbiVersion::V2 {
            w.fields(FIELDS, &self.fields)?;
        }
        Ok(w.buf)
    }

    /// The value of the first field tagged `tag`, if any.
    pub fn field(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields.iter().find(|f| f.tag == tag).map(|f| f.value)
    }
}

impl<'a> RawResponse<'a> {
    /// Decodes a response the way the host does: exactly `buf.len()` bytes, no more, no less.
    ///
    /// ```
    /// use wasmgate_abi::{DecodeError, RawResponse};
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
    /// use wasmgate_abi::RawResponse;
    ///
    /// let resp = RawResponse { status: 404, headers: vec![(b"a", b"b")], body: b"no" };
    /// assert_eq!(resp.encode()?.len(), 4 + 4 + 4 + 1 + 4 + 1 + 4 + 2);
    /// # Ok::<(), wasmgate_abi::EncodeError>(())
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
