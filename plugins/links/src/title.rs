//! Page titles: fetch a link's target through the host and read its `<title>`.
//!
//! Strictly best effort. The host only lets the plugin reach the destinations of its
//! `allowed_outbound_hosts` (and guards private addresses), bounds the call by its `[outbound]`
//! timeouts and the request's deadline, and caps the body it reads; any failure, an answer that
//! is not a 2xx HTML page, or a page without a title, is simply "no title". The usual case in a
//! deployment without outbound grants, `denied`, costs one host call and no log line.

use std::borrow::Cow;
use wasmgate_sdk::http;
use wasmgate_sdk::wire::Errno;

/// The longest title kept, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 200;
/// How much of the title element is read before decoding, in bytes: a generous bound for
/// [`MAX_TITLE_CHARS`] characters written as entities.
const MAX_RAW_TITLE_BYTES: usize = 8 * 1024;

/// The title of the page at `url`, or `None` for any failure.
pub(crate) fn fetch(url: &str) -> Option<String> {
    let request =
        http::Request::get(url).header("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1");
    let resp = match request.send() {
        Ok(resp) => resp,
        // Not in allowed_outbound_hosts: expected in most deployments, not worth a log line.
        Err(e) if e.errno == Errno::Denied => return None,
        Err(e) => {
            eprintln!("links: no title, the page could not be fetched: {e}");
            return None;
        }
    };
    if !resp.is_success() || !is_html(resp.header("content-type")) {
        return None;
    }
    extract(resp.body())
}

/// Whether a `Content-Type` is HTML (`text/html` or `application/xhtml+xml`, any parameters).
fn is_html(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("text/html")
        || media_type.eq_ignore_ascii_case("application/xhtml+xml")
}

/// The text of the first `<title>` element of `html` (tag names in any case, attributes
/// allowed): entities decoded, whitespace trimmed and collapsed, at most [`MAX_TITLE_CHARS`]
/// characters. `None` when there is no complete, non-blank title element.
pub(crate) fn extract(html: &[u8]) -> Option<String> {
    let mut from = 0;
    let content_start = loop {
        let open = from + find_ci(&html[from..], b"<title")?;
        let after = open + b"<title".len();
        match html.get(after) {
            // `<title>` or `<title lang="en">`, not `<titlebar>`.
            Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/') => {
                let close = after + html[after..].iter().position(|&b| b == b'>')?;
                break close + 1;
            }
            Some(_) => from = after,
            None => return None,
        }
    };
    let end = content_start + find_ci(&html[content_start..], b"</title")?;
    let raw = &html[content_start..end.min(content_start + MAX_RAW_TITLE_BYTES)];
    clean(&String::from_utf8_lossy(raw))
}

/// Decodes entities, turns every run of whitespace and control characters into one space,
/// trims, and caps the length; `None` when nothing is left.
fn clean(raw: &str) -> Option<String> {
    let decoded = decode_entities(raw);
    let mut title = String::new();
    let words = decoded
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty());
    for word in words {
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    if let Some((cut, _)) = title.char_indices().nth(MAX_TITLE_CHARS) {
        title.truncate(cut);
        title.truncate(title.trim_end().len());
    }
    (!title.is_empty()).then_some(title)
}

/// Decodes `&amp; &lt; &gt; &quot; &apos; &nbsp;` and numeric references (`&#39;`,
/// `&#x27;`) in one pass, so `&amp;lt;` becomes `&lt;`, not `<`. Anything else is kept as is.
fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character of the entity at the start of `s` (which starts with `&`) and its length.
fn entity(s: &str) -> Option<(char, usize)> {
    // The longest handled reference is `&#x10FFFF;` (10 bytes).
    let semi = s.bytes().take(11).position(|b| b == b';')?;
    let name = &s[1..semi];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code).filter(|&c| c != '\0')?
        }
    };
    Some((c, semi + 1))
}

/// The position of the first ASCII-case-insensitive occurrence of `needle` in `haystack`.
fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(html: &str) -> Option<String> {
        extract(html.as_bytes())
    }

    #[test]
    fn finds_the_title_in_any_case_with_attributes() {
        assert_eq!(
            title("<html><head><title>Hello</title></head></html>").as_deref(),
            Some("Hello")
        );
        assert_eq!(
            title("<HEAD><TITLE>Upper</TITLE>").as_deref(),
            Some("Upper")
        );
        assert_eq!(
            title("<Title lang=\"en\" data-x='1'>Attrs</tItLe>").as_deref(),
            Some("Attrs")
        );
        assert_eq!(
            title("<titlebar>no</titlebar><title>yes</title>").as_deref(),
            Some("yes")
        );
        assert_eq!(
            title("<title>first</title><title>second</title>").as_deref(),
            Some("first")
        );
    }

    #[test]
    fn whitespace_is_trimmed_and_collapsed() {
        assert_eq!(
            title("<title>\n   A \t  spaced\r\n\n title   </title>").as_deref(),
            Some("A spaced title")
        );
        assert_eq!(
            title("<title>a&nbsp;&nbsp;b&#10;c\u{7}d</title>").as_deref(),
            Some("a b c d")
        );
    }

    #[test]
    fn basic_entities_are_decoded_once() {
        assert_eq!(
            title("<title>Q&amp;A &lt;b&gt; &quot;x&quot; it&#39;s &#x27;y&#X27; &apos;</title>")
                .as_deref(),
            Some("Q&A <b> \"x\" it's 'y' '")
        );
        assert_eq!(
            title("<title>&amp;lt; &copy; &#0; &#xZZ; & &;</title>").as_deref(),
            Some("&lt; &copy; &#0; &#xZZ; & &;")
        );
        assert_eq!(
            title("<title>caf&#233; &#x1F600;</title>").as_deref(),
            Some("café 😀")
        );
    }

    #[test]
    fn long_titles_are_capped_on_a_character_boundary() {
        let long = format!("<title>{}</title>", "é".repeat(300));
        let t = title(&long).unwrap();
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS);
        let words = format!("<title>{}</title>", "ab ".repeat(100));
        let t = title(&words).unwrap();
        assert!(
            t.chars().count() <= MAX_TITLE_CHARS && !t.ends_with(' '),
            "{t:?}"
        );
    }

    #[test]
    fn no_title() {
        for html in [
            "",
            "<html><head></head></html>",
            "<title>never closed",
            "<title",
            "<title>   </title>",
            "<title></title>",
            "<title/>",
            "<titlebar>x</titlebar>",
        ] {
            assert_eq!(title(html), None, "{html:?}");
        }
        assert_eq!(
            extract(b"<title>\xff\xfe</title>").as_deref(),
            Some("\u{fffd}\u{fffd}")
        );
    }

    #[test]
    fn html_content_types() {
        assert!(is_html(Some("text/html")));
        assert!(is_html(Some("Text/HTML; charset=utf-8")));
        assert!(is_html(Some("application/xhtml+xml")));
        assert!(!is_html(Some("application/json")));
        assert!(!is_html(Some("text/plain")));
        assert!(!is_html(None));
    }
}
