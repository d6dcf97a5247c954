//! Why a request head or body was refused: [`ParseError`], [`BodyError`] and the field-line
//! [`FieldError`] they share.
//!
//! This module owns the *kinds* only. It must not decide status codes: the crate's single
//! error -> status map does, guided by the status named in each variant's doc comment. Every kind
//! has a stable snake_case label from `kind()` for metrics and logs; never rename one casually.
//! All errors are `Copy` and carry no data, so failing costs nothing and leaks nothing.

/// A malformed field line (RFC 9112 §5), in the header section or in a chunked trailer section.
/// All of these should map to 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A field-name byte that is not a tchar -> 400 (RFC 9110 §5.1, §5.6.2).
    #[error("invalid byte in field name")]
    InvalidName,
    /// A line starting with ":" -> 400 (RFC 9110 §5.1: field-name = token, at least one tchar).
    #[error("empty field name")]
    EmptyName,
    /// Whitespace between field name and colon -> 400 (RFC 9112 §5.1: MUST reject with 400).
    #[error("whitespace between field name and colon")]
    WhitespaceBeforeColon,
    /// A field line without a colon -> 400 (RFC 9112 §5).
    #[error("field line without a colon")]
    MissingColon,
    /// A line starting with SP/HTAB: obs-fold, or whitespace between the start-line and the first
    /// field -> 400 (RFC 9112 §5.2: reject or unfold, we reject; §2.2: reject or ignore, we reject).
    #[error("obsolete line folding")]
    ObsFold,
    /// A field-value byte that is a CTL other than HTAB (NUL, DEL, ...) -> 400 (RFC 9110 §5.5).
    #[error("invalid byte in field value")]
    InvalidValue,
    /// LF not preceded by CR -> 400 (RFC 9112 §2.2: we choose to reject bare LF).
    #[error("bare LF")]
    BareLf,
    /// CR not followed by LF -> 400 (RFC 9112 §2.2: bare CR MUST be rejected or replaced).
    #[error("bare CR")]
    BareCr,
}

impl FieldError {
    /// Stable metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidName => "invalid_field_name",
            Self::EmptyName => "empty_field_name",
            Self::WhitespaceBeforeColon => "whitespace_before_colon",
            Self::MissingColon => "missing_colon",
            Self::ObsFold => "obs_fold",
            Self::InvalidValue => "invalid_field_value",
            Self::BareLf => "field_bare_lf",
            Self::BareCr => "field_bare_cr",
        }
    }

    /// Stable metric label when the field line was in a chunked trailer section.
    pub fn trailer_kind(&self) -> &'static str {
        match self {
            Self::InvalidName => "trailer_invalid_field_name",
            Self::EmptyName => "trailer_empty_field_name",
            Self::WhitespaceBeforeColon => "trailer_whitespace_before_colon",
            Self::MissingColon => "trailer_missing_colon",
            Self::ObsFold => "trailer_obs_fold",
            Self::InvalidValue => "trailer_invalid_field_value",
            Self::BareLf => "trailer_bare_lf",
            Self::BareCr => "trailer_bare_cr",
        }
    }
}

