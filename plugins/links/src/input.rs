//! What a client sends to `POST /links` and whether it is acceptable: the caller's API key, the
//! JSON body, the URL and the code. Pure checks (no store, no network), each answering the
//! message a client needs to fix its request.

use serde::Deserialize;
use wasmgate_sdk::{Request, Response};

/// The longest URL accepted, in bytes.
pub(crate) const MAX_URL_BYTES: usize = 2048;
/// The shortest and longest code a client may choose, in characters.
pub(crate) const CODE_LEN: std::ops::RangeInclusive<usize> = 3..=32;

/// The body of `POST /links`. Unknown fields are ignored, so clients may send more.
#[derive(Debug, Deserialize)]
pub(crate) struct NewLink {
    pub(crate) url: String,
    /// The code to use instead of a random one; `null` is the same as absent.
    #[serde(default)]
    pub(crate) code: Option<String>,
}

/// The body as a [`NewLink`]. Anything else (not JSON, not an object, no string `url`) is a
/// 400 with the parser's explanation: the request is malformed, whereas an unacceptable URL or
/// code in a well-formed body is a 422 (see [`check_url`], [`check_code`]).
pub(crate) fn new_link(req: &Request) -> Result<NewLink, Response> {
    req.json::<NewLink>().map_err(|e| {
        let message = format!("{e}; expected {{\"url\": \"https://...\", \"code\"?: \"...\"}}");
        Response::error(400, e.kind(), message)
    })
}

/// Lets the request through when the variable `api_key` is unset or empty (creation is open),
/// or when it carries `Authorization: Bearer <api_key>`; otherwise a 401 that never shows the
/// key. A host failure while reading the variable refuses the request (fail closed).
pub(crate) fn authorize(req: &Request) -> Result<(), Response> {
    let key = wasmgate_sdk::try_var("api_key").map_err(Response::from)?;
    let Some(key) = key.as_deref().map(str::trim).filter(|k| !k.is_empty()) else {
        return Ok(());
    };
    match req.header("authorization").and_then(bearer_token) {
        Some(token) if constant_time_eq(token.as_bytes(), key.as_bytes()) => Ok(()),
        Some(_) => Err(unauthorized(
            Some("invalid_token"),
            "the API key in the Authorization header is not valid",
        )),
        None => Err(unauthorized(
            None,
            "creating links requires an API key: send `Authorization: Bearer <key>`",
        )),
    }
}

/// 401 with the RFC 6750 challenge (`error="invalid_token"` when a key was sent but is wrong).
fn unauthorized(error: Option<&str>, message: &str) -> Response {
    let challenge = match error {
        Some(error) => format!("Bearer realm=\"links\", error=\"{error}\""),
        None => "Bearer realm=\"links\"".to_owned(),
    };
    Response::error(401, "unauthorized", message).header("www-authenticate", challenge)
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `presented` equals `expected` (non-empty), in a time that depends only on
/// `presented`: every byte is compared whatever the first difference, and the key's bytes are
/// read cyclically rather than stopping at its end, so neither its content nor its length shows
/// in the timing.
pub(crate) fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let mut diff = presented.len() ^ expected.len();
    for (i, p) in presented.iter().enumerate() {
        diff |= usize::from(p ^ expected[i % expected.len()]);
    }
    std::hint::black_box(diff) == 0
}

/// The URL to store (surrounding whitespace removed) when it is an absolute `http` or `https`
/// URL with a host, at most [`MAX_URL_BYTES`] long, made of visible ASCII (so it is safe as a
/// `Location` header), and without credentials (`https://bank.example@evil.example/` is a
/// classic phishing disguise). Otherwise the reason, for a 422.
pub(crate) fn check_url(raw: &str) -> Result<&str, String> {
    let url = raw.trim();
    if url.is_empty() {
        return Err("`url` is empty".into());
    }
    if url.len() > MAX_URL_BYTES {
        return Err(format!(
            "`url` is {} bytes long; at most {MAX_URL_BYTES} are accepted",
            url.len()
        ));
    }
    if let Some(c) = url.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "`url` contains {c:?}: spaces, control and non-ASCII characters must be \
             percent-encoded (and international domain names written in punycode)"
        ));
    }
    let not_absolute = || {
        "`url` must be an absolute http or https URL, such as https://example.org/page".to_owned()
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(not_absolute)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(not_absolute());
        }
        return Err(format!(
            "`url` has the scheme `{scheme}`; only http and https are accepted"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("`url` must not contain credentials (user:password@)".into());
    }
    let (host, port) = split_host_port(authority);
    if host.is_empty() {
        return Err("`url` has no host".into());
    }
    if !is_host(host) {
        return Err(format!("`url` has an invalid host `{host}`"));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!("`url` has an invalid port `{port}`"));
    }
    Ok(url)
}

