//! An instance's stdout and stderr, pipe bytes to [`OutputLine`]s: split at `\n` (a trailing
//! `\r` dropped too), the last line kept even without a newline, lines longer than
//! [`MAX_LINE`] split at a character boundary, bytes that are not UTF-8 replaced.

use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::{OutputLine, Stream};

/// The longest line sent as one; longer ones arrive in pieces of at most this many bytes.
pub(super) const MAX_LINE: usize = 64 * 1024;

#[derive(Default)]
pub(super) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes; `emit` gets every line completed by them.
    pub(super) fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            match rest.iter().position(|b| *b == b'\n') {
                Some(end) if end <= MAX_LINE => {
                    let line = &rest[..end];
                    emit(line.strip_suffix(b"\r").unwrap_or(line));
                    start += end + 1;
                }
                _ if rest.len() > MAX_LINE => {
                    let cut = char_boundary(rest, MAX_LINE);
                    emit(&rest[..cut]);
                    start += cut;
                }
                _ => break,
            }
        }
        self.pending.drain(..start);
    }

    /// The end of the stream: the last line, if it had no newline.
    pub(super) fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            emit(line.strip_suffix(b"\r").unwrap_or(&line));
        }
    }
}

/// The largest cut at or below `max` that does not split a UTF-8 sequence (`bytes` is longer
/// than `max`); `max` itself when the bytes are not UTF-8 there anyway.
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| !is_continuation(bytes[i]))
        .filter(|&i| i > 0)
        .unwrap_or(max)
}

/// Reads `source` to its end, sending each line. Keeps reading (and discarding) when nobody
/// listens any more, so that the instance never blocks on a full pipe.
pub(super) async fn forward_lines<R: AsyncRead + Unpin>(
    mut source: R,
    stream: Stream,
    lines: mpsc::Sender<OutputLine>,
) {
    let mut splitter = LineSplitter::default();
    // Not zeroed: only the bytes an instance writes make pages resident (two readers per
    // instance; a zeroed 16 KiB each was 1.6 MB of the daemon's memory with 50 quiet instances).
    let mut chunk = Vec::with_capacity(16 * 1024);
    let mut complete: Vec<String> = Vec::new();
    let mut listening = true;
    loop {
        chunk.clear();
        match source.read_buf(&mut chunk).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if !listening {
            continue;
        }
        splitter.push(&chunk, |l| {
            complete.push(String::from_utf8_lossy(l).into_owned())
        });
        for line in complete.drain(..) {
            listening = send(&lines, stream, line).await;
        }
    }
    splitter.finish(|l| complete.push(String::from_utf8_lossy(l).into_owned()));
    if listening {
        for line in complete.drain(..) {
            send(&lines, stream, line).await;
        }
    }
}

async fn send(lines: &mpsc::Sender<OutputLine>, stream: Stream, line: String) -> bool {
    let line = OutputLine {
        stream,
        line,
        at: SystemTime::now(),
    };
    lines.send(line).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            split(&[b"a\nb", b"c\r\n\nd"]),
            vec![b"a".to_vec(), b"bc".to_vec(), b"".to_vec(), b"d".to_vec()]
        );
        assert_eq!(split(&[b""]), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn caps_long_lines_at_a_character_boundary() {
        let mut long = vec![b'a'; MAX_LINE - 1];
        long.extend("é".as_bytes()); // straddles the cap
        long.extend(b"tail\n");
        let out = split(&[&long]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE - 1);
        assert_eq!(out[1], "étail".as_bytes());

        let out = split(&[&vec![b'x'; 2 * MAX_LINE + 5]]);
        let lens: Vec<usize> = out.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 5]);
    }

    #[tokio::test]
    async fn non_utf8_is_replaced_and_nobody_listening_is_fine() {
        let (tx, mut rx) = mpsc::channel(8);
        forward_lines(&b"ok\n\xff\xfe\nlast"[..], Stream::Stderr, tx).await;
        let mut got = Vec::new();
        while let Some(l) = rx.recv().await {
            assert_eq!(l.stream, Stream::Stderr);
            got.push(l.line);
        }
        assert_eq!(got, vec!["ok", "\u{fffd}\u{fffd}", "last"]);

        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        forward_lines(&b"many\nlines\nnobody\nreads\n"[..], Stream::Stdout, tx).await;
    }
}
