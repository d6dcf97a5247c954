//! Body decoding (RFC 9112 §6, §7.1): Content-Length, chunked with extensions and trailers, the
//! chunk line / body / trailer limits at and one past the limit, and pipelining.

use super::*;
use crate::{BodyError as B, FieldError as F};

#[test]
fn content_length_body_consumes_exactly_its_bytes() {
    let (body, used) = decode_all(Framing::Length(5), &limits(), b"helloGET / HTTP/1.1").unwrap();
    assert_eq!((body.as_slice(), used), (&b"hello"[..], 5));
    let (body, used) = decode_all(Framing::Length(0), &limits(), b"GET").unwrap();
    assert_eq!((body.len(), used), (0, 0));
    let (body, used) = decode_all(Framing::None, &limits(), b"GET").unwrap();
    assert_eq!((body.len(), used), (0, 0));
}

#[test]
fn body_incomplete_is_partial() {
    let mut decoder = BodyDecoder::new(Framing::Length(5), &limits());
    let mut out = Vec::new();
    assert_eq!(
        decoder.decode(b"hel", &mut out),
        Ok((3, BodyStatus::Partial))
    );
    assert!(!decoder.is_complete());
    assert_eq!(
        decoder.decode(b"lo!", &mut out),
        Ok((2, BodyStatus::Complete))
    );
    assert_eq!(
        decoder.decode(b"!", &mut out),
        Ok((0, BodyStatus::Complete))
    );
    let mut chunked = BodyDecoder::new(Framing::Chunked, &limits());
    assert_eq!(
        chunked.decode(b"5;a=b\r\nhel", &mut out),
        Ok((10, BodyStatus::Partial))
    );
}

