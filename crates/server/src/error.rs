//! Request errors, and THE map from an error to an HTTP status.
//!
//! Every way a request can fail ends up as a [`RequestError`]; [`RequestError::status`] is the only
//! place in the crate that decides which status a failure gets, and [`RequestError::response`] the
//! only place that builds the error body. Nothing matches on error text.

use crate::runtime::CallError;
use wasmgate_http::encode::Response;
use wasmgate_http::{BodyError, ParseError};

/// Why a request did not get a handler's answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Body(#[from] BodyError),
    #[error("the request head was not received in time")]
    HeaderTimeout,
    #[error("the request body stalled")]
    BodyTimeout,
    #[error("no route matches this path")]
    NotFound,
    #[error("this path does not accept this method")]
    MethodNotAllowed { allow: String },
    #[error("the plugin `{0}` is not loaded")]
    PluginNotLoaded(String),
    #[error("{0}")]
    Plugin(#[from] CallError),
    /// The plugin's concurrency cap and its queue are full (`guard.rs`).
    #[error("the plugin is busy: too many requests in flight and queued")]
    Overloaded { retry_after: std::time::Duration },
    /// The plugin's circuit breaker is open after consecutive failures (`guard.rs`).
    #[error("the plugin is quarantined after repeated failures")]
    Quarantined { retry_after: std::time::Duration },
}

impl RequestError {
    /// The status a client gets for this error.
    pub(crate) fn status(&self) -> u16 {
        match self {
            RequestError::Parse(e) => parse_status(e),
            RequestError::Body(e) => body_status(e),
            RequestError::HeaderTimeout | RequestError::BodyTimeout => 408,
            RequestError::NotFound => 404,
            RequestError::MethodNotAllowed { .. } => 405,
            RequestError::PluginNotLoaded(_) => 503,
            RequestError::Plugin(e) => call_status(e),
            RequestError::Overloaded { .. } | RequestError::Quarantined { .. } => 503,
        }
    }

    /// A stable snake_case label for metrics and logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            RequestError::Parse(e) => e.kind(),
            RequestError::Body(e) => e.kind(),
            RequestError::HeaderTimeout => "header_timeout",
            RequestError::BodyTimeout => "body_timeout",
            RequestError::NotFound => "not_found",
            RequestError::MethodNotAllowed { .. } => "method_not_allowed",
            RequestError::PluginNotLoaded(_) => "not_loaded",
            RequestError::Plugin(e) => e.kind(),
            RequestError::Overloaded { .. } => "overloaded",
            RequestError::Quarantined { .. } => "quarantined",
        }
    }

    /// The response a client gets: the status, `{"error": kind, "message": ...}`, `Allow` for 405
    /// and `Retry-After` (whole seconds, at least 1) for a busy or quarantined plugin. Guest internals (trap messages) stay in the log, not in the body.
    pub(crate) fn response(&self) -> Response {
        let message = match self {
            RequestError::Plugin(_) => public_plugin_message(self.status()).to_string(),
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error": self.kind(), "message": message });
        let mut resp = Response::json(self.status(), body.to_string().into_bytes());
        if let RequestError::MethodNotAllowed { allow } = self {
            resp = resp.header("allow", allow.clone().into_bytes());
        }
        if let Some(retry_after) = self.retry_after() {
            resp = resp.header("retry-after", retry_after_secs(retry_after).into_bytes());
        }
        resp
    }

    /// How long a refused client should wait: every `overloaded` and `quarantined` answer says.
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            RequestError::Overloaded { retry_after }
            | RequestError::Quarantined { retry_after } => Some(*retry_after),
            RequestError::Plugin(CallError::Overloaded { .. }) => Some(HOST_POOL_RETRY_AFTER),
            _ => None,
        }
    }
}

/// `Retry-After` when a host pool was empty: a pool place frees when a call ends, within a
/// plugin's deadline (1 s by default), like a place in a plugin's queue.
const HOST_POOL_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// `Retry-After` as delay-seconds, by the rule the SDK uses too (rounded up, never 0: a client
/// told to retry at once would just hammer a plugin that cannot take it).
fn retry_after_secs(d: std::time::Duration) -> String {
    wasmgate_http::encode::retry_after_secs(d).to_string()
}

fn public_plugin_message(status: u16) -> &'static str {
    match status {
        502 => "the plugin answered with an invalid response",
        503 => "the server is too busy to run the plugin now",
        504 => "the plugin ran out of time",
        _ => "the plugin failed",
    }
}

