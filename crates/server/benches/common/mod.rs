//! Inputs shared by the benchmarks (`micro.rs`, `parser.rs`), and the two parsers brought to the
//! same information so that they can be compared fairly.
//!
//! "The same information" is what a server needs before it can route and answer: method, target,
//! version, every field line, the Host, whether the connection persists, and the body de-framed
//! into one contiguous buffer (Content-Length or chunked, trailers checked and dropped). wasmgate's
//! parser produces all of it (and validates more: RFC 9112 framing rules, the Host's syntax, the
//! target's form). httparse produces the request line and field lines only, so [`Theirs`] adds the
//! one pass over the fields and the body de-framing that a server built on it has to write, using
//! httparse's own helpers (`parse_chunk_size`, `parse_headers`) for chunked bodies.

#![allow(dead_code)] // each bench binary uses a different subset

use wasmgate_http::Limits as HttpLimits;
use wasmgate_http::{BodyDecoder, BodyStatus, Parser, Status};

/// A browser navigation: a long target with a query and 13 field lines, as Firefox sends them.
pub const BROWSER_GET: &[u8] =
    b"GET /articles/2024/wasm-on-the-server?ref=home&utm_source=news HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=3f9a1c0e7b2d4a6f8e1c; theme=dark; consent=yes\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Priority: u=0, i\r\n\r\n";

/// An API call: a small JSON body with Content-Length and a bearer token.
pub const JSON_POST: &[u8] = b"POST /api/users HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\n\
Accept: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo\r\n\
Content-Length: 58\r\n\r\n{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\",\"age\":36}";

/// A chunked upload: three chunks (one with an extension), the last chunk and one trailer field.
pub const CHUNKED_POST: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
10\r\n0123456789abcdef\r\n10;ext=1\r\n0123456789abcdef\r\n8\r\n01234567\r\n0\r\nTrailer: x\r\n\r\n";

/// Three requests back to back in one buffer, as a pipelining client sends them.
pub fn pipelined() -> Vec<u8> {
    [BROWSER_GET, JSON_POST, BROWSER_GET].concat()
}

/// The inputs, by name, in the order reports list them.
pub fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("browser_get", BROWSER_GET.to_vec()),
        ("json_post", JSON_POST.to_vec()),
        ("pipelined_3", pipelined()),
        ("chunked", CHUNKED_POST.to_vec()),
    ]
}

/// What both parsers report for one request, so a test can check they agree.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub consumed: usize,
    pub fields: usize,
    pub keep_alive: bool,
    pub body_len: usize,
}

/// wasmgate's parser, reused across requests as a connection reuses it (one headers `Vec`), and
/// a body buffer reused the same way.
pub struct Ours {
    parser: Parser,
    limits: HttpLimits,
    pub body: Vec<u8>,
}

impl Ours {
    pub fn new() -> Ours {
        let limits = HttpLimits::default();
        Ours {
            parser: Parser::new(limits),
            limits,
            body: Vec::with_capacity(1024),
        }
    }

    /// Parses one request at the start of `input`: the head, then the body it declares.
    pub fn one(&mut self, input: &[u8]) -> Summary {
        self.parser.reset();
        self.body.clear();
        let Ok(Status::Complete) = self.parser.parse(input) else {
            panic!("valid input")
        };
        let head = self.parser.head();
        let mut decoder = BodyDecoder::new(head.framing, &self.limits);
        let (used, status) = decoder
            .decode(&input[head.head_len..], &mut self.body)
            .expect("valid body");
        assert_eq!(status, BodyStatus::Complete);
        Summary {
            consumed: head.head_len + used,
            fields: head.headers.len(),
            keep_alive: head.keep_alive,
            body_len: self.body.len(),
        }
    }

    /// Every request in `input`, back to back; returns how many.
    pub fn all(&mut self, input: &[u8]) -> usize {
        let (mut at, mut n) = (0, 0);
        while at < input.len() {
            at += self.one(&input[at..]).consumed;
            n += 1;
        }
        n
    }
}

/// httparse (request line and fields) plus what a server on it must add: one pass over the fields
/// for framing, Host and persistence, and the body de-framed into a reused buffer.
pub struct Theirs {
    pub body: Vec<u8>,
}

impl Theirs {
    pub fn new() -> Theirs {
        Theirs {
            body: Vec::with_capacity(1024),
        }
    }

    pub fn one(&mut self, input: &[u8]) -> Summary {
        self.body.clear();
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(head_len) = req.parse(input).expect("valid input") else {
            panic!("valid input")
        };
        let (mut length, mut chunked, mut host, mut close) = (0usize, false, false, false);
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .expect("valid length");
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = h.value.eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"host") {
                host = true;
            } else if name.eq_ignore_ascii_case(b"connection") {
                close = h.value.eq_ignore_ascii_case(b"close");
            }
        }
        assert!(host, "HTTP/1.1 needs a Host");
        let mut at = head_len;
        if chunked {
            at += self.dechunk(&input[at..]);
        } else {
            self.body.extend_from_slice(&input[at..at + length]);
            at += length;
        }
        Summary {
            consumed: at,
            fields: req.headers.len(),
            keep_alive: !close && req.version == Some(1),
            body_len: self.body.len(),
        }
    }

    /// Chunks with httparse's `parse_chunk_size`, the trailer section with `parse_headers`.
    fn dechunk(&mut self, input: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let httparse::Status::Complete((n, size)) =
                httparse::parse_chunk_size(&input[at..]).expect("valid chunk size")
            else {
                panic!("complete chunk")
            };
            at += n;
            if size == 0 {
                let mut trailers = [httparse::EMPTY_HEADER; 8];
                let httparse::Status::Complete((n, _)) =
                    httparse::parse_headers(&input[at..], &mut trailers).expect("valid trailers")
                else {
                    panic!("complete trailers")
                };
                return at + n;
            }
            let size = size as usize;
            self.body.extend_from_slice(&input[at..at + size]);
            assert_eq!(&input[at + size..at + size + 2], b"\r\n");
            at += size + 2;
        }
    }

    pub fn all(&mut self, input: &[u8]) -> usize {
        let (mut at, mut n) = (0, 0);
        while at < input.len() {
            at += self.one(&input[at..]).consumed;
            n += 1;
        }
        n
    }
}