/// Why a request head was refused. The parser never resynchronises after one: the caller answers
/// (if it can) and closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Method empty or not a token (tchar) -> 400 (RFC 9110 §9.1, RFC 9112 §3.1).
    #[error("invalid method")]
    InvalidMethod,
    /// Method longer than `max_method_bytes` -> 501 (RFC 9110 §9.1: an unrecognised method is 501;
    /// no method we route is that long). Decided as soon as the limit is passed.
    #[error("method too long")]
    MethodTooLong,
    /// Request-line separators wrong (not exactly one SP between the three parts, or the line ends
    /// before the version) -> 400 (RFC 9112 §3; §3 also says SHOULD 400 for an invalid line).
    #[error("malformed request line")]
    InvalidRequestLine,
    /// Request-target empty, containing a byte that is not visible ASCII (CTL, DEL, >= 0x80) or '#',
    /// or not well-formed for its form (bad scheme, userinfo, empty or invalid authority, port)
    /// -> 400 (RFC 9112 §3.2, §3.2.2; RFC 9110 §4.2.1, §4.2.4).
    #[error("invalid request target")]
    InvalidTarget,
    /// Request-target form not allowed for the method: authority-form without CONNECT, CONNECT
    /// without authority-form, asterisk-form without OPTIONS -> 400 (RFC 9112 §3.2.3, §3.2.4;
    /// RFC 9110 §9.3.6).
    #[error("request target form not allowed for this method")]
    TargetFormMismatch,
    /// Request-target longer than `max_target_bytes` -> 414 (RFC 9112 §3; RFC 9110 §15.5.15).
    /// Decided as soon as the limit is passed.
    #[error("request target too long")]
    TargetTooLong,
    /// HTTP-version not exactly `HTTP/` DIGIT `.` DIGIT, or major version 0 -> 400 (RFC 9112 §2.3).
    #[error("invalid HTTP version")]
    InvalidVersion,
    /// Well-formed HTTP-version with major >= 2 -> 505 (RFC 9110 §15.6.6, RFC 9112 §2.3).
    #[error("HTTP version not supported")]
    VersionNotSupported,
    /// LF not preceded by CR in the request line or a leading empty line -> 400 (RFC 9112 §2.2).
    #[error("bare LF")]
    BareLf,
    /// CR not followed by LF in the request line or a leading empty line -> 400 (RFC 9112 §2.2).
    #[error("bare CR")]
    BareCr,
    /// A malformed field line -> 400 (see [`FieldError`]).
    #[error("{0}")]
    Field(#[from] FieldError),
    /// More than `max_headers` field lines -> 431 (RFC 6585 §5; RFC 9110 §15.5 allows limits).
    #[error("too many header fields")]
    TooManyFields,
    /// Header section longer than `max_header_bytes` -> 431 (RFC 6585 §5). Decided as soon as the
    /// bytes received pass the limit, complete or not.
    #[error("header section too large")]
    HeaderSectionTooLarge,
    /// HTTP/1.1 request without Host -> 400 (RFC 9112 §3.2: MUST).
    #[error("missing Host")]
    MissingHost,
    /// More than one Host field line -> 400 (RFC 9112 §3.2: MUST).
    #[error("more than one Host")]
    DuplicateHost,
    /// Host value not `uri-host [":" port]` -> 400 (RFC 9112 §3.2: MUST; RFC 3986 §3.2.2).
    #[error("invalid Host")]
    InvalidHost,
    /// Content-Length not `1*DIGIT` (or a comma list of them) -> 400 (RFC 9112 §6.3 item 5;
    /// RFC 9110 §8.6).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Content-Length digits that do not fit in a u64 -> 400 (RFC 9110 §8.6: MUST prevent
    /// overflow; the value is unusable, hence invalid framing).
    #[error("Content-Length overflows")]
    ContentLengthOverflow,
    /// Several Content-Length values (fields or list members) that differ -> 400
    /// (RFC 9112 §6.3 item 5; RFC 9110 §8.6).
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// Declared Content-Length above `max_body_bytes` -> 413 (RFC 9110 §15.5.14).
    #[error("Content-Length above the body limit")]
    ContentLengthTooLarge,
    /// Transfer-Encoding in an HTTP/1.0 request -> 400 (RFC 9112 §6.1: MUST treat the framing as
    /// faulty).
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    /// Both Transfer-Encoding and Content-Length -> 400 (RFC 9112 §6.1: MAY reject, we do; §6.3
    /// item 3: smuggling risk).
    #[error("both Transfer-Encoding and Content-Length")]
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding list syntax invalid (empty, not tokens, parameters on `chunked`) -> 400
    /// (RFC 9112 §6.1, §7; RFC 9110 §5.6.1).
    #[error("invalid Transfer-Encoding")]
    InvalidTransferEncoding,
    /// Transfer-Encoding present but `chunked` not the final coding (includes a TE without
    /// `chunked`, e.g. `gzip` alone) -> 400 (RFC 9112 §6.3 item 4: MUST).
    #[error("chunked is not the final transfer coding")]
    ChunkedNotFinal,
    /// `chunked` listed more than once -> 400 (RFC 9112 §6.1: MUST NOT apply chunked twice).
    #[error("chunked applied more than once")]
    ChunkedRepeated,
    /// A transfer coding other than `chunked` (before the final `chunked`) -> 501
    /// (RFC 9112 §6.1: SHOULD 501 for a coding the server does not understand).
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// An Expect member other than `100-continue` -> 417 (RFC 9110 §10.1.1).
    #[error("unsupported expectation")]
    UnsupportedExpectation,
}

