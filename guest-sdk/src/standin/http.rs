//! The in-memory stand-in for `http_send`: canned answers by method and exact URL, and a log
//! of what the plugin sent, so a plugin's native tests need no network.
//!
//! It owns a per-thread table of answers (filled through
//! [`testing::http_answer`](crate::testing::http_answer) and its siblings) and answers at the
//! ABI level: it decodes the [`OutboundRequest`] the SDK encoded, records its bytes, and returns
//! the encoded response or the error code, after the destination's delay if a test gave it one
//! (on the stand-in clock, against the call's timeout). A URL with no entry is refused with `denied`, like a
//! host refuses a URL outside `allowed_outbound_hosts`; a URL that is not absolute
//! `http`/`https` is `invalid`. It must not open connections, nor know the SDK's `http` types
//! (they call it, through `host`).

use super::clock;
use crate::outcome::Outcome;
use crate::wire::{Errno, OutboundRequest};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Default)]
struct State {
    /// `(method, url)` → what `http_send` answers.
    answers: HashMap<(Vec<u8>, Vec<u8>), Outcome>,
    /// `(method, url)` → how long the destination takes to answer, on the stand-in clock.
    delays: HashMap<(Vec<u8>, Vec<u8>), Duration>,
    /// Every request received, as encoded, with the timeout it was sent with.
    sent: Vec<(Vec<u8>, Option<Duration>)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Makes `http_send` answer `outcome` to every `method` request for exactly `url`, replacing
/// an earlier answer for the pair.
pub(crate) fn answer(method: &str, url: &str, outcome: Outcome) {
    let key = (method.as_bytes().to_vec(), url.as_bytes().to_vec());
    STATE.with_borrow_mut(|s| s.answers.insert(key, outcome));
}

/// Makes every `method` request for exactly `url` take `delay` on the stand-in clock.
pub(crate) fn delay(method: &str, url: &str, delay: Duration) {
    let key = (method.as_bytes().to_vec(), url.as_bytes().to_vec());
    STATE.with_borrow_mut(|s| s.delays.insert(key, delay));
}

/// The encodings of every request received on this thread, oldest first, with their timeouts.
pub(crate) fn sent() -> Vec<(Vec<u8>, Option<Duration>)> {
    STATE.with_borrow(|s| s.sent.clone())
}

/// Forgets every answer and every received request of this thread.
pub(crate) fn reset() {
    STATE.set(State::default());
}

pub(crate) fn http_send(request: &[u8]) -> Outcome {
    send(request, None)
}

/// `http_send` with the guest's own bound (`timeout_ms <= 0`: none). A destination given a
/// delay ([`delay`]) longer than the bound fails `timeout` once the stand-in clock has moved by
/// the bound, as a host ends the call; otherwise the clock moves by the delay and it answers.
pub(crate) fn http_send_timeout(request: &[u8], timeout_ms: i64) -> Outcome {
    let timeout = u64::try_from(timeout_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    send(request, timeout)
}

fn send(request: &[u8], timeout: Option<Duration>) -> Outcome {
    let raw = match OutboundRequest::decode(request) {
        Ok(raw) => raw,
        Err(e) => return Outcome::fail(Errno::Invalid, format!("malformed request: {e}")),
    };
    let (method, url) = (raw.method, raw.url);
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if !is_absolute_http_url(url) {
        let message = format!("`{}` is not an absolute http or https URL", shown(url));
        return Outcome::fail(Errno::Invalid, message);
    }
    STATE.with_borrow_mut(|s| {
        s.sent.push((request.to_vec(), timeout));
        let key = (method.to_vec(), url.to_vec());
        let delay = s.delays.get(&key).copied().unwrap_or_default();
        if let Some(bound) = timeout.filter(|&t| t < delay) {
            clock::advance_clock(bound);
            let message = format!("no answer within the call's timeout of {bound:?}");
            return Outcome::fail(Errno::Timeout, message);
        }
        clock::advance_clock(delay);
        match s.answers.get(&key) {
            Some(outcome) => outcome.clone(),
            None => Outcome::fail(
                Errno::Denied,
                format!(
                    "no answer for {} {} (add one with testing::http_answer)",
                    shown(method),
                    shown(url)
                ),
            ),
        }
    })
}

/// `http://` or `https://` (scheme case-insensitive) followed by a non-empty authority.
fn is_absolute_http_url(url: &[u8]) -> bool {
    let Ok(url) = std::str::from_utf8(url) else {
        return false;
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !authority.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_http_urls_only() {
        for ok in ["http://a", "HTTPS://a.example/x?y", "https://[::1]:8443/"] {
            assert!(is_absolute_http_url(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "/x",
            "a.example/x",
            "ftp://a",
            "https://",
            "https:///x",
            "https:a",
        ] {
            assert!(!is_absolute_http_url(bad.as_bytes()), "{bad}");
        }
        assert!(!is_absolute_http_url(b"https://\xff/"));
    }

    #[test]
    fn undecodable_requests_are_invalid_and_not_recorded() {
        let outcome = http_send(&[1, 2, 3]);
        assert_eq!(outcome.code, Errno::Invalid.code());
        assert!(sent().is_empty());
    }
}
