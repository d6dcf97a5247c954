//! # wasmgate-sdk
//!
//! Write a wasmgate route handler as a plain Rust function `fn(Request) -> Response`, build it
//! for `wasm32-wasip1`, and the host serves it. This crate owns the guest side of the plugin ABI
//! (`docs/ABI.md` in the wasmgate repository, version 1): decoding the request the host wrote
//! into linear memory, encoding the response, refusing responses the host would refuse, and the
//! three exports. It must not grow host-side concerns (routing, limits, HTTP framing): those
//! belong to the host, and duplicating them here would let the two drift apart.
//!
//! ```rust,standalone_crate
//! use wasmgate_sdk::{Request, Response};
//!
//! fn hello(req: Request) -> Response {
//!     let name = req.param("name").unwrap_or("world");
//!     Response::json(200, &serde_json::json!({ "message": format!("Hello, {name}!") }))
//! }
//!
//! // Exports `wasmgate_abi_version`, `wasmgate_alloc` and `wasmgate_handle` (docs/ABI.md).
//! wasmgate_sdk::handler!(hello);
//!
//! // The same function runs natively, so handlers are unit-tested with plain `cargo test`.
//! let resp = hello(Request::builder().path("/hello/ada").param("name", "ada").build());
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.body_text(), Some(r#"{"message":"Hello, ada!"}"#));
//! ```
//!
//! ## Map of the crate
//! - [`Request`] (module `request`): what the handler receives; [`RequestBuilder`] makes one in
//!   tests.
//! - [`Response`] (module `response`): what it answers, checked against the host's refusals.
//! - [`IntoResponse`] and [`handler!`]: how a function becomes the plugin's entry point;
//!   handlers may also return `Result<Response, E>`.
//! - [`wire`]: the byte encoding of docs/ABI.md: the `wasmgate-abi` crate, the very codec the
//!   host uses.
//! - [`random`]: WASI randomness (`random_get`) for ids and tokens.
//! - [`testing`]: run a handler natively through the exact encode/decode path the host uses.
//! - `sys` (private): the only module with `unsafe`; pointers in, pointers out.
//!
//! ## Failure model
//! A panic in a handler is a trap: with `panic = "abort"` (see plugins/Cargo.toml) the instance
//! stops at once, the host answers 500 and logs what the guest printed to stderr. The SDK
//! installs a panic hook that prints the message and its source location on ONE line, because
//! the host turns every stderr line into a separate log event. A response the host would refuse
//! (bad header name, CR/LF in a value, a framing header, a status outside 200..=599) is turned
//! into a 500 with an explanatory body and a stderr line instead of a 502 with no explanation;
//! see [`Response`]. A handler returning `Err(e)` gets a plain 500, with `e` on stderr only.

// `unsafe` is allowed in exactly one module, `sys`; the compiler enforces it, and clippy checks
// that every block there carries a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod body;
mod handler;
pub mod random;
mod request;
mod response;
#[allow(unsafe_code)]
mod sys;
pub mod testing;
mod url;

pub use body::BodyError;
pub use handler::IntoResponse;
pub use request::Request;
pub use response::{Response, ResponseError};
pub use testing::RequestBuilder;
pub use url::percent_decode;

/// Re-exported so plugins can build JSON with `wasmgate_sdk::serde_json::json!` without adding
/// a dependency of their own (and so their version always matches the SDK's).
///
/// ```
/// let v = wasmgate_sdk::serde_json::json!({ "ok": true });
/// assert_eq!(v["ok"], true);
/// ```
pub use serde_json;

/// The byte encoding of docs/ABI.md: requests and responses, and the host's refusal rules. This
/// is the `wasmgate-abi` crate, shared with the host, so a guest and the host cannot disagree on
/// a byte.
///
/// ```
/// use wasmgate_sdk::wire::RawResponse;
///
/// let bytes = RawResponse { status: 200, headers: vec![], body: b"hi" }.encode()?;
/// assert_eq!(bytes, [200, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'h', b'i']);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use wasmgate_abi as wire;

/// The ABI version this SDK implements; the generated `wasmgate_abi_version` export returns it.
///
/// A host refuses to load a module whose version it does not speak (docs/ABI.md, "Versioning").
///
/// ```
/// assert_eq!(wasmgate_sdk::ABI_VERSION, 1);
/// ```
pub const ABI_VERSION: i32 = wire::AbiVersion::V1 as i32;

/// Support for the [`handler!`] macro. Not a public API: names and signatures may change in any
/// release, only the macro's expansion may rely on them.
#[doc(hidden)]
pub mod __rt {
    pub use crate::sys::{alloc, handle};
}
