//! # wasmgate-sdk
//!
//! Write a wasmgate route handler as a plain Rust function `fn(Request) -> Response`, build it
//! for `wasm32-wasip1`, and the host serves it. This crate owns the guest side of the plugin ABI
//! (`docs/ABI.md` in the wasmgate repository, version 2): decoding the request the host wrote
//! into linear memory, encoding the response, refusing responses the host would refuse, the
//! three exports, and typed access to the host's services (variables, key-value stores,
//! outbound HTTP). It must not grow host-side concerns (path matching, limits, HTTP framing,
//! what a service does): those belong to the host, and duplicating them here would let the two
//! drift apart.
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
//! - [`Request`] (module `request`): what the handler receives, with the host's metadata
//!   (peer, client, matched route, request id); [`RequestBuilder`] makes one in tests.
//! - [`Response`] (module `response`): what it answers, checked against the host's refusals;
//!   shortcuts for redirects and JSON errors in the host's shape.
//! - [`IntoResponse`] and [`handler!`]: how a function becomes the plugin's entry point;
//!   handlers may also return `Result<Response, E>`.
//! - [`Router`]: several routes in one plugin, dispatched on the pattern the host matched.
//! - Host services (ABI v2, each granted in the plugin's configuration): [`var`] /
//!   [`try_var`] (configuration variables), [`kv`] (key-value stores), [`http`] (outbound HTTP).
//!   They fail with an [`Error`].
//! - [`wire`]: the byte encoding of docs/ABI.md: the `wasmgate-abi` crate, the very codec the
//!   host uses.
//! - [`random`]: WASI randomness (`random_get`) for ids and tokens.
//! - [`time`]: the wall clock, which natively follows
//!   [`testing::advance_clock`] like the key-value stand-in's expiries.
//! - [`auth`]: constant-time comparison of a secret, bearer-token checks answering 401.
//! - [`testing`]: run a handler natively through the exact encode/decode path the host uses,
//!   with in-memory stand-ins for the host services.
//! - Private: `host`, the only caller of the host functions; `sys`, the only module with
//!   `unsafe` (the exports and imports, pointers in, pointers out); `standin`, what `host` calls
//!   natively instead of the imports; `outcome`, the raw answer of a host call they share.
//!
//! A plugin built with this SDK is an ABI v2 guest. It imports from the host's `wasmgate`
//! module exactly the functions it uses (unused ones are dropped by the linker), so a plugin
//! that uses no host service imports nothing from it and needs no grant.
//!
//! ## Failure model
//! A panic in a handler is a trap: with `panic = "abort"` (see plugins/Cargo.toml) the instance
//! stops at once, the host answers 500 and logs what the guest printed to stderr. The SDK
//! installs a panic hook that prints the message and its source location on ONE line, because
//! the host turns every stderr line into a separate log event. A response the host would refuse
//! (bad header name, CR/LF in a value, a framing header, a status outside 200..=599) is turned
//! into a 500 with an explanatory body and a stderr line instead of a 502 with no explanation;
//! see [`Response`]. A handler returning `Err(e)` gets a plain 500, with `e` on stderr only.
//!
//! A host service that fails (a store that is down, an upstream that times out, a URL that is
//! not granted) never traps: every call returns a `Result` whose [`Error`] carries the host's
//! error code ([`wire::Errno`]) and message, and the handler decides what the client gets —
//! with `?`, a 500 (`Result<Response, E: Display>`) or [`Error::status`] with a JSON error body
//! (`Result<Response, Response>`).
//!
//! ## serde
//! [`serde`] and [`serde_json`] are re-exported, so `wasmgate_sdk::serde_json::json!` works
//! without a dependency. The derive macros (`#[derive(Serialize, Deserialize)]`) need `serde`
//! in the plugin's own `Cargo.toml` (`serde = { version = "1", features = ["derive"] }`), or
//! the attribute `#[serde(crate = "wasmgate_sdk::serde")]` on each derived type.

// `unsafe` is allowed in exactly one module, `sys`; the compiler enforces it, and clippy checks
// that every block there carries a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod auth;
mod body;
mod error;
mod handler;
mod host;
pub mod http;
pub mod kv;
mod outcome;
pub mod random;
mod request;
mod response;
mod router;
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
mod standin;
#[allow(unsafe_code)]
mod sys;
pub mod testing;
pub mod time;
mod url;
mod vars;

pub use body::BodyError;
pub use error::{Error, RETRY_AFTER_SECS};
pub use handler::IntoResponse;
pub use request::{Request, RequestBuilder};
pub use response::{Response, ResponseError};
pub use router::{Router, RouterError};
pub use url::percent_decode;
pub use vars::{try_var, var};

/// Re-exported so plugins can name serde's traits (`wasmgate_sdk::serde::Serialize`) with the
/// SDK's version. The derive macros still need `serde` as a dependency of the plugin itself, or
/// `#[serde(crate = "wasmgate_sdk::serde")]`:
///
/// ```
/// use wasmgate_sdk::serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(crate = "wasmgate_sdk::serde")]
/// struct Link { url: String }
///
/// let link: Link = wasmgate_sdk::serde_json::from_str(r#"{"url": "https://example.org/"}"#)?;
/// assert_eq!(link.url, "https://example.org/");
/// # Ok::<(), wasmgate_sdk::serde_json::Error>(())
/// ```
pub use serde;

/// Re-exported so plugins can build JSON with `wasmgate_sdk::serde_json::json!` without adding
/// a dependency of their own (and so their version always matches the SDK's).
///
/// ```
/// let v = wasmgate_sdk::serde_json::json!({ "ok": true });
/// assert_eq!(v["ok"], true);
/// ```
pub use serde_json;

/// The byte encoding of docs/ABI.md: requests and responses, the host's refusal rules, the host
/// functions' error codes ([`wire::Errno`]) and encodings. This is the `wasmgate-abi` crate,
/// shared with the host, so a guest and the host cannot disagree on a byte.
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
/// assert_eq!(wasmgate_sdk::ABI_VERSION, 2);
/// assert_eq!(wasmgate_sdk::ABI_VERSION, wasmgate_sdk::wire::AbiVersion::LATEST.number());
/// ```
pub const ABI_VERSION: i32 = wire::AbiVersion::LATEST as i32;

/// Support for the [`handler!`] macro. Not a public API: names and signatures may change in any
/// release, only the macro's expansion may rely on them.
#[doc(hidden)]
pub mod __rt {
    pub use crate::sys::{alloc, handle};
}
