//! Where a chunked body ends: a tracker that reads the chunk framing of bytes passing through
//! unchanged, so that the router knows when a message is complete (and, for a client that cannot
//! take chunks, which bytes are data).
//!
//! Strict on purpose: the bytes go on to a peer that frames them itself, and the two must agree
//! on where the body ends, so anything but `HEXSIZE [;ext] CRLF data CRLF ... 0 CRLF trailers CRLF`
//! (a bare LF, a space in the size, a size beyond 64 bits, control bytes in an extension) is an
//! error rather than a guess.

/// Hex digits a chunk size may have (64 bits).
const MAX_SIZE_DIGITS: u8 = 16;
/// Bytes of chunk extensions and trailers a message may carry, together.
const MAX_METADATA: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size (`digits` so far).
    Size {
        digits: u8,
    },
    /// After the size: an extension until CR.
    Extension,
    /// The LF after a size line's CR.
    SizeLf,
    /// `remaining` bytes of chunk data.
    Data,
    /// The CR, then the LF, after a chunk's data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer line, until CR.
    Trailer,
    /// The LF after a trailer line's CR.
    TrailerLf,
    /// The LF of the final empty line.
    EndLf,
    Done,
}

/// The chunk framing was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkError(&'static str);

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad chunked encoding: {}", self.0)
    }
}

/// Follows the framing of one chunked body.
#[derive(Clone, Debug)]
pub(crate) struct ChunkTracker {
    state: State,
    /// The size being read, then the data bytes left in the current chunk.
    remaining: u64,
    metadata: usize,
    /// A trailer line was seen: trailers are not passed on (see [`ChunkTracker::kept`]).
    in_trailers: bool,
    /// Where the trailers began in the last input fed (0 when they began before it).
    trailers_from: usize,
    /// The last input fed ended the body.
    ended_now: bool,
}

impl Default for ChunkTracker {
    fn default() -> Self {
        ChunkTracker {
            state: State::Size { digits: 0 },
            remaining: 0,
            metadata: 0,
            in_trailers: false,
            trailers_from: 0,
            ended_now: false,
        }
    }
}

impl ChunkTracker {
    /// Whether the body's last byte (the final CRLF) has been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Of the `used` bytes the last [`feed`](ChunkTracker::feed) took, how many to pass on: all of
    /// them, unless trailers began, which are dropped as nginx drops a request's trailers (they
    /// could carry `Content-Length`, `X-Forwarded-For` or anything a hop-by-hop filter removes
    /// from the head). When trailers were dropped, the body's end is the empty line
    /// [`ChunkTracker::end`] gives once done.
    pub(crate) fn kept(&self, used: usize) -> usize {
        if self.in_trailers {
            self.trailers_from.min(used)
        } else {
            used
        }
    }