impl ParseError {
    /// Stable metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidMethod => "invalid_method",
            Self::MethodTooLong => "method_too_long",
            Self::InvalidRequestLine => "invalid_request_line",
            Self::InvalidTarget => "invalid_target",
            Self::TargetFormMismatch => "target_form_mismatch",
            Self::TargetTooLong => "target_too_long",
            Self::InvalidVersion => "invalid_version",
            Self::VersionNotSupported => "version_not_supported",
            Self::BareLf => "bare_lf",
            Self::BareCr => "bare_cr",
            Self::Field(e) => e.kind(),
            Self::TooManyFields => "too_many_fields",
            Self::HeaderSectionTooLarge => "header_section_too_large",
            Self::MissingHost => "missing_host",
            Self::DuplicateHost => "duplicate_host",
            Self::InvalidHost => "invalid_host",
            Self::InvalidContentLength => "invalid_content_length",
            Self::ContentLengthOverflow => "content_length_overflow",
            Self::ConflictingContentLength => "conflicting_content_length",
            Self::ContentLengthTooLarge => "content_length_too_large",
            Self::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
            Self::ContentLengthWithTransferEncoding => "content_length_with_transfer_encoding",
            Self::InvalidTransferEncoding => "invalid_transfer_encoding",
            Self::ChunkedNotFinal => "chunked_not_final",
            Self::ChunkedRepeated => "chunked_repeated",
            Self::UnsupportedTransferCoding => "unsupported_transfer_coding",
            Self::UnsupportedExpectation => "unsupported_expectation",
        }
    }
}

/// Why a request body could not be decoded. Like [`ParseError`], fatal for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Chunk-size missing, not hex, or followed by junk other than extensions -> 400
    /// (RFC 9112 §7.1).
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// Chunk-size that does not fit in a u64 -> 400 (RFC 9112 §7.1: MUST anticipate overflow).
    #[error("chunk size overflows")]
    ChunkSizeOverflow,
    /// Malformed chunk extension -> 400 (RFC 9112 §7.1.1).
    #[error("invalid chunk extension")]
    InvalidChunkExtension,
    /// Chunk-size line (size, extensions, CRLF) longer than `max_chunk_line_bytes` -> 400 (the
    /// limit's documented status; RFC 9112 §7.1.1 lets a server limit extensions).
    #[error("chunk size line too long")]
    ChunkLineTooLong,
    /// Chunk data not followed by exactly CRLF -> 400 (RFC 9112 §7.1).
    #[error("chunk data not followed by CRLF")]
    InvalidChunkEnd,
    /// LF not preceded by CR in chunk framing -> 400 (RFC 9112 §2.2, §7.1).
    #[error("bare LF in chunked framing")]
    BareLf,
    /// CR not followed by LF in chunk framing -> 400 (RFC 9112 §2.2, §7.1).
    #[error("bare CR in chunked framing")]
    BareCr,
    /// Decoded body beyond `max_body_bytes` -> 413 (RFC 9110 §15.5.14). Decided from each
    /// chunk-size before its data is read.
    #[error("body too large")]
    BodyTooLarge,
    /// Trailer section longer than `max_trailer_bytes` -> 431 (RFC 6585 §5; RFC 9112 §7.1.2).
    #[error("trailer section too large")]
    TrailersTooLarge,
    /// A malformed trailer field line -> 400 (RFC 9112 §7.1.2, §5).
    #[error("trailer: {0}")]
    Trailer(#[from] FieldError),
}

impl BodyError {
    /// Stable metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidChunkSize => "invalid_chunk_size",
            Self::ChunkSizeOverflow => "chunk_size_overflow",
            Self::InvalidChunkExtension => "invalid_chunk_extension",
            Self::ChunkLineTooLong => "chunk_line_too_long",
            Self::InvalidChunkEnd => "invalid_chunk_end",
            Self::BareLf => "chunk_bare_lf",
            Self::BareCr => "chunk_bare_cr",
            Self::BodyTooLarge => "body_too_large",
            Self::TrailersTooLarge => "trailers_too_large",
            Self::Trailer(e) => e.trailer_kind(),
        }
    }
}
