//! Split-invariance: a generated valid request, cut into arbitrary pieces (or single bytes),
//! parses to the same head and decodes to the same body as in one piece, and leaves a pipelined
//! next request unconsumed.

use super::generate::{Generated, request};
use super::*;
use proptest::prelude::*;

/// What one run of "receive, parse, decode" produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    head: RequestHead,
    body: Vec<u8>,
    /// Bytes of the stream consumed by head and body.
    consumed: usize,
}

/// Receives `stream` in pieces ending at `cuts` (sorted, then the end), parsing the head then
/// decoding the body as a connection driver would.
fn receive(stream: &[u8], cuts: &[usize]) -> Outcome {
    let mut ends = cuts.iter().copied().chain([stream.len()]);
    let mut received = ends.next().unwrap();
    let mut parser = Parser::new(limits());
    loop {
        match parser.parse(&stream[..received]) {
            Ok(Status::Complete) => break,
            Ok(Status::Partial) => {
                received = ends.next().expect("head incomplete at end of stream")
            }
            Err(e) => panic!("{e:?} on {:?}", String::from_utf8_lossy(stream)),
        }
    }
    let head = parser.head().clone();
    let mut decoder = BodyDecoder::new(head.framing, &limits());
    let (mut body, mut consumed) = (Vec::new(), head.head_len);
    loop {
        let (n, status) = decoder
            .decode(&stream[consumed..received.max(consumed)], &mut body)
            .unwrap();
        consumed += n;
        if status == BodyStatus::Complete {
            return Outcome {
                head,
                body,
                consumed,
            };
        }
        received = ends.next().expect("body incomplete at end of stream");
    }
}

fn check_expected(g: &Generated, outcome: &Outcome) -> Result<(), TestCaseError> {
    let view = outcome.head.view(&g.bytes);
    prop_assert_eq!(view.method(), g.method.as_str());
    prop_assert_eq!(view.target(), g.target.as_str());
    prop_assert_eq!(outcome.head.version == crate::Version::Http10, g.http10);
    let headers: Vec<(String, Vec<u8>)> = view
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_vec()))
        .collect();
    prop_assert_eq!(&headers, &g.headers);
    prop_assert_eq!(outcome.head.head_len, g.head_len);
    prop_assert_eq!(&outcome.body, &g.body);
    prop_assert_eq!(outcome.consumed, g.bytes.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_gives_the_same_head_and_body(
        g in request(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        pipelined in any::<bool>(),
    ) {
        let mut stream = g.bytes.clone();
        if pipelined {
            stream.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
        }
        let whole = receive(&stream, &[]);
        check_expected(&g, &whole)?;
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&receive(&stream, &cuts), &whole);
        let every_byte: Vec<usize> = (1..stream.len()).collect();
        prop_assert_eq!(&receive(&stream, &every_byte), &whole);
    }
}
