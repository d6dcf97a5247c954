//! The sans-IO, incremental HTTP/1.1 request-head parser (RFC 9112 §2-§5).
//!
//! It owns the request line (leading empty lines, method, request-target, version), drives the
//! field-line machine in `fields`, enforces the head's size limits as soon as they are passed,
//! and hands the finished head to `semantics`. It must not do I/O, allocate per request (the one
//! headers `Vec` is reused), nor map errors to status codes.
//!
//! Line endings: only CRLF. A bare LF or bare CR anywhere in the head is a 400 (RFC 9112 §2.2
//! allows accepting bare LF; we do not, because a front end that disagrees about line ends is
//! the classic request-smuggling setup).

use super::bytes::{scan_target, scan_token};
use super::error::ParseError;
use super::fields::{FieldEvent, FieldLines, trim_end_ows, whole_line};
use super::head::{Header, RequestHead, Span, Version};
use super::semantics;
use super::status::Status;
use super::target;
use crate::Limits;

/// Where the parser stands. The byte at `Parser::pos` is the next one to examine and
/// `Parser::mark` is where the current element began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the request line, where empty lines are skipped (RFC 9112 §2.2 SHOULD).
    Start,
    /// Saw the CR of a leading empty line.
    StartLf,
    Method,
    Target,
    /// `HTTP/x.y` and the CRLF ending the request line.
    Version,
    Fields,
    Done,
    /// Errors are sticky: the parser never resynchronises.
    Failed(ParseError),
}

/// Parses one request head at a time; reusable across the requests of a connection.
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    /// `max_header_bytes`, capped so every offset fits a [`Span`].
    max_head: usize,
    state: State,
    pos: usize,
    mark: usize,
    fields: FieldLines,
    head: RequestHead,
}

