//! Instance logs on disk: `<dir>/<project>/<instance>.log`, one JSON object a line
//! (`{"time":"2026-11-03T10:04:05.123Z","stream":"stdout","line":"..."}`), at most `cap`
//! bytes per file; a full file is renamed `<instance>.log.1` (replacing the previous one) and a
//! new one begun.
//!
//! The supervisor hands over lines through [`LogSink::line`], which must never block: lines go
//! into a bounded channel read by one writer thread. When the channel is full the line is
//! dropped and counted, and the writer later writes a marker line saying how many were lost.
//!
//! When the free space of the log directory's filesystem falls under a floor
//! ([`LogStore::set_floor`]), the writer deletes log files oldest first (by modification time:
//! rotated files and stopped instances' logs go before the live ones) until it is above the
//! floor again, and says which ([`Trimmed`]), so that the logs never fill the disk the store
//! and the instances need.
//!
//! Readers ([`LogStore::read`]) take the same gate the writer holds while it writes a batch and
//! publishes it to followers, so a follower gets every line exactly once: those on disk before
//! it subscribed, then the live ones.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use wharf_api::message::{InstanceState, LogEntry, LogStream};
use wharf_api::timestamp::rfc3339_millis;
use wharf_model::names::child_path;
use wharf_runtime::{OutputLine, Stream};
use wharf_supervisor::LogSink;

/// The size cap of one log file when none is configured.
pub const DEFAULT_CAP: u64 = 10 * 1024 * 1024;

/// How many lines may wait for the writer before new ones are dropped.
const CHANNEL: usize = 8192;

/// How many lines the writer takes at once (one flush, one gate).
const BATCH: usize = 512;

/// How far behind a follower may fall before it skips lines.
const LIVE: usize = 1024;

/// One line as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    time: String,
    stream: LogStream,
    line: String,
}

struct Line {
    project: String,
    service: String,
    instance: String,
    at: SystemTime,
    stream: LogStream,
    line: String,
}

enum Message {
    Line(Line),
    /// Close the project's files and delete its directory.
    Forget {
        project: String,
        done: oneshot::Sender<()>,
    },
    /// Answer once everything before is on disk.
    Sync(oneshot::Sender<()>),
}

type InstanceKey = (String, String, String);

/// The free space kept in the log directory's filesystem when none is configured.
pub const DEFAULT_FLOOR: u64 = 64 << 20;

/// Log files deleted to keep free space above the floor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trimmed {
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// Free bytes before and after.
    pub free_before: u64,
    pub free_after: u64,
    pub floor: u64,
}

impl Trimmed {
    /// The projects whose logs were deleted (the names of their directories).
    pub fn projects(&self, dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| f.strip_prefix(dir).ok())
            .filter(|rest| rest.components().count() > 1)
            .filter_map(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        out.dedup();
        out.sort();
        out.dedup();
        out
    }
}

impl std::fmt::Display for Trimmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "warning: the disk of the logs had {} KiB free, under the floor of {} KiB: deleted {} log file(s) ({} KiB), oldest first: {}; {} KiB free now",
            self.free_before / 1024,
            self.floor / 1024,
            self.files.len(),
            self.bytes / 1024,
            self.files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.free_after / 1024
        )
    }
}

type TrimWarning = Box<dyn Fn(&Trimmed) + Send + Sync>;

struct Shared {
    dir: PathBuf,
    cap: u64,
    /// Free bytes kept in the filesystem (0: no trimming).
    floor: std::sync::atomic::AtomicU64,
    on_trim: std::sync::OnceLock<TrimWarning>,
    gate: Mutex<()>,
    live: broadcast::Sender<LogEntry>,
    dropped: Mutex<BTreeMap<InstanceKey, u64>>,
    any_dropped: AtomicBool,
}

impl Shared {
    fn gate(&self) -> MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The daemon's log store. Cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Message>,
}

impl LogStore {
    /// Opens the store in `dir` with a cap of `cap` bytes per file, and starts its writer
    /// thread (which ends when the last clone is dropped).
    pub fn open(dir: PathBuf, cap: u64) -> io::Result<Self> {
        LogStore::with_channel(dir, cap, CHANNEL)
    }

