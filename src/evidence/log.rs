//! The tamper-evident log: records as JSON lines in segment files, hash-chained, with an
//! RFC 6962 Merkle tree over them and signed checkpoints.
//!
//! Layout of the log directory:
//!
//! ```text
//! segment-00000000000000000000.jsonl   records from seq 0, one JSON object per line
//! segment-00000000000000004711.jsonl   the next segment starts at the seq in its name
//! checkpoints.jsonl                    signed checkpoints, one per line
//! pruned.leaves                        leaf hashes (32 bytes each) of deleted segments
//! ```
//!
//! Records reach the log through a bounded queue to one writer thread, so a request never
//! waits for the disk. The writer assigns `seq` and `prev`, appends, and writes a checkpoint
//! every `checkpoint_records` records or `checkpoint_interval`. On start the log is read
//! back: a torn last line (a crash mid-write) is cut off and reported; any other damage
//! refuses to start, because appending to a broken chain would hide it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use prometheus::{IntCounter, IntCounterVec, Opts};

use super::checkpoint::Checkpoint;
use super::config::{EvidenceConfig, Fsync};
use super::merkle::{self, Frontier, Hash};
use super::record::{unix_ms, Record};
use crate::signing::SigningKey;

pub const CHECKPOINTS: &str = "checkpoints.jsonl";
pub const PRUNED: &str = "pruned.leaves";
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How long the writer lets records gather after the first one wakes it. While it waits it
/// is not parked on the queue, so requests queue without waking it: one wake-up and one
/// write per batch instead of per record (a wake-up costs a request several µs of CPU).
const BATCH_WINDOW: Duration = Duration::from_micros(250);

/// Why a record could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("the evidence queue stayed full for `evidence.queue_wait`")]
    Full,
    #[error("the evidence log cannot write (see the gateway's log)")]
    Unavailable,
}

/// The log's counters (`forge_evidence_*`).
#[derive(Clone)]
pub struct LogMetrics {
    pub records: IntCounter,
    /// Records not written, by reason (`queue_full`, `write_error`).
    pub dropped: IntCounterVec,
    pub checkpoints: IntCounter,
    pub write_errors: IntCounter,
}

impl LogMetrics {
    pub fn new() -> LogMetrics {
        LogMetrics {
            records: IntCounter::new("forge_evidence_records_total", "Evidence records appended to the log")
                .expect("valid metric"),
            dropped: IntCounterVec::new(
                Opts::new("forge_evidence_records_dropped_total", "Evidence records not written, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
            checkpoints: IntCounter::new("forge_evidence_checkpoints_total", "Signed checkpoints written")
                .expect("valid metric"),
            write_errors: IntCounter::new("forge_evidence_write_errors_total", "Failed writes to the evidence log")
                .expect("valid metric"),
        }
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.records.clone()),
            Box::new(self.dropped.clone()),
            Box::new(self.checkpoints.clone()),
            Box::new(self.write_errors.clone()),
        ]
    }
}

impl Default for LogMetrics {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) enum Command {
    Append(Box<Record>),
    /// Write a checkpoint now and answer when it is on disk.
    Checkpoint(mpsc::Sender<()>),
    /// Write what is queued before this, a final checkpoint, and stop.
    Close,
}

/// The handle requests use; the writer thread owns the files.
pub struct EvidenceLog {
    tx: Sender<Command>,
    /// How long a record waits for room in a full queue before it is refused.
    queue_wait: Duration,
    healthy: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
    pub metrics: LogMetrics,
}

/// What opening the log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub records: u64,
    /// Bytes of a torn last record that were cut off.
    pub truncated_bytes: u64,
}

impl EvidenceLog {
    /// Opens (and recovers) the log in `dir` and starts its writer thread.
    pub fn open(
        dir: &Path,
        config: &EvidenceConfig,
        key: Arc<SigningKey>,
        origin: String,
        metrics: LogMetrics,
    ) -> anyhow::Result<(EvidenceLog, Recovery)> {
        let (writer, recovery) = Writer::open(dir, config, key, origin, metrics.clone())?;
        Ok((EvidenceLog::start(writer, config.queue, config.queue_wait, metrics)?, recovery))
    }

