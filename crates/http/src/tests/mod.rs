//! Tests of the request parser and the body decoder: table-driven rules (one module per area),
//! property tests for split-invariance, and a differential check against `httparse`.
//!
//! Every helper here parses twice, in one call and one byte at a time, and insists both agree:
//! incremental parsing is tested by every table row, not only by the property tests.

mod body;
mod differential;
mod errors;
mod fields;
mod generate;
mod incremental;
mod request_line;
mod semantics;

use super::{BodyDecoder, BodyError, BodyStatus, Framing, ParseError, Parser, RequestHead, Status};
use crate::Limits;

/// The defaults: the limits the tests at-and-past a limit override one at a time.
pub(super) fn limits() -> Limits {
    Limits::default()
}

/// Parses `input` with `limits` in one call and byte by byte; both must give the same result.
/// Panics if the head is incomplete.
pub(super) fn parse_with(limits: Limits, input: &[u8]) -> Result<RequestHead, ParseError> {
    let mut parser = Parser::new(limits);
    let whole = match parser.parse(input) {
        Ok(Status::Complete) => Ok(parser.head().clone()),
        Ok(Status::Partial) => panic!("incomplete head: {:?}", String::from_utf8_lossy(input)),
        Err(e) => Err(e),
    };
    assert_eq!(
        whole,
        parse_bytewise(limits, input),
        "split changed the result for {:?}",
        String::from_utf8_lossy(input)
    );
    whole
}

/// Feeds growing prefixes, one byte more each time, like the slowest possible client.
pub(super) fn parse_bytewise(limits: Limits, input: &[u8]) -> Result<RequestHead, ParseError> {
    let mut parser = Parser::new(limits);
    for n in 1..=input.len() {
        match parser.parse(&input[..n]) {
            Ok(Status::Complete) => return Ok(parser.head().clone()),
            Ok(Status::Partial) => {}
            Err(e) => return Err(e),
        }
    }
    panic!("incomplete head: {:?}", String::from_utf8_lossy(input))
}

/// The head of a valid request (default limits).
pub(super) fn ok(input: &[u8]) -> RequestHead {
    parse_with(limits(), input)
        .unwrap_or_else(|e| panic!("{e:?} for {:?}", String::from_utf8_lossy(input)))
}

/// The error for an invalid request (default limits).
pub(super) fn err(input: &[u8]) -> ParseError {
    err_with(limits(), input)
}

pub(super) fn err_with(limits: Limits, input: &[u8]) -> ParseError {
    match parse_with(limits, input) {
        Ok(head) => panic!("accepted {:?} as {head:?}", String::from_utf8_lossy(input)),
        Err(e) => e,
    }
}

/// A request with `line` as its request line, a Host field and `fields` (each ending in CRLF).
pub(super) fn req(line: &str, fields: &str) -> Vec<u8> {
    format!("{line}\r\nHost: h\r\n{fields}\r\n").into_bytes()
}

/// Decodes `input` with the decoder for `framing`, feeding `step` bytes at a time (the unconsumed
/// rest is offered again with more). Returns the body and the bytes consumed.
pub(super) fn decode(
    framing: Framing,
    limits: &Limits,
    input: &[u8],
    step: usize,
) -> Result<(Vec<u8>, usize), BodyError> {
    let mut decoder = BodyDecoder::new(framing, limits);
    let mut out = Vec::new();
    let (mut consumed, mut available) = (0, 0);
    loop {
        available = (available + step).min(input.len());
        let (n, status) = decoder.decode(&input[consumed..available], &mut out)?;
        consumed += n;
        if status == BodyStatus::Complete {
            assert!(decoder.is_complete());
            return Ok((out, consumed));
        }
        assert!(available < input.len(), "body incomplete after all input");
    }
}

/// [`decode`] in one call and byte by byte; both must agree.
pub(super) fn decode_all(
    framing: Framing,
    limits: &Limits,
    input: &[u8],
) -> Result<(Vec<u8>, usize), BodyError> {
    let whole = decode(framing, limits, input, input.len().max(1));
    assert_eq!(
        whole,
        decode(framing, limits, input, 1),
        "split changed the body result"
    );
    whole
}
