//! Round trips, exact layouts and hostile inputs for the wire encoding. The layout tests pin the
//! worked examples printed in docs/ABI.md, so the document and the code cannot drift apart.

use crate::*;

fn sample_request() -> RawRequest<'static> {
    RawRequest {
        method: b"GET",
        target: b"/hello/ada?x=1",
        path: b"/hello/ada",
        query: b"x=1",
        version: b"HTTP/1.1",
        headers: vec![(b"Host", b"a")],
        params: vec![(b"name", b"ada")],
        body: b"",
        fields: vec![],
    }
}

/// The request of the worked example in docs/ABI.md, byte for byte.
#[test]
fn request_layout_matches_abi_md() {
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x03, 0, 0, 0, b'G', b'E', b'T',
        0x0e, 0, 0, 0, b'/', b'h', b'e', b'l', b'l', b'o', b'/', b'a', b'd', b'a', b'?', b'x', b'=', b'1',
        0x0a, 0, 0, 0, b'/', b'h', b'e', b'l', b'l', b'o', b'/', b'a', b'd', b'a',
        0x03, 0, 0, 0, b'x', b'=', b'1',
        0x08, 0, 0, 0, b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'1',
        0x01, 0, 0, 0,
        0x04, 0, 0, 0, b'H', b'o', b's', b't',
        0x01, 0, 0, 0, b'a',
        0x01, 0, 0, 0,
        0x04, 0, 0, 0, b'n', b'a', b'm', b'e',
        0x03, 0, 0, 0, b'a', b'd', b'a',
        0x00, 0, 0, 0,
    ];
    assert_eq!(expected.len(), 98);
    assert_eq!(sample_request().encode(AbiVersion::V1).unwrap(), expected);
    assert_eq!(
        RawRequest::decode(expected, AbiVersion::V1).unwrap(),
        sample_request()
    );
}

/// The response of the worked example in docs/ABI.md, byte for byte.
#[test]
fn response_layout_matches_abi_md() {
    let resp = RawResponse {
        status: 200,
        headers: vec![(b"content-type", b"text/plain")],
        body: b"hi\n",
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0xc8, 0, 0, 0,
        0x01, 0, 0, 0,
        0x0c, 0, 0, 0, b'c', b'o', b'n', b't', b'e', b'n', b't', b'-', b't', b'y', b'p', b'e',
        0x0a, 0, 0, 0, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n',
        0x03, 0, 0, 0, b'h', b'i', b'\n',
    ];
    assert_eq!(expected.len(), 45);
    assert_eq!(resp.encode().unwrap(), expected);
    assert_eq!(RawResponse::decode(expected).unwrap(), resp);
}

#[test]
fn round_trips_keep_order_duplicates_and_arbitrary_bytes() {
    let big = vec![0xffu8; 70_000];
    let req = RawRequest {
        method: b"post",
        target: b"*",
        path: b"*",
        query: b"",
        version: b"HTTP/1.0",
        headers: vec![
            (b"X-A", b"1"),
            (b"x-a", b"2"),
            (b"", b""),
            (b"Bin", b"\x00\xff\r\n"),
        ],
        params: vec![(b"rest", b"a/b/c"), (b"rest", b"")],
        body: &big,
        fields: vec![],
    };
    assert_eq!(
        RawRequest::decode(&req.encode(AbiVersion::V1).unwrap(), AbiVersion::V1).unwrap(),
        req
    );

    for status in [0, 200, 599, u32::MAX] {
        let resp = RawResponse {
            status,
            headers: vec![(b"a", b"b"), (b"a", b"c")],
            body: &big,
        };
        assert_eq!(RawResponse::decode(&resp.encode().unwrap()).unwrap(), resp);
    }
}

