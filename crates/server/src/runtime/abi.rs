//! The runtime's side of the ABI codec: guest memory bytes to a validated [`GuestResponse`].
//!
//! The layout, the refusal rules and the range check are `wasmgate-abi`'s (one codec for host
//! and SDK); this module turns them into the runtime's error and the owned, validated value the
//! HTTP writer may send as it is. Pure
//! functions over byte slices: no wasmtime, no I/O, no HTTP status codes. It is the trust boundary
//! between guest memory and the HTTP writer, so it must never panic (each refusal has a test).

use wasmgate_abi::{DecodeError, RangeError, RawResponse, Refusal};

/// A validated guest response: every header is safe to write as-is (token name, no CR/LF/NUL/CTL
/// in the value, none of the framing headers the host owns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Fuel the call burned (budget minus what was left), for metrics.
    pub fuel_used: u64,
    /// Whether a warm instance (one that served an earlier request) answered it.
    pub reused: bool,
}

/// Why a response was refused. All of these are the guest's fault: 502 `invalid_response`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The bytes are not an encoding (truncated, a length past the end, trailing bytes).
    #[error("response is not a valid encoding: {0}")]
    Decode(#[from] DecodeError),
    /// The encoding is fine but breaks a rule of docs/ABI.md (status, header syntax, framing).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// `[resp_ptr, resp_ptr + resp_len)` is larger than `max_response_bytes` or outside memory.
    #[error("{0}")]
    Range(#[from] RangeError),
}

/// Decodes and validates a response. `fuel_used` is left at 0 for the caller to fill in.
pub(crate) fn decode_response(bytes: &[u8]) -> Result<GuestResponse, ResponseError> {
    let raw = RawResponse::decode(bytes)?;
    if let Some(refusal) = raw.refusal() {
        return Err(refusal.into());
    }
    let headers = raw
        .headers
        .iter()
        // Validated as tokens, so ASCII: the lossy conversion never replaces anything.
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
        .collect();
    Ok(GuestResponse {
        // Validated to be in 200..=599.
        status: raw.status as u16,
        headers,
        body: raw.body.to_vec(),
        fuel_used: 0,
        reused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(status: u32, headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
        RawResponse {
            status,
            headers: headers.to_vec(),
            body,
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn decodes_a_valid_response() {
        let bytes = encode(
            404,
            &[(b"X-A", b"1\tb \x80"), (b"content-type", b"text/plain")],
            b"nope",
        );
        let r = decode_response(&bytes).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(
            r.headers,
            vec![
                ("X-A".to_string(), b"1\tb \x80".to_vec()),
                ("content-type".to_string(), b"text/plain".to_vec())
            ]
        );
        assert_eq!(r.body, b"nope");
    }

    #[test]
    fn refusals_and_bad_encodings_are_errors() {
        assert_eq!(
            decode_response(&encode(100, &[], b"")),
            Err(ResponseError::Refused(Refusal::Status(100)))
        );
        assert!(matches!(
            decode_response(&encode(200, &[(b"connection", b"close")], b"")),
            Err(ResponseError::Refused(Refusal::HostOwnedHeader { .. }))
        ));
        let mut bytes = encode(200, &[], b"body");
        bytes.push(0);
        assert!(matches!(
            decode_response(&bytes),
            Err(ResponseError::Decode(DecodeError::TrailingBytes { .. }))
        ));
    }

    #[test]
    fn huge_header_count_does_not_allocate_or_panic() {
        let mut bytes = 200u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_response(&bytes),
            Err(ResponseError::Decode(DecodeError::Truncated { .. }))
        ));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_response(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_mutated_valid_input(
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
            cut in 0usize..80,
        ) {
            let mut bytes = encode(200, &[(b"X-A", b"1"), (b"B", b"two")], b"body!");
            for (i, b) in flips {
                if i < bytes.len() { bytes[i] = b; }
            }
            bytes.truncate(cut);
            let _ = decode_response(&bytes);
        }

        #[test]
        fn valid_responses_round_trip(
            status in 200u32..=599,
            body in proptest::collection::vec(any::<u8>(), 0..64),
            value in "[ -~\t]{0,16}",
        ) {
            let bytes = encode(status, &[(b"X-V", value.as_bytes())], &body);
            let r = decode_response(&bytes).unwrap();
            prop_assert_eq!(r.status as u32, status);
            prop_assert_eq!(r.body, body);
            prop_assert_eq!(&r.headers[0].1, value.as_bytes());
        }
    }
}
