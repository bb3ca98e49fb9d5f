//! The access log: one line per request, plain or JSON, written by a thread of its own.
//!
//! The request path never waits for the disk: a finished request's [`AccessRecord`] goes into a
//! bounded queue with `try_send`, and a writer thread formats it and hands the line to the
//! [`AccessSink`] (a file, the daemon's log store, ...). When the writer falls behind, lines are
//! dropped and counted (`wharf_router_access_log_dropped_total`); a sink that fails is counted
//! too (`wharf_router_access_log_errors_total`).
//!
//! Plain lines read like this (fields separated by spaces, absent ones as `-`):
//!
//! ```text
//! 2026-11-22T02:40:11.532Z 127.0.0.1:50122 GET example.org /api?x=1 200 1532 0.000412 web web-1 65f1c2a0d4e7b9a100000007
//! ```
//!
//! JSON lines carry the same fields under the names `time`, `client`, `method`, `host`, `path`,
//! `status`, `bytes`, `duration_seconds`, `route`, `instance`, `request_id`.

use std::fmt::{self, Write as _};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lines waiting for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// Where access log lines go. Called from the writer thread only, never from the request path.
pub trait AccessSink: Send + 'static {
    /// One line, without its newline.
    fn write_line(&mut self, line: &str) -> io::Result<()>;
    /// No line is waiting: a good time to flush buffers.
    fn idle(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that writes lines to any writer (a file, stdout), buffered, flushed when idle.
struct WriterSink<W: Write>(BufWriter<W>);

impl<W: Write + Send + 'static> AccessSink for WriterSink<W> {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.0.write_all(line.as_bytes())?;
        self.0.write_all(b"\n")
    }

    fn idle(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    Plain,
    Json,
}

/// What is logged of one request.
#[derive(Clone, Debug)]
pub struct AccessRecord {
    pub time: SystemTime,
    pub client: SocketAddr,
    pub method: hyper::Method,
    pub host: Option<String>,
    /// The path and query as the client sent them.
    pub path: String,
    pub status: u16,
    /// Bytes of response body sent.
    pub bytes: u64,
    pub duration: Duration,
    pub route: Option<String>,
    pub instance: Option<String>,
    pub request_id: String,
}