    fn with_channel(dir: PathBuf, cap: u64, channel: usize) -> io::Result<Self> {
        private_dir(&dir)?;
        let (live, _) = broadcast::channel(LIVE);
        let shared = Arc::new(Shared {
            dir,
            cap: cap.max(1),
            floor: std::sync::atomic::AtomicU64::new(0),
            on_trim: std::sync::OnceLock::new(),
            gate: Mutex::new(()),
            live,
            dropped: Mutex::new(BTreeMap::new()),
            any_dropped: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel(channel);
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("wharf-log-writer".into())
            .spawn(move || write_loop(&writer, rx))?;
        Ok(LogStore { shared, tx })
    }

    /// Keeps `floor` bytes free in the log directory's filesystem by deleting log files oldest
    /// first; `warn` is told each time (once: later calls change the floor only).
    pub fn set_floor(&self, floor: u64, warn: impl Fn(&Trimmed) + Send + Sync + 'static) {
        self.shared.floor.store(floor, Ordering::Release);
        let _ = self.shared.on_trim.set(Box::new(warn));
    }

    /// Appends a line (the supervisor calls this through [`LogSink`]); never blocks.
    pub fn append(
        &self,
        project: &str,
        service: &str,
        instance: &str,
        at: SystemTime,
        stream: LogStream,
        line: &str,
    ) {
        let message = Message::Line(Line {
            project: project.to_string(),
            service: service.to_string(),
            instance: instance.to_string(),
            at,
            stream,
            line: line.to_string(),
        });
        if self.tx.try_send(message).is_err() {
            let key = (
                project.to_string(),
                service.to_string(),
                instance.to_string(),
            );
            *self
                .shared
                .dropped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default() += 1;
            self.shared.any_dropped.store(true, Ordering::Release);
        }
    }

    /// The kept lines of `project`'s instances (of `services`, or all when empty), the last
    /// `tail` of each instance, merged by time; and, with `follow`, a receiver of every line
    /// written from then on (of every project: filter it).
    pub fn read(
        &self,
        project: &str,
        services: &[String],
        tail: Option<usize>,
        follow: bool,
    ) -> io::Result<(Vec<LogEntry>, Option<broadcast::Receiver<LogEntry>>)> {
        let _gate = self.shared.gate();
        let live = follow.then(|| self.shared.live.subscribe());
        let dir = child_path(&self.shared.dir, project)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut entries = Vec::new();
        let listing = match fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((entries, live)),
            Err(e) => return Err(e),
        };
        let mut instances: Vec<String> = listing
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".log"))
                    .map(str::to_string)
            })
            .collect();
        instances.sort();
        for instance in instances {
            let service = service_of(project, &instance);
            if !services.is_empty() && !services.contains(&service) {
                continue;
            }
            let current = dir.join(format!("{instance}.log"));
            let mut lines = last_lines(&current, tail)?;
            if tail.is_none_or(|n| lines.len() < n) {
                let previous = dir.join(format!("{instance}.log.1"));
                let more = tail.map(|n| n - lines.len());
                let mut older = match last_lines(&previous, more) {
                    Ok(l) => l,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(e),
                };
                older.append(&mut lines);
                lines = older;
            }
            for l in lines {
                let Ok(r) = serde_json::from_str::<Record>(&l) else {
                    continue;
                };
                entries.push(LogEntry {
                    project: project.to_string(),
                    service: service.clone(),
                    instance: instance.clone(),
                    time: r.time,
                    stream: r.stream,
                    line: r.line,
                });
            }
        }
        entries.sort_by(|a, b| a.time.cmp(&b.time));
        Ok((entries, live))
    }

    /// Closes the project's log files and deletes them.
    pub async fn forget(&self, project: &str) {
        let (done, wait) = oneshot::channel();
        let message = Message::Forget {
            project: project.to_string(),
            done,
        };
        if self.tx.send(message).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Returns once every line appended before is on disk (and published to followers).
    pub async fn sync(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Sync(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Where the lines of an instance are written; `None` for a name that is not one plain
    /// path component (it would lead out of the log directory).
    pub fn path(&self, project: &str, instance: &str) -> Option<PathBuf> {
        instance_path(&self.shared.dir, project, instance)
    }
}

impl LogSink for LogStore {
    fn line(&self, instance: &InstanceState, line: &OutputLine) {
        let stream = match line.stream {
            Stream::Stdout => LogStream::Stdout,
            Stream::Stderr => LogStream::Stderr,
        };
        self.append(
            &instance.project,
            &instance.service,
            &instance.name,
            line.at,
            stream,
            &line.line,
        );
    }
}

/// `<project>-<service>-<n>` -> `<service>`.
pub fn service_of(project: &str, instance: &str) -> String {
    let rest = instance
        .strip_prefix(project)
        .and_then(|r| r.strip_prefix('-'))
        .unwrap_or(instance);
    match rest.rsplit_once('-') {
        Some((service, n)) if n.chars().all(|c| c.is_ascii_digit()) => service.to_string(),
        _ => rest.to_string(),
    }
}

struct OpenLog {
    file: BufWriter<File>,
    size: u64,
    /// Whether a write failed (reported once).
    failed: bool,
}

fn write_loop(shared: &Shared, mut rx: mpsc::Receiver<Message>) {
    let mut files: HashMap<PathBuf, OpenLog> = HashMap::new();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let _gate = shared.gate();
        trim_if_low(shared, &mut files);
        let mut published = Vec::new();
        let mut synced = Vec::new();
        for message in batch {
            match message {
                Message::Line(line) => {
                    if shared.any_dropped.swap(false, Ordering::AcqRel) {
                        write_drop_markers(shared, &mut files, line.at);
                    }
                    let entry = write_line(shared, &mut files, line);
                    if shared.live.receiver_count() > 0 {
                        published.push(entry);
                    }
                }
                Message::Forget { project, done } => {
                    if let Ok(dir) = child_path(&shared.dir, &project) {
                        files.retain(|path, _| !path.starts_with(&dir));
                        let _ = fs::remove_dir_all(&dir);
                    }
                    let _ = done.send(());
                }
                Message::Sync(done) => synced.push(done),
            }
        }
        for (path, log) in &mut files {
            if let Err(e) = log.file.flush() {
                report(path, log, &e);
            }
        }
        for entry in published {
            let _ = shared.live.send(entry);
        }
        for done in synced {
            let _ = done.send(());
        }
    }
}

/// The bytes an unprivileged writer may still use in the filesystem of `dir`.
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Deletes log files, oldest first, while the free space is under the floor.
fn trim_if_low(shared: &Shared, files: &mut HashMap<PathBuf, OpenLog>) {
    let floor = shared.floor.load(Ordering::Acquire);
    if floor == 0 {
        return;
    }
    let Ok(free_before) = free_bytes(&shared.dir) else {
        return;
    };
    if free_before >= floor {
        return;
    }
    // Every file of the directory and of the projects' directories, oldest first.
    let mut candidates: Vec<(SystemTime, PathBuf, u64)> = Vec::new();
    let mut collect = |dir: &Path, depth: usize| -> Vec<PathBuf> {
        let mut subdirs = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && depth == 0 {
                subdirs.push(entry.path());
            } else if meta.is_file() {
                let at = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                candidates.push((at, entry.path(), meta.len()));
            }
        }
        subdirs
    };
    for sub in collect(&shared.dir, 0) {
        collect(&sub, 1);
    }
    candidates.sort();
    let mut trimmed = Trimmed {
        files: Vec::new(),
        bytes: 0,
        free_before,
        free_after: free_before,
        floor,
    };
    for (_, path, len) in candidates {
        if trimmed.free_after >= floor {
            break;
        }
        // An open file's space is freed only once it is closed too.
        files.remove(&path);
        if fs::remove_file(&path).is_ok() {
            trimmed.files.push(path);
            trimmed.bytes += len;
        }
        trimmed.free_after = free_bytes(&shared.dir).unwrap_or(trimmed.free_after);
    }
    if trimmed.files.is_empty() {
        return;
    }
    eprintln!("wharf daemon: {trimmed}");
    if let Some(warn) = shared.on_trim.get() {
        warn(&trimmed);
    }
}

