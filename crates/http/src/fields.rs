//! Field lines (RFC 9112 §5) as a resumable byte-level state machine, shared by the request head
//! parser and the chunked trailer section.
//!
//! It owns syntax only: which bytes may form a name or a value, CRLF discipline, obs-fold. It must
//! not interpret fields (that is `semantics`), count them or bound the section (the callers do, by
//! capping the `end` they pass), and it never allocates.

use super::bytes::{TCHAR, name_colon, scan_value};
use super::error::FieldError;
use super::head::Span;

/// Where the field-line machine stands. Positions are absolute offsets (see [`FieldLines::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line: a field name, or the CR of the empty line ending the section.
    LineStart,
    /// Inside a field name that started at `start`.
    Name { start: usize },
    /// After the colon, skipping leading OWS.
    ValueOws { name: Span },
    /// Inside a field value whose first non-OWS byte is at `start`.
    Value { name: Span, start: usize },
    /// Saw the CR ending a field line; `value` is untrimmed on the right.
    LineLf { name: Span, value: Span },
    /// Saw the CR of the empty line.
    FinalLf,
}

/// What [`FieldLines::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldEvent {
    /// A complete field line. `value` has its leading OWS removed but not its trailing OWS: only a
    /// caller holding the whole buffer can trim backwards (see [`trim_end_ows`]).
    Field { name: Span, value: Span },
    /// The empty line ending the section was consumed.
    End,
    /// Every byte up to `end` was consumed without finishing a line.
    NeedMore,
}

/// A section of field lines, resumable at any byte.
#[derive(Debug, Clone)]
pub(crate) struct FieldLines {
    state: State,
}

/// How one transition moved the cursor, and where to.
enum Step {
    /// The handler advanced the cursor itself (or not at all): continue in this state.
    Stay(State),
    /// Consume the current byte and continue in this state.
    Byte(State),
    /// Consume the current byte: a line is finished.
    Done(FieldEvent),
}

