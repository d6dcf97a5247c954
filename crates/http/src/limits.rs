//! [`Limits`]: the bounds the parser and the body decoders enforce, and nothing else.
//!
//! The protocol crate owns its own limits type (as httparse and hyper do) so that it depends on no
//! configuration system: a server fills one from its config file and passes it in explicitly.
//! Every bound is checked on the bytes seen so far, so a client can never make the parser hold or
//! scan more than these numbers say.

/// Limits the HTTP/1.1 request parser and body decoder enforce. Each one bounds memory a single
/// client can make the server hold, and each has its own status when exceeded (the server maps
/// the error kinds to statuses; this crate names no status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest method token accepted. Longer than any method we could route -> 501 (RFC 9110 §9.1).
    pub max_method_bytes: usize,
    /// Longest request-target accepted -> 414 URI Too Long past it (RFC 9112 §3).
    pub max_target_bytes: usize,
    /// Largest header section (leading empty lines, request line and all field lines, with their
    /// CRLFs, up to and including the final empty line) -> 431 past it.
    pub max_header_bytes: usize,
    /// Most field lines in one header section -> 431 past it.
    pub max_headers: usize,
    /// Largest request body, decided from Content-Length before reading it, or while de-chunking
    /// -> 413 Content Too Large past it.
    pub max_body_bytes: u64,
    /// Longest chunk-size line (hex size, extensions and CRLF) -> 400 past it: no legitimate client
    /// sends long extensions, and they would otherwise be unbounded.
    pub max_chunk_line_bytes: usize,
    /// Largest trailer section of a chunked body -> 431 past it.
    pub max_trailer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_method_bytes: 32,
            max_target_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 1024 * 1024,
            max_chunk_line_bytes: 4 * 1024,
            max_trailer_bytes: 8 * 1024,
        }
    }
}
