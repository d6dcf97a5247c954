//! The chunked transfer coding (RFC 9112 §7.1) as a resumable state machine: chunk-size lines
//! with extensions, chunk data, the last chunk and the trailer section.
//!
//! It owns the chunked grammar and its three limits (chunk line, cumulative body, trailer
//! section). It must not keep trailer fields (they are validated with `fields` and discarded: we
//! offer them to no one) nor consume a byte past the final CRLF.

use super::bytes::TCHAR;
use super::error::BodyError;
use super::fields::{FieldEvent, FieldLines};
use super::status::BodyStatus;
use crate::Limits;

/// Where the decoder stands. The chunk-size line states follow the grammar
/// `chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) CRLF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `1*HEXDIG`; `digits` counts them (the first byte must be one).
    Size {
        digits: u32,
    },
    /// BWS after the size: only more BWS or ';' may follow.
    SizeBws,
    /// After ';': BWS, then an extension name.
    ExtNameStart,
    ExtName,
    /// BWS after an extension name: '=' or ';' may follow.
    ExtNameBws,
    /// After '=': BWS, then a token or a quoted-string.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    /// After a backslash inside a quoted-string.
    ExtQuotedPair,
    /// Right after a value (token end or closing quote): ';', CR or BWS.
    ExtValueEnd,
    /// BWS after a value: only ';' or more BWS.
    ExtValueBws,
    /// Saw the CR ending the chunk-size line.
    SizeLf,
    /// Copying chunk data.
    Data,
    DataCr,
    DataLf,
    /// After the last chunk: trailer field lines and the final CRLF.
    Trailers,
    Done,
}

