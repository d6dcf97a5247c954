//! The two non-error answers of the incremental decoders: the parser's [`Status`] and the body
//! decoder's [`BodyStatus`].
//!
//! Kept apart from the decoders so that `body` and `chunked` both name [`BodyStatus`] without
//! depending on each other. "Incomplete" is a normal answer here, never an error (the httparse
//! model): the caller reads more bytes and calls again.

/// Outcome of `Parser::parse` that is not an error. `Partial` is normal: read more and call
/// again with the grown buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The head is complete and valid: see `Parser::head`.
    Complete,
    /// More bytes are needed.
    Partial,
}

/// Outcome of `BodyDecoder::decode` that is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStatus {
    /// The whole body (and, for chunked, the trailer section) has been consumed.
    Complete,
    /// More input is needed.
    Partial,
}
