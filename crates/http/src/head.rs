//! The parsed request head: [`RequestHead`] and the small types it is made of, plus [`HeadView`],
//! the borrowed view that turns its spans into `&str`/`&[u8]`.
//!
//! A head stores offsets ([`Span`]s) into the caller's receive buffer, never bytes, so parsing
//! borrows nothing and allocates nothing per request. This module owns the shape of the result and
//! its accessors only: it must not parse (that is `parse`, `fields`, `target`) or judge semantics
//! (that is `semantics`).

/// A byte range of the caller's buffer. `u32` keeps heads small; the parser caps its limits so
/// offsets always fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Number of bytes.
    pub len: u32,
}

impl Span {
    /// The span `[start, end)`. Offsets are bounded by the header/trailer limits, which the parser
    /// clamps to `u32::MAX`.
    pub(crate) fn between(start: usize, end: usize) -> Self {
        Self {
            start: start as u32,
            len: (end - start) as u32,
        }
    }

    /// The bytes this span covers in `buf`, which must be the buffer that was parsed. Out of range
    /// (a different buffer) gives an empty slice rather than a panic.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let start = self.start as usize;
        buf.get(start..start + self.len as usize)
            .unwrap_or_default()
    }

    /// Whether the span covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sub-span `[from, to)` relative to this span's start.
    pub(crate) fn sub(&self, from: usize, to: usize) -> Self {
        Self {
            start: self.start + from as u32,
            len: (to - from) as u32,
        }
    }
}

/// The request's protocol version. Any `HTTP/1.x` with x >= 2 is read as 1.1 (RFC 9110 §2.5: a
/// recipient of a higher minor version processes it as the highest it supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// `HTTP/1.0`: closes by default, no chunked requests.
    Http10,
    /// `HTTP/1.1` (and any `HTTP/1.x`, x >= 1).
    #[default]
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
        }
    }
}

/// The four request-target forms (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetForm {
    /// `/path?query`, the usual one.
    #[default]
    Origin,
    /// `http://authority/path?query`: a server MUST accept it (RFC 9112 §3.2.2).
    Absolute,
    /// `host:port`, CONNECT only.
    Authority,
    /// `*`, OPTIONS only.
    Asterisk,
}

/// How the body is delimited, decided from the head alone (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// No Content-Length and no Transfer-Encoding: a request has no body.
    #[default]
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// One field line: a token name (case as received) and its value without surrounding OWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The field name, a token, case as received.
    pub name: Span,
    /// The field value without leading and trailing whitespace.
    pub value: Span,
}

/// A parsed, validated request head. All spans index the buffer given to `Parser::parse`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// The method token (case-sensitive, RFC 9110 §9.1).
    pub method: Span,
    /// The whole request-target, as received.
    pub target: Span,
    /// Which of the four forms the target has.
    pub form: TargetForm,
    /// The path inside the target: empty for authority-form and for an absolute-form target with
    /// an empty path (whose path is "/", see [`HeadView::path`]); `*` for asterisk-form.
    pub path: Span,
    /// The query after '?', without the '?' (present but empty for `/p?`).
    pub query: Option<Span>,
    /// The protocol version of the request line.
    pub version: Version,
    /// Field lines in received order.
    pub headers: Vec<Header>,
    /// The authority the request is for: the target's for absolute- and authority-form (the Host
    /// field is then ignored, RFC 9112 §3.2.2), else the Host field's value (None on HTTP/1.0
    /// without Host; may be empty, RFC 9112 §3.2).
    pub host: Option<Span>,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request after this one (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1: the client waits for 100 before sending the body.
    pub expect_continue: bool,
    /// Bytes of the buffer the head occupies (leading empty lines included); the body starts here.
    pub head_len: usize,
}

impl RequestHead {
    /// A borrowed view resolving spans against `buf`, which must be the buffer that was parsed.
    pub fn view<'a>(&'a self, buf: &'a [u8]) -> HeadView<'a> {
        HeadView { head: self, buf }
    }

    pub(crate) fn clear(&mut self) {
        let mut headers = std::mem::take(&mut self.headers);
        headers.clear();
        *self = Self {
            headers,
            ..Self::default()
        };
    }
}

/// Convenient `&str` / `&[u8]` access to a [`RequestHead`].
#[derive(Debug, Clone, Copy)]
pub struct HeadView<'a> {
    head: &'a RequestHead,
    buf: &'a [u8],
}

/// Spans that the parser validated as ASCII convert without failure; a wrong buffer gives "".
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl<'a> HeadView<'a> {
    /// The head this view reads.
    pub fn head(&self) -> &'a RequestHead {
        self.head
    }

    /// The method, case as received.
    pub fn method(&self) -> &'a str {
        ascii(self.head.method.get(self.buf))
    }

    /// The request-target exactly as received.
    pub fn target(&self) -> &'a str {
        ascii(self.head.target.get(self.buf))
    }

    /// The path, still percent-encoded. "/" for an absolute-form target with an empty path
    /// (RFC 9112 §3.2.2 / RFC 9110 §4.2.3), "" for authority-form, "*" for asterisk-form.
    pub fn path(&self) -> &'a str {
        if self.head.path.is_empty() && self.head.form == TargetForm::Absolute {
            return "/";
        }
        ascii(self.head.path.get(self.buf))
    }

    /// The query without its '?', still percent-encoded.
    pub fn query(&self) -> Option<&'a str> {
        self.head.query.map(|q| ascii(q.get(self.buf)))
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// `(name, value)` pairs in received order; names are tokens, so `&str`; values may hold
    /// obs-text, so bytes.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let buf = self.buf;
        self.head
            .headers
            .iter()
            .map(move |h| (ascii(h.name.get(buf)), h.value.get(buf)))
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The authority the request is for (see [`RequestHead::host`]); validated as ASCII.
    pub fn host(&self) -> Option<&'a str> {
        self.head.host.map(|h| ascii(h.get(self.buf)))
    }
}