impl FieldLines {
    pub(crate) const fn new() -> Self {
        Self {
            state: State::LineStart,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.state = State::LineStart;
    }

    /// Whether the next byte starts a line, so [`whole_line`] may be tried there.
    pub(crate) fn at_line_start(&self) -> bool {
        self.state == State::LineStart
    }

    /// Advances over `buf[*pos..end]` until one line completes or the bytes run out.
    ///
    /// `base` is the absolute offset of `buf[0]`: spans in events and in the saved state are
    /// `base + index`, so a caller that only ever sees slices of a stream (the trailer decoder)
    /// still gets consistent positions. `end` lets the caller enforce its size limit for free.
    ///
    /// State and cursor live in locals while scanning and are stored back once: the transitions
    /// are free functions of (state, cursor), so a whole line costs no memory traffic.
    pub(crate) fn next(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        end: usize,
        base: usize,
    ) -> Result<FieldEvent, FieldError> {
        if self.state == State::LineStart
            && let Some((event, next)) = whole_line(buf, *pos, end, base)
        {
            *pos = next;
            return Ok(event);
        }
        let (mut state, mut i) = (self.state, *pos);
        let result = loop {
            if i >= end {
                break Ok(FieldEvent::NeedMore);
            }
            let step = match state {
                State::LineStart => line_start(buf[i], i + base),
                State::Name { start } => name(buf, &mut i, end, base, start),
                State::ValueOws { name } => Ok(value_ows(buf, &mut i, end, base, name)),
                State::Value { name, start } => value(buf, &mut i, end, base, name, start),
                State::LineLf { name, value } => lf(buf[i], FieldEvent::Field { name, value }),
                State::FinalLf => lf(buf[i], FieldEvent::End),
            };
            match step {
                Ok(Step::Stay(next)) => state = next,
                Ok(Step::Byte(next)) => {
                    state = next;
                    i += 1;
                }
                Ok(Step::Done(event)) => {
                    state = State::LineStart;
                    i += 1;
                    break Ok(event);
                }
                Err(e) => break Err(e),
            }
        };
        (self.state, *pos) = (state, i);
        result
    }
}

/// The fast path: a complete, valid line starting at `start` (which must be at a line start, see
/// [`FieldLines::at_line_start`]), parsed in one straight pass with no state bookkeeping. `None`
/// (bytes run out, or anything unusual) sends the caller to the resumable transitions of
/// [`FieldLines::next`], which rescan this one line and are the authority on errors. Callers
/// with a whole head at hand (the request parser) loop over it directly: inlined, a field line
/// costs no call and no state stored to memory.
#[inline(always)]
pub(crate) fn whole_line(
    buf: &[u8],
    start: usize,
    end: usize,
    base: usize,
) -> Option<(FieldEvent, usize)> {
    let end = end.min(buf.len());
    if start + 2 <= end && buf[start..start + 2] == *b"\r\n" {
        return Some((FieldEvent::End, start + 2));
    }
    let mut i = name_colon(buf, start, end)?;
    let name = Span::between(start + base, i + base);
    i += 1;
    while i < end && matches!(buf[i], b' ' | b'\t') {
        i += 1;
    }
    let value_start = i;
    i = scan_value(buf, i, end);
    if i + 1 < end && buf[i] == b'\r' && buf[i + 1] == b'\n' {
        let value = Span::between(value_start + base, i + base);
        return Some((FieldEvent::Field { name, value }, i + 2));
    }
    None
}

/// First byte of a line: CR ends the section, whitespace is obs-fold, anything else starts a
/// name (validated by [`name`], so a bad first byte is reported as a bad name).
fn line_start(b: u8, at: usize) -> Result<Step, FieldError> {
    match b {
        b'\r' => Ok(Step::Byte(State::FinalLf)),
        b'\n' => Err(FieldError::BareLf),
        b' ' | b'\t' => Err(FieldError::ObsFold),
        b':' => Err(FieldError::EmptyName),
        _ => Ok(Step::Stay(State::Name { start: at })),
    }
}

/// Scans tchars; the name ends only at a colon with no whitespace before it.
fn name(
    buf: &[u8],
    i: &mut usize,
    end: usize,
    base: usize,
    start: usize,
) -> Result<Step, FieldError> {
    while *i < end && TCHAR[buf[*i] as usize] {
        *i += 1;
    }
    if *i == end {
        return Ok(Step::Stay(State::Name { start }));
    }
    match buf[*i] {
        b':' => Ok(Step::Byte(State::ValueOws {
            name: Span::between(start, *i + base),
        })),
        b' ' | b'\t' => Err(FieldError::WhitespaceBeforeColon),
        b'\r' | b'\n' => Err(FieldError::MissingColon),
        _ => Err(FieldError::InvalidName),
    }
}

/// Skips the OWS after the colon, so the value span starts at its first visible byte.
fn value_ows(buf: &[u8], i: &mut usize, end: usize, base: usize, name: Span) -> Step {
    while *i < end && matches!(buf[*i], b' ' | b'\t') {
        *i += 1;
    }
    if *i == end {
        return Step::Stay(State::ValueOws { name });
    }
    Step::Stay(State::Value {
        name,
        start: *i + base,
    })
}

/// Scans value bytes up to the CR; any other CTL is an error.
fn value(
    buf: &[u8],
    i: &mut usize,
    end: usize,
    base: usize,
    name: Span,
    start: usize,
) -> Result<Step, FieldError> {
    *i = scan_value(buf, *i, end);
    if *i == end {
        return Ok(Step::Stay(State::Value { name, start }));
    }
    match buf[*i] {
        b'\r' => Ok(Step::Byte(State::LineLf {
            name,
            value: Span::between(start, *i + base),
        })),
        b'\n' => Err(FieldError::BareLf),
        _ => Err(FieldError::InvalidValue),
    }
}

/// The byte after a CR must be LF.
fn lf(b: u8, event: FieldEvent) -> Result<Step, FieldError> {
    if b == b'\n' {
        Ok(Step::Done(event))
    } else {
        Err(FieldError::BareCr)
    }
}

/// Removes trailing SP/HTAB from a value span (RFC 9110 §5.5: OWS is not part of the value).
pub(crate) fn trim_end_ows(buf: &[u8], mut value: Span) -> Span {
    while value.len > 0 && matches!(buf[(value.start + value.len - 1) as usize], b' ' | b'\t') {
        value.len -= 1;
    }
    value
}
