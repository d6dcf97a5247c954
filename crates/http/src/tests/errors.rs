//! Error kinds: every label is stable-looking snake_case and distinct, so metrics never merge two
//! causes. The lists here must name every variant (the `match`es below make the compiler check).

use crate::{BodyError, FieldError, ParseError};
use std::collections::HashSet;

const FIELD: [FieldError; 8] = [
    FieldError::InvalidName,
    FieldError::EmptyName,
    FieldError::WhitespaceBeforeColon,
    FieldError::MissingColon,
    FieldError::ObsFold,
    FieldError::InvalidValue,
    FieldError::BareLf,
    FieldError::BareCr,
];

fn all_parse_errors() -> Vec<ParseError> {
    let mut all = vec![
        ParseError::InvalidMethod,
        ParseError::MethodTooLong,
        ParseError::InvalidRequestLine,
        ParseError::InvalidTarget,
        ParseError::TargetFormMismatch,
        ParseError::TargetTooLong,
        ParseError::InvalidVersion,
        ParseError::VersionNotSupported,
        ParseError::BareLf,
        ParseError::BareCr,
        ParseError::TooManyFields,
        ParseError::HeaderSectionTooLarge,
        ParseError::MissingHost,
        ParseError::DuplicateHost,
        ParseError::InvalidHost,
        ParseError::InvalidContentLength,
        ParseError::ContentLengthOverflow,
        ParseError::ConflictingContentLength,
        ParseError::ContentLengthTooLarge,
        ParseError::TransferEncodingInHttp10,
        ParseError::ContentLengthWithTransferEncoding,
        ParseError::InvalidTransferEncoding,
        ParseError::ChunkedNotFinal,
        ParseError::ChunkedRepeated,
        ParseError::UnsupportedTransferCoding,
        ParseError::UnsupportedExpectation,
    ];
    all.extend(FIELD.map(ParseError::Field));
    // Exhaustiveness guard: a new variant fails to compile here until it is listed above.
    for e in &all {
        match e {
            ParseError::InvalidMethod
            | ParseError::MethodTooLong
            | ParseError::InvalidRequestLine
            | ParseError::InvalidTarget
            | ParseError::TargetFormMismatch
            | ParseError::TargetTooLong
            | ParseError::InvalidVersion
            | ParseError::VersionNotSupported
            | ParseError::BareLf
            | ParseError::BareCr
            | ParseError::Field(_)
            | ParseError::TooManyFields
            | ParseError::HeaderSectionTooLarge
            | ParseError::MissingHost
            | ParseError::DuplicateHost
            | ParseError::InvalidHost
            | ParseError::InvalidContentLength
            | ParseError::ContentLengthOverflow
            | ParseError::ConflictingContentLength
            | ParseError::ContentLengthTooLarge
            | ParseError::TransferEncodingInHttp10
            | ParseError::ContentLengthWithTransferEncoding
            | ParseError::InvalidTransferEncoding
            | ParseError::ChunkedNotFinal
            | ParseError::ChunkedRepeated
            | ParseError::UnsupportedTransferCoding
            | ParseError::UnsupportedExpectation => {}
        }
    }
    all
}

fn all_body_errors() -> Vec<BodyError> {
    let mut all = vec![
        BodyError::InvalidChunkSize,
        BodyError::ChunkSizeOverflow,
        BodyError::InvalidChunkExtension,
        BodyError::ChunkLineTooLong,
        BodyError::InvalidChunkEnd,
        BodyError::BareLf,
        BodyError::BareCr,
        BodyError::BodyTooLarge,
        BodyError::TrailersTooLarge,
    ];
    all.extend(FIELD.map(BodyError::Trailer));
    for e in &all {
        match e {
            BodyError::InvalidChunkSize
            | BodyError::ChunkSizeOverflow
            | BodyError::InvalidChunkExtension
            | BodyError::ChunkLineTooLong
            | BodyError::InvalidChunkEnd
            | BodyError::BareLf
            | BodyError::BareCr
            | BodyError::BodyTooLarge
            | BodyError::TrailersTooLarge
            | BodyError::Trailer(_) => {}
        }
    }
    all
}

#[test]
fn kinds_are_snake_case_and_distinct() {
    let kinds: Vec<&str> = all_parse_errors()
        .iter()
        .map(ParseError::kind)
        .chain(all_body_errors().iter().map(BodyError::kind))
        .collect();
    for kind in &kinds {
        assert!(
            kind.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{kind}"
        );
        assert!(!kind.starts_with('_') && !kind.ends_with('_'), "{kind}");
    }
    let distinct: HashSet<&str> = kinds.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        kinds.len(),
        "duplicate kind labels: {kinds:?}"
    );
}

#[test]
fn errors_display_without_panicking() {
    for e in all_parse_errors() {
        assert!(!e.to_string().is_empty());
    }
    for e in all_body_errors() {
        assert!(!e.to_string().is_empty());
    }
}