    fn start(writer: Writer, queue: usize, queue_wait: Duration, metrics: LogMetrics) -> anyhow::Result<EvidenceLog> {
        let (tx, rx) = crossbeam_channel::bounded(queue);
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = healthy.clone();
        let thread = std::thread::Builder::new()
            .name("forge-evidence".into())
            .spawn(move || writer.run(rx, flag))
            .context("starting the evidence writer thread")?;
        Ok(EvidenceLog { tx, queue_wait, healthy, writer: Mutex::new(Some(thread)), metrics })
    }

    /// A log whose writer is stalled (the test holds the queue's receiving end), to fill
    /// its queue of `queue` records.
    #[cfg(test)]
    pub(crate) fn stalled(queue: usize, queue_wait: Duration) -> (EvidenceLog, Receiver<Command>) {
        let (tx, rx) = crossbeam_channel::bounded(queue);
        let healthy = Arc::new(AtomicBool::new(true));
        let log = EvidenceLog { tx, queue_wait, healthy, writer: Mutex::new(None), metrics: LogMetrics::new() };
        (log, rx)
    }

    /// A log in `dir` that has failed a write, as on a full disk (its segment is /dev/full).
    #[cfg(test)]
    pub(crate) fn failing(dir: &Path) -> EvidenceLog {
        let key = Arc::new(SigningKey::generate().expect("a key"));
        let config = EvidenceConfig::default();
        let metrics = LogMetrics::new();
        let (mut writer, _) = Writer::open(dir, &config, key, "test".into(), metrics.clone()).expect("opens");
        writer.file = OpenOptions::new().append(true).open("/dev/full").expect("/dev/full");
        let log = EvidenceLog::start(writer, 16, Duration::ZERO, metrics).expect("starts");
        log.append(tests::record()).expect("queued before the write fails");
        for _ in 0..250 {
            if !log.is_healthy() {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("a write to /dev/full did not fail");
    }

    /// False once a write failed: the log takes no more records until the gateway restarts.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Queues a record. A full queue (the disk is slower than the traffic) is waited on for
    /// up to `evidence.queue_wait`, blocking the caller; after that the record is refused.
    pub fn append(&self, record: Record) -> Result<(), AppendError> {
        if !self.healthy.load(Ordering::Relaxed) {
            return Err(AppendError::Unavailable);
        }
        match self.tx.send_timeout(Command::Append(Box::new(record)), self.queue_wait) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => Err(AppendError::Full),
            Err(SendTimeoutError::Disconnected(_)) => Err(AppendError::Unavailable),
        }
    }

    /// Writes a checkpoint over everything queued so far and waits for it (tests, export).
    pub fn checkpoint(&self, within: Duration) -> bool {
        let (done, wait) = mpsc::channel();
        self.tx.send_timeout(Command::Checkpoint(done), within).is_ok() && wait.recv_timeout(within).is_ok()
    }

    /// Drains the queue, writes a final checkpoint and stops the writer.
    pub fn close(&self) {
        if let Some(thread) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // Fails only when the writer already stopped (a failed write): then it is gone.
            let _ = self.tx.send(Command::Close);
            let _ = thread.join();
        }
    }
}

impl Drop for EvidenceLog {
    fn drop(&mut self) {
        self.close();
    }
}

struct Segment {
    path: PathBuf,
    first_seq: u64,
    /// `time_ms` of its newest record.
    last_time_ms: u64,
}

struct Writer {
    dir: PathBuf,
    key: Arc<SigningKey>,
    origin: String,
    fsync: Fsync,
    fsync_interval: Duration,
    checkpoint_interval: Duration,
    checkpoint_records: u64,
    max_bytes: u64,
    max_age: Duration,
    retention: super::config::RetentionConfig,
    file: File,
    current: Segment,
    bytes: u64,
    opened: Instant,
    closed: Vec<Segment>,
    next_seq: u64,
    prev: String,
    tree: Frontier,
    checkpoints: File,
    checkpointed: u64,
    last_checkpoint: Instant,
    unsynced: bool,
    last_sync: Instant,
    stream: Option<Box<dyn Write + Send>>,
    metrics: LogMetrics,
    /// Lines waiting to be written, and one record's line while it is encoded (reused).
    buffer: Vec<u8>,
    line: Vec<u8>,
}

