//! Conversion between [`Request`] and its ABI v2 encoding ([`RawRequest`]): what the host writes
//! into the plugin's memory, and what tests and tools encode.
//!
//! This module owns the mapping of wire fields to the request's fields: lossy text, params as
//! exact bytes, the v2 tagged fields by [`tag`] (unknown tags skipped, the first of a repeated
//! tag kept), and the body's place in the host's buffer, which decoding keeps without copying.
//! It must not present anything (that is `request`'s) nor parse the query beyond `url`.

use super::{Meta, Param, Request};
use crate::url::parse_query;
use crate::wire::{AbiVersion, DecodeError, EncodeError, Field, RawPair, RawRequest, tag};

impl Request {
    /// Decodes a request from its ABI v2 encoding, taking ownership of the buffer so the body
    /// can stay where it is.
    ///
    /// ```
    /// use wasmgate_sdk::Request;
    ///
    /// let bytes = Request::builder().path("/x").route("/x").body("hi").build().encode()?;
    /// let req = Request::decode(bytes)?;
    /// assert_eq!((req.path(), req.route(), req.body()), ("/x", Some("/x"), &b"hi"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(buf: Vec<u8>) -> Result<Request, DecodeError> {
        let raw = RawRequest::decode(&buf, AbiVersion::V2)?;
        let pairs = |v: &[RawPair<'_>]| v.iter().map(|(n, v)| (text(n), text(v))).collect();
        let query_string = text(raw.query);
        // The v1 layout ends with the body, and the v2 fields follow it: the body ends where
        // the v1 encoding of these very fields ends.
        let body_end = raw.encoded_len(AbiVersion::V1);
        let body = body_end - raw.body.len()..body_end;
        let req = Request {
            method: text(raw.method),
            target: text(raw.target),
            path: text(raw.path),
            query: parse_query(&query_string),
            query_string,
            version: text(raw.version),
            headers: pairs(&raw.headers),
            params: raw
                .params
                .iter()
                .map(|(n, v)| Param::new(text(n), v.to_vec()))
                .collect(),
            meta: Meta::from_fields(&raw.fields),
            body,
            buf: Vec::new(),
        };
        Ok(Request { buf, ..req })
    }

    /// Encodes the request as a v2 host would (useful for tests and tools): the v1 layout, then
    /// the metadata that is set as tagged fields.
    ///
    /// ```
    /// let bytes = wasmgate_sdk::Request::builder().build().encode()?;
    /// assert_eq!(&bytes[..7], b"\x03\0\0\0GET");
    /// assert_eq!(bytes.len(), 7 + 5 + 5 + 4 + 12 + 4 + 4 + 4 + 4); // ..., 0 fields
    /// # Ok::<(), wasmgate_sdk::wire::EncodeError>(())
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        fn pairs(v: &[(String, String)]) -> Vec<RawPair<'_>> {
            v.iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                .collect()
        }
        RawRequest {
            method: self.method.as_bytes(),
            target: self.target.as_bytes(),
            path: self.path.as_bytes(),
            query: self.query_string.as_bytes(),
            version: self.version.as_bytes(),
            headers: pairs(&self.headers),
            params: self
                .params
                .iter()
                .map(|p| (p.name.as_bytes(), p.bytes.as_slice()))
                .collect(),
            body: self.body(),
            fields: self.meta.fields(),
        }
        .encode(AbiVersion::V2)
    }
}

impl Meta {
    /// The fields this SDK knows, from a v2 field list.
    fn from_fields(fields: &[Field<'_>]) -> Meta {
        let get = |t: u32| fields.iter().find(|f| f.tag == t).map(|f| text(f.value));
        Meta {
            peer_addr: get(tag::PEER_ADDR),
            client_addr: get(tag::CLIENT_ADDR),
            route: get(tag::ROUTE),
            id: get(tag::REQUEST_ID),
        }
    }

    /// The fields that are set, in tag order.
    fn fields(&self) -> Vec<Field<'_>> {
        [
            (tag::PEER_ADDR, &self.peer_addr),
            (tag::CLIENT_ADDR, &self.client_addr),
            (tag::ROUTE, &self.route),
            (tag::REQUEST_ID, &self.id),
        ]
        .into_iter()
        .filter_map(|(tag, value)| {
            value.as_ref().map(|v| Field {
                tag,
                value: v.as_bytes(),
            })
        })
        .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
