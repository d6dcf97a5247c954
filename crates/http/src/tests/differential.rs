//! Differential check against `httparse`: on generated valid requests both parsers must read the
//! same method, target, version and field lines; on noise (mutated requests, random bytes) every
//! head we accept must be read identically by httparse. httparse may accept more than we do
//! (bare LF, non-ASCII targets, no Host...), never something different.

use super::generate::request;
use super::*;
use proptest::prelude::*;

/// Asserts httparse reads the head we parsed from `buf` the same way.
fn httparse_agrees(buf: &[u8], head: &RequestHead) -> Result<(), TestCaseError> {
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut theirs = httparse::Request::new(&mut slots);
    let status = theirs.parse(buf);
    let version_at = (head.target.start + head.target.len + 1) as usize;
    let version = &buf[version_at..version_at + 8];
    if version != b"HTTP/1.0" && version != b"HTTP/1.1" {
        // HTTP/1.2..1.9: we read them as 1.1 (RFC 9110 §2.5), httparse refuses them.
        prop_assert_eq!(status, Err(httparse::Error::Version));
        return Ok(());
    }
    prop_assert_eq!(status, Ok(httparse::Status::Complete(head.head_len)));
    let view = head.view(buf);
    prop_assert_eq!(theirs.method, Some(view.method()));
    prop_assert_eq!(theirs.path, Some(view.target()));
    prop_assert_eq!(theirs.version, Some(u8::from(version == b"HTTP/1.1")));
    let ours: Vec<(&str, &[u8])> = view.headers().collect();
    let theirs: Vec<(&str, &[u8])> = theirs.headers.iter().map(|h| (h.name, h.value)).collect();
    prop_assert_eq!(ours, theirs);
    Ok(())
}

/// Our one-shot verdict on `buf`, if it is a complete head.
fn ours(buf: &[u8]) -> Option<RequestHead> {
    let mut parser = Parser::new(limits());
    matches!(parser.parse(buf), Ok(Status::Complete)).then(|| parser.head().clone())
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
}

/// Bytes that matter to HTTP framing are over-represented so mutations hit the interesting cases.
fn noise_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"\r\n \t:;,\"\\/?#*@[]%0189aAHTP.\x00\x7f\x80\xff".to_vec()),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), noise_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<prop::sample::Index>(), noise_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
    ]
}

fn apply(mut buf: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match *m {
            Mutation::Replace(i, b) if !buf.is_empty() => {
                let at = i.index(buf.len());
                buf[at] = b;
            }
            Mutation::Insert(i, b) => buf.insert(i.index(buf.len() + 1), b),
            Mutation::Delete(i) if !buf.is_empty() => {
                buf.remove(i.index(buf.len()));
            }
            _ => {}
        }
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn valid_requests_read_like_httparse(g in request()) {
        let head = ours(&g.bytes).expect("generated request refused");
        httparse_agrees(&g.bytes, &head)?;
    }

    #[test]
    fn accepted_noise_reads_like_httparse(
        g in request(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let buf = apply(g.bytes[..g.head_len].to_vec(), &mutations);
        if let Some(head) = ours(&buf) {
            httparse_agrees(&buf, &head)?;
        }
    }

    #[test]
    fn accepted_random_bytes_read_like_httparse(
        prefix in prop::sample::select(vec![&b""[..], b"GET ", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n"]),
        noise in prop::collection::vec(noise_byte(), 0..64),
        suffix in prop::sample::select(vec![&b""[..], b"\r\n", b"\r\n\r\n"]),
    ) {
        let buf = [prefix, &noise[..], suffix].concat();
        if let Some(head) = ours(&buf) {
            httparse_agrees(&buf, &head)?;
        }
    }
}
