//! The mechanics under `codec`: a bounds-checked reader, an exact-size writer, and the names
//! each field has in error messages.
//!
//! It owns "how to read or write one `u32`, one `str`, one counted list" and nothing about which
//! fields a request or response has; that order lives in `codec`, next to the ABI grammar it
//! mirrors. Every read goes through `get`, never through indexing, so a malformed input can only
//! produce a [`DecodeError`], never a panic.

use crate::message::{DecodeError, EncodeError, Field, RawPair};

/// How a `str` field is named in errors: itself, and its length prefix.
#[derive(Clone, Copy)]
pub(crate) struct StrField {
    name: &'static str,
    length: &'static str,
}

/// How a counted list of pairs is named in errors.
#[derive(Clone, Copy)]
pub(crate) struct PairField {
    count: &'static str,
    name: StrField,
    value: StrField,
}

pub(crate) const fn field(name: &'static str, length: &'static str) -> StrField {
    StrField { name, length }
}

pub(crate) const METHOD: StrField = field("method", "method length");
pub(crate) const TARGET: StrField = field("target", "target length");
pub(crate) const PATH: StrField = field("path", "path length");
pub(crate) const QUERY: StrField = field("query", "query length");
pub(crate) const VERSION: StrField = field("version", "version length");
pub(crate) const BODY: StrField = field("body", "body length");
pub(crate) const HEADERS: PairField = PairField {
    count: "header count",
    name: field("header name", "header name length"),
    value: field("header value", "header value length"),
};
pub(crate) const PARAMS: PairField = PairField {
    count: "param count",
    name: field("param name", "param name length"),
    value: field("param value", "param value length"),
};

/// How v2's counted list of tagged fields is named in errors.
#[derive(Clone, Copy)]
pub(crate) struct TaggedField {
    count: &'static str,
    tag: &'static str,
    value: StrField,
}

pub(crate) const FIELDS: TaggedField = TaggedField {
    count: "field count",
    tag: "field tag",
    value: field("field value", "field value length"),
};

/// Encoded size of a count followed by its tagged fields.
pub(crate) fn fields_len(fields: &[Field<'_>]) -> usize {
    4 + fields.iter().map(|f| 8 + f.value.len()).sum::<usize>()
}

/// Encoded size of a count followed by its pairs.
pub(crate) fn pairs_len(pairs: &[RawPair<'_>]) -> usize {
    4 + pairs
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len())
        .sum::<usize>()
}

/// A cursor over the buffer. Every read is bounds-checked with `get`, never indexed, so a
/// malformed input can only produce an error.
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let bytes = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<4>())
            .ok_or(DecodeError::Truncated {
                field,
                offset: self.pos,
            })?;
        self.pos += 4;
        Ok(u32::from_le_bytes(*bytes))
    }

    pub(crate) fn str(&mut self, field: StrField) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field.length)?;
        let past_end = DecodeError::LengthPastEnd {
            field: field.name,
            offset: self.pos,
            len,
            remaining: self.remaining(),
        };
        let end = usize::try_from(len)
            .ok()
            .and_then(|n| self.pos.checked_add(n));
        let bytes = end
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or(past_end)?;
        self.pos += bytes.len();
        Ok(bytes)
    }

    pub(crate) fn pairs(&mut self, field: PairField) -> Result<Vec<RawPair<'a>>, DecodeError> {
        let count = self.u32(field.count)?;
        // A hostile count must not make us reserve gigabytes: every pair takes at least 8 bytes,
        // so the remaining input bounds how many can really follow.
        let plausible = self.remaining() / 8;
        let mut pairs = Vec::with_capacity(plausible.min(count.try_into().unwrap_or(usize::MAX)));
        for _ in 0..count {
            pairs.push((self.str(field.name)?, self.str(field.value)?));
        }
        Ok(pairs)
    }

    pub(crate) fn fields(&mut self, field: TaggedField) -> Result<Vec<Field<'a>>, DecodeError> {
        let count = self.u32(field.count)?;
        // Every field takes at least 8 bytes (tag and length): the same bound as for pairs.
        let plausible = self.remaining() / 8;
        let mut fields = Vec::with_capacity(plausible.min(count.try_into().unwrap_or(usize::MAX)));
        for _ in 0..count {
            let tag = self.u32(field.tag)?;
            fields.push(Field {
                tag,
                value: self.str(field.value)?,
            });
        }
        Ok(fields)
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }
}

/// Appends to a buffer allocated once at its final size.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_total(len: usize) -> Result<Self, EncodeError> {
        to_u32("total", len)?;
        Ok(Writer {
            buf: Vec::with_capacity(len),
        })
    }

    pub(crate) fn count(&mut self, field: &'static str, n: usize) -> Result<(), EncodeError> {
        self.buf.extend_from_slice(&to_u32(field, n)?.to_le_bytes());
        Ok(())
    }

    pub(crate) fn str(&mut self, field: StrField, bytes: &[u8]) -> Result<(), EncodeError> {
        self.buf
            .extend_from_slice(&to_u32(field.name, bytes.len())?.to_le_bytes());
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    pub(crate) fn pairs(
        &mut self,
        field: PairField,
        pairs: &[RawPair<'_>],
    ) -> Result<(), EncodeError> {
        self.buf
            .extend_from_slice(&to_u32(field.count, pairs.len())?.to_le_bytes());
        for (name, value) in pairs {
            self.str(field.name, name)?;
            self.str(field.value, value)?;
        }
        Ok(())
    }
}

impl Writer {
    pub(crate) fn fields(
        &mut self,
        field: TaggedField,
        fields: &[Field<'_>],
    ) -> Result<(), EncodeError> {
        self.buf
            .extend_from_slice(&to_u32(field.count, fields.len())?.to_le_bytes());
        for f in fields {
            self.buf.extend_from_slice(&f.tag.to_le_bytes());
            self.str(field.value, f.value)?;
        }
        Ok(())
    }
}

fn to_u32(field: &'static str, len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError { field, len })
}