#[test]
fn every_strict_prefix_of_a_request_is_an_error() {
    let bytes = sample_request().encode(AbiVersion::V1).unwrap();
    for cut in 0..bytes.len() {
        let err = RawRequest::decode(&bytes[..cut], AbiVersion::V1).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Truncated { .. } | DecodeError::LengthPastEnd { .. }
            ),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn every_strict_prefix_of_a_response_is_an_error() {
    let resp = RawResponse {
        status: 201,
        headers: vec![(b"a", b"bc")],
        body: b"xyz",
    };
    let bytes = resp.encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(RawResponse::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn errors_name_the_field_and_offset() {
    let mut bytes = sample_request().encode(AbiVersion::V1).unwrap();
    // Make the method claim 200 bytes.
    bytes[0] = 200;
    assert_eq!(
        RawRequest::decode(&bytes, AbiVersion::V1).unwrap_err(),
        DecodeError::LengthPastEnd {
            field: "method",
            offset: 4,
            len: 200,
            remaining: 94
        }
    );

    // Cut right after the header count: the first header name's length is missing.
    assert_eq!(
        RawRequest::decode(&bytes_after_header_count(), AbiVersion::V1).unwrap_err(),
        DecodeError::Truncated {
            field: "header name length",
            offset: 62
        }
    );

    let mut trailing = sample_request().encode(AbiVersion::V1).unwrap();
    trailing.extend_from_slice(b"junk");
    assert_eq!(
        RawRequest::decode(&trailing, AbiVersion::V1).unwrap_err(),
        DecodeError::TrailingBytes {
            offset: 98,
            count: 4
        }
    );
}

fn bytes_after_header_count() -> Vec<u8> {
    let bytes = sample_request().encode(AbiVersion::V1).unwrap();
    bytes[..62].to_vec()
}

#[test]
fn hostile_lengths_and_counts_do_not_allocate_or_panic() {
    // Length u32::MAX at the very start.
    let err = RawRequest::decode(&[0xff, 0xff, 0xff, 0xff, 1, 2], AbiVersion::V1).unwrap_err();
    assert_eq!(
        err,
        DecodeError::LengthPastEnd {
            field: "method",
            offset: 4,
            len: u32::MAX,
            remaining: 2
        }
    );

    // A response claiming 4 billion headers with nothing after it.
    let err = RawResponse::decode(&[200, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            field: "header name length",
            offset: 8
        }
    );

    // A header count of u32::MAX followed by one real header: fails at the second header.
    let mut bytes = vec![200, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    bytes.extend_from_slice(&[1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b']);
    assert_eq!(
        RawResponse::decode(&bytes).unwrap_err(),
        DecodeError::Truncated {
            field: "header name length",
            offset: 18
        }
    );
}

/// A small deterministic generator, so the fuzz test needs no dependency and always replays.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

#[test]
fn mutated_encodings_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let valid_request = sample_request().encode(AbiVersion::V1).unwrap();
    let valid_response = RawResponse {
        status: 200,
        headers: vec![(b"k", b"v")],
        body: b"body",
    }
    .encode()
    .unwrap();
    for _ in 0..20_000 {
        for valid in [&valid_request, &valid_response] {
            let mut bytes = valid.clone();
            for _ in 0..=rng.below(4) {
                match rng.below(3) {
                    0 if !bytes.is_empty() => {
                        let i = rng.below(bytes.len() as u64);
                        bytes[i] = rng.next() as u8;
                    }
                    1 => bytes.truncate(rng.below(bytes.len() as u64 + 1)),
                    _ => bytes.push(rng.next() as u8),
                }
            }
            // Whatever the outcome, it must be a value, and a success must re-encode identically.
            if let Ok(req) = RawRequest::decode(&bytes, AbiVersion::V1) {
                assert_eq!(req.encode(AbiVersion::V1).unwrap(), bytes);
            }
            if let Ok(resp) = RawResponse::decode(&bytes) {
                assert_eq!(resp.encode().unwrap(), bytes);
            }
        }
    }
}

#[test]
fn random_requests_round_trip() {
    let mut rng = XorShift(42);
    let pool: Vec<u8> = (0..=255).collect();
    for _ in 0..2_000 {
        let mut pick = |max: u64| {
            let start = rng.below(pool.len() as u64);
            let len = rng.below(max + 1).min(pool.len() - start);
            &pool[start..start + len]
        };
        let req = RawRequest {
            method: pick(8),
            target: pick(40),
            path: pick(30),
            query: pick(10),
            version: pick(8),
            headers: (0..3).map(|_| (pick(10), pick(20))).collect(),
            params: (0..2).map(|_| (pick(5), pick(5))).collect(),
            body: pick(100),
            fields: vec![],
        };
        let bytes = req.encode(AbiVersion::V1).unwrap();
        assert_eq!(RawRequest::decode(&bytes, AbiVersion::V1).unwrap(), req);
    }
}

/// A v2 request is the v1 layout followed by `u32 field_count` and `(u32 tag, str value)` pairs.
#[test]
fn v2_appends_tagged_fields_after_the_body() {
    let mut req = sample_request();
    req.fields = vec![
        Field {
            tag: tag::ROUTE,
            value: b"/hello/:name",
        },
        Field {
            tag: 99,
            value: b"unknown",
        },
    ];
    let v1 = req.encode(AbiVersion::V1).unwrap();
    let v2 = req.encode(AbiVersion::V2).unwrap();
    assert_eq!(v1.len(), 98, "v1 leaves the fields out");
    assert_eq!(&v2[..98], &v1[..]);
    #[rustfmt::skip]
    let tail: &[u8] = &[
        0x02, 0, 0, 0,
        0x03, 0, 0, 0, 0x0c, 0, 0, 0, b'/', b'h', b'e', b'l', b'l', b'o', b'/', b':', b'n', b'a', b'm', b'e',
        99, 0, 0, 0, 0x07, 0, 0, 0, b'u', b'n', b'k', b'n', b'o', b'w', b'n',
    ];
    assert_eq!(&v2[98..], tail);
    assert_eq!(v2.len(), req.encoded_len(AbiVersion::V2));
    let back = RawRequest::decode(&v2, AbiVersion::V2).unwrap();
    assert_eq!(back, req);
    assert_eq!(back.field(tag::ROUTE), Some(&b"/hello/:name"[..]));
    assert_eq!(back.field(tag::PEER_ADDR), None);
    // A v1 encoding is not a v2 one (the field count is missing), and the reverse has extra bytes.
    assert!(matches!(
        RawRequest::decode(&v1, AbiVersion::V2),
        Err(DecodeError::Truncated {
            field: "field count",
            ..
        })
    ));
    assert!(matches!(
        RawRequest::decode(&v2, AbiVersion::V1),
        Err(DecodeError::TrailingBytes { offset: 98, .. })
    ));
    for cut in 98..v2.len() {
        assert!(
            RawRequest::decode(&v2[..cut], AbiVersion::V2).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn a_hostile_field_count_does_not_allocate() {
    let mut bytes = sample_request().encode(AbiVersion::V1).unwrap();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        RawRequest::decode(&bytes, AbiVersion::V2).unwrap_err(),
        DecodeError::Truncated {
            field: "field tag",
            offset: 102
        }
    );
}

fn refused(headers: &[(&[u8], &[u8])]) -> Option<Refusal> {
    RawResponse {
        status: 200,
        headers: headers.to_vec(),
        body: b"",
    }
    .refusal()
}

#[test]
fn refuses_status_outside_200_599() {
    for s in [0, 100, 199, 600, u32::MAX] {
        let resp = RawResponse {
            status: s,
            ..RawResponse::default()
        };
        assert_eq!(resp.refusal(), Some(Refusal::Status(s)));
    }
    for s in [200, 599] {
        assert_eq!(check_status(s), Ok(()));
    }
}

#[test]
fn refuses_non_token_header_names() {
    for name in [&b""[..], b"a b", b"a:b", b"a\r\nb", b"\xc3\xa9", b"a\0"] {
        assert!(
            matches!(
                refused(&[(name, b"v")]),
                Some(Refusal::HeaderName { index: 0, .. })
            ),
            "{name:?}"
        );
    }
    assert_eq!(refused(&[(b"!#$%&'*+-.^_`|~09azAZ", b"v")]), None);
}

#[test]
fn refuses_control_characters_in_values() {
    for v in [
        &b"a\rb"[..],
        b"a\nb",
        b"a\r\nX-Evil: 1",
        b"\0",
        b"\x01",
        b"\x7f",
        b"\x1b[31m",
    ] {
        assert!(
            matches!(refused(&[(b"X-A", v)]), Some(Refusal::HeaderValue { .. })),
            "{v:?}"
        );
    }
    assert_eq!(refused(&[(b"X-A", b"tab\tok \x80\xff")]), None);
}

#[test]
fn refuses_host_owned_headers_in_any_case_but_not_date() {
    for name in [
        &b"Content-Length"[..],
        b"content-length",
        b"TRANSFER-ENCODING",
        b"Connection",
    ] {
        assert!(
            matches!(
                refused(&[(name, b"1")]),
                Some(Refusal::HostOwnedHeader { .. })
            ),
            "{name:?}"
        );
    }
    assert_eq!(
        refused(&[(b"Date", b"Tue, 01 Dec 2026 00:00:00 GMT")]),
        None
    );
}

#[test]
fn a_response_may_carry_max_response_headers_and_not_one_more() {
    let at_limit = vec![(&b"set-cookie"[..], &b"a=1"[..]); MAX_RESPONSE_HEADERS];
    assert_eq!(refused(&at_limit), None);
    let past = vec![(&b"set-cookie"[..], &b"a=1"[..]); MAX_RESPONSE_HEADERS + 1];
    let refusal = refused(&past);
    assert_eq!(
        refusal,
        Some(Refusal::TooManyHeaders {
            count: MAX_RESPONSE_HEADERS + 1
        })
    );
    assert!(
        refusal
            .unwrap()
            .to_string()
            .contains("101 header fields, more than the 100")
    );
}

#[test]
fn the_first_broken_rule_is_named_with_its_index() {
    let r = refused(&[(b"ok", b"1"), (b"bad name", b"2"), (b"connection", b"x")]);
    assert_eq!(
        r,
        Some(Refusal::HeaderName {
            index: 1,
            name: "bad name".into()
        })
    );
    let long = vec![b' '; 200];
    match refused(&[(&long, b"v")]) {
        Some(Refusal::HeaderName { name, .. }) => assert_eq!(name.len(), 64),
        other => panic!("{other:?}"),
    }
}

#[test]
fn response_range_checks_cap_then_bounds() {
    assert_eq!(response_range(16, 8, 100, 24), Ok(16..24));
    assert_eq!(
        response_range(16, 9, 100, 24),
        Err(RangeError::OutOfBounds {
            ptr: 16,
            len: 9,
            memory_size: 24
        })
    );
    assert_eq!(
        response_range(u32::MAX, u32::MAX, u32::MAX, usize::MAX),
        Ok(u32::MAX as usize..2 * u32::MAX as usize)
    );
    assert_eq!(
        response_range(0, 101, 100, 1 << 20),
        Err(RangeError::TooLarge { len: 101, max: 100 })
    );
    // The cap first, even when the range is also outside memory.
    assert!(matches!(
        response_range(u32::MAX, 101, 100, 0),
        Err(RangeError::TooLarge { .. })
    ));
}

#[test]
fn split_handle_result_is_unsigned() {
    assert_eq!(split_handle_result(-1), (u32::MAX, u32::MAX));
    assert_eq!(split_handle_result((16 << 32) | 42), (16, 42));
    assert_eq!(split_handle_result(pack_handle_result(7, 9)), (7, 9));
}