impl Parser {
    /// A parser enforcing `limits`, ready for a connection's first request.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            max_head: limits.max_header_bytes.min(u32::MAX as usize),
            state: State::Start,
            pos: 0,
            mark: 0,
            fields: FieldLines::new(),
            head: RequestHead::default(),
        }
    }

    /// Continues parsing. `buf` is everything received so far for this request: between calls it
    /// only grows, keeping its prefix. Work resumes at the byte where the last call stopped.
    ///
    /// Limits are decided on the bytes seen, not on a complete head: once `buf` holds more than
    /// `max_header_bytes` without a complete head, the answer is `HeaderSectionTooLarge`.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Status, ParseError> {
        let result = self.run(buf);
        if let Err(e) = result {
            self.state = State::Failed(e);
        }
        result
    }

    /// The parsed head; meaningful after `Ok(Status::Complete)` and until [`Parser::reset`].
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// Makes the parser ready for the next request, keeping the headers allocation.
    pub fn reset(&mut self) {
        self.state = State::Start;
        self.pos = 0;
        self.mark = 0;
        self.fields.reset();
        self.head.clear();
    }

    /// Runs state transitions until the head completes or the bytes (up to the limit) run out.
    fn run(&mut self, buf: &[u8]) -> Result<Status, ParseError> {
        let end = buf.len().min(self.max_head);
        // A buffer shorter than last time breaks the contract; never index past it.
        debug_assert!(end >= self.pos, "parse() buffer shrank");
        if end < self.pos {
            return Ok(Status::Partial);
        }
        loop {
            let moved = match self.state {
                State::Start => self.start(buf, end)?,
                State::StartLf => self.start_lf(buf, end)?,
                State::Method => self.method(buf, end)?,
                State::Target => self.target(buf, end)?,
                State::Version => self.version(buf, end)?,
                State::Fields => self.fields(buf, end)?,
                State::Done => return Ok(Status::Complete),
                State::Failed(e) => return Err(e),
            };
            if !moved {
                break;
            }
        }
        if end < buf.len() {
            // Stopped at the limit with more bytes waiting: the head cannot fit.
            return Err(ParseError::HeaderSectionTooLarge);
        }
        Ok(Status::Partial)
    }

    /// Skips a leading CRLF or starts the method. Returns whether the state changed.
    fn start(&mut self, buf: &[u8], end: usize) -> Result<bool, ParseError> {
        if self.pos >= end {
            return Ok(false);
        }
        match buf[self.pos] {
            b'\r' => {
                self.pos += 1;
                self.state = State::StartLf;
            }
            b'\n' => return Err(ParseError::BareLf),
            _ => {
                self.mark = self.pos;
                self.state = State::Method;
            }
        }
        Ok(true)
    }

    fn start_lf(&mut self, buf: &[u8], end: usize) -> Result<bool, ParseError> {
        if self.pos >= end {
            return Ok(false);
        }
        if buf[self.pos] != b'\n' {
            return Err(ParseError::BareCr);
        }
        self.pos += 1;
        self.state = State::Start;
        Ok(true)
    }

    /// `method = token`, ended by exactly one SP. Too long is decided before the SP arrives.
    fn method(&mut self, buf: &[u8], end: usize) -> Result<bool, ParseError> {
        let i = scan_token(buf, self.pos, end);
        if i - self.mark > self.limits.max_method_bytes {
            return Err(ParseError::MethodTooLong);
        }
        self.pos = i;
        if i == end {
            return Ok(false);
        }
        match buf[i] {
            _ if i == self.mark => Err(ParseError::InvalidMethod),
            b' ' => {
                self.head.method = Span::between(self.mark, i);
                self.next_element(State::Target);
                Ok(true)
            }
            b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => Err(ParseError::InvalidRequestLine),
            _ => Err(ParseError::InvalidMethod),
        }
    }

    /// `request-target`, ended by exactly one SP, then split by form. Too long is decided before
    /// the SP arrives.
    fn target(&mut self, buf: &[u8], end: usize) -> Result<bool, ParseError> {
        let i = scan_target(buf, self.pos, end);
        if i - self.mark > self.limits.max_target_bytes {
            return Err(ParseError::TargetTooLong);
        }
        self.pos = i;
        if i == end {
            return Ok(false);
        }
        match buf[i] {
            b' ' if i > self.mark => {
                let target = Span::between(self.mark, i);
                let parts = target::classify(self.head.method.get(buf), target.get(buf))?;
                let head = &mut self.head;
                head.target = target;
                head.form = parts.form;
                head.path = target.sub(parts.path.start, parts.path.end);
                head.query = parts.query.map(|q| target.sub(q.start, q.end));
                head.host = parts.authority.map(|a| target.sub(a.start, a.end));
                self.next_element(State::Version);
                Ok(true)
            }
            // A second SP, or a line without a version (HTTP/0.9 style).
            b' ' | b'\r' | b'\n' => Err(ParseError::InvalidRequestLine),
            _ => Err(ParseError::InvalidTarget),
        }
    }

    /// `HTTP-version = "HTTP/" DIGIT "." DIGIT` then CRLF, checked byte by byte so garbage is
    /// refused as soon as it arrives (RFC 9112 §2.3).
    fn version(&mut self, buf: &[u8], end: usize) -> Result<bool, ParseError> {
        // Fast path: the whole `HTTP/x.y\r\n` is here and well-formed.
        if let Some(
            &[
                b'H',
                b'T',
                b'T',
                b'P',
                b'/',
                major,
                b'.',
                minor,
                b'\r',
                b'\n',
            ],
        ) = buf[..end].get(self.pos..self.pos + 10)
            && self.pos == self.mark
            && major.is_ascii_digit()
            && minor.is_ascii_digit()
        {
            self.head.version = version(major, minor)?;
            self.pos += 10;
            self.state = State::Fields;
            return Ok(true);
        }
        while self.pos < end {
            let b = buf[self.pos];
            let ok = match self.pos - self.mark {
                k @ 0..=4 => b == b"HTTP/"[k],
                5 | 7 => b.is_ascii_digit(),
                6 => b == b'.',
                8 if b == b'\n' => return Err(ParseError::BareLf),
                8 => b == b'\r',
                _ if b != b'\n' => return Err(ParseError::BareCr),
                _ => {
                    self.head.version = version(buf[self.mark + 5], buf[self.mark + 7])?;
                    self.pos += 1;
                    self.state = State::Fields;
                    return Ok(true);
                }
            };
            if !ok {
                return Err(ParseError::InvalidVersion);
            }
            self.pos += 1;
        }
        Ok(false)
    }

    /// Field lines until the empty line, then the semantic checks.
    fn fields(&mut self, buf: &[u8], end: usize) -> Result<bool, ParseError> {
        // Fast path: whole, ordinary lines, straight into the headers vector. Anything else (a
        // line cut by the end of the bytes, an error) falls through to the resumable machine at
        // the start of that line.
        if self.fields.at_line_start() {
            let mut pos = self.pos;
            let result = loop {
                match whole_line(buf, pos, end, 0) {
                    Some((FieldEvent::Field { name, value }, next)) => {
                        if self.head.headers.len() >= self.limits.max_headers {
                            break Err(ParseError::TooManyFields);
                        }
                        let value = trim_end_ows(buf, value);
                        self.head.headers.push(Header { name, value });
                        pos = next;
                    }
                    Some((FieldEvent::End, next)) => {
                        pos = next;
                        break Ok(true);
                    }
                    _ => break Ok(false),
                }
            };
            self.pos = pos;
            match result {
                Ok(true) => return self.finish(buf),
                Ok(false) => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            match self.fields.next(buf, &mut self.pos, end, 0)? {
                FieldEvent::NeedMore => return Ok(false),
                FieldEvent::Field { name, value } => {
                    if self.head.headers.len() >= self.limits.max_headers {
                        return Err(ParseError::TooManyFields);
                    }
                    let value = trim_end_ows(buf, value);
                    self.head.headers.push(Header { name, value });
                }
                FieldEvent::End => return self.finish(buf),
            }
        }
    }

    /// The empty line ending the head was consumed: the semantic checks, then done.
    fn finish(&mut self, buf: &[u8]) -> Result<bool, ParseError> {
        self.head.head_len = self.pos;
        semantics::finish(&mut self.head, buf, &self.limits)?;
        self.state = State::Done;
        Ok(true)
    }

    /// Steps over the single SP separator into the next request-line element.
    fn next_element(&mut self, state: State) {
        self.pos += 1;
        self.mark = self.pos;
        self.state = state;
    }
}

/// Maps the version digits: 1.0, 1.x (read as 1.1, RFC 9110 §2.5), >= 2 unsupported, 0.x invalid.
fn version(major: u8, minor: u8) -> Result<Version, ParseError> {
    match (major, minor) {
        (b'1', b'0') => Ok(Version::Http10),
        (b'1', _) => Ok(Version::Http11),
        (b'0', _) => Err(ParseError::InvalidVersion),
        _ => Err(ParseError::VersionNotSupported),
    }
}
