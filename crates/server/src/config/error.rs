//! Configuration errors that point at the offending text.
//!
//! Owns the rendering of a config error: file, line, column, the line itself with the offending
//! text underlined, and what would be valid, with every secret value masked in both the excerpt
//! and the message (`redact.rs` says which spans: here is the one place excerpts are made, so no
//! error kind can bypass it). Knows nothing about which keys exist (that is
//! `file.rs`); it only turns a byte span of the source into a message a person can act on.

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
    fn without_span_names_only_the_file() {
        let err = ConfigError::at(Path::new("w.toml"), "", None, "empty");
        assert_eq!(err.to_string(), "w.toml: empty");
    }
}
