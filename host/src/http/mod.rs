//! HTTP/1.1 on bytes: request-head parsing, body decoding and response encoding.
//!
//! Nothing here touches a socket, tokio or wasmtime: every function takes bytes and returns values,
//! so the whole protocol layer is unit-testable byte by byte (the httparse model: "incomplete" is a
//! normal answer, not an error).

pub mod body;
mod bytes;
mod chunked;
pub mod encode;
pub mod error;
mod fields;
pub mod head;
pub mod parse;
mod semantics;
mod target;
#[cfg(test)]
mod tests;

pub use body::{BodyDecoder, BodyStatus};
pub use error::{BodyError, FieldError, ParseError};
pub use head::{Framing, HeadView, Header, RequestHead, Span, TargetForm, Version};
pub use parse::{Parser, Status};