/// The access log setting of [`RouterConfig`](crate::RouterConfig): cheap to clone, all clones
/// feed one writer thread, which ends when the last clone is dropped.
#[derive(Clone)]
pub struct AccessLog {
    sender: SyncSender<AccessRecord>,
    format: AccessLogFormat,
    pub(crate) errors: Arc<AtomicU64>,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl AccessLog {
    /// Plain lines to a writer (a file opened for appending, stdout, ...).
    pub fn plain(writer: impl Write + Send + 'static) -> AccessLog {
        AccessLog::new(AccessLogFormat::Plain, WriterSink(BufWriter::new(writer)))
    }

    /// JSON lines to a writer.
    pub fn json(writer: impl Write + Send + 'static) -> AccessLog {
        AccessLog::new(AccessLogFormat::Json, WriterSink(BufWriter::new(writer)))
    }

    /// Lines in `format` to a sink of the caller's.
    pub fn new(format: AccessLogFormat, sink: impl AccessSink) -> AccessLog {
        let (sender, receiver) = sync_channel(QUEUE);
        let errors = Arc::new(AtomicU64::new(0));
        let counted = errors.clone();
        // A thread, not a task: the sink may block on a disk, and the log must not need a runtime
        // to exist when the router is configured.
        let spawned = std::thread::Builder::new()
            .name("wharf-access-log".into())
            .spawn(move || write_lines(receiver, format, sink, &counted));
        if spawned.is_err() {
            // Without a thread every line is dropped, and counted so.
            errors.fetch_add(1, Ordering::Relaxed);
        }
        AccessLog {
            sender,
            format,
            errors,
        }
    }

    pub fn format(&self) -> AccessLogFormat {
        self.format
    }

    /// Queues a record; `false` when the queue is full or the writer is gone (the line is lost).
    pub(crate) fn send(&self, record: AccessRecord) -> bool {
        match self.sender.try_send(record) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

fn write_lines(
    receiver: Receiver<AccessRecord>,
    format: AccessLogFormat,
    mut sink: impl AccessSink,
    errors: &AtomicU64,
) {
    let mut line = String::new();
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(record) = next {
            line.clear();
            match format {
                AccessLogFormat::Plain => plain_line(&record, &mut line),
                AccessLogFormat::Json => json_line(&record, &mut line),
            }
            if sink.write_line(&line).is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            next = receiver.try_recv().ok();
        }
        if sink.idle().is_err() {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The plain format: space-separated, `-` for an absent field; the host and path are as the client
/// sent them, with spaces and control characters percent-encoded so that a line stays one line
/// of the same number of fields.
pub fn plain_line(r: &AccessRecord, out: &mut String) {
    let field = |out: &mut String, v: Option<&str>| match v {
        Some(v) if !v.is_empty() => {
            for b in v.bytes() {
                if b <= b' ' || b == 0x7f {
                    let _ = write!(out, "%{b:02X}");
                } else {
                    out.push(b as char);
                }
            }
        }
        _ => out.push('-'),
    };
    rfc3339(r.time, out);
    let _ = write!(out, " {} {} ", r.client, r.method);
    field(out, r.host.as_deref());
    out.push(' ');
    field(out, Some(&r.path));
    let _ = write!(
        out,
        " {} {} {:.6} ",
        r.status,
        r.bytes,
        r.duration.as_secs_f64()
    );
    field(out, r.route.as_deref());
    out.push(' ');
    field(out, r.instance.as_deref());
    out.push(' ');
    field(out, Some(&r.request_id));
}

/// The JSON format: one object per line.
pub fn json_line(r: &AccessRecord, out: &mut String) {
    let mut time = String::new();
    rfc3339(r.time, &mut time);
    let value = serde_json::json!({
        "time": time,
        "client": r.client.to_string(),
        "method": r.method.as_str(),
        "host": r.host,
        "path": r.path,
        "status": r.status,
        "bytes": r.bytes,
        "duration_seconds": r.duration.as_secs_f64(),
        "route": r.route,
        "instance": r.instance,
        "request_id": r.request_id,
    });
    let _ = write!(out, "{value}");
}

/// `2026-11-22T02:40:11.532Z`: UTC, milliseconds.
fn rfc3339(time: SystemTime, out: &mut String) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessRecord {
        AccessRecord {
            // 2026-11-22T02:40:11.532Z
            time: UNIX_EPOCH + Duration::from_millis(1_795_315_211_532),
            client: "127.0.0.1:50122".parse().expect("addr"),
            method: hyper::Method::GET,
            host: Some("example.org".into()),
            path: "/a b?x=\"1\"".into(),
            status: 200,
            bytes: 1532,
            duration: Duration::from_micros(412),
            route: Some("web".into()),
            instance: None,
            request_id: "abc".into(),
        }
    }

    #[test]
    fn plain_lines_keep_their_fields() {
        let mut line = String::new();
        plain_line(&record(), &mut line);
        assert_eq!(
            line,
            "2026-11-22T02:40:11.532Z 127.0.0.1:50122 GET example.org /a%20b?x=\"1\" 200 1532 0.000412 web - abc"
        );
    }

    #[test]
    fn json_lines_parse_back() {
        let mut line = String::new();
        json_line(&record(), &mut line);
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["path"], "/a b?x=\"1\"");
        assert_eq!(v["instance"], serde_json::Value::Null);
        assert_eq!(v["time"], "2026-11-22T02:40:11.532Z");
    }

    #[test]
    fn dates_before_march_and_leap_days() {
        let mut s = String::new();
        // 2024-02-29T23:59:59.000Z
        rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_251_199), &mut s);
        assert_eq!(s, "2024-02-29T23:59:59.000Z");
        s.clear();
        rfc3339(UNIX_EPOCH, &mut s);
        assert_eq!(s, "1970-01-01T00:00:00.000Z");
    }
}