impl Writer {
    fn open(
        dir: &Path,
        config: &EvidenceConfig,
        key: Arc<SigningKey>,
        origin: String,
        metrics: LogMetrics,
    ) -> anyhow::Result<(Writer, Recovery)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the evidence directory {}", dir.display()))?;
        let state = read_log(dir, ReadMode::Recover)?;
        let last_checkpoint = state.checkpoints.last();
        if let Some(cp) = last_checkpoint {
            if cp.size > state.leaves.len() as u64 {
                bail!(
                    "{}: the last checkpoint covers {} records but the log holds {}: records were lost or removed",
                    dir.display(),
                    cp.size,
                    state.leaves.len()
                );
            }
            if cp.root_hash() != Some(merkle::root(&state.leaves[..cp.size as usize])) {
                bail!(
                    "{}: the records do not match the checkpoint of size {}: the log was changed",
                    dir.display(),
                    cp.size
                );
            }
        }
        let mut tree = Frontier::default();
        for leaf in &state.leaves {
            tree.push(*leaf);
        }
        let next_seq = tree.size();
        let mut segments = state.segments;
        let current = match segments.pop() {
            Some(last) => last,
            None => Segment { path: segment_path(dir, next_seq), first_seq: next_seq, last_time_ms: 0 },
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&current.path)
            .with_context(|| format!("opening {}", current.path.display()))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let checkpoints = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CHECKPOINTS))
            .with_context(|| format!("opening {}", dir.join(CHECKPOINTS).display()))?;
        let stream: Option<Box<dyn Write + Send>> = match config.stream.as_deref() {
            None => None,
            Some("stdout") => Some(Box::new(std::io::stdout())),
            Some(path) => Some(Box::new(
                OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening {path}"))?,
            )),
        };
        let now = Instant::now();
        let writer = Writer {
            dir: dir.to_path_buf(),
            key,
            origin,
            fsync: config.fsync,
            fsync_interval: config.fsync_interval,
            checkpoint_interval: config.checkpoint_interval,
            checkpoint_records: config.checkpoint_records,
            max_bytes: config.rotate.max_bytes as u64,
            max_age: config.rotate.max_age,
            retention: config.retention.clone(),
            file,
            current,
            bytes,
            opened: now,
            closed: segments,
            next_seq,
            prev: state.last_hash.unwrap_or_else(|| ZERO_HASH.to_string()),
            tree,
            checkpoints,
            checkpointed: last_checkpoint.map_or(0, |c| c.size),
            last_checkpoint: now,
            unsynced: false,
            last_sync: now,
            stream,
            metrics,
            buffer: Vec::with_capacity(64 << 10),
            line: Vec::with_capacity(8 << 10),
        };
        Ok((writer, Recovery { records: next_seq, truncated_bytes: state.truncated_bytes }))
    }

    fn run(mut self, rx: Receiver<Command>, healthy: Arc<AtomicBool>) {
        let tick = Duration::from_millis(100).min(self.checkpoint_interval).max(Duration::from_millis(1));
        let mut closing = false;
        while !closing {
            let first = match rx.recv_timeout(tick) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if matches!(first, Some(Command::Append(_))) {
                std::thread::sleep(BATCH_WINDOW);
            }
            // Take whatever else is waiting: one write for the batch.
            let mut waiting = Vec::new();
            for command in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match command {
                    Command::Append(record) => self.encode(*record),
                    Command::Checkpoint(done) => waiting.push(done),
                    Command::Close => closing = true,
                }
                if closing || self.buffer.len() >= 1 << 20 {
                    break;
                }
            }
            let result = self.flush().and_then(|()| {
                let due = self.next_seq > self.checkpointed
                    && (self.next_seq - self.checkpointed >= self.checkpoint_records
                        || self.last_checkpoint.elapsed() >= self.checkpoint_interval);
                if due || !waiting.is_empty() {
                    self.checkpoint()?;
                } else if self.unsynced
                    && (self.fsync == Fsync::Record
                        || (self.fsync == Fsync::Interval && self.last_sync.elapsed() >= self.fsync_interval))
                {
                    self.sync()?;
                }
                Ok(())
            });
            for done in waiting {
                let _ = done.send(());
            }
            if let Err(e) = result {
                self.metrics.write_errors.inc();
                tracing::error!(error = format!("{e:#}"), dir = %self.dir.display(), "EVIDENCE LOG WRITE FAILED: refusing further records until restarted");
                healthy.store(false, Ordering::Relaxed);
                break;
            }
        }
        if healthy.load(Ordering::Relaxed) {
            if let Err(e) = self.flush().and_then(|()| self.checkpoint()) {
                tracing::error!(error = format!("{e:#}"), "could not write the final evidence checkpoint");
            }
        }
        // Anything still queued after a failure (or sent while closing) is lost: count it.
        let lost = rx.try_iter().filter(|c| matches!(c, Command::Append(_))).count();
        self.metrics.dropped.with_label_values(&["write_error"]).inc_by(lost as u64);
    }

    /// Chains a record and adds its line to the write buffer.
    fn encode(&mut self, mut record: Record) {
        record.seq = self.next_seq;
        record.prev = std::mem::take(&mut self.prev);
        let time_ms = record.time_ms;
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        serde_json::to_writer(&mut line, &record).expect("a record serializes");
        self.prev = super::record::sha256_hex(&line);
        self.tree.push(merkle::leaf_hash(&line));
        self.next_seq += 1;
        if self.rotation_due(line.len()) {
            // Rotation needs the buffered lines in the old segment first.
            if let Err(e) = self.flush().and_then(|()| self.rotate(record.seq)) {
                tracing::error!(
                    error = format!("{e:#}"),
                    "evidence segment rotation failed; continuing in the current segment"
                );
            }
        }
        line.push(b'\n');
        self.buffer.extend_from_slice(&line);
        self.current.last_time_ms = time_ms;
        if let Some(stream) = &mut self.stream {
            if let Err(e) = stream.write_all(&line) {
                tracing::warn!(error = %e, "could not stream an evidence record");
            }
        }
        self.line = line;
    }

    fn rotation_due(&self, incoming: usize) -> bool {
        let bytes = self.bytes + self.buffer.len() as u64;
        bytes > 0 && (bytes + incoming as u64 > self.max_bytes || self.opened.elapsed() >= self.max_age)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let count = self.buffer.iter().filter(|b| **b == b'\n').count() as u64;
        self.file.write_all(&self.buffer).with_context(|| format!("appending to {}", self.current.path.display()))?;
        self.bytes += self.buffer.len() as u64;
        self.buffer.clear();
        self.unsynced = true;
        self.metrics.records.inc_by(count);
        Ok(())
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        self.file.sync_data().with_context(|| format!("fsync {}", self.current.path.display()))?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn checkpoint(&mut self) -> anyhow::Result<()> {
        self.last_checkpoint = Instant::now();
        if self.next_seq == self.checkpointed {
            return Ok(());
        }
        // Never sign for records that are not on disk.
        self.sync()?;
        let cp =
            Checkpoint::sign(&self.key, &self.origin, self.tree.size(), &self.tree.root(), unix_ms(SystemTime::now()));
        let mut line = serde_json::to_vec(&cp).expect("a checkpoint serializes");
        line.push(b'\n');
        self.checkpoints.write_all(&line).context("appending a checkpoint")?;
        self.checkpoints.sync_data().context("fsync of the checkpoints")?;
        self.checkpointed = cp.size;
        self.metrics.checkpoints.inc();
        self.apply_retention()
    }

    fn rotate(&mut self, first_seq: u64) -> anyhow::Result<()> {
        self.sync()?;
        let path = segment_path(&self.dir, first_seq);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let next = Segment { path, first_seq, last_time_ms: 0 };
        let old = std::mem::replace(&mut self.current, next);
        self.file = file;
        self.bytes = 0;
        self.opened = Instant::now();
        tracing::info!(segment = %self.current.path.display(), "evidence log rotated to a new segment");
        self.closed.push(old);
        Ok(())
    }

    /// Deletes the closed segments retention no longer keeps, oldest first, once a
    /// checkpoint covers them. Their leaf hashes move to `pruned.leaves` first, so the tree
    /// (and every later proof) stays whole.
    fn apply_retention(&mut self) -> anyhow::Result<()> {
        let now = unix_ms(SystemTime::now());
        let too_old =
            |s: &Segment| self.retention.max_age.is_some_and(|age| s.last_time_ms + age.as_millis() as u64 <= now);
        let mut expired = 0;
        while expired < self.closed.len() {
            let beyond_count = self.retention.max_segments.is_some_and(|max| self.closed.len() - expired > max);
            let next_first = self.closed.get(expired + 1).map_or(self.current.first_seq, |s| s.first_seq);
            // Only segments a checkpoint already covers: their records are signed for.
            if !(beyond_count || too_old(&self.closed[expired])) || next_first > self.checkpointed {
                break;
            }
            expired += 1;
        }
        for segment in self.closed.drain(..expired) {
            let mut text = Vec::new();
            File::open(&segment.path).and_then(|mut f| f.read_to_end(&mut text))?;
            let leaves: Vec<u8> =
                text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).flat_map(merkle::leaf_hash).collect();
            let mut pruned = OpenOptions::new().create(true).append(true).open(self.dir.join(PRUNED))?;
            pruned.write_all(&leaves)?;
            pruned.sync_data()?;
            std::fs::remove_file(&segment.path)?;
            tracing::info!(segment = %segment.path.display(), "evidence segment deleted by retention (leaf hashes kept)");
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("segment-{first_seq:020}.jsonl"))
}

