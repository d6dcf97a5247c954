//! Native testing support: [`RequestBuilder`] to make requests without a host, [`call`] to run
//! a handler through the same encode → handle → decode path the host uses, and in-memory
//! stand-ins for the host functions, so that variables, key-value stores and outbound HTTP work
//! in plain `cargo test`.
//!
//! This module owns test conveniences only; nothing in a plugin's production path depends on
//! it. On `wasm32` the SDK calls the host; on every other target its host calls land in the
//! stand-ins that these functions drive, which answer at the ABI level (codes and encoded
//! bytes), so the SDK's decoding and error mapping run in tests exactly as in a plugin. It must
//! not bypass the real code paths: [`call`] goes through `handler::serve` and the wire
//! encoding, so what a test sees is what the host would see, refused responses included.
//!
//! The stand-ins keep their state per thread. libtest runs every test on a thread of its own,
//! so each test starts empty; call [`reset`] if a thread is reused.
//!
//! | host function | stand-in | test controls |
//! |---|---|---|
//! | `var_get` | a table of variables | [`set_var`], [`clear_vars`] |
//! | `kv_*` | in-memory stores, created on first use, with the default [`KV_LIMITS`], on the stand-in clock | [`kv_reset`], [`kv_deny`], [`advance_clock`] |
//! | `http_send`, `http_send_timeout` | canned answers by method and exact URL, each after an optional delay on the stand-in clock; others are `denied` | [`http_answer`], [`http_fail`], [`http_delay`], [`http_requests`], [`http_reset`] |
//! | (WASI clock) | [`time::now`](crate::time::now): the stand-in clock, from [`CLOCK_START_UNIX_MS`]; only tests move it | [`advance_clock`] |
//!
//! ```
//! use wasmgate_sdk::{testing, Request, Response};
//!
//! fn handle(req: Request) -> Response {
//!     let greeting = wasmgate_sdk::var("greeting").unwrap_or_else(|| "Hello".into());
//!     Response::text(200, format!("{greeting}, {}!", req.query("name").unwrap_or("you")))
//! }
//!
//! testing::set_var("greeting", "Hi");
//! let resp = testing::call(handle, Request::builder().target("/greet?name=Ada").build());
//! assert_eq!(resp.body_text(), Some("Hi, Ada!"));
//! ```

mod http;

pub use crate::request::RequestBuilder;
pub use crate::standin::clock::{CLOCK_START_UNIX_MS, advance_clock};
pub use crate::standin::kv::{KV_LIMITS, KvLimits, kv_deny, kv_reset};
pub use crate::standin::vars::{clear_vars, set_var};
pub use http::{http_answer, http_delay, http_fail, http_requests, http_reset};

use crate::handler::{self, IntoResponse};
use crate::request::Request;
use crate::response::Response;
use crate::standin;
use crate::wire::RawResponse;

/// Empties every stand-in of this thread: variables, stores (and their refusals), the clock
/// (back to [`CLOCK_START_UNIX_MS`]), HTTP answers and delays and the log of sent requests.
///
/// ```
/// use wasmgate_sdk::testing;
///
/// testing::set_var("a", "1");
/// testing::reset();
/// assert_eq!(wasmgate_sdk::var("a"), None);
/// ```
pub fn reset() {
    clear_vars();
    kv_reset();
    http_reset();
}

/// Runs `handler` on `request` exactly as a plugin does: encode the request, decode it, call the
/// handler, apply the SDK's policies (`Err` → 500, refused response → explained 500), encode
/// the response, and decode it back. Prefer it over calling the handler directly when the test
/// is about what the client receives. It is one request for the stand-ins' per-request limits
/// ([`KvLimits::max_ops_per_request`]).
///
/// # Panics
/// If the request cannot be encoded (over 4 GiB).
///
/// ```
/// use wasmgate_sdk::{testing, Request, Response};
///
/// // A handler that sets a host-owned header: the client would get an explained 500.
/// let resp = testing::call(|_req: Request| Response::ok().header("Connection", "close"),
///                          Request::builder().build());
/// assert_eq!(resp.status(), 500);
/// assert!(resp.body_text().unwrap().contains("header Connection is set by the host"));
/// ```
pub fn call<R: IntoResponse>(handler: impl FnOnce(Request) -> R, request: Request) -> Response {
    let input = request
        .encode()
        .expect("testing::call: request too large to encode");
    let output = {
        let _request = standin::kv::RequestScope::begin();
        handler::serve(input, handler)
    };
    let raw = RawResponse::decode(&output).expect("serve always produces a valid encoding");
    Response::from_raw(&raw)
}