/// Writes, in each instance's log that lost lines, how many; dated as the line that follows.
fn write_drop_markers(shared: &Shared, files: &mut HashMap<PathBuf, OpenLog>, at: SystemTime) {
    let dropped = std::mem::take(&mut *shared.dropped.lock().unwrap_or_else(|p| p.into_inner()));
    for ((project, service, instance), n) in dropped {
        write_line(
            shared,
            files,
            Line {
                project,
                service,
                instance,
                at,
                stream: LogStream::Wharf,
                line: format!(
                    "wharf: {n} line(s) of output were dropped here: the log writer fell behind"
                ),
            },
        );
    }
}

/// Writes one line (rotating the file first when it would pass the cap) and returns it as an
/// entry for followers.
fn write_line(shared: &Shared, files: &mut HashMap<PathBuf, OpenLog>, line: Line) -> LogEntry {
    let record = Record {
        time: rfc3339_millis(line.at),
        stream: line.stream,
        line: line.line,
    };
    let mut text = serde_json::to_string(&record).unwrap_or_default();
    text.push('\n');
    let entry = LogEntry {
        project: line.project,
        service: line.service,
        instance: line.instance,
        time: record.time,
        stream: record.stream,
        line: record.line,
    };
    let Some(path) = instance_path(&shared.dir, &entry.project, &entry.instance) else {
        eprintln!(
            "wharf daemon: not writing the output of `{}` of project `{}`: the name would lead out of {}",
            entry.instance,
            entry.project,
            shared.dir.display()
        );
        return entry;
    };
    let len = text.len() as u64;
    if files
        .get(&path)
        .is_some_and(|l| l.size > 0 && l.size + len > shared.cap)
    {
        if let Some(mut old) = files.remove(&path) {
            let _ = old.file.flush();
        }
        let mut rotated = path.clone().into_os_string();
        rotated.push(".1");
        if let Err(e) = fs::rename(&path, &rotated) {
            eprintln!("wharf daemon: cannot rotate {}: {e}", path.display());
        }
    }
    if !files.contains_key(&path) {
        match open_log(&path) {
            Ok(log) => {
                files.insert(path.clone(), log);
            }
            Err(e) => eprintln!("wharf daemon: cannot open {}: {e}", path.display()),
        }
    }
    if let Some(log) = files.get_mut(&path) {
        match log.file.write_all(text.as_bytes()) {
            Ok(()) => log.size += len,
            Err(e) => report(&path, log, &e),
        }
    }
    entry
}