/// Decodes a chunked body. No allocation; trailers are checked, counted and dropped.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// The chunk-size being read, then the data bytes left in this chunk.
    size: u64,
    /// Bytes of the current chunk-size line so far.
    line_len: usize,
    /// Body bytes decoded so far.
    decoded: u64,
    /// Trailer section bytes so far.
    trailer_len: usize,
    trailer: FieldLines,
    max_body: u64,
    max_line: usize,
    max_trailer: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            decoded: 0,
            trailer_len: 0,
            trailer: FieldLines::new(),
            max_body: limits.max_body_bytes,
            max_line: limits.max_chunk_line_bytes,
            max_trailer: limits.max_trailer_bytes,
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// See `BodyDecoder::decode`.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, BodyStatus), BodyError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Data => i += self.data(&input[i..], out),
                State::Trailers => i += self.trailers(&input[i..])?,
                // Fast paths for whole, plain framing lines; anything else (extensions, a line
                // cut short, an error) goes byte by byte below, which is the authority.
                State::Size { digits: 0 }
                    if let Some((size, n)) = plain_size_line(&input[i..], self.max_line) =>
                {
                    self.size = size;
                    self.line_len = 0;
                    self.chunk_header_done()?;
                    i += n;
                }
                State::DataCr if input[i..].starts_with(b"\r\n") => {
                    self.state = State::Size { digits: 0 };
                    i += 2;
                }
                _ => {
                    self.line_byte(input[i])?;
                    i += 1;
                }
            }
        }
        let status = if self.state == State::Done {
            BodyStatus::Complete
        } else {
            BodyStatus::Partial
        };
        Ok((i, status))
    }

    /// One byte of framing outside chunk data and trailers: a chunk-size line or a data CRLF.
    fn line_byte(&mut self, b: u8) -> Result<(), BodyError> {
        if matches!(self.state, State::DataCr | State::DataLf) {
            return self.data_crlf(b);
        }
        self.line_len += 1;
        if self.line_len > self.max_line {
            return Err(BodyError::ChunkLineTooLong);
        }
        self.state = match (self.state, b) {
            (State::Size { digits }, b) if b.is_ascii_hexdigit() => self.size_digit(digits, b)?,
            (State::Size { digits: 0 }, _) => return Err(BodyError::InvalidChunkSize),
            (State::Size { .. } | State::SizeBws, b' ' | b'\t') => State::SizeBws,
            (State::Size { .. } | State::SizeBws, b';') => State::ExtNameStart,
            (State::Size { .. }, b'\r') => State::SizeLf,
            (State::Size { .. } | State::SizeBws, b'\n') => return Err(BodyError::BareLf),
            (State::Size { .. } | State::SizeBws, _) => return Err(BodyError::InvalidChunkSize),
            (State::ExtNameStart, b' ' | b'\t') => State::ExtNameStart,
            (State::ExtNameStart | State::ExtName, b) if TCHAR[b as usize] => State::ExtName,
            (State::ExtName | State::ExtNameBws, b' ' | b'\t') => State::ExtNameBws,
            (State::ExtName | State::ExtNameBws, b'=') => State::ExtValueStart,
            (State::ExtName | State::ExtNameBws, b';') => State::ExtNameStart,
            (State::ExtName, b'\r') => State::SizeLf,
            (State::ExtValueStart, b' ' | b'\t') => State::ExtValueStart,
            (State::ExtValueStart, b'"') => State::ExtQuoted,
            (State::ExtValueStart | State::ExtToken, b) if TCHAR[b as usize] => State::ExtToken,
            (State::ExtQuoted, b'"') => State::ExtValueEnd,
            (State::ExtQuoted, b'\\') => State::ExtQuotedPair,
            (State::ExtQuoted, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff) => State::ExtQuoted,
            (State::ExtQuotedPair, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff) => State::ExtQuoted,
            (State::ExtToken | State::ExtValueEnd, b'\r') => State::SizeLf,
            (State::ExtToken | State::ExtValueEnd | State::ExtValueBws, b' ' | b'\t') => {
                State::ExtValueBws
            }
            (State::ExtToken | State::ExtValueEnd | State::ExtValueBws, b';') => {
                State::ExtNameStart
            }
            (State::SizeLf, b'\n') => return self.chunk_header_done(),
            (State::SizeLf, _) => return Err(BodyError::BareCr),
            (_, b'\n') => return Err(BodyError::BareLf),
            _ => return Err(BodyError::InvalidChunkExtension),
        };
        Ok(())
    }

    /// Accumulates one hex digit, refusing sizes that overflow a u64.
    fn size_digit(&mut self, digits: u32, b: u8) -> Result<State, BodyError> {
        if self.size >> 60 != 0 {
            return Err(BodyError::ChunkSizeOverflow);
        }
        let value = match b {
            b'0'..=b'9' => b - b'0',
            _ => (b | 0x20) - b'a' + 10,
        };
        self.size = (self.size << 4) | u64::from(value);
        Ok(State::Size { digits: digits + 1 })
    }

    /// The chunk-size line is complete: a zero size starts the trailer section, any other is
    /// checked against the body limit before a single data byte is accepted.
    fn chunk_header_done(&mut self) -> Result<(), BodyError> {
        self.line_len = 0;
        if self.size == 0 {
            self.state = State::Trailers;
        } else if self.size > self.max_body.saturating_sub(self.decoded) {
            return Err(BodyError::BodyTooLarge);
        } else {
            self.state = State::Data;
        }
        Ok(())
    }

    /// Copies as much of the current chunk's data as `input` holds.
    fn data(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let n = input
            .len()
            .min(usize::try_from(self.size).unwrap_or(usize::MAX));
        out.extend_from_slice(&input[..n]);
        self.size -= n as u64;
        self.decoded += n as u64;
        if self.size == 0 {
            self.state = State::DataCr;
        }
        n
    }

    /// Chunk data must be followed by exactly CRLF (RFC 9112 §7.1).
    fn data_crlf(&mut self, b: u8) -> Result<(), BodyError> {
        self.state = match (self.state, b) {
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr, b'\n') => return Err(BodyError::BareLf),
            (State::DataCr, _) => return Err(BodyError::InvalidChunkEnd),
            (_, b'\n') => State::Size { digits: 0 },
            _ => return Err(BodyError::BareCr),
        };
        Ok(())
    }

    /// Trailer field lines up to the final CRLF, within `max_trailer_bytes` (decided as soon as
    /// the bytes seen pass it). Returns the bytes consumed.
    fn trailers(&mut self, input: &[u8]) -> Result<usize, BodyError> {
        let budget = self.max_trailer - self.trailer_len;
        let end = input.len().min(budget);
        let mut pos = 0;
        loop {
            match self.trailer.next(input, &mut pos, end, self.trailer_len) {
                Ok(FieldEvent::Field { .. }) => continue,
                Ok(FieldEvent::End) => {
                    self.state = State::Done;
                    break;
                }
                Ok(FieldEvent::NeedMore) if end < input.len() => {
                    return Err(BodyError::TrailersTooLarge);
                }
                Ok(FieldEvent::NeedMore) => break,
                Err(e) => return Err(e.into()),
            }
        }
        self.trailer_len += pos;
        Ok(pos)
    }
}

/// A complete, ordinary chunk-size line at the start of `input`, decided in one pass: 1 to 15 hex
/// digits (so no overflow is possible), then any number of `;name` or `;name=token` extensions
/// without whitespace or quotes, then CRLF, all within `max_line` bytes. Returns the size and the
/// line's length. Anything else is `None`, for the byte-by-byte machine to decide.
fn plain_size_line(input: &[u8], max_line: usize) -> Option<(u64, usize)> {
    let input = &input[..input.len().min(max_line)];
    let mut size = 0u64;
    let mut i = 0;
    while let Some(digit) = input.get(i).and_then(|&b| (b as char).to_digit(16)) {
        size = (size << 4) | u64::from(digit);
        i += 1;
    }
    if i == 0 || i > 15 {
        return None;
    }
    let token = |mut i: usize| {
        let start = i;
        while input.get(i).is_some_and(|&b| TCHAR[b as usize]) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    while input.get(i) == Some(&b';') {
        i = token(i + 1)?;
        if input.get(i) == Some(&b'=') {
            i = token(i + 1)?;
        }
    }
    (input.get(i..i + 2) == Some(b"\r\n")).then_some((size, i + 2))
}
