//! Checking a client's credentials: [`constant_time_eq`] to compare a secret with what a client
//! sent, and [`check_bearer`] to admit a request by its bearer token (RFC 6750) or answer 401.
//! Reading the token is the request's ([`Request::bearer_token`]).
//!
//! Why it exists: comparing a token with `==` stops at the first byte that differs, so the time
//! a refusal takes tells an attacker how much of a guess was right, and a secret can be found a
//! byte at a time. Here the time of a comparison depends only on the length of what the client
//! sent (which the client knows anyway), never on the secret's bytes nor on where the first
//! difference is; the secret's *length* is hidden too, up to the cache behaviour of reading it.
//! The secret itself comes from the plugin's configuration (a `secret = true` variable, read
//! with [`var`](crate::var)). This module must not store or log a credential, and never
//! returns one in a response.

use crate::request::Request;
use crate::response::Response;

/// Whether `given` (what the client sent) equals `secret`, in time that depends on
/// `given.len()` only: every byte of `given` is compared, whatever the secret's length or
/// content, and the result is decided once, at the end. The order of the arguments matters: the
/// untrusted value first. An empty `secret` equals only an empty `given`.
///
/// ```
/// use wasmgate_sdk::auth::constant_time_eq;
///
/// assert!(constant_time_eq(b"s3cret", b"s3cret"));
/// assert!(!constant_time_eq(b"s3creT", b"s3cret"));
/// assert!(!constant_time_eq(b"s3cre", b"s3cret"));
/// assert!(!constant_time_eq(b"s3crets", b"s3cret"));
/// assert!(!constant_time_eq(b"", b"s3cret"));
/// ```
pub fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    // One comparison of two lengths: no branch depends on where they differ.
    let mut diff = u8::from(given.len() != secret.len());
    let last = secret.len().saturating_sub(1);
    for (i, &g) in given.iter().enumerate() {
        // Past the secret's end, keep reading its last byte (the lengths already differ, so
        // the answer is false): the loop's work is the same whatever the secret's length.
        let s = secret.get(i.min(last)).copied().unwrap_or(0);
        diff |= g ^ s;
    }
    // Keeps the compiler from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The `WWW-Authenticate` challenge of a refusal: `Bearer`, with `error="invalid_token"` when a
/// token was sent but is not the one (RFC 6750, section 3).
const CHALLENGE: &str = "Bearer";
const CHALLENGE_INVALID: &str = r#"Bearer error="invalid_token""#;

/// Admits `req` when its bearer token equals `secret` (compared with [`constant_time_eq`]);
/// otherwise the response to send: 401 with a `WWW-Authenticate: Bearer` challenge (with
/// `error="invalid_token"` when a token was sent but is wrong) and the JSON error body
/// `{"error": "unauthorized", ...}`. The response never repeats the token. An empty `secret`
/// admits no one: a missing configuration value must not open the door.
///
/// ```
/// use wasmgate_sdk::{auth, testing, Request, Response};
///
/// fn handle(req: Request) -> Result<Response, Response> {
///     let secret = wasmgate_sdk::var("api_token").unwrap_or_default();
///     auth::check_bearer(&req, &secret)?;
///     Ok(Response::text(200, "welcome"))
/// }
///
/// testing::set_var("api_token", "t0ken");
/// let ok = testing::call(handle, Request::builder().header("Authorization", "Bearer t0ken").build());
/// assert_eq!(ok.status(), 200);
/// let wrong = testing::call(handle, Request::builder().header("Authorization", "Bearer nope").build());
/// assert_eq!(wrong.status(), 401);
/// assert_eq!(wrong.header_value("www-authenticate"), Some(r#"Bearer error="invalid_token""#));
/// let none = testing::call(handle, Request::builder().build());
/// assert_eq!(none.header_value("www-authenticate"), Some("Bearer"));
/// ```
pub fn check_bearer(req: &Request, secret: impl AsRef<[u8]>) -> Result<(), Response> {
    let secret = secret.as_ref();
    let Some(token) = req.bearer_token() else {
        return Err(unauthorized(CHALLENGE, "a bearer token is required"));
    };
    // Compared even for an empty secret, so that case takes no shorter path.
    let equal = constant_time_eq(token.as_bytes(), secret);
    if equal && !secret.is_empty() {
        Ok(())
    } else {
        Err(unauthorized(
            CHALLENGE_INVALID,
            "the bearer token is not valid",
        ))
    }
}

fn unauthorized(challenge: &str, message: &str) -> Response {
    Response::error(401, "unauthorized", message).header("WWW-Authenticate", challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_length_and_every_byte_agree() {
        let secret = b"correct horse";
        assert!(constant_time_eq(secret, secret));
        for given in [
            &b""[..],
            b"c",
            b"correct hors",
            b"correct horsf",
            b"Correct horse",
            b"correct horse ",
            b"correct horsecorrect horse",
        ] {
            assert!(!constant_time_eq(given, secret), "{given:?}");
        }
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"x", b""));
        // A prefix of the secret followed by its last byte repeated is still refused: the
        // reads past the secret's end do not count as matches.
        assert!(!constant_time_eq(b"abcc", b"abc"));
    }

    #[test]
    fn an_empty_secret_admits_no_one() {
        let req = Request::builder()
            .header("Authorization", "Bearer x")
            .build();
        let refused = check_bearer(&req, "").unwrap_err();
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.header_value("www-authenticate"),
            Some(CHALLENGE_INVALID)
        );
        assert!(check_bearer(&req, "x").is_ok());
        let malformed = Request::builder().header("Authorization", "Bearer").build();
        let refused = check_bearer(&malformed, "x").unwrap_err();
        assert_eq!(refused.header_value("www-authenticate"), Some(CHALLENGE));
    }
}
