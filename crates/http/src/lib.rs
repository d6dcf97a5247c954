//! # wasmgate-http: HTTP/1.1 on bytes
//!
//! The protocol layer of wasmgate, usable on its own: an incremental request-head parser, body
//! decoders (Content-Length and chunked, with trailers) and the one response encoder. It does no
//! I/O and depends on no runtime, no wasm engine and no configuration system: every function takes
//! bytes and returns values, so the whole layer is unit-testable byte by byte (the httparse model:
//! "incomplete" is a normal answer, [`Status::Partial`], not an error). Its own [`Limits`] type
//! carries every bound it enforces.
//!
//! ## Layout
//! - [`Parser`] (`parse`, with `fields`, `target` and `semantics`): request line, field lines,
//!   then what they mean for framing, Host, persistence and Expect. Errors are [`ParseError`]s
//!   with a stable `kind()`; mapping them to statuses is the server's business.
//! - [`RequestHead`] / [`HeadView`] (`head`): the parsed head as spans into the caller's buffer.
//! - [`BodyDecoder`] (`body`, `chunked`): consumes exactly one body from any split of the input.
//! - [`encode`]: the response serializer; framing headers are written only there.
//! - `bytes`: byte classes and word-at-a-time scans; [`is_token`] and [`is_field_value`] are the
//!   project's one statement of those RFC 9110 rules (the ABI crate reuses them).
//!
//! ```
//! use wasmgate_http::{Limits, Parser, Status};
//!
//! let mut parser = Parser::new(Limits::default());
//! assert_eq!(parser.parse(b"GET /a HTTP/1.1\r\nHo"), Ok(Status::Partial));
//! let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
//! assert_eq!(parser.parse(buf), Ok(Status::Complete));
//! assert_eq!(parser.head().view(buf).path(), "/a");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod body;
mod bytes;
mod chunked;
pub mod encode;
mod error;
mod fields;
mod head;
mod limits;
mod parse;
mod semantics;
mod status;
mod target;
#[cfg(test)]
mod tests;

pub use body::BodyDecoder;
pub use bytes::{is_field_value, is_token};
pub use error::{BodyError, FieldError, ParseError};
pub use head::{Framing, HeadView, Header, RequestHead, Span, TargetForm, Version};
pub use limits::Limits;
pub use parse::Parser;
pub use status::{BodyStatus, Status};
