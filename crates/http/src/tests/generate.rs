//! Proptest strategies for valid requests: random methods, origin- and absolute-form targets,
//! versions, field lines with random OWS and obs-text, and bodies (none, Content-Length, chunked
//! with random extensions, hex case, leading zeros and trailers). Each comes with what a correct
//! parser must report.

use proptest::prelude::*;

/// A generated request and the answers expected from the parser and the body decoder.
#[derive(Debug, Clone)]
pub(super) struct Generated {
    /// The whole request: head then body.
    pub bytes: Vec<u8>,
    pub head_len: usize,
    pub method: String,
    pub target: String,
    pub http10: bool,
    /// (name, value without OWS) in order, including the ones we added (Host, framing).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

const TCHARS: &str = "[A-Za-z0-9!#$%&'*+.^_`|~-]";

fn token(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{TCHARS}{{1,{max}}}")).unwrap()
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"
        ])
        .prop_map(str::to_owned),
        token(12).prop_filter("CONNECT needs authority-form", |m| m != "CONNECT"),
    ]
}

fn target() -> impl Strategy<Value = String> {
    let path = "/[A-Za-z0-9._~%!$&'()*+,;=:@/{}|^`\"<>\\\\\\[\\]-]{0,40}";
    let query = proptest::option::of("[A-Za-z0-9._~%!$&'()*+,;=:@/?{}-]{0,20}");
    let authority = proptest::option::of(prop_oneof![
        Just("http://example.com".to_owned()),
        Just("HTTPS://[::1]:8443".to_owned()),
        "http://[a-z0-9.-]{1,12}(:[0-9]{1,5})?",
    ]);
    (authority, path, query).prop_map(|(authority, path, query)| {
        let mut t = authority.unwrap_or_default();
        t.push_str(&path);
        if let Some(q) = query {
            t.push('?');
            t.push_str(&q);
        }
        t
    })
}

/// A field value: VCHAR and obs-text with inner SP/HTAB, no surrounding whitespace.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let byte =
        prop_oneof![8 => 0x21u8..=0x7e, 1 => 0x80u8..=0xff, 1 => Just(b' '), 1 => Just(b'\t')];
    prop::collection::vec(byte, 0..24).prop_map(|mut v| {
        while v.last().is_some_and(|b| matches!(b, b' ' | b'\t')) {
            v.pop();
        }
        while v.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
            v.remove(0);
        }
        v
    })
}

fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,3}"
}

/// An extra field whose name has no meaning to the parser (so its semantics cannot fail).
fn field() -> impl Strategy<Value = (String, String, Vec<u8>, String)> {
    let special = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
    ];
    let name = token(16).prop_filter("semantic name", move |n| {
        !special.iter().any(|s| n.eq_ignore_ascii_case(s))
    });
    (name, ows(), value(), ows())
}

/// Body framing and contents.
#[derive(Debug, Clone)]
enum Body {
    None,
    Length(Vec<u8>),
    /// Chunks (non-empty), each with an extension string, an upper-case flag and leading zeros.
    Chunked(
        Vec<(Vec<u8>, String, bool, usize)>,
        Vec<(String, String, Vec<u8>, String)>,
    ),
}

fn extension() -> impl Strategy<Value = String> {
    let one = prop_oneof![
        token(8).prop_map(|n| format!(";{n}")),
        (token(8), token(8)).prop_map(|(n, v)| format!(";{n}={v}")),
        (token(8), "[ !#-\\[\\]-~]{0,8}").prop_map(|(n, v)| format!(" ; {n} = \"{v}\"")),
        Just(";a=\"\\\"q\\\\\"".to_owned()),
    ];
    prop::collection::vec(one, 0..3).prop_map(|v| v.concat())
}

fn body() -> impl Strategy<Value = Body> {
    let bytes = prop::collection::vec(any::<u8>(), 0..64);
    let chunk = (
        prop::collection::vec(any::<u8>(), 1..40),
        extension(),
        any::<bool>(),
        0usize..3,
    );
    prop_oneof![
        Just(Body::None),
        bytes.prop_map(Body::Length),
        (
            prop::collection::vec(chunk, 0..5),
            prop::collection::vec(field(), 0..3)
        )
            .prop_map(|(c, t)| Body::Chunked(c, t)),
    ]
}

fn push_field(bytes: &mut Vec<u8>, (name, ows1, value, ows2): &(String, String, Vec<u8>, String)) {
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(b':');
    bytes.extend_from_slice(ows1.as_bytes());
    bytes.extend_from_slice(value);
    bytes.extend_from_slice(ows2.as_bytes());
    bytes.extend_from_slice(b"\r\n");
}

/// A valid request with its expected parse.
pub(super) fn request() -> impl Strategy<Value = Generated> {
    let fields = prop::collection::vec(field(), 0..8);
    (
        method(),
        target(),
        any::<bool>(),
        fields,
        any::<prop::sample::Index>(),
        body(),
        0usize..3,
    )
        .prop_map(
            |(method, target, http10, mut fields, host_at, body, empty_lines)| {
                // Chunked is not allowed on HTTP/1.0: fall back to Content-Length there.
                let body = match body {
                    Body::Chunked(chunks, _) if http10 => {
                        Body::Length(chunks.into_iter().flat_map(|c| c.0).collect())
                    }
                    b => b,
                };
                let host = (
                    "Host".to_owned(),
                    " ".to_owned(),
                    b"example.com".to_vec(),
                    String::new(),
                );
                fields.insert(host_at.index(fields.len() + 1), host);
                match &body {
                    Body::None => {}
                    Body::Length(b) => fields.push((
                        "Content-Length".into(),
                        " ".into(),
                        b.len().to_string().into_bytes(),
                        "".into(),
                    )),
                    Body::Chunked(..) => fields.push((
                        "transfer-encoding".into(),
                        "".into(),
                        b"Chunked".to_vec(),
                        " ".into(),
                    )),
                }
                let mut bytes = b"\r\n".repeat(empty_lines);
                let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
                bytes.extend_from_slice(format!("{method} {target} {version}\r\n").as_bytes());
                fields.iter().for_each(|f| push_field(&mut bytes, f));
                bytes.extend_from_slice(b"\r\n");
                let head_len = bytes.len();
                let body = encode_body(&mut bytes, body);
                let headers = fields.into_iter().map(|(n, _, v, _)| (n, v)).collect();
                Generated {
                    bytes,
                    head_len,
                    method,
                    target,
                    http10,
                    headers,
                    body,
                }
            },
        )
}

/// Appends the body's wire form to `bytes`, returns the decoded body.
fn encode_body(bytes: &mut Vec<u8>, body: Body) -> Vec<u8> {
    match body {
        Body::None => Vec::new(),
        Body::Length(b) => {
            bytes.extend_from_slice(&b);
            b
        }
        Body::Chunked(chunks, trailers) => {
            let mut decoded = Vec::new();
            for (data, ext, upper, zeros) in chunks {
                let size = if upper {
                    format!("{:X}", data.len())
                } else {
                    format!("{:x}", data.len())
                };
                bytes.extend_from_slice(format!("{}{size}{ext}\r\n", "0".repeat(zeros)).as_bytes());
                bytes.extend_from_slice(&data);
                bytes.extend_from_slice(b"\r\n");
                decoded.extend_from_slice(&data);
            }
            bytes.extend_from_slice(b"0\r\n");
            trailers.iter().for_each(|t| push_field(bytes, t));
            bytes.extend_from_slice(b"\r\n");
            decoded
        }
    }
}
