//! Fuzz target: the sans-IO request parser and body decoder on arbitrary bytes, received in
//! arbitrary pieces, under arbitrary (small, so they are reached) limits.
//!
//! Invariants checked on every input:
//! - nothing panics (`debug_assertions` are on in fuzz builds, so internal asserts count too);
//! - split-invariance: the pieces give the same verdict, head and body as one piece;
//! - memory is bounded by the limits: the head holds at most `max_headers` fields and
//!   `max_header_bytes` bytes, the parser's heap never exceeds what `max_headers` fields need,
//!   and a decoded body never exceeds `max_body_bytes`;
//! - whatever head we accept, `httparse` reads the same way (method, target, version, fields, head
//!   length); HTTP/1.2-1.9, which we read as 1.1 (RFC 9110 §2.5), httparse refuses.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmgate_http::Limits as HttpLimits;
use wasmgate_http::{BodyDecoder, BodyStatus, Parser, RequestHead, Status};

/// The system allocator, tracking live bytes and their peak so the target can bound the parser's
/// memory.
struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    limits: [u8; 7],
    /// Piece lengths: the stream arrives in pieces of these sizes (1..=256 bytes each), then
    /// whatever is left in one piece.
    pieces: Vec<u8>,
    data: &'a [u8],
}

fn limits(raw: [u8; 7]) -> HttpLimits {
    HttpLimits {
        max_method_bytes: 1 + raw[0] as usize % 40,
        max_target_bytes: 1 + raw[1] as usize * 2,
        max_header_bytes: 16 + raw[2] as usize * 8,
        max_headers: 1 + raw[3] as usize % 32,
        max_body_bytes: raw[4] as u64 * 16,
        max_chunk_line_bytes: 1 + raw[5] as usize % 64,
        max_trailer_bytes: 1 + raw[6] as usize * 2,
    }
}

/// Ends of the pieces the stream arrives in.
fn cuts(pieces: &[u8], len: usize) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    for &p in pieces {
        at += 1 + p as usize;
        if at >= len {
            break;
        }
        out.push(at);
    }
    out.push(len);
    out
}

type Verdict = Result<Option<RequestHead>, wasmgate_http::ParseError>;

/// Parses the stream received up to each cut in turn; `Ok(None)` when still partial at the end.
fn parse(limits: HttpLimits, data: &[u8], cuts: &[usize]) -> Verdict {
    let mut parser = Parser::new(limits);
    for &end in cuts {
        match parser.parse(&data[..end])? {
            Status::Complete => return Ok(Some(parser.head().clone())),
            Status::Partial => {}
        }
    }
    Ok(None)
}

/// Decodes the body after the head, fed in pieces ending at `cuts` (offsets into `data`).
fn decode(
    limits: &HttpLimits,
    head: &RequestHead,
    data: &[u8],
    cuts: &[usize],
) -> (
    Result<BodyStatus, wasmgate_http::BodyError>,
    Vec<u8>,
    usize,
) {
    let mut decoder = BodyDecoder::new(head.framing, limits);
    let mut body = Vec::new();
    let mut consumed = head.head_len;
    for &end in cuts.iter().filter(|&&c| c > head.head_len) {
        loop {
            match decoder.decode(&data[consumed..end], &mut body) {
                Err(e) => return (Err(e), body, consumed),
                Ok((n, status)) => {
                    assert!(consumed + n <= end, "consumed past the input");
                    consumed += n;
                    if status == BodyStatus::Complete {
                        return (Ok(status), body, consumed);
                    }
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    }
    if cuts.last().is_none_or(|&c| c <= head.head_len) {
        // No byte after the head: a body-less request is complete, others are partial.
        return match decoder.decode(&[], &mut body) {
            Ok((_, s)) => (Ok(s), body, consumed),
            Err(e) => (Err(e), body, consumed),
        };
    }
    (Ok(BodyStatus::Partial), body, consumed)
}

/// httparse must read an accepted head exactly as we did.
fn httparse_agrees(data: &[u8], head: &RequestHead) {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut theirs = httparse::Request::new(&mut slots);
    let status = theirs.parse(data);
    let version_at = (head.target.start + head.target.len + 1) as usize;
    let version = &data[version_at..version_at + 8];
    if version != b"HTTP/1.0" && version != b"HTTP/1.1" {
        assert_eq!(status, Err(httparse::Error::Version), "{version:?}");
        return;
    }
    assert_eq!(
        status,
        Ok(httparse::Status::Complete(head.head_len)),
        "httparse disagrees on {:?}",
        String::from_utf8_lossy(&data[..head.head_len])
    );
    let view = head.view(data);
    assert_eq!(theirs.method, Some(view.method()));
    assert_eq!(theirs.path, Some(view.target()));
    assert_eq!(theirs.version, Some(u8::from(version == b"HTTP/1.1")));
    let ours: Vec<(&str, &[u8])> = view.headers().collect();
    let theirs: Vec<(&str, &[u8])> = theirs.headers.iter().map(|h| (h.name, h.value)).collect();
    assert_eq!(ours, theirs);
}

fuzz_target!(|input: Input<'_>| {
    let limits = limits(input.limits);
    let data = input.data;
    let cuts = cuts(&input.pieces, data.len());

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let whole = parse(limits, data, &[data.len()]);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let header_bytes = std::mem::size_of::<wasmgate_http::Header>();
    assert!(
        // The one headers Vec (grown by doubling) plus the clone handed back on completion.
        peak <= 3 * limits.max_headers * header_bytes + 64,
        "the parser held {peak} bytes with max_headers = {}",
        limits.max_headers
    );

    let pieces = parse(limits, data, &cuts);
    let bytewise = parse(limits, data, &(1..=data.len()).collect::<Vec<_>>());
    assert_eq!(whole, pieces, "pieces {cuts:?} changed the verdict");
    assert_eq!(whole, bytewise, "byte-by-byte changed the verdict");

    let Ok(Some(head)) = whole else { return };
    assert!(head.head_len <= limits.max_header_bytes && head.head_len <= data.len());
    assert!(head.headers.len() <= limits.max_headers);
    httparse_agrees(data, &head);

    let one = decode(&limits, &head, data, &[data.len()]);
    let split = decode(&limits, &head, data, &cuts);
    // Same verdict and bytes; the consumed count only matters on success (an error closes).
    assert_eq!(
        (&one.0, &one.1),
        (&split.0, &split.1),
        "pieces {cuts:?} changed the body"
    );
    if one.0.is_ok() {
        assert_eq!(
            one.2, split.2,
            "pieces {cuts:?} changed what the body consumed"
        );
    }
    assert!(
        one.1.len() as u64 <= limits.max_body_bytes,
        "body past max_body_bytes"
    );
});
