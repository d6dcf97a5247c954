//! What a syntactically valid head means (RFC 9110/9112): body framing, Host, persistence and
//! Expect, decided in one pass over the field lines once the head is complete.
//!
//! It owns those four decisions and the list/number grammars they need. It must not scan raw
//! bytes for syntax (the field lines are already valid) nor touch the body. The order of the
//! final checks is deliberate: framing and Host errors (400) first, then 501, 413, and 417 last,
//! so a request gets the most fundamental complaint.

use super::bytes::TCHAR;
use super::error::ParseError;
use super::head::{Framing, RequestHead, Span, TargetForm, Version};
use super::target::{PortRule, valid_authority};
use crate::Limits;

/// What the framing fields said, accumulated across repeated field lines.
#[derive(Default)]
struct Codings {
    /// A Transfer-Encoding field was present (even an empty one).
    present: bool,
    /// Some member was syntactically invalid.
    invalid: bool,
    /// Times `chunked` appeared, and whether it is the last member so far.
    chunked: u32,
    last_chunked: bool,
    /// A coding other than `chunked` appeared.
    unknown: bool,
}

/// Fills `framing`, `host`, `keep_alive` and `expect_continue` of a head whose request line and
/// field lines are parsed, or says why the request must be refused.
pub(crate) fn finish(
    head: &mut RequestHead,
    buf: &[u8],
    limits: &Limits,
) -> Result<(), ParseError> {
    let mut host: Option<Span> = None;
    let mut hosts = 0u32;
    let mut length: Option<u64> = None;
    let mut codings = Codings::default();
    let (mut close, mut keep_alive_token) = (false, false);
    let (mut continue_expected, mut other_expectation) = (false, false);

    for h in &head.headers {
        // Most fields are none of the five: one table load and one predictable branch skip them.
        let first = buf.get(h.name.start as usize).copied().unwrap_or(0);
        if CANDIDATE_LENGTHS[first as usize] & (1u32 << h.name.len.min(31)) == 0 {
            continue;
        }
        let (name, value) = (h.name.get(buf), h.value.get(buf));
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                host = Some(h.value);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                content_length(value, &mut length)?
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_encoding(value, &mut codings)
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in list(value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                for member in list(value) {
                    if member.eq_ignore_ascii_case(b"100-continue") {
                        continue_expected = true;
                    } else {
                        other_expectation = true;
                    }
                }
            }
            _ => {}
        }
    }

    head.host = check_host(head, buf, host, hosts)?;
    head.framing = framing(head.version, length, &codings, limits)?;
    // RFC 9110 §10.1.1: 417 for an expectation we do not meet; a 100-continue in an HTTP/1.0
    // request MUST be ignored.
    if other_expectation {
        return Err(ParseError::UnsupportedExpectation);
    }
    head.expect_continue = continue_expected && head.version == Version::Http11;
    // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive" (RFC 9112 §C.2.2).
    head.keep_alive = match head.version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    Ok(())
}

/// For a field name's first byte, the lengths (as bits) of the fields `finish` interprets that
/// start with it, case-insensitively: Host (4), Expect (6), Connection (10), Content-Length (14),
/// Transfer-Encoding (17). Names of other lengths or first letters are skipped at once.
static CANDIDATE_LENGTHS: [u32; 256] = {
    let mut t = [0u32; 256];
    let names: [&[u8]; 5] = [
        b"host",
        b"expect",
        b"connection",
        b"content-length",
        b"transfer-encoding",
    ];
    let mut i = 0;
    while i < names.len() {
        let (first, len) = (names[i][0], names[i].len());
        t[first as usize] |= 1 << len;
        t[first.to_ascii_uppercase() as usize] |= 1 << len;
        i += 1;
    }
    t
};

/// RFC 9112 §3.2: a 1.1 request MUST have exactly one Host; any request with several, or with an
/// invalid value, gets 400. For absolute- and authority-form the target's authority wins.
fn check_host(
    head: &RequestHead,
    buf: &[u8],
    host: Option<Span>,
    hosts: u32,
) -> Result<Option<Span>, ParseError> {
    if hosts > 1 {
        return Err(ParseError::DuplicateHost);
    }
    if hosts == 0 && head.version == Version::Http11 {
        return Err(ParseError::MissingHost);
    }
    if let Some(h) = host
        && !valid_authority(h.get(buf), PortRule::Optional)
    {
        return Err(ParseError::InvalidHost);
    }
    Ok(match head.form {
        // The parser already put the target's authority there.
        TargetForm::Absolute | TargetForm::Authority => head.host,
        TargetForm::Origin | TargetForm::Asterisk => host,
    })
}