    /// What ends the body passed on after the last bytes [`kept`](ChunkTracker::kept): the
    /// final CRLF when trailers were dropped (it went with them) and the last input fed ended
    /// the body, else nothing (so feeding more after the end adds nothing).
    pub(crate) fn end(&self) -> &'static [u8] {
        if self.in_trailers && self.ended_now {
            b"\r\n"
        } else {
            b""
        }
    }

    /// Reads `input` up to the body's end; returns how many bytes belong to the body (fewer than
    /// `input.len()` only when the body ended before, in which case the rest is the next
    /// message's). `data` gets the data bytes, in order, as slices of `input`.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        self.trailers_from = 0;
        self.ended_now = false;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data => {
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    data(&input[i..i + n]);
                    i += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size { digits } => {
                    if let Some(v) = hex(b) {
                        if digits >= MAX_SIZE_DIGITS {
                            return Err(ChunkError("chunk size too large"));
                        }
                        self.remaining = (self.remaining << 4) | u64::from(v);
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(ChunkError("chunk size expected"));
                    } else {
                        match b {
                            b';' => self.state = State::Extension,
                            b'\r' => self.state = State::SizeLf,
                            _ => return Err(ChunkError("bad byte after a chunk size")),
                        }
                    }
                }
                State::Extension => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => self.count_metadata()?,
                    _ => return Err(ChunkError("control byte in a chunk extension")),
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError("CR without LF after a chunk size"));
                    }
                    self.state = if self.remaining == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError("chunk data longer than its size"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError("CR without LF after chunk data"));
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::EndLf;
                    } else if b == b'\n' || (b < b' ' && b != b'\t') || b == 0x7f {
                        return Err(ChunkError("control byte in a trailer"));
                    } else {
                        self.count_metadata()?;
                        if !self.in_trailers {
                            self.in_trailers = true;
                            self.trailers_from = i;
                        }
                        self.state = State::Trailer;
                    }
                }
                State::Trailer => match b {
                    b'\r' => self.state = State::TrailerLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => self.count_metadata()?,
                    _ => return Err(ChunkError("control byte in a trailer")),
                },
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError("CR without LF in a trailer"));
                    }
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError("CR without LF at the end"));
                    }
                    self.state = State::Done;
                    self.ended_now = true;
                    return Ok(i + 1);
                }
            }
            i += 1;
        }
        Ok(i)
    }

    fn count_metadata(&mut self) -> Result<(), ChunkError> {
        self.metadata += 1;
        if self.metadata > MAX_METADATA {
            return Err(ChunkError("chunk extensions and trailers too large"));
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns the data and the bytes the body took.
    fn run(input: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut t = ChunkTracker::default();
        let mut data = Vec::new();
        let mut used = 0;
        for piece in input.chunks(step.max(1)) {
            let n = t.feed(piece, |d| data.extend_from_slice(d))?;
            used += n;
            if n < piece.len() {
                break;
            }
        }
        Ok((data, used, t.is_done()))
    }

    #[test]
    fn whole_bodies_in_any_pieces() {
        let body =
            b"5\r\nhello\r\n7;name=\"v\"\r\n, world\r\n0\r\nx-sum: 1\r\n\r\nGET / HTTP/1.1\r\n";
        let end = body.len() - b"GET / HTTP/1.1\r\n".len();
        for step in 1..body.len() {
            let (data, used, done) = run(body, step).expect("valid");
            assert_eq!(
                (data.as_slice(), used, done),
                (&b"hello, world"[..], end, true)
            );
        }
        let (data, used, done) = run(b"A\r\n0123456789\r\n0\r\n\r\n", 100).expect("valid");
        assert_eq!((data.len(), used, done), (10, 20, true));
    }

    /// The bytes passed on, fed in pieces of `step`.
    fn passed_on(input: &[u8], step: usize) -> Vec<u8> {
        let mut t = ChunkTracker::default();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            let used = t.feed(piece, |_| {}).expect("valid");
            out.extend_from_slice(&piece[..t.kept(used)]);
            out.extend_from_slice(t.end());
            if t.is_done() {
                break;
            }
        }
        out
    }

    #[test]
    fn the_end_of_dropped_trailers_is_given_once() {
        // fuzz/regressions/chunked/trailers-end-given-twice: a piece ending exactly where the
        // body does, then more input fed, gave the final CRLF a second time.
        let mut t = ChunkTracker::default();
        assert_eq!(t.feed(b"0\r\nx: 1\r\n\r\n", |_| {}), Ok(11));
        assert_eq!((t.kept(11), t.end()), (3, &b"\r\n"[..]));
        assert_eq!(t.feed(b"GET", |_| {}), Ok(0));
        assert_eq!((t.kept(0), t.end()), (0, &b""[..]));
    }

    #[test]
    fn trailers_are_dropped_in_any_pieces() {
        let body =
            b"5\r\nhello\r\n0;e=1\r\ncontent-length: 9\r\nx-forwarded-for: 6.6.6.6\r\n\r\nGET";
        for step in 1..body.len() {
            assert_eq!(
                passed_on(body, step),
                b"5\r\nhello\r\n0;e=1\r\n\r\n",
                "{step}"
            );
        }
        let plain = b"5\r\nhello\r\n0\r\n\r\n";
        for step in 1..plain.len() {
            assert_eq!(passed_on(plain, step), plain, "{step}");
        }
    }

    #[test]
    fn truncated_bodies_are_not_done() {
        let body = b"5\r\nhello\r\n0\r\n\r\n";
        for cut in 0..body.len() {
            let (_, used, done) = run(&body[..cut], 3).expect("a prefix is no error");
            assert_eq!((used, done), (cut, false));
        }
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"5 \r\nhello\r\n",
            b"5\nhello\r\n",
            b"5\r\nhello!\r\n",
            b"5\r\nhello\n",
            b"-1\r\n",
            b"0x5\r\n",
            b"11111111111111111\r\n",
            b"5;a\x01b\r\n",
            b"0\r\nbad\ntrailer\r\n\r\n",
            b"0\r\n\n",
            b"0\r\n\r\r",
        ] {
            assert!(run(bad, 1).is_err(), "{:?}", String::from_utf8_lossy(bad));
            assert!(run(bad, 64).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_largest_size_does_not_overflow() {
        let mut t = ChunkTracker::default();
        assert_eq!(t.feed(b"ffffffffffffffff\r\nab", |_| {}), Ok(20));
        assert_eq!(t.remaining, u64::MAX - 2);
        assert!(!t.is_done());
    }

    #[test]
    fn oversized_metadata_is_an_error() {
        let mut ext = b"1;".to_vec();
        ext.extend(std::iter::repeat_n(b'a', MAX_METADATA + 1));
        assert!(run(&ext, 4096).is_err());
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..2000 {
            trailers.extend_from_slice(b"x-a: 12345678\r\n");
        }
        assert!(run(&trailers, 4096).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: every input either errs or is a prefix of a body.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let alphabet = b"0123456789abcdefABCDEF;\r\n \t=\"xX\x00\xff";
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let input: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 60)) as usize + i) % alphabet.len()])
                .collect();
            let _ = run(&input, (seed % 7) as usize + 1);
        }
    }
}