/// `host[:port]` or `[ipv6][:port]`.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                (
                    host,
                    rest.strip_prefix(':')
                        .or(Some(rest).filter(|r| !r.is_empty())),
                )
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// A DNS name or IPv4 address (letters, digits, `-`, `_`, dots between non-empty labels, an
/// optional final dot), or an IPv6 literal in brackets.
fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        return inner.strip_suffix(']').is_some_and(|ip| {
            ip.contains(':')
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        });
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `code` when it is 3 to 32 characters of `A-Z a-z 0-9 _ -`; otherwise the reason, for a 422.
pub(crate) fn check_code(code: &str) -> Result<&str, String> {
    if !CODE_LEN.contains(&code.len()) {
        return Err(format!(
            "`code` must be {} to {} characters long",
            CODE_LEN.start(),
            CODE_LEN.end()
        ));
    }
    if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("`code` may only contain letters, digits, `_` and `-`".into());
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptable_urls() {
        let long = format!("https://example.org/{}", "a".repeat(MAX_URL_BYTES - 20));
        assert_eq!(long.len(), MAX_URL_BYTES);
        for url in [
            "https://example.org",
            "http://example.org/a/b?c=d&e=%20f#g",
            "HTTPS://Example.ORG/",
            "https://example.org:8443/x",
            "http://127.0.0.1:8080/",
            "http://[::1]:8080/x",
            "https://[2001:db8::1]/",
            "https://xn--bcher-kva.example/",
            "https://example.org./",
            "https://example.org?q",
            "https://example.org#top",
            long.as_str(),
        ] {
            assert_eq!(check_url(url), Ok(url), "{url}");
        }
        assert_eq!(
            check_url("  https://example.org/\n"),
            Ok("https://example.org/")
        );
    }

    #[test]
    fn unacceptable_urls_say_why() {
        let too_long = format!("https://example.org/{}", "a".repeat(MAX_URL_BYTES - 19));
        for (url, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("/relative/path", "absolute"),
            ("example.org", "absolute"),
            ("javascript:alert(1)", "absolute"),
            ("mailto:ada@example.org", "absolute"),
            ("://example.org", "absolute"),
            ("ftp://example.org/file", "scheme `ftp`"),
            ("file:///etc/passwd", "scheme `file`"),
            ("https://", "no host"),
            ("https:///path", "no host"),
            ("https://:443/", "no host"),
            ("https://user:pw@example.org/", "credentials"),
            ("https://bank.example@evil.example/", "credentials"),
            ("https://exa mple.org/", "' '"),
            ("https://example.org/a b", "' '"),
            ("https://example.org/\r\nx", "'\\r'"),
            ("https://bücher.example/", "'ü'"),
            ("https://example..org/", "invalid host"),
            ("https://.example.org/", "invalid host"),
            ("https://exa!mple.org/", "invalid host"),
            ("https://[::1/", "invalid host"),
            ("https://[zz]/", "invalid host"),
            ("https://example.org:/", "invalid port"),
            ("https://example.org:0/", "invalid port"),
            ("https://example.org:65536/", "invalid port"),
            ("https://example.org:http/", "invalid port"),
            ("https://[::1]x/", "invalid port"),
            (too_long.as_str(), "2049 bytes"),
        ] {
            let err = check_url(url).unwrap_err();
            assert!(err.contains(why), "{url:?}: {err}");
        }
    }

    #[test]
    fn codes() {
        for ok in ["abc", "my-link_2", "ABCdef123", &"x".repeat(32)] {
            assert_eq!(check_code(ok), Ok(ok));
        }
        for bad in ["", "ab", &"x".repeat(33)] {
            assert!(check_code(bad).unwrap_err().contains("3 to 32"), "{bad}");
        }
        for bad in ["a b", "a/b", "abc.", "naïve", "a%20b", "abc\n"] {
            assert!(check_code(bad).unwrap_err().contains("letters"), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER\tabc"), Some("abc"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("Basic YTpi"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3creT", b"s3cret"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(
            !constant_time_eq(b"s3crets3cret", b"s3cret"),
            "cyclic reads"
        );
        assert!(!constant_time_eq(b"", b"s3cret"));
        assert!(!constant_time_eq(b"", b""), "an empty key never matches");
    }
}
