//! Fuzz target: the host's decoder of guest responses (the ABI crate's codec and refusal rules, as
//! the runtime applies them), the trust boundary between guest memory and the HTTP writer.
//!
//! Invariants checked on every input:
//! - decoding, the refusal rules and `response_range` never panic, whatever the bytes and numbers;
//! - the encoding is canonical: an accepted response re-encodes to exactly the bytes it came from
//!   (so nothing was skipped or guessed);
//! - an accepted response, written by the host's one response serializer, is read back by
//!   `httparse` as exactly one response with the guest's status, the host's framing headers and
//!   the guest's headers in order, unchanged: a guest cannot inject a header, split the response
//!   or take over framing;
//! - `response_range` only returns ranges inside memory and within the cap.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmgate_abi::{RawResponse, response_range};
use wasmgate_http::encode::{self, Response};

/// A response the host accepted, as the runtime keeps it.
struct GuestResponse {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// What the runtime does with guest bytes: decode, apply the refusal rules, own the result.
fn decode_response(bytes: &[u8]) -> Option<GuestResponse> {
    let raw = RawResponse::decode(bytes).ok()?;
    if raw.refusal().is_some() {
        return None;
    }
    Some(GuestResponse {
        status: u16::try_from(raw.status).ok()?,
        headers: raw
            .headers
            .iter()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect(),
        body: raw.body.to_vec(),
    })
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    range: (u32, u32, u32, u32),
    head_request: bool,
    keep_alive: bool,
    bytes: &'a [u8],
}

/// ABI v1 response layout (docs/ABI.md), written independently of the decoder.
fn encode_abi(r: &GuestResponse) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&u32::from(r.status).to_le_bytes());
    out.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
    for (n, v) in &r.headers {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&(r.body.len() as u32).to_le_bytes());
    out.extend_from_slice(&r.body);
    out
}

/// RFC 9110 §5.5: a field value is read without leading and trailing whitespace.
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &v[start..end]
}

fuzz_target!(|input: Input<'_>| {
    let (ptr, len, max, memory) = input.range;
    if let Ok(r) = response_range(ptr, len, max, memory as usize) {
        assert!(len <= max && r.end <= memory as usize && r.len() == len as usize);
    }

    let Some(guest) = decode_response(input.bytes) else {
        return;
    };
    assert_eq!(encode_abi(&guest), input.bytes, "not canonical");
    assert!((200..=599).contains(&guest.status));

    // What dispatch does with it, then the wire bytes.
    let mut response = Response::new(guest.status).body(guest.body.clone());
    response.headers = guest
        .headers
        .iter()
        .map(|(n, v)| (n.clone().into(), v.clone().into()))
        .collect();
    let framing = encode::Framing {
        head_request: input.head_request,
        keep_alive: input.keep_alive,
        http10: false,
    };
    let mut wire = Vec::new();
    encode::encode(
        &response,
        framing,
        "Sun, 06 Nov 1994 08:49:37 GMT",
        &[],
        &mut wire,
    );

    let mut slots = vec![httparse::EMPTY_HEADER; guest.headers.len() + 3];
    let mut parsed = httparse::Response::new(&mut slots);
    let head_len = match parsed.parse(&wire) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("the host wrote a response httparse cannot read: {other:?}"),
    };
    assert_eq!(parsed.code, Some(guest.status));
    let names: Vec<String> = parsed
        .headers
        .iter()
        .map(|h| h.name.to_ascii_lowercase())
        .collect();
    // The host's `Date` comes first, unless the guest sent its own (which replaces it).
    let guest_date = guest.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("date"));
    let host_owned = usize::from(!guest_date && names.first().is_some_and(|n| n == "date"))
        + usize::from(names.iter().any(|n| n == "content-length"))
        + usize::from(names.iter().any(|n| n == "connection"));
    let guest_headers = &parsed.headers[host_owned..];
    assert_eq!(
        guest_headers.len(),
        guest.headers.len(),
        "header count changed on the wire"
    );
    for (h, (n, v)) in guest_headers.iter().zip(&guest.headers) {
        assert_eq!(h.name, n);
        assert_eq!(h.value, trim_ows(v));
    }
    let no_body = input.head_request || matches!(guest.status, 204 | 304);
    let body = &wire[head_len..];
    assert_eq!(
        body,
        if no_body { &[][..] } else { &guest.body[..] },
        "body changed on the wire"
    );
    if !matches!(guest.status, 204 | 304) {
        let cl = parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"));
        assert_eq!(
            cl.map(|h| h.value),
            Some(guest.body.len().to_string().as_bytes())
        );
    }
});