#[test]
fn valid_chunked_bodies() {
    let rows: &[(&[u8], &[u8])] = &[
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        (b"0\r\n\r\n", b""),
        (b"000\r\n\r\n", b""),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"0005\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"00000000000000000000000000001\r\nx\r\n0\r\n\r\n", b"x"),
        (b"5;ext\r\nhello\r\n0;last\r\n\r\n", b"hello"),
        (b"5;a=b;c=d\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5 ; a = b ;\tc\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5;a=\"q \\\" ;\t\x80\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5;a=\"\" ;b\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),
        (b"0\r\nX: y\r\nTrailer-2:  z \r\n\r\n", b""),
        (b"2\r\nok\r\n0\r\nX:\r\n\r\n", b"ok"),
    ];
    for (input, body) in rows {
        let mut with_next = input.to_vec();
        with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (decoded, used) = decode_all(Framing::Chunked, &limits(), &with_next)
            .unwrap_or_else(|e| panic!("{e:?} for {:?}", String::from_utf8_lossy(input)));
        assert_eq!(decoded, *body, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(used, input.len(), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn invalid_chunked_bodies() {
    let rows: &[(&[u8], B)] = &[
        (b"\r\n", B::InvalidChunkSize),
        (b"g\r\n", B::InvalidChunkSize),
        (b"-5\r\n", B::InvalidChunkSize),
        (b"+5\r\n", B::InvalidChunkSize),
        (b"0x5\r\n", B::InvalidChunkSize),
        (b" 5\r\n", B::InvalidChunkSize),
        (b"5 \r\n", B::InvalidChunkSize),
        (b"5 x\r\n", B::InvalidChunkSize),
        (b"5x\r\n", B::InvalidChunkSize),
        (b";a\r\n", B::InvalidChunkSize),
        (b"10000000000000000\r\n", B::ChunkSizeOverflow),
        (b"ffffffffffffffff\r\n", B::BodyTooLarge),
        (b"5;\r\n", B::InvalidChunkExtension),
        (b"5;;a\r\n", B::InvalidChunkExtension),
        (b"5;=a\r\n", B::InvalidChunkExtension),
        (b"5;a=\r\n", B::InvalidChunkExtension),
        (b"5;a \r\n", B::InvalidChunkExtension),
        (b"5;a=b \r\n", B::InvalidChunkExtension),
        (b"5;a b\r\n", B::InvalidChunkExtension),
        (b"5;a=b c\r\n", B::InvalidChunkExtension),
        (b"5;a=\"x\r\n", B::InvalidChunkExtension),
        (b"5;a=\"x\"y\r\n", B::InvalidChunkExtension),
        (b"5;a=\"\x00\"\r\n", B::InvalidChunkExtension),
        (b"5;a(\r\n", B::InvalidChunkExtension),
        (b"5\n", B::BareLf),
        (b"5;a\n", B::BareLf),
        (b"5;a=\"x\n", B::BareLf),
        (b"5\rX", B::BareCr),
        (b"5\r\nhelloX\r\n", B::InvalidChunkEnd),
        (b"5\r\nhello\n", B::BareLf),
        (b"5\r\nhello\rX", B::BareCr),
        (b"5\r\nhello\r\n0\r\n\n", B::Trailer(F::BareLf)),
        (b"0\r\nX : y\r\n\r\n", B::Trailer(F::WhitespaceBeforeColon)),
        (b"0\r\n y\r\n\r\n", B::Trailer(F::ObsFold)),
        (b"0\r\nX: \x00\r\n\r\n", B::Trailer(F::InvalidValue)),
        (b"0\r\n: y\r\n\r\n", B::Trailer(F::EmptyName)),
        (b"0\r\nX\r\n\r\n", B::Trailer(F::MissingColon)),
        (b"0\r\nX(: y\r\n\r\n", B::Trailer(F::InvalidName)),
        (b"0\r\n\rX", B::Trailer(F::BareCr)),
    ];
    for (input, kind) in rows {
        let got = decode_all(Framing::Chunked, &limits(), input);
        assert_eq!(got, Err(*kind), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn errors_are_sticky() {
    let mut decoder = BodyDecoder::new(Framing::Chunked, &limits());
    let mut out = Vec::new();
    assert_eq!(decoder.decode(b"x", &mut out), Err(B::InvalidChunkSize));
    assert_eq!(
        decoder.decode(b"0\r\n\r\n", &mut out),
        Err(B::InvalidChunkSize)
    );
    assert!(!decoder.is_complete());
}

#[test]
fn body_limit() {
    let mut l = limits();
    l.max_body_bytes = 10;
    // Content-Length: the head refuses it; a decoder built anyway refuses it too.
    assert_eq!(
        decode_all(Framing::Length(10), &l, &[b'x'; 10]).unwrap().1,
        10
    );
    assert_eq!(
        decode_all(Framing::Length(11), &l, &[b'x'; 11]),
        Err(B::BodyTooLarge)
    );
    // Chunked: cumulative, decided from the chunk-size before the data arrives.
    assert_eq!(
        decode_all(
            Framing::Chunked,
            &l,
            b"4\r\nxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n"
        )
        .unwrap()
        .0
        .len(),
        10
    );
    assert_eq!(
        decode_all(Framing::Chunked, &l, b"4\r\nxxxx\r\n7\r\n"),
        Err(B::BodyTooLarge)
    );
    assert_eq!(
        decode_all(Framing::Chunked, &l, b"b\r\n"),
        Err(B::BodyTooLarge)
    );
}

#[test]
fn chunk_line_limit() {
    let mut l = limits();
    l.max_chunk_line_bytes = 16;
    // "5;" + 12 ext bytes + CRLF = 16.
    let at = b"5;aaaaaaaaaaaa\r\nhello\r\n0\r\n\r\n";
    assert_eq!(decode_all(Framing::Chunked, &l, at).unwrap().0, b"hello");
    let past = b"5;aaaaaaaaaaaaa\r\nhello\r\n0\r\n\r\n";
    assert_eq!(
        decode_all(Framing::Chunked, &l, past),
        Err(B::ChunkLineTooLong)
    );
    // Leading zeros are bounded by the same limit.
    assert_eq!(
        decode_all(Framing::Chunked, &l, &[b'0'; 17]),
        Err(B::ChunkLineTooLong)
    );
}

#[test]
fn trailer_limit() {
    let mut l = limits();
    l.max_trailer_bytes = 12;
    // "X: 12345\r\n" and the final CRLF are 12 bytes.
    let at = b"0\r\nX: 12345\r\n\r\n";
    assert_eq!(decode_all(Framing::Chunked, &l, at).unwrap().1, at.len());
    let past = b"0\r\nX: 123456\r\n\r\n";
    assert_eq!(
        decode_all(Framing::Chunked, &l, past),
        Err(B::TrailersTooLarge)
    );
    let mut endless = b"0\r\nX: ".to_vec();
    endless.resize(1 << 20, b'v');
    let mut decoder = BodyDecoder::new(Framing::Chunked, &l);
    assert_eq!(
        decoder.decode(&endless, &mut Vec::new()),
        Err(B::TrailersTooLarge)
    );
}

#[test]
fn pipelined_requests() {
    let first = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
    let second = b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\nT: 1\r\n\r\n";
    let third = b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
    let stream: Vec<u8> = [&first[..], &second[..], &third[..]].concat();
    let mut parser = Parser::new(limits());
    let mut rest: &[u8] = &stream;
    let mut seen = Vec::new();
    while !rest.is_empty() {
        assert_eq!(parser.parse(rest), Ok(Status::Complete));
        let head = parser.head();
        let path = head.view(rest).path().to_owned();
        let mut decoder = BodyDecoder::new(head.framing, &limits());
        let mut body = Vec::new();
        let (used, status) = decoder.decode(&rest[head.head_len..], &mut body).unwrap();
        assert_eq!(status, BodyStatus::Complete);
        rest = &rest[head.head_len + used..];
        seen.push((path, body));
        parser.reset();
    }
    let expected = [("/a", &b"abc"[..]), ("/b", b"def"), ("/c", b"")];
    let seen: Vec<(&str, &[u8])> = seen
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    assert_eq!(seen, expected);
}