/// RFC 9112 §6.1 and §6.3 for requests: chunked must be final and unique, TE excludes CL and
/// HTTP/1.0, CL must be valid and within the body limit, neither means no body.
fn framing(
    version: Version,
    length: Option<u64>,
    te: &Codings,
    limits: &Limits,
) -> Result<Framing, ParseError> {
    if te.present {
        if version == Version::Http10 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        if length.is_some() {
            return Err(ParseError::ContentLengthWithTransferEncoding);
        }
        if te.invalid {
            return Err(ParseError::InvalidTransferEncoding);
        }
        if !te.last_chunked {
            return Err(ParseError::ChunkedNotFinal);
        }
        if te.chunked > 1 {
            return Err(ParseError::ChunkedRepeated);
        }
        if te.unknown {
            return Err(ParseError::UnsupportedTransferCoding);
        }
        return Ok(Framing::Chunked);
    }
    match length {
        None => Ok(Framing::None),
        Some(n) if n > limits.max_body_bytes => Err(ParseError::ContentLengthTooLarge),
        Some(n) => Ok(Framing::Length(n)),
    }
}

/// `Content-Length = 1*DIGIT`; a repeated field or a comma list is accepted only when every
/// member is the same number (RFC 9110 §8.6), anything else is invalid framing.
fn content_length(value: &[u8], length: &mut Option<u64>) -> Result<(), ParseError> {
    for member in value.split(|&b| b == b',') {
        let digits = trim_ows(member);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::InvalidContentLength);
        }
        let n = digits
            .iter()
            .try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or(ParseError::ContentLengthOverflow)?;
        match *length {
            Some(previous) if previous != n => return Err(ParseError::ConflictingContentLength),
            _ => *length = Some(n),
        }
    }
    Ok(())
}

/// `Transfer-Encoding = #transfer-coding`, `transfer-coding = token *( OWS ";" OWS
/// transfer-parameter )` (RFC 9112 §6.1, RFC 9110 §10.1.4). Several field lines form one list.
fn transfer_encoding(value: &[u8], codings: &mut Codings) {
    codings.present = true;
    for member in list(value) {
        let name_len = member
            .iter()
            .position(|&b| !TCHAR[b as usize])
            .unwrap_or(member.len());
        let (name, params) = member.split_at(name_len);
        if name.is_empty() || !parameters(params) {
            codings.invalid = true;
        }
        let chunked = name.eq_ignore_ascii_case(b"chunked");
        // chunked defines no parameters, so "chunked;x=y" is not a coding we can trust.
        codings.invalid |= chunked && !params.is_empty();
        codings.chunked += u32::from(chunked);
        codings.unknown |= !chunked;
        codings.last_chunked = chunked;
    }
}

/// `*( OWS ";" OWS token "=" ( token / quoted-string ) )` (RFC 9110 §5.6.6).
fn parameters(mut rest: &[u8]) -> bool {
    loop {
        rest = trim_ows(rest);
        let Some(after_semi) = rest.strip_prefix(b";") else {
            return rest.is_empty();
        };
        let p = trim_ows(after_semi);
        let name_len = p
            .iter()
            .position(|&b| !TCHAR[b as usize])
            .unwrap_or(p.len());
        let Some(value) = p[name_len..].strip_prefix(b"=").filter(|_| name_len > 0) else {
            return false;
        };
        let consumed = if value.first() == Some(&b'"') {
            match quoted_string_len(value) {
                Some(n) => n,
                None => return false,
            }
        } else {
            value
                .iter()
                .position(|&b| !TCHAR[b as usize])
                .unwrap_or(value.len())
        };
        if consumed == 0 {
            return false;
        }
        rest = &value[consumed..];
    }
}

/// Length of the quoted-string at the start of `s` (RFC 9110 §5.6.4), if it is closed.
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => i += 1,
            _ => return None,
        }
    }
    None
}

/// Members of a `#rule` list, OWS-trimmed, empty members skipped (RFC 9110 §5.6.1: recipients
/// MUST accept and ignore a reasonable number of them).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|m| !m.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