/// `<dir>/<project>/<instance>.log`, when both names are plain path components.
fn instance_path(dir: &Path, project: &str, instance: &str) -> Option<PathBuf> {
    child_path(&child_path(dir, project).ok()?, &format!("{instance}.log")).ok()
}

/// Creates `dir` (and its parents) private to the daemon's user.
fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn open_log(path: &Path) -> io::Result<OpenLog> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    // The output of services holds what they print of their secrets: 0600.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok(OpenLog {
        file: BufWriter::new(file),
        size,
        failed: false,
    })
}

fn report(path: &Path, log: &mut OpenLog, e: &io::Error) {
    if !log.failed {
        log.failed = true;
        eprintln!(
            "wharf daemon: cannot write {}: {e} (further errors for this file are not reported)",
            path.display()
        );
    }
}

/// The last `n` lines of a file (all of them for `None`), reading backwards in chunks.
fn last_lines(path: &Path, n: Option<usize>) -> io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let Some(n) = n else {
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        return Ok(text.lines().map(str::to_string).collect());
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    const CHUNK: u64 = 64 * 1024;
    let mut pos = file.metadata()?.len();
    let mut buf: Vec<u8> = Vec::new();
    // n complete lines need n + 1 line ends (the last line ends with one), or the file's start.
    while pos > 0 && buf.iter().filter(|b| **b == b'\n').count() <= n {
        let step = CHUNK.min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0; usize::try_from(step).unwrap_or(usize::MAX)];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if pos > 0 && !lines.is_empty() {
        // The first line is cut (or is the end of an earlier line).
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..].iter().map(|s| s.to_string()).collect())
}

#[cfg(test)]
mod tests;
