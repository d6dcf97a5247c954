//! [`Error`]: how a host service (variables, key-value stores, outbound HTTP) reports failure to
//! a plugin, and what a client sees when a handler hands one back with `?`.
//!
//! This module owns the SDK's one error value for host calls: an [`Errno`] to match on and a
//! message for people. A host-service failure is a value, never a panic or a trap (docs/ABI.md,
//! "Error codes"): the handler decides what the client gets. It must not know how a call is made
//! (`host`, `sys`) nor what any service means; the services build their errors through it.

use crate::response::Response;
use crate::wire::Errno;
use std::fmt;

/// The `Retry-After` (in seconds) of a response made from an [`Error`] that another try may not
/// meet: a service down or busy (503) or too slow (504). Two seconds is how often the host
/// checks a store that went down: it cannot be back sooner (docs/configuration.md, `[stores]`).
pub const RETRY_AFTER_SECS: u32 = 2;

/// A host service failed: the error code the host returned and its explanation.
///
/// Match on [`errno`](Error::errno); the message is for logs and people. It is a plain value:
/// log it, turn it into a response of your choosing, or let `?` carry it out of the handler,
/// where it becomes a 500 (handlers returning `Result<Response, E: Display>`) or the response
/// of [`From<Error> for Response`](#impl-From<Error>-for-Response) (handlers returning
/// `Result<Response, Response>`).
///
/// ```
/// use wasmgate_sdk::{Error, wire::Errno};
///
/// let err = Error::new(Errno::Denied, "store `links` is not in [plugins.p] kv");
/// assert_eq!(err.errno, Errno::Denied);
/// assert_eq!(err.to_string(), "denied: store `links` is not in [plugins.p] kv");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What went wrong, as the host reported it (docs/ABI.md, "Error codes").
    pub errno: Errno,
    /// The host's explanation (or the SDK's, when the SDK found the problem). May be empty.
    pub message: String,
}

impl Error {
    /// An error with `errno` and `message`; used by the SDK, and handy for tests and for
    /// plugin code that wants to report a failure the same way.
    ///
    /// ```
    /// let err = wasmgate_sdk::Error::new(wasmgate_sdk::wire::Errno::Timeout, "");
    /// assert_eq!(err.to_string(), "timeout");
    /// ```
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        Error {
            errno,
            message: message.into(),
        }
    }

    /// The error for the `code` a host function returned (non-zero) with `message`. A code this
    /// SDK does not know is still a failure (docs/ABI.md): it is reported as `unavailable`, with
    /// the number in the message.
    pub(crate) fn from_code(code: i32, message: String) -> Self {
        match Errno::from_code(code) {
            Some(errno) if errno != Errno::Ok => Error { errno, message },
            _ => Error {
                errno: Errno::Unavailable,
                message: format!("host error code {code}: {message}"),
            },
        }
    }

    /// The host answered something the ABI does not allow (a malformed result): it is reported
    /// as `protocol`, since the host broke its side of the contract.
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Error::new(Errno::Protocol, message)
    }

    /// The status a client should get when this error ends a request: 504 for `timeout`, 503
    /// for an unavailable, busy or exhausted service, 502 when an outbound destination failed,
    /// 500 for everything else (a bug or a configuration problem of the plugin).
    ///
    /// ```
    /// use wasmgate_sdk::{Error, wire::Errno};
    ///
    /// assert_eq!(Error::new(Errno::Timeout, "").status(), 504);
    /// assert_eq!(Error::new(Errno::Connect, "").status(), 502);
    /// assert_eq!(Error::new(Errno::Denied, "").status(), 500);
    /// ```
    pub fn status(&self) -> u16 {
        match self.errno {
            Errno::Timeout => 504,
            Errno::Unavailable | Errno::Busy | Errno::LimitReached => 503,
            Errno::Dns | Errno::Connect | Errno::AddressBlocked | Errno::Protocol => 502,
            _ => 500,
        }
    }

    /// Whether trying again later may succeed: the service was down (`unavailable`), at its
    /// concurrency cap (`busy`) or too slow (`timeout`). Not `limit_reached`: the same request
    /// would reach the same per-request limit again.
    ///
    /// ```
    /// use wasmgate_sdk::{Error, wire::Errno};
    ///
    /// assert!(Error::new(Errno::Unavailable, "").is_transient());
    /// assert!(!Error::new(Errno::LimitReached, "").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(
            self.errno,
            Errno::Unavailable | Errno::Busy | Errno::Timeout
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.errno)
        } else {
            write!(f, "{}: {}", self.errno, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// A host-service failure that ends the request: [`Error::status`] with the JSON error body
/// `{"error": "<errno name>", "message": "..."}`, and `Retry-After: 2` ([`RETRY_AFTER_SECS`])
/// when the failure is [transient](Error::is_transient) (a store down or timing out, a busy
/// service). The message the client sees is generic; the host's own message (which may name
/// configuration) goes to stderr, i.e. the host log.
///
/// ```
/// use wasmgate_sdk::{Error, Response, wire::Errno};
///
/// let resp = Response::from(Error::new(Errno::Timeout, "store `links` took too long"));
/// assert_eq!(resp.status(), 504);
/// assert_eq!(
///     resp.body_text(),
///     Some(r#"{"error":"timeout","message":"a service the plugin depends on failed"}"#)
/// );
/// assert_eq!(resp.header_value("retry-after"), Some("2"));
/// let down = Response::from(Error::new(Errno::Unavailable, "store `links` is down"));
/// assert_eq!((down.status(), down.header_value("retry-after")), (503, Some("2")));
/// let bug = Response::from(Error::new(Errno::Denied, "store `links` is not granted"));
/// assert_eq!((bug.status(), bug.header_value("retry-after")), (500, None));
/// ```
impl From<Error> for Response {
    fn from(err: Error) -> Response {
        eprintln!(
            "wasmgate-sdk: a host call failed, answering {}: {err}",
            err.status()
        );
        let resp = Response::error(
            err.status(),
            err.errno.name(),
            "a service the plugin depends on failed",
        );
        if err.is_transient() {
            resp.header("Retry-After", RETRY_AFTER_SECS.to_string())
        } else {
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_errnos_and_unknown_codes_still_fail() {
        assert_eq!(
            Error::from_code(6, "x".into()),
            Error::new(Errno::Conflict, "x")
        );
        let unknown = Error::from_code(99, "new thing".into());
        assert_eq!(unknown.errno, Errno::Unavailable);
        assert_eq!(unknown.message, "host error code 99: new thing");
        // 0 is success and never an error; seeing it here means a caller bug, not a success.
        assert_eq!(Error::from_code(0, String::new()).errno, Errno::Unavailable);
    }

    #[test]
    fn only_transient_failures_carry_retry_after() {
        for errno in Errno::ALL.into_iter().filter(|e| *e != Errno::Ok) {
            let resp = Response::from(Error::new(errno, ""));
            let retry = resp.header_value("retry-after");
            match errno {
                Errno::Unavailable | Errno::Busy | Errno::Timeout => {
                    assert_eq!(retry, Some("2"), "{errno}");
                    assert!(matches!(resp.status(), 503 | 504), "{errno}");
                }
                _ => assert_eq!(retry, None, "{errno}"),
            }
        }
    }

    #[test]
    fn every_errno_has_a_status_in_the_server_error_range() {
        for errno in Errno::ALL {
            let status = Error::new(errno, "").status();
            assert!((500..=504).contains(&status), "{errno}: {status}");
        }
    }
}
