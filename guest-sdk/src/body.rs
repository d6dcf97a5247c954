//! [`BodyError`]: why a request body could not be read as text or JSON, and what to tell the
//! client about it.
//!
//! This module owns the mapping from "the client sent a bad body" to a status and a message.
//! It exists separately from `request` so that the error type, its statuses and its conversion
//! into a [`Response`] are in one place. It must not parse anything itself; parsing stays in
//! [`Request::text`](crate::Request::text) and [`Request::json`](crate::Request::json).

use crate::response::Response;
use std::fmt;

/// A request body that is not what the handler asked for. It is the client's fault, so it turns
/// into a 4xx [`Response`], never a 500: with a handler returning `Result<Response, Response>`,
/// `req.json()?` answers the client with a JSON error in the host's shape, such as
/// `{"error":"invalid_json","message":"request body is not valid JSON: …"}`.
///
/// ```
/// use wasmgate_sdk::{Request, Response};
///
/// fn create(req: Request) -> Result<Response, Response> {
///     let v: serde_json::Value = req.json()?;
///     Ok(Response::json(201, &v))
/// }
///
/// let resp = create(Request::builder().body("{oops").build()).unwrap_err();
/// assert_eq!(resp.status(), 400);
/// assert_eq!(resp.header_value("content-type"), Some("application/json"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not valid UTF-8 (from [`Request::text`](crate::Request::text)).
    NotUtf8(std::str::Utf8Error),
    /// JSON was expected and the body is empty or only whitespace.
    Empty,
    /// The body is not JSON, or JSON that does not fit the requested type.
    Json(serde_json::Error),
}

impl BodyError {
    /// The status this error deserves: 422 Unprocessable Content when the JSON is well-formed but
    /// has the wrong shape (a missing field, a string instead of a number), 400 otherwise.
    ///
    /// ```
    /// use wasmgate_sdk::Request;
    ///
    /// let req = Request::builder().body(r#"{"n":"x"}"#).build();
    /// #[derive(serde::Deserialize, Debug)]
    /// struct N { n: u32 }
    /// assert_eq!(req.json::<N>().unwrap_err().status(), 422);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            Self::Json(e) if e.is_data() => 422,
            _ => 400,
        }
    }

    /// A stable snake_case name for the error body's `error` field: `not_utf8`, `empty_body`,
    /// `invalid_json` or `wrong_json_shape`.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().body("[1,").build();
    /// let err = req.json::<Vec<u8>>().unwrap_err();
    /// assert_eq!(err.kind(), "invalid_json");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotUtf8(_) => "not_utf8",
            Self::Empty => "empty_body",
            Self::Json(e) if e.is_data() => "wrong_json_shape",
            Self::Json(_) => "invalid_json",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8(e) => write!(f, "request body is not valid UTF-8: {e}"),
            Self::Empty => f.write_str("request body is empty; expected JSON"),
            Self::Json(e) if e.is_data() => write!(f, "request body has the wrong shape: {e}"),
            Self::Json(e) => write!(f, "request body is not valid JSON: {e}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotUtf8(e) => Some(e),
            Self::Json(e) => Some(e),
            Self::Empty => None,
        }
    }
}

/// `{"error": "<kind>", "message": "<message>"}` with [`BodyError::status`] (see
/// [`Response::error`]), so `?` can answer the client.
impl From<BodyError> for Response {
    fn from(err: BodyError) -> Response {
        Response::error(err.status(), err.kind(), err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Request;

    #[test]
    fn each_kind_has_a_status_and_a_message() {
        let utf8 = Request::builder()
            .body(vec![b'a', 0xc3])
            .build()
            .text()
            .unwrap_err();
        assert_eq!(utf8.status(), 400);
        assert!(
            utf8.to_string()
                .starts_with("request body is not valid UTF-8"),
            "{utf8}"
        );
        assert!(std::error::Error::source(&utf8).is_some());

        assert_eq!(BodyError::Empty.status(), 400);
        assert_eq!(
            BodyError::Empty.to_string(),
            "request body is empty; expected JSON"
        );

        let resp = Response::from(BodyError::Empty);
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.body_text(),
            Some(r#"{"error":"empty_body","message":"request body is empty; expected JSON"}"#)
        );
    }
}
