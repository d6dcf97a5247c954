//! Request body decoding for the framing the head decided (RFC 9112 §6): nothing, an exact
//! Content-Length, or chunked (the state machine lives in `chunked`).
//!
//! It owns consuming exactly this body's bytes from whatever slices the connection hands it (any
//! split, one byte at a time included) and appending the decoded bytes to the caller's buffer;
//! bytes after the body (a pipelined request) are never consumed. It must not read sockets, decide
//! framing (that is `semantics`), or map errors to statuses.

use super::chunked::ChunkedDecoder;
use super::error::BodyError;
use super::head::Framing;
use crate::Limits;
use crate::status::BodyStatus;

#[derive(Debug, Clone)]
enum Kind {
    /// Content-Length with this many bytes still to come (0: complete).
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// Errors are sticky, like the head parser's.
    Failed(BodyError),
}

/// Decodes one request body. Cheap to build (no allocation): make one per request.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    kind: Kind,
}

impl BodyDecoder {
    /// A decoder for `framing`. A Content-Length above `max_body_bytes` (normally refused with
    /// the head already) fails on the first `decode`.
    pub fn new(framing: Framing, limits: &Limits) -> Self {
        let kind = match framing {
            Framing::None => Kind::Length { remaining: 0 },
            Framing::Length(n) if n > limits.max_body_bytes => {
                Kind::Failed(BodyError::BodyTooLarge)
            }
            Framing::Length(n) => Kind::Length { remaining: n },
            Framing::Chunked => Kind::Chunked(ChunkedDecoder::new(limits)),
        };
        Self { kind }
    }

    /// Consumes a prefix of `input`, appending decoded body bytes to `out`. Returns how many bytes
    /// of `input` were consumed (the rest belongs to whatever follows the body, or is needed
    /// again: pass it with more data next time) and whether the body is complete.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, BodyStatus), BodyError> {
        match &mut self.kind {
            Kind::Length { remaining } => {
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                out.extend_from_slice(&input[..n]);
                *remaining -= n as u64;
                Ok((
                    n,
                    if *remaining == 0 {
                        BodyStatus::Complete
                    } else {
                        BodyStatus::Partial
                    },
                ))
            }
            Kind::Chunked(chunked) => {
                let result = chunked.decode(input, out);
                if let Err(e) = result {
                    self.kind = Kind::Failed(e);
                }
                result
            }
            Kind::Failed(e) => Err(*e),
        }
    }

    /// Whether the body has been fully consumed.
    pub fn is_complete(&self) -> bool {
        match &self.kind {
            Kind::Length { remaining } => *remaining == 0,
            Kind::Chunked(chunked) => chunked.is_complete(),
            Kind::Failed(_) => false,
        }
    }
}
