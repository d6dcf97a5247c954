//! Configuration errors that point at the offending text.
//!
//! Owns the rendering of a config error: file, line, column, the line itself with the offending
//! text underlined, and what would be valid, with every secret value masked in both the excerpt
//! and the message (`redact.rs` says which spans: here is the one place excerpts are made, so no
//! error kind can bypass it), and the "did you mean" guess for a misspelled key (`closest`; the
//! keys themselves are `file.rs`'s). It turns a byte span of the source into a message a person
//! can act on.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::redact::Redactions;

/// A configuration that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded ...>`) the error is in.
    pub file: PathBuf,
    /// 1-based line and column of the offending text, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What is wrong and what would be valid.
    pub message: String,
    /// The source line and an underline of the offending text, ready to print.
    pub snippet: Option<String>,
}

impl ConfigError {
    /// An error at byte range `span` of `text`.
    pub fn at(
        file: &Path,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let focus = span.as_ref().map(|s| s.start);
        let redactions = Redactions::of(text, focus);
        let mut err = ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: redactions.message(&message.into()),
            snippet: None,
        };
        if let Some(span) = span {
            let start = span.start.min(text.len());
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let line_no = text[..start].matches('\n').count() + 1;
            let col = text[line_start..start].chars().count() + 1;
            let end = span.end.clamp(start, line_end);
            // The line as it may be shown: secret values masked, the underline moved with them.
            let (line_text, shown_col, width) =
                redactions.line(text, line_start..line_end, start..end);
            let gutter = " ".repeat(line_no.to_string().len());
            err.line = Some(line_no);
            err.column = Some(col);
            err.snippet = Some(format!(
                "{gutter} |\n{line_no} | {line_text}\n{gutter} | {}{}",
                " ".repeat(shown_col),
                "^".repeat(width)
            ));
        }
        err
    }

    /// The file could not be read at all.
    pub fn io(file: &Path, err: std::io::Error) -> Self {
        ConfigError::at(
            file,
            "",
            None,
            format!("cannot read the config file: {err}"),
        )
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The word of `allowed` that `found` most likely misspells (at most two edits away, a swap of
/// two neighbouring letters counting as one, and fewer edits than letters), for a "did you mean"
/// hint; `None` when nothing is that close.
pub(super) fn closest<'a>(found: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edits(found, a), *a))
        .filter(|(d, a)| *d <= 2 && *d < a.chars().count().min(found.chars().count()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`: the optimal string
/// alignment distance.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underlines_the_span_on_its_line() {
        let text = "a = 1\nbad = 2\n";
        let err = ConfigError::at(Path::new("w.toml"), text, Some(6..9), "unknown key `bad`");
        assert_eq!((err.line, err.column), (Some(2), Some(1)));
        let shown = err.to_string();
        assert!(
            shown.starts_with("w.toml:2:1: unknown key `bad`"),
            "{shown}"
        );
        assert!(shown.contains("2 | bad = 2\n  | ^^^"), "{shown}");
    }

    #[test]
    fn a_close_misspelling_gets_its_word_and_a_stranger_nothing() {
        let keys = ["value", "env", "file", "secret", "optional"];
        assert_eq!(
            closest("secert", &keys),
            Some("secret"),
            "a swap is one edit"
        );
        assert_eq!(closest("optinal", &keys), Some("optional"));
        assert_eq!(closest("vaule", &keys), Some("value"));
        assert_eq!(closest("fil", &keys), Some("file"));
        assert_eq!(closest("password", &keys), None);
        assert_eq!(
            closest("x", &keys),
            None,
            "one letter is not a misspelling of `env`"
        );
    }

    #[test]
    fn without_span_names_only_the_file() {
        let err = ConfigError::at(Path::new("w.toml"), "", None, "empty");
        assert_eq!(err.to_string(), "w.toml: empty");
    }
}
