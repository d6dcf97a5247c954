//! What runs between the ABI boundary and the plugin author's function: [`IntoResponse`], the
//! safe request → response pipeline `serve`, and the one-line panic hook.
//!
//! This module owns the policy for everything that is not a plain `Response`: `Err` values
//! become 500s (the message goes to stderr, not to the client), refused responses become
//! explained 500s, undecodable input and unencodable output become traps. It works on owned
//! buffers only; turning pointers into buffers and back is `sys`'s job, so that all of this stays
//! safe and runs in native tests.

use crate::request::Request;
use crate::response::Response;
use std::fmt::Display;
use std::panic::PanicHookInfo;

/// What a handler may return: a [`Response`], or a `Result` whose `Err` is either a
/// `Response` (sent as is, e.g. from `req.json()?`) or any `Display` error (logged to stderr,
/// answered with a plain 500 so internals do not leak to clients).
///
/// Pick the error type by whose fault it is: `Result<Response, Response>` when `?` should answer
/// the client (a [`BodyError`](crate::BodyError) converts into a 400/422 response), and
/// `Result<Response, E: Display>` for internal failures. With the latter, a `BodyError` bubbled
/// up by `?` is an internal failure too, i.e. a 500.
///
/// ```
/// use wasmgate_sdk::{IntoResponse, Request, Response};
///
/// fn lookup(req: Request) -> Result<Response, String> {
///     let id: u32 = req.param("id").unwrap_or("").parse().map_err(|e| format!("bad id: {e}"))?;
///     Ok(Response::json(200, &id))
/// }
///
/// let ok = lookup(Request::builder().param("id", "7").build()).into_response();
/// assert_eq!(ok.body_text(), Some("7"));
/// // stderr: "wasmgate-sdk: handler returned an error, answering 500: bad id: ..."
/// let err = lookup(Request::builder().param("id", "x").build()).into_response();
/// assert_eq!(err.status(), 500);
/// assert_eq!(err.body_text(), Some("500 Internal Server Error\n"));
/// ```
pub trait IntoResponse {
    /// Converts the handler's return value into the response to send.
    ///
    /// ```
    /// use wasmgate_sdk::{IntoResponse, Response};
    ///
    /// let early: Result<Response, Response> = Err(Response::new(409));
    /// assert_eq!(early.into_response().status(), 409);
    /// ```
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl<R: IntoResponse, E: Display> IntoResponse for Result<R, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(r) => r.into_response(),
            Err(e) => {
                eprintln!("wasmgate-sdk: handler returned an error, answering 500: {e}");
                Response::text(500, "500 Internal Server Error\n")
            }
        }
    }
}

/// `Err(response)` is an early answer chosen by the handler, not a failure. (This does not
/// overlap the impl above because `Response` does not implement `Display`.)
impl<R: IntoResponse> IntoResponse for Result<R, Response> {
    fn into_response(self) -> Response {
        match self {
            Ok(r) => r.into_response(),
            Err(resp) => resp,
        }
    }
}

/// Decodes `input`, runs `handler`, returns the encoded response. The host guarantees a valid
/// encoding and a response always fits the ABI's `u32` sizes on wasm32, so failing either is an
/// ABI bug and traps with a message rather than inventing an HTTP answer.
pub(crate) fn serve<R: IntoResponse>(
    input: Vec<u8>,
    handler: impl FnOnce(Request) -> R,
) -> Vec<u8> {
    let request = Request::decode(input).unwrap_or_else(|e| {
        panic!("wasmgate-sdk: the host sent an undecodable request (ABI mismatch?): {e}")
    });
    handler(request)
        .into_response()
        .or_explained_500()
        .encode()
        .unwrap_or_else(|e| panic!("wasmgate-sdk: the response cannot be encoded: {e}"))
}

/// Installs [`panic_line`] as the panic hook, once per instance. The host logs each stderr line
/// as its own event, and std's default hook spreads one panic over two or three lines.
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{}", panic_line(info)))));
}

/// `wasmgate plugin panicked at src/lib.rs:12:5: <message>`, with newlines in the message
/// escaped so it stays one line.
fn panic_line(info: &PanicHookInfo<'_>) -> String {
    let message = info
        .payload_as_str()
        .unwrap_or("(non-string panic payload)");
    let location = info
        .location()
        .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    format!("wasmgate plugin panicked{location}: {}", one_line(message))
}

fn one_line(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::RawResponse;

    fn run<R: IntoResponse>(
        req: Request,
        handler: impl FnOnce(Request) -> R,
    ) -> RawResponse<'static> {
        let out: &'static [u8] = serve(req.encode().unwrap(), handler).leak();
        RawResponse::decode(out).unwrap()
    }

    #[test]
    fn serve_round_trips_a_response() {
        let raw = run(
            Request::builder().param("n", "x").build(),
            |req: Request| {
                Response::text(200, req.param("n").unwrap().to_owned()).header("x-a", "1")
            },
        );
        assert_eq!(raw.status, 200);
        assert_eq!(
            raw.headers,
            [
                (&b"content-type"[..], &b"text/plain; charset=utf-8"[..]),
                (b"x-a", b"1")
            ]
        );
        assert_eq!(raw.body, b"x");
    }

    #[test]
    fn serve_explains_refused_responses_and_hides_error_details() {
        let raw = run(Request::builder().build(), |_| Response::new(100));
        assert_eq!(raw.status, 500);
        assert!(String::from_utf8_lossy(raw.body).contains("status 100 is outside 200..=599"));

        let raw = run(Request::builder().build(), |_| {
            Err::<Response, _>("db password is hunter2")
        });
        assert_eq!(raw.status, 500);
        assert_eq!(raw.body, b"500 Internal Server Error\n");

        let raw = run(Request::builder().build(), |_| {
            Err::<Response, _>(Response::new(409))
        });
        assert_eq!(raw.status, 409);
    }

    #[test]
    #[should_panic(expected = "undecodable request")]
    fn serve_traps_on_undecodable_input() {
        serve(vec![1, 2, 3], |_| Response::ok());
    }

    #[test]
    fn one_line_escapes_line_breaks() {
        assert_eq!(one_line("a\nb\r\nc\\n"), "a\\nb\\r\\nc\\\\n");
    }
}
