//! Which parts of a configuration's text are secret, and how they are hidden from people.
//!
//! Owns the one rule that no error message or excerpt shows a secret value: the value of a
//! variable that is `secret` (explicitly, or by default for `env`/`file` sources) and the password
//! of any URL (`scheme://user:PASSWORD@host`, e.g. a Redis `url`). `error.rs` asks it, for every
//! excerpt and message it renders, which byte spans of the source to mask; the kv stores ask it to
//! mask URL passwords in what they log. When the text is not valid TOML nothing is known about
//! which values are secret, so every value on the shown line is masked (docs/configuration.md,
//! "Errors"). It must not know the config's types (that is `file.rs`): it reads the TOML tree.

use std::borrow::Cow;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// What a secret is shown as.
pub(crate) const MASK: &str = "***";

/// The byte spans of a config text that must never be shown, and the secret values themselves
/// (so a message that quotes one, e.g. a serde type error, is masked too).
#[derive(Debug, Default)]
pub(super) struct Redactions {
    /// Sorted by start, not overlapping.
    spans: Vec<Range<usize>>,
    /// Secret values, decoded and as written, to mask wherever a message repeats them.
    values: Vec<String>,
}

impl Redactions {
    /// The secret spans of `text`. A text that is not valid TOML gets every value on the lines
    /// around `focus` (the error's position) masked instead, since which values are secret is
    /// then unknown.
    pub(super) fn of(text: &str, focus: Option<usize>) -> Redactions {
        let mut out = Redactions::default();
        match DeTable::parse(text) {
            Ok(root) => out.walk_root(text, root.get_ref()),
            Err(_) => {
                if let Some(at) = focus {
                    out.spans = unparsed_values(text, line_of(text, at));
                }
            }
        }
        out.spans.sort_by_key(|s| s.start);
        out.spans.dedup();
        out.values.retain(|v| !v.is_empty());
        // Longest first, so a value that contains another is masked whole.
        out.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        out
    }

    fn walk_root(&mut self, text: &str, root: &DeTable<'_>) {
        // Every string anywhere may be a URL with a password.
        for (_, v) in root.iter() {
            self.url_passwords_in(text, v);
        }
        let Some(plugins) = get(root, "plugins").and_then(|p| p.get_ref().as_table()) else {
            return;
        };
        for (_, plugin) in plugins.iter() {
            let Some(vars) = plugin
                .get_ref()
                .as_table()
                .and_then(|p| get(p, "vars"))
                .and_then(|v| v.get_ref().as_table())
            else {
                continue;
            };
            for (_, var) in vars.iter() {
                let Some(table) = var.get_ref().as_table() else {
                    continue; // a plain string is a literal, not secret by definition
                };
                // A key that looks like a misspelled `secret` (`secert`): the author meant the
                // value to be secret, so mask it.
                let misspelled = table.iter().any(|(k, _)| {
                    let key: &str = k.get_ref().as_ref();
                    !super::vars::VAR_KEYS.contains(&key)
                        && super::error::closest(key, &super::vars::VAR_KEYS) == Some("secret")
                });
                let secret = match get(table, "secret").map(|s| s.get_ref()) {
                    _ if misspelled => true,
                    Some(DeValue::Boolean(false)) => false,
                    // Absent: secret by default when the value comes from outside the file; a
                    // `value` beside `env`/`file` is an error, masked all the same.
                    None => get(table, "env").is_some() || get(table, "file").is_some(),
                    // `true`, or malformed: the author meant something, so mask.
                    Some(_) => true,
                };
                if let (true, Some(value)) = (secret, get(table, "value")) {
                    self.secret(text, value);
                }
            }
        }
    }

    /// Masks `value` whole, whatever its type (a type error in a secret is still a secret).
    fn secret(&mut self, text: &str, value: &Spanned<DeValue<'_>>) {
        let span = value.span();
        if let Some(written) = text.get(span.clone()) {
            self.values.push(written.to_string());
        }
        match value.get_ref() {
            DeValue::String(s) => self.values.push(s.to_string()),
            DeValue::Integer(i) => self.values.push(i.as_str().to_string()),
            DeValue::Float(f) => self.values.push(f.as_str().to_string()),
            _ => {}
        }
        self.spans.push(span);
    }