/// Everything read back from a log directory.
pub struct LogState {
    /// Leaf hashes of every record, pruned ones included, by seq.
    pub leaves: Vec<Hash>,
    /// Retained records' lines (without the newline), in order; with [`ReadMode::Inspect`].
    pub lines: Vec<Vec<u8>>,
    /// The seq of `lines[0]`.
    pub first_retained: u64,
    pub checkpoints: Vec<Checkpoint>,
    last_hash: Option<String>,
    segments: Vec<Segment>,
    truncated_bytes: u64,
}

/// How [`read_log`] treats a torn tail: a last line without its newline, as a crash
/// mid-write leaves it. Anything else that does not read is damage, and an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Starting the writer: cut the torn tail off, say so loudly; lines are not kept.
    Recover,
    /// Exporting (a gateway may be writing right now): ignore the torn tail, keep the lines.
    Inspect,
}

/// Reads a log directory and checks its chain.
pub fn read_log(dir: &Path, mode: ReadMode) -> anyhow::Result<LogState> {
    let repair = mode == ReadMode::Recover;
    let mut leaves = Vec::new();
    if let Ok(bytes) = std::fs::read(dir.join(PRUNED)) {
        let whole = bytes.len() / 32 * 32;
        if whole != bytes.len() && repair {
            truncate(&dir.join(PRUNED), whole as u64)?;
        }
        leaves.extend(bytes[..whole].chunks(32).map(|c| <Hash>::try_from(c).expect("32 bytes")));
    }
    let first_retained = leaves.len() as u64;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("segment-") && n.ends_with(".jsonl"))
        })
        .collect();
    names.sort();
    let (mut lines, mut segments, mut last_hash, mut truncated_bytes) = (Vec::new(), Vec::new(), None, 0);
    let mut expected = first_retained;
    for (index, path) in names.iter().enumerate() {
        let is_last = index + 1 == names.len();
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut segment = Segment { path: path.clone(), first_seq: expected, last_time_ms: 0 };
        let mut offset = 0usize;
        let mut line_no = 0;
        while offset < text.len() {
            line_no += 1;
            let end = text[offset..].iter().position(|b| *b == b'\n').map(|p| offset + p);
            let line = &text[offset..end.unwrap_or(text.len())];
            let record = serde_json::from_slice::<Record>(line).ok().filter(|_| end.is_some());
            let Some(record) = record else {
                if is_last && end.is_none() && !repair {
                    break;
                }
                if is_last && end.is_none() {
                    let cut = (text.len() - offset) as u64;
                    tracing::error!(
                        segment = %path.display(),
                        line = line_no,
                        bytes = cut,
                        records_kept = expected,
                        "EVIDENCE LOG RECOVERED: the last record was torn (a crash mid-write); it is cut off, every earlier record is intact"
                    );
                    truncate(path, offset as u64)?;
                    truncated_bytes = cut;
                    break;
                }
                bail!("{} line {line_no}: not a complete evidence record: the log is damaged", path.display());
            };
            if record.seq != expected {
                bail!("{} line {line_no}: record seq {} where {expected} was expected", path.display(), record.seq);
            }
            if let Some(prev) = &last_hash {
                if record.prev != *prev {
                    bail!(
                        "{} line {line_no}: record {} does not chain to the record before it",
                        path.display(),
                        record.seq
                    );
                }
            }
            segment.last_time_ms = record.time_ms;
            last_hash = Some(super::record::sha256_hex(line));
            leaves.push(merkle::leaf_hash(line));
            if !repair {
                lines.push(line.to_vec());
            }
            expected += 1;
            offset = end.expect("complete line") + 1;
        }
        segments.push(segment);
    }
    let checkpoints = read_checkpoints(&dir.join(CHECKPOINTS), mode)?;
    Ok(LogState { leaves, lines, first_retained, checkpoints, last_hash, segments, truncated_bytes })
}

