//! The responses handlers give most often, by name: redirects, `204 No Content`, and JSON error
//! answers in the host's own shape, `{"error": kind, "message": message}`.
//!
//! This module owns the shape of those answers, so that a plugin's 404 looks like the host's
//! 404 to a client. It builds on the plain builder methods of [`Response`] and must not bypass
//! their checks: a `Location` with a line break is refused here like any other header value.

use super::{Response, ResponseError};

/// The statuses [`Response::redirect`] accepts: the redirects that carry a `Location`.
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

impl Response {
    /// A redirect to `location` with `status` 301, 302, 303, 307 or 308 and an empty body. Any
    /// other status is recorded as [`ResponseError::InvalidRedirect`] (the client then gets the
    /// explained 500, like for a refused header); so is a `location` the host would refuse as a
    /// header value.
    ///
    /// ```
    /// use wasmgate_sdk::{Response, ResponseError};
    ///
    /// let resp = Response::redirect(307, "/v2/items");
    /// assert_eq!((resp.status(), resp.header_value("location")), (307, Some("/v2/items")));
    /// let not_a_redirect = Response::redirect(200, "/x");
    /// assert_eq!(not_a_redirect.build_error(), Some(&ResponseError::InvalidRedirect(200)));
    /// ```
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        let resp = Response::new(status);
        if !REDIRECTS.contains(&status) {
            return resp.fail(ResponseError::InvalidRedirect(status));
        }
        resp.header("location", location)
    }

    /// `302 Found`: a temporary redirect (a client may change POST into GET).
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::found("https://example.org/");
    /// assert_eq!(resp.status(), 302);
    /// assert_eq!(resp.header_value("Location"), Some("https://example.org/"));
    /// ```
    pub fn found(location: impl Into<String>) -> Self {
        Self::redirect(302, location)
    }

    /// `303 See Other`: "the result is over there, GET it", the usual answer to a form POST.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Response::see_other("/links/abc").status(), 303);
    /// ```
    pub fn see_other(location: impl Into<String>) -> Self {
        Self::redirect(303, location)
    }

    /// `301 Moved Permanently`: clients and caches may remember it.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Response::moved_permanently("/new").status(), 301);
    /// ```
    pub fn moved_permanently(location: impl Into<String>) -> Self {
        Self::redirect(301, location)
    }

    /// `204 No Content`: success with nothing to say (e.g. after a `DELETE`).
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::no_content();
    /// assert_eq!((resp.status(), resp.body_bytes().len()), (204, 0));
    /// ```
    pub fn no_content() -> Self {
        Self::new(204)
    }

    /// A JSON error answer in the host's shape: `status`, `content-type: application/json`,
    /// body `{"error": kind, "message": message}`. `kind` is a stable snake_case word a client
    /// can match on; `message` is for people.
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::error(409, "conflict", "that code is taken");
    /// assert_eq!(resp.status(), 409);
    /// let expected = r#"{"error":"conflict","message":"that code is taken"}"#;
    /// assert_eq!(resp.body_text(), Some(expected));
    /// ```
    pub fn error(status: u16, kind: &str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self::json(
            status,
            &serde_json::json!({ "error": kind, "message": message }),
        )
    }

    /// `404` with `{"error": "not_found", "message": "not found"}`.
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::not_found();
    /// assert_eq!(resp.status(), 404);
    /// assert_eq!(resp.body_text(), Some(r#"{"error":"not_found","message":"not found"}"#));
    /// ```
    pub fn not_found() -> Self {
        Self::error(404, "not_found", "not found")
    }

    /// `400` with `{"error": "bad_request", "message": message}`.
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::bad_request("`url` must be an absolute URL");
    /// assert_eq!(resp.status(), 400);
    /// let body: serde_json::Value = resp.body_json()?;
    /// assert_eq!(body["message"], "`url` must be an absolute URL");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::error(400, "bad_request", message)
    }

    /// `429` with `{"error": "too_many_requests", ...}` and a `Retry-After` of `wait` in whole
    /// seconds, rounded up and at least 1 ([`time::retry_after_secs`](crate::time::retry_after_secs)).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let resp = wasmgate_sdk::Response::too_many_requests(Duration::from_millis(1500));
    /// assert_eq!(resp.status(), 429);
    /// assert_eq!(resp.header_value("retry-after"), Some("2"));
    /// ```
    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        let secs = crate::time::retry_after_secs(wait);
        Self::error(
            429,
            "too_many_requests",
            "too many requests, try again later",
        )
        .header("Retry-After", secs.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_redirect_statuses_and_clean_locations() {
        for status in REDIRECTS {
            let resp = Response::redirect(status, "/x");
            assert!(resp.build_error().is_none(), "{status}");
            assert_eq!(resp.headers().collect::<Vec<_>>(), [("location", "/x")]);
        }
        for status in [200, 300, 304, 305, 306, 404] {
            let resp = Response::redirect(status, "/x");
            assert_eq!(
                resp.build_error(),
                Some(&ResponseError::InvalidRedirect(status))
            );
            assert_eq!(resp.header_value("location"), None);
        }
        let split = Response::found("/x\r\nSet-Cookie: a=1");
        assert!(matches!(
            split.build_error(),
            Some(ResponseError::InvalidHeaderValue { .. })
        ));
        assert_eq!(split.or_explained_500().status(), 500);
    }

    #[test]
    fn error_bodies_escape_their_text() {
        let resp = Response::error(422, "invalid", "a \"quoted\"\nline");
        let body: serde_json::Value = resp.body_json().unwrap();
        assert_eq!(body["message"], "a \"quoted\"\nline");
        assert_eq!(resp.header_value("content-type"), Some("application/json"));
    }
}
