//! The request-target's form and structure (RFC 9112 §3.2) and the `uri-host [":" port]` grammar
//! (RFC 3986 §3.2.2-3) shared by absolute-form, authority-form and the Host field.
//!
//! It owns splitting an already byte-checked target into path, query and authority, and deciding
//! whether the form is allowed for the method. It must not check the bytes' classes (the request
//! line scanner did), decode percent-escapes or normalise paths: routing sees the target as sent.

use super::bytes::find_byte;
use super::error::ParseError;
use super::head::TargetForm;
use std::ops::Range;

/// A target split into its parts; ranges are relative to the target's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetParts {
    pub form: TargetForm,
    pub path: Range<usize>,
    pub query: Option<Range<usize>>,
    pub authority: Option<Range<usize>>,
}

/// Classifies `target` (non-empty, visible ASCII) for `method`: one rule per form, in the order of
/// RFC 9112 §3.2.1-4.
pub(crate) fn classify(method: &[u8], target: &[u8]) -> Result<TargetParts, ParseError> {
    let connect = method == b"CONNECT";
    if target == b"*" {
        // asterisk-form "is only used for a server-wide OPTIONS request" (RFC 9112 §3.2.4).
        if method != b"OPTIONS" {
            return Err(ParseError::TargetFormMismatch);
        }
        return Ok(TargetParts {
            form: TargetForm::Asterisk,
            path: 0..1,
            query: None,
            authority: None,
        });
    }
    if target[0] == b'/' {
        if connect {
            return Err(ParseError::TargetFormMismatch);
        }
        let (path, query) = split_query(target, 0);
        return Ok(TargetParts {
            form: TargetForm::Origin,
            path,
            query,
            authority: None,
        });
    }
    if let Some(after_scheme) = http_scheme(target) {
        if connect {
            return Err(ParseError::TargetFormMismatch);
        }
        return absolute(target, after_scheme);
    }
    // authority-form: CONNECT only, and its port is mandatory and valid (RFC 9110 §9.3.6).
    let valid = valid_authority(target, PortRule::Required) && !target.starts_with(b":");
    match (connect, valid) {
        (true, true) => Ok(TargetParts {
            form: TargetForm::Authority,
            path: 0..0,
            query: None,
            authority: Some(0..target.len()),
        }),
        (false, true) => Err(ParseError::TargetFormMismatch),
        (_, false) => Err(ParseError::InvalidTarget),
    }
}

/// `path ["?" query]` starting at `from`.
fn split_query(target: &[u8], from: usize) -> (Range<usize>, Option<Range<usize>>) {
    match find_byte(target, from, b'?') {
        q if q < target.len() => (from..q, Some(q + 1..target.len())),
        _ => (from..target.len(), None),
    }
}

/// If `target` starts with `http://` or `https://` (scheme case-insensitive, RFC 3986 §3.1),
/// the offset of the authority. Other schemes are not ours to serve: 400 via `InvalidTarget`.
fn http_scheme(target: &[u8]) -> Option<usize> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    let is_http = scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https");
    (is_http && target[colon..].starts_with(b"://")).then_some(colon + 3)
}

/// absolute-form `scheme "://" authority path-abempty ["?" query]` (RFC 9112 §3.2.2). The
/// authority must have a host (RFC 9110 §4.2.1: MUST reject an empty one) and no userinfo
/// (RFC 9110 §4.2.4: treat as an error).
fn absolute(target: &[u8], from: usize) -> Result<TargetParts, ParseError> {
    let rest = &target[from..];
    let end = from
        + rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
    let authority = &target[from..end];
    if authority.is_empty()
        || authority[0] == b':'
        || !valid_authority(authority, PortRule::Optional)
    {
        return Err(ParseError::InvalidTarget);
    }
    let (path, query) = split_query(target, end);
    Ok(TargetParts {
        form: TargetForm::Absolute,
        path,
        query,
        authority: Some(from..end),
    })
}

/// Whether `host:port` must carry a port (CONNECT) or may omit it (Host, absolute-form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortRule {
    /// `port = *DIGIT` (RFC 3986 §3.2.3), so "host:" is valid.
    Optional,
    /// A non-empty decimal in 1..=65535 (RFC 9110 §9.3.6: MUST reject an empty or invalid port).
    Required,
}

/// `uri-host [":" port]`. An empty host is valid here (the Host field may be empty, RFC 9112
/// §3.2); callers that need a host check for it. One pass, table-driven: it runs on every request.
pub(crate) fn valid_authority(bytes: &[u8], rule: PortRule) -> bool {
    let mut i = 0;
    if bytes.first() == Some(&b'[') {
        let Some(close) = bytes.iter().position(|&b| b == b']') else {
            return false;
        };
        if !ip_literal(&bytes[1..close]) {
            return false;
        }
        i = close + 1;
    } else {
        // reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4address is a subset of it.
        while i < bytes.len() {
            if REG_NAME[bytes[i] as usize] {
                i += 1;
            } else if bytes[i] == b'%' && is_hex_pair(bytes.get(i + 1..i + 3)) {
                i += 3;
            } else {
                break;
            }
        }
    }
    let port = match &bytes[i..] {
        [] => None,
        [b':', port @ ..] => Some(port),
        _ => return false,
    };
    match (rule, port) {
        (PortRule::Optional, None) => true,
        (PortRule::Optional, Some(p)) => p.iter().all(u8::is_ascii_digit),
        (PortRule::Required, None) => false,
        (PortRule::Required, Some(p)) => {
            let digits = !p.is_empty() && p.len() <= 5 && p.iter().all(u8::is_ascii_digit);
            digits
                && (1..=65535).contains(&p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')))
        }
    }
}

fn is_hex_pair(pair: Option<&[u8]>) -> bool {
    pair.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
}

/// unreserved / sub-delims (RFC 3986 §2.2-3): the bytes of a reg-name besides pct-encoded.
const fn unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'-' | b'.' | b'_' | b'~')
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        )
}

static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = unreserved_or_sub_delim(i as u8);
        i += 1;
    }
    t
};

/// `IP-literal` contents: IPv6address (checked by std's parser, which allocates nothing) or
/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn ip_literal(inner: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inner {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (ver, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !ver.is_empty()
            && ver.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| b == b':' || unreserved_or_sub_delim(b));
    }
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}
