//! The test controls of the outbound-HTTP stand-in, in the SDK's [`http`] types:
//! canned answers and failures by method and exact URL, and the log of sent requests.
//!
//! It owns the conversion between those types and the ABI-level stand-in (`standin::http`),
//! which must not know them. It must not answer requests itself.

use crate::http;
use crate::outcome::Outcome;
use crate::standin;
use crate::wire::{Errno, OutboundRequest};

/// Makes the stand-in answer `response` to every `method` request for exactly `url` (no
/// normalisation: `https://a.example` and `https://a.example/` are different entries). A later
/// call for the same pair replaces the answer. Any other URL is refused with `denied`, as a
/// host refuses a URL outside `allowed_outbound_hosts`.
///
/// # Panics
/// If the response cannot be encoded (over 4 GiB).
///
/// ```
/// use wasmgate_sdk::{http, testing};
///
/// testing::http_answer("GET", "https://api.example.com/ping", http::Response::new(204));
/// assert_eq!(http::Request::get("https://api.example.com/ping").send()?.status(), 204);
/// # Ok::<(), wasmgate_sdk::Error>(())
/// ```
pub fn http_answer(method: &str, url: &str, response: http::Response) {
    let encoded = response
        .encode()
        .expect("testing::http_answer: response too large to encode");
    standin::http::answer(method, url, Outcome::ok(encoded));
}

/// Makes the stand-in fail every `method` request for exactly `url` with `errno`, as the host
/// would when the destination times out (`timeout`), does not resolve (`dns`), and so on.
///
/// ```
/// use wasmgate_sdk::{http, testing, wire::Errno};
///
/// testing::http_fail("GET", "https://slow.example/", Errno::Timeout, "deadline passed");
/// let err = http::Request::get("https://slow.example/").send().unwrap_err();
/// assert_eq!((err.errno, err.message.as_str()), (Errno::Timeout, "deadline passed"));
/// ```
pub fn http_fail(method: &str, url: &str, errno: Errno, message: &str) {
    standin::http::answer(method, url, Outcome::fail(errno, message));
}

/// Every request the plugin sent through the stand-in on this thread, oldest first, as the
/// host received them (answered or not).
///
/// ```
/// use wasmgate_sdk::{http, testing};
///
/// let _ = http::Request::post("https://hooks.example/x").body("hi").send();
/// let sent = testing::http_requests();
/// assert_eq!((sent[0].method(), sent[0].url()), ("POST", "https://hooks.example/x"));
/// assert_eq!(sent[0].body_bytes(), b"hi");
/// ```
pub fn http_requests() -> Vec<http::Request> {
    standin::http::sent()
        .iter()
        .filter_map(|bytes| OutboundRequest::decode(bytes).ok())
        .map(|raw| http::Request::from_wire(&raw))
        .collect()
}

/// Forgets every answer and every recorded request of this thread.
///
/// ```
/// use wasmgate_sdk::{http, testing};
///
/// testing::http_answer("GET", "https://a.example/", http::Response::new(200));
/// testing::http_reset();
/// assert!(http::Request::get("https://a.example/").send().is_err());
/// ```
pub fn http_reset() {
    standin::http::reset();
}
