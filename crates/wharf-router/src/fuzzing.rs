//! Entry points for the cargo-fuzz targets in `fuzz/` (not an API: hidden, and free to change).
//! Each runs one parser on arbitrary bytes and panics when one of its promises breaks.

use crate::http1::chunked::ChunkTracker;
use crate::http1::head::{self, Parsed, RequestHead, ResponseHead};

/// The fast path's request head parser: never panics, and what it parses lies in the input.
pub fn request_head(input: &[u8]) {
    let mut head = RequestHead::default();
    if head::parse_request(input, &mut head) != Parsed::Complete {
        return;
    }
    assert!(head.len <= input.len(), "head longer than its input");
    let spans = [head.method, head.target]
        .into_iter()
        .chain(head.host)
        .chain(head.headers.iter().flat_map(|h| [h.name, h.value]));
    for span in spans {
        assert!(
            span.start <= span.end && span.end <= head.len,
            "span outside the head"
        );
    }
    // The path the router matches: normalised or refused, never a panic; a normal form is
    // stable.
    if let Ok(path) = crate::path::normalise(head.path(input)) {
        let again = crate::path::normalise(&path).expect("a normal path stays valid");
        assert_eq!(again, path, "normalising twice changed the path");
    }
    let _ = (head.query(input), head.framing(), head.is_idempotent(input));
    // The response parser on the same bytes, both ways.
    for head_request in [false, true] {
        let mut response = ResponseHead::default();
        if let Ok(Some(())) = head::parse_response(input, head_request, &mut response) {
            assert!(response.len <= input.len());
        }
    }
}

/// The chunked tracker: fed whole or in pieces (sizes from the first byte) it takes the same
/// bytes, gives the same data and passes on the same bytes, or fails either way.
pub fn chunked(input: &[u8]) {
    let Some((&step, body)) = input.split_first() else {
        return;
    };
    let step = usize::from(step % 17) + 1;
    let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut tracker = ChunkTracker::default();
        let (mut used_total, mut data, mut passed) = (0usize, Vec::new(), Vec::new());
        for piece in pieces {
            let used = tracker.feed(piece, |d| data.extend_from_slice(d))?;
            assert!(used <= piece.len());
            assert!(tracker.kept(used) <= used);
            passed.extend_from_slice(&piece[..tracker.kept(used)]);
            passed.extend_from_slice(tracker.end());
            used_total += used;
            if used < piece.len() {
                assert!(tracker.is_done(), "stopped early without being done");
                break;
            }
        }
        Ok::<_, crate::http1::chunked::ChunkError>((used_total, data, passed, tracker.is_done()))
    };
    let whole = run(&mut std::iter::once(body));
    let pieces = run(&mut body.chunks(step));
    match (whole, pieces) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "pieces of {step} bytes read differently");
            let (used, data, passed, done) = a;
            assert!(data.len() <= used && passed.len() <= used + 2);
            if done {
                // What is passed on is itself a whole chunked body without trailers.
                let mut again = ChunkTracker::default();
                let n = again
                    .feed(&passed, |_| {})
                    .expect("passed-on body is valid");
                assert!(
                    again.is_done() && n == passed.len(),
                    "passed-on body incomplete"
                );
            }
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("whole and pieces of {step} disagree: {a:?} vs {b:?}"),
    }
}