fn read_checkpoints(path: &Path, mode: ReadMode) -> anyhow::Result<Vec<Checkpoint>> {
    let Ok(text) = std::fs::read(path) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < text.len() {
        let end = text[offset..].iter().position(|b| *b == b'\n').map(|p| offset + p);
        match end.and_then(|end| serde_json::from_slice::<Checkpoint>(&text[offset..end]).ok()) {
            Some(cp) => out.push(cp),
            None if end.is_none() && mode == ReadMode::Inspect => break,
            None if end.is_none() => {
                tracing::error!(file = %path.display(), bytes = text.len() - offset, "EVIDENCE LOG RECOVERED: a torn checkpoint was cut off");
                truncate(path, offset as u64)?;
                break;
            }
            None => bail!("{}: checkpoint {} is damaged", path.display(), out.len() + 1),
        }
        offset = end.expect("complete line") + 1;
    }
    Ok(out)
}

fn truncate(path: &Path, len: u64) -> anyhow::Result<()> {
    let file = OpenOptions::new().write(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    file.set_len(len).with_context(|| format!("truncating {}", path.display()))?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record() -> Record {
        serde_json::from_value(serde_json::json!({
            "v": 1, "seq": 0, "prev": "", "id": "r", "received": "", "completed": "", "time_ms": 0,
            "gateway": {"name": "test"}, "direction": "client_to_server", "method": "ping",
            "request_sha256": "", "decision": "allow", "decisions": [], "plugins": [], "pin_status": "unknown"
        }))
        .expect("a record")
    }

    #[test]
    fn a_full_queue_is_waited_on_briefly_then_refused() {
        let wait = Duration::from_millis(50);
        let (log, _rx) = EvidenceLog::stalled(1, wait);
        assert_eq!(log.append(record()), Ok(()));
        let started = Instant::now();
        assert_eq!(log.append(record()), Err(AppendError::Full));
        assert!(started.elapsed() >= wait, "the record waited for room before it was refused");
    }

    #[test]
    fn room_that_frees_up_while_a_record_waits_takes_it() {
        let (log, rx) = EvidenceLog::stalled(1, Duration::from_secs(10));
        log.append(record()).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let first = rx.recv_timeout(Duration::from_secs(10)).is_ok();
            (first, rx.recv_timeout(Duration::from_secs(10)).is_ok())
        });
        assert_eq!(log.append(record()), Ok(()), "queued once the writer took the first");
        assert_eq!(writer.join().unwrap(), (true, true), "both records reached the writer");
    }

    #[test]
    fn a_failed_write_stops_the_log_loudly_and_refuses_later_records() {
        let dir = tempfile::tempdir().unwrap();
        let log = EvidenceLog::failing(dir.path());
        assert_eq!(log.append(record()), Err(AppendError::Unavailable));
        assert_eq!(log.metrics.write_errors.get(), 1);
        assert_eq!(log.metrics.records.get(), 0);
    }
}
