//! The in-memory stand-in for `http_send`: canned answers by method and exact URL, and a log
//! of what the plugin sent, so a plugin's native tests need no network.
//!
//! It owns a per-thread table of answers (filled through
//! [`testing::http_answer`](crate::testing::http_answer) and its siblings) and answers at the
//! ABI level: it decodes the [`OutboundRequest`] the SDK encoded, records its bytes, and returns
//! the encoded response or the error code. A URL with no entry is refused with `denied`, like a
//! host refuses a URL outside `allowed_outbound_hosts`; a URL that is not absolute
//! `http`/`https` is `invalid`. It must not open connections, nor know the SDK's `http` types
//! (they call it, through `host`).

use crate::outcome::Outcome;
use crate::wire::{Errno, OutboundRequest};
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct State {
    /// `(method, url)` → what `http_send` answers.
    answers: HashMap<(Vec<u8>, Vec<u8>), Outcome>,
    /// Every request received, as encoded.
    sent: Vec<Vec<u8>>,
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

/// The encodings of every request received on this thread, oldest first.
pub(crate) fn sent() -> Vec<Vec<u8>> {
    STATE.with_borrow(|s| s.sent.clone())
}

/// Forgets every answer and every received request of this thread.
pub(crate) fn reset() {
    STATE.set(State::default());
}

pub(crate) fn http_send(request: &[u8]) -> Outcome {
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
        s.sent.push(request.to_vec());
        match s.answers.get(&(method.to_vec(), url.to_vec())) {
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