    fn url_passwords_in(&mut self, text: &str, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::String(s) => {
                let span = value.span();
                let Some(written) = text.get(span.clone()) else {
                    return;
                };
                for pw in url_password_spans(written) {
                    self.values.push(written[pw.clone()].to_string());
                    self.spans.push(span.start + pw.start..span.start + pw.end);
                }
                for pw in url_password_spans(s) {
                    self.values.push(s[pw].to_string());
                }
            }
            DeValue::Array(a) => a.iter().for_each(|v| self.url_passwords_in(text, v)),
            DeValue::Table(t) => t.iter().for_each(|(_, v)| self.url_passwords_in(text, v)),
            _ => {}
        }
    }

    /// `message` with every secret value and URL password masked.
    pub(super) fn message(&self, message: &str) -> String {
        let mut out = message.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        mask_url_passwords(&out).into_owned()
    }

    /// The line `line` of `text` as it may be shown, with the display column (0-based, in
    /// chars) and width of the byte range `span` on it.
    pub(super) fn line(
        &self,
        text: &str,
        line: Range<usize>,
        span: Range<usize>,
    ) -> (String, usize, usize) {
        // The line as plain and masked segments, in order.
        let mut segments = Vec::new();
        let mut pos = line.start;
        for m in self
            .spans
            .iter()
            .filter(|m| m.start < line.end && m.end > line.start)
        {
            let m = m.start.max(pos)..m.end.min(line.end);
            if m.start >= m.end {
                continue;
            }
            segments.push((pos..m.start, false));
            segments.push((m.clone(), true));
            pos = m.end;
        }
        segments.push((pos..line.end, false));
        let mut shown = String::new();
        let mut shown_chars = 0;
        let (mut col, mut end) = (None, None);
        for (seg, masked) in segments {
            if masked {
                if end.is_none() && span.end == seg.start && span.end > span.start {
                    end = Some(shown_chars);
                }
                if col.is_none() && seg.contains(&span.start) {
                    col = Some(shown_chars);
                }
                shown.push_str(MASK);
                shown_chars += MASK.len();
                if end.is_none() && seg.start < span.end && span.end <= seg.end {
                    end = Some(shown_chars);
                }
                continue;
            }
            for (i, c) in text[seg.clone()].char_indices() {
                let at = seg.start + i;
                if col.is_none() && at == span.start {
                    col = Some(shown_chars);
                }
                if end.is_none() && at == span.end {
                    end = Some(shown_chars);
                }
                shown.push(c);
                shown_chars += 1;
            }
        }
        let col = col.unwrap_or(shown_chars);
        let end = end.unwrap_or(shown_chars).max(col + 1);
        (shown, col, end - col)
    }
}

fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}

/// The byte range of the line holding byte `at`.
fn line_of(text: &str, at: usize) -> Range<usize> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    start..end
}

/// The byte ranges of the passwords of the URLs in `s`: after `://`, up to the last `@` before
/// the next space, quote or end, the part after the first `:` of the user info. Over-masks
/// rather than under-masks: a `@` in a URL's path after a port hides the port and path too.
pub(crate) fn url_password_spans(s: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = s[from..].find("://") {
        let auth = from + i + 3;
        let stop = s[auth..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(s.len(), |j| auth + j);
        if let Some(at) = s[auth..stop].rfind('@').map(|j| auth + j)
            && let Some(colon) = s[auth..at].find(':').map(|j| auth + j)
            && colon + 1 < at
        {
            out.push(colon + 1..at);
        }
        from = stop.max(auth);
    }
    out
}

/// `s` with every URL password replaced by [`MASK`] (what the stores log about their server).
pub(crate) fn mask_url_passwords(s: &str) -> Cow<'_, str> {
    let spans = url_password_spans(s);
    if spans.is_empty() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    for span in spans {
        out.push_str(&s[pos..span.start]);
        out.push_str(MASK);
        pos = span.end;
    }
    out.push_str(&s[pos..]);
    Cow::Owned(out)
}

