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
        .filter_map(|(bytes, timeout)| {
            let raw = OutboundRequest::decode(bytes).ok()?;
            let req = http::Request::from_wire(&raw);
            Some(match timeout {
                Some(t) => req.timeout(*t),
                None => req,
            })
        })
        .collect()
}

/// Makes every `method` request for exactly `url` take `delay` before its answer, on the
/// stand-in clock ([`advance_clock`](crate::testing::advance_clock) moves with it). A request
/// sent with a shorter [`timeout`](http::Request::timeout) fails with `timeout` once its bound
/// has passed, as the host ends it; the clock has then moved by the bound only.
///
/// ```
/// use std::time::Duration;
/// use wasmgate_sdk::{http, testing, time, wire::Errno};
///
/// testing::http_answer("GET", "https://slow.example/", http::Response::new(200));
/// testing::http_delay("GET", "https://slow.example/", Duration::from_secs(3));
/// let started = time::now();
/// let err = http::Request::get("https://slow.example/")
///     .timeout(Duration::from_millis(500))
///     .send()
///     .unwrap_err();
/// assert_eq!(err.errno, Errno::Timeout);
/// assert_eq!(time::now().duration_since(started).unwrap(), Duration::from_millis(500));
/// // Without a timeout of its own the call waits the whole delay.
/// assert_eq!(http::Request::get("https://slow.example/").send()?.status(), 200);
/// # Ok::<(), wasmgate_sdk::Error>(())
/// ```
pub fn http_delay(method: &str, url: &str, delay: std::time::Duration) {
    standin::http::delay(method, url, delay);
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