/// Head errors. Exhaustive on purpose: a new kind must be given a status here.
fn parse_status(err: &ParseError) -> u16 {
    use ParseError as E;
    match err {
        E::MethodTooLong | E::UnsupportedTransferCoding => 501,
        E::TargetTooLong => 414,
        E::TooManyFields | E::HeaderSectionTooLarge => 431,
        E::VersionNotSupported => 505,
        E::ContentLengthTooLarge => 413,
        E::UnsupportedExpectation => 417,
        E::InvalidMethod
        | E::InvalidRequestLine
        | E::InvalidTarget
        | E::TargetFormMismatch
        | E::InvalidVersion
        | E::BareLf
        | E::BareCr
        | E::Field(_)
        | E::MissingHost
        | E::DuplicateHost
        | E::InvalidHost
        | E::InvalidContentLength
        | E::ContentLengthOverflow
        | E::ConflictingContentLength
        | E::ContentLengthWithTransferEncoding
        | E::TransferEncodingInHttp10
        | E::InvalidTransferEncoding
        | E::ChunkedNotFinal
        | E::ChunkedRepeated => 400,
    }
}

/// Body errors.
fn body_status(err: &BodyError) -> u16 {
    use BodyError as E;
    match err {
        E::BodyTooLarge => 413,
        E::TrailersTooLarge => 431,
        E::InvalidChunkSize
        | E::ChunkSizeOverflow
        | E::InvalidChunkExtension
        | E::ChunkLineTooLong
        | E::InvalidChunkEnd
        | E::BareLf
        | E::BareCr
        | E::Trailer(_) => 400,
    }
}

/// Plugin call errors: the error boundaries of docs/ABI.md.
fn call_status(err: &CallError) -> u16 {
    match err {
        CallError::Trap { .. } | CallError::MemoryLimit { .. } | CallError::Instantiate { .. } => {
            500
        }
        CallError::FuelExhausted { .. } | CallError::Deadline { .. } => 504,
        CallError::InvalidResponse { .. } => 502,
        // The host's own overload: the same answer as a full plugin queue.
        CallError::Overloaded { .. } => 503,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_protocol_errors_get_their_rfc_status() {
        for (err, status) in [
            (RequestError::Parse(ParseError::TargetTooLong), 414),
            (RequestError::Parse(ParseError::HeaderSectionTooLarge), 431),
            (RequestError::Parse(ParseError::TooManyFields), 431),
            (RequestError::Parse(ParseError::ContentLengthTooLarge), 413),
            (RequestError::Parse(ParseError::VersionNotSupported), 505),
            (
                RequestError::Parse(ParseError::UnsupportedTransferCoding),
                501,
            ),
            (RequestError::Parse(ParseError::MethodTooLong), 501),
            (RequestError::Parse(ParseError::UnsupportedExpectation), 417),
            (RequestError::Parse(ParseError::MissingHost), 400),
            (RequestError::Body(BodyError::BodyTooLarge), 413),
            (RequestError::Body(BodyError::TrailersTooLarge), 431),
            (RequestError::Body(BodyError::ChunkSizeOverflow), 400),
            (RequestError::HeaderTimeout, 408),
            (RequestError::NotFound, 404),
            (RequestError::PluginNotLoaded("p".into()), 503),
            (
                RequestError::Overloaded {
                    retry_after: std::time::Duration::from_secs(1),
                },
                503,
            ),
            (
                RequestError::Quarantined {
                    retry_after: std::time::Duration::from_secs(3),
                },
                503,
            ),
        ] {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.response().status, status);
        }
    }

    #[test]
    fn error_bodies_name_the_kind_and_405_carries_allow() {
        let resp = RequestError::MethodNotAllowed {
            allow: "GET, HEAD".into(),
        }
        .response();
        assert_eq!(resp.status, 405);
        assert!(
            resp.headers
                .iter()
                .any(|(n, v)| n == "allow" && &v[..] == b"GET, HEAD")
        );
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["error"], "method_not_allowed");
    }

    #[test]
    fn busy_and_quarantined_plugins_say_when_to_retry() {
        use std::time::Duration;
        for (err, kind, retry) in [
            (
                RequestError::Overloaded {
                    retry_after: Duration::from_millis(10),
                },
                "overloaded",
                "1",
            ),
            (
                RequestError::Quarantined {
                    retry_after: Duration::from_millis(2500),
                },
                "quarantined",
                "3",
            ),
            (
                RequestError::Quarantined {
                    retry_after: Duration::from_secs(30),
                },
                "quarantined",
                "30",
            ),
            // An empty host pool is the same refusal as a full queue, not a plugin failure.
            (
                RequestError::Plugin(CallError::Overloaded {
                    message: "maximum concurrent limit of 4 for fibers reached".into(),
                    fuel_used: 12,
                }),
                "overloaded",
                "1",
            ),
        ] {
            let resp = err.response();
            assert_eq!(resp.status, 503);
            let header = resp.headers.iter().find(|(n, _)| n == "retry-after");
            assert_eq!(
                header.map(|(_, v)| &v[..]),
                Some(retry.as_bytes()),
                "{err:?}"
            );
            let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(body["error"], kind);
        }
    }
}