/// In a text that is not valid TOML, the ranges of `line` that are values (strings, bare words,
/// numbers, the inside of a multi-line string) or comments. Keys, table headers and punctuation
/// stay, so the shape of the line is still visible. The text before the line is scanned too, so
/// a line inside a multi-line string is known to be one.
fn unparsed_values(text: &str, line: Range<usize>) -> Vec<Range<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum In {
        Code,
        Basic,
        Literal,
        MlBasic,
        MlLiteral,
        Comment,
        Bare,
    }
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut state = In::Code;
    let mut value_pos = false;
    let mut nesting: Vec<u8> = Vec::new();
    let mut run_start = 0;
    let mut i = 0;
    let end = line.end.min(text.len());
    let push = |out: &mut Vec<Range<usize>>, r: Range<usize>| {
        let r = r.start.max(line.start)..r.end.min(line.end);
        if r.start < r.end {
            out.push(r);
        }
    };
    while i < end {
        let b = bytes[i];
        let starts = |p: &[u8]| bytes[i..].starts_with(p);
        match state {
            In::Code => match b {
                b'#' => {
                    state = In::Comment;
                    run_start = i + 1;
                }
                b'=' => value_pos = true,
                b'{' => {
                    nesting.push(b'{');
                    value_pos = false;
                }
                b'[' if value_pos => nesting.push(b'['),
                b']' | b'}' if value_pos || !nesting.is_empty() => {
                    nesting.pop();
                }
                b',' => value_pos = nesting.last() == Some(&b'['),
                b'\n' => value_pos = nesting.last() == Some(&b'['),
                b'"' | b'\'' => {
                    run_start = i;
                    let ml = if b == b'"' {
                        starts(b"\"\"\"")
                    } else {
                        starts(b"'''")
                    };
                    state = match (b, ml) {
                        (b'"', true) => In::MlBasic,
                        (b'"', false) => In::Basic,
                        (_, true) => In::MlLiteral,
                        _ => In::Literal,
                    };
                    if ml {
                        i += 2;
                    }
                    if !value_pos {
                        // A quoted key: shown, but scanned as a string.
                        run_start = usize::MAX;
                    }
                }
                b' ' | b'\t' | b'\r' | b']' | b'}' | b'[' => {}
                _ if value_pos => {
                    state = In::Bare;
                    run_start = i;
                }
                _ => {}
            },
            In::Bare => {
                if b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}' | b'#') {
                    push(&mut out, run_start..i);
                    state = In::Code;
                    continue; // the terminator is code
                }
            }
            In::Comment => {
                if b == b'\n' {
                    push(&mut out, run_start..i);
                    state = In::Code;
                    continue;
                }
            }
            In::Basic | In::Literal => {
                if b == b'\\' && state == In::Basic {
                    i += 1;
                } else if b == b'\n'
                    || (state == In::Basic && b == b'"')
                    || b == b'\'' && state == In::Literal
                {
                    let close = if b == b'\n' { i } else { i + 1 };
                    if run_start != usize::MAX {
                        push(&mut out, run_start..close);
                    }
                    state = In::Code;
                    if b == b'\n' {
                        continue;
                    }
                }
            }
            In::MlBasic | In::MlLiteral => {
                let close: &[u8] = if state == In::MlBasic {
                    b"\"\"\""
                } else {
                    b"'''"
                };
                if b == b'\\' && state == In::MlBasic {
                    i += 1;
                } else if starts(close) {
                    if run_start != usize::MAX {
                        push(&mut out, run_start..i + 3);
                    }
                    state = In::Code;
                    i += 3;
                    continue;
                }
            }
        }
        i += 1;
    }
    if state != In::Code && run_start != usize::MAX {
        push(&mut out, run_start..end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_found_with_and_without_a_user() {
        assert_eq!(
            mask_url_passwords("redis://:pw@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(
            mask_url_passwords("cannot reach `rediss://u:p@ss@h` now"),
            "cannot reach `rediss://u:***@h` now"
        );
        assert_eq!(
            mask_url_passwords("redis://u@h redis://h:1"),
            "redis://u@h redis://h:1"
        );
        assert_eq!(
            mask_url_passwords("a redis://:x@h b http://u:y@h"),
            "a redis://:***@h b http://u:***@h"
        );
    }

    #[test]
    fn an_unparsed_line_keeps_keys_and_punctuation_only() {
        let text = "[a]\nk = { value = \"s3cret\", secret = true \nn = 5\n";
        let line = line_of(text, 5);
        let r = Redactions {
            spans: unparsed_values(text, line.clone()),
            values: Vec::new(),
        };
        let (shown, _, _) = r.line(text, line, 5..6);
        assert_eq!(shown, "k = { value = ***, secret = *** ");
    }

    #[test]
    fn a_line_inside_a_multiline_string_is_masked_whole() {
        let text = "v = \"\"\"\nline s3cret\n\"\"\" x\n";
        let line = line_of(text, 10);
        let spans = unparsed_values(text, line.clone());
        assert_eq!(spans, [line]);
    }

    #[test]
    fn the_underline_follows_the_mask() {
        let text = "k = \"s3cret\" x";
        let r = Redactions {
            spans: std::iter::once(4..12).collect(),
            values: Vec::new(),
        };
        assert_eq!(r.line(text, 0..14, 13..14), ("k = *** x".to_string(), 8, 1));
        assert_eq!(r.line(text, 0..14, 4..12), ("k = *** x".to_string(), 4, 3));
        assert_eq!(r.line(text, 0..14, 0..14), ("k = *** x".to_string(), 0, 9));
    }
}
