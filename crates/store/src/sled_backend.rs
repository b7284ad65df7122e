//! The embedded backend: the message log in append-only segment files, and
//! the records, indexes, remembered answers and outbox in one sled tree.
//!
//! Every commit is one frame appended to the current segment: the log
//! entries it adds and every write it makes to sled. The frame is made
//! durable (`fdatasync`) before the writes are applied to sled, so the
//! segments are the write-ahead log and sled is never flushed on the way:
//! on open, the frames after the last one sled holds (`m/applied`) are
//! applied again.
//!
//! Keys in the sled tree (records and remembered answers are kept in the
//! segments only: sled holds where they are):
//! - `r/KEY`: a record's version and where its bytes are (format 2:
//!   [`codec::encode_record`]), or an index entry (empty);
//! - `s/SENDER\0MESSAGE`: where a remembered answer ([`StoredRemembered`]) is;
//! - `o/ID`: an outbox item ([`StoredOutbox`]), `ID` big-endian;
//! - `q/SLOT`: the outbox item waiting in a slot ([`Batch::enqueue_latest`]);
//! - `l/SEQUENCE`: where log entry `SEQUENCE` is in the segments ([`Position`]);
//! - `x/KEY\0SEQUENCE`: log entry `SEQUENCE` is indexed under `KEY` (empty);
//! - `t/LEVEL INDEX`: a node of the log's Merkle tree (`LEVEL` one byte,
//!   `INDEX` 8 bytes big-endian; the 32-byte hash), level 0 being the entries' leaf hashes;
//! - `m/format`, `m/head` (the last entry's sequence and the tree's root at
//!   it), `m/applied` (the segment and offset after the last frame applied).
//!
//! The tree is integrated in the committer: each entry's leaf and the nodes it
//! completes are sled writes of the frame that appends the entry, so the
//! window between commit and integration is zero on this backend.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use egov_tlog::{NodeId, NodeReader, Tree};
use prost::Message as _;

use crate::batch;
use crate::codec::{
    self, FRAME_HEADER, Frame, FrameWriter, Item, Position, StoredEntry, StoredOutbox, StoredRemembered, u64_from,
    upper_bound,
};
use crate::committer::{self, Job};
use crate::segments::{ACKNOWLEDGED_FILE, Acknowledged, Mark, SEGMENT_BYTES, Segments};
use crate::{
    Backend, Batch, CommitFuture, Durability, LogEntry, OutboxItem, Remembered, StoreError, idempotency_key, stats,
};

const HEAD: &[u8] = b"m/head";
const APPLIED: &[u8] = b"m/applied";
const FORMAT_KEY: &[u8] = b"m/format";
/// The layout of sled's pointers (derived from the log: another layout is rebuilt from it).
const INDEX_KEY: &[u8] = b"m/index";
const INDEX_LAYOUT: u8 = 2;
/// The highest id handed out before the frame that writes it ([`SledBackend::next_id`]).
const IDS_KEY: &[u8] = b"m/ids";

fn record_key(key: &str) -> Vec<u8> {
    [b"r/".as_slice(), key.as_bytes()].concat()
}

fn outbox_key(id: u64) -> Vec<u8> {
    [b"o/".as_slice(), &id.to_be_bytes()].concat()
}

fn entry_key(sequence: u64) -> Vec<u8> {
    [b"l/".as_slice(), &sequence.to_be_bytes()].concat()
}

/// `x/KEY\0SEQUENCE`: log entry `SEQUENCE` is indexed under `KEY`.
fn log_index_key(key: &str, sequence: u64) -> Vec<u8> {
    [b"x/".as_slice(), key.as_bytes(), b"\0", &sequence.to_be_bytes()].concat()
}

/// `t/LEVEL INDEX`: a node of the Merkle tree.
fn node_key(id: NodeId) -> Vec<u8> {
    [b"t/".as_slice(), &[id.level], &id.index.to_be_bytes()].concat()
}

fn seen_key(key: &str) -> Vec<u8> {
    [b"s/".as_slice(), key.as_bytes()].concat()
}

/// Whether sled keeps only where a key's value is in the segments (records
/// and remembered answers: large, written often) rather than the value.
fn by_position(key: &[u8]) -> bool {
    key.starts_with(b"r/") || key.starts_with(b"s/")
}

/// A frame in the log: segment, offset, whole length (header included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameAt {
    segment: u32,
    at: u64,
    len: u32,
}

impl FrameAt {
    /// Where `len` bytes at `body_at` in the frame's body are.
    fn position(&self, body_at: usize, len: usize) -> Position {
        Position {
            segment: self.segment,
            offset: self.at + (FRAME_HEADER + body_at) as u64,
            len: len as u32,
            frame_at: self.at,
            frame_len: self.len,
        }
    }
}

/// What sled keeps for a write of `value` at `key`, the value being at
/// `body_at` in the body of `frame`. A log entry's place (`l/SEQUENCE`) is
/// written in the frame as segment, offset and length (16 bytes): sled keeps it
/// with its frame (the entry is in the frame that writes its place).
fn index_value(key: &[u8], value: &[u8], body_at: usize, frame: FrameAt) -> Vec<u8> {
    if key.starts_with(b"l/") && value.len() == 16 {
        let mut position = frame.position(0, 0);
        position.offset = u64_from(&value[4..12]);
        position.len = u32::from_be_bytes([value[12], value[13], value[14], value[15]]);
        return position.encode().to_vec();
    }
    if !by_position(key) || value.is_empty() {
        return value.to_vec();
    }
    let mut pointer = Vec::with_capacity(8 + codec::POSITION_BYTES);
    if key.starts_with(b"r/") {
        pointer.extend_from_slice(&codec::version_of(value).unwrap_or(u64::MAX).to_be_bytes());
    }
    pointer.extend_from_slice(&frame.position(body_at, value.len()).encode());
    pointer
}

/// The version a record's pointer names (`u64::MAX`: not a record).
fn pointer_version(pointer: &[u8]) -> u64 {
    if pointer.len() == 8 + codec::POSITION_BYTES { u64_from(&pointer[..8]) } else { u64::MAX }
}

/// Where a pointer says the value is.
fn pointer_position(key: &[u8], pointer: &[u8]) -> Result<Position, StoreError> {
    let at = if key.starts_with(b"r/") { 8 } else { 0 };
    pointer.get(at..).and_then(Position::decode).ok_or_else(|| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("its position in the log does not decode ({} bytes)", pointer.len()),
    })
}

fn slot_key(slot: &str) -> Vec<u8> {
    [b"q/".as_slice(), slot.as_bytes()].concat()
}

/// What the batches of a group changed in the outbox, for the batches after them.
#[derive(Default)]
pub(crate) struct Overlay {
    /// Per item id: its envelope's entry, its slot and when it is due, or gone.
    items: HashMap<u64, Option<(u64, String, i64)>>,
    /// Per slot key: the item waiting in it, or none.
    slots: HashMap<Vec<u8>, Option<u64>>,
}

/// What the batches of a group wrote, for the batches after them.
#[derive(Default)]
pub(crate) struct GroupView {
    versions: HashMap<Vec<u8>, u64>,
    outbox: Overlay,
}

/// Where the committer appends, the log's last sequence, and its Merkle tree (`hash`: the root).
#[derive(Debug, Clone)]
struct Writer {
    segment: u32,
    end: u64,
    sequence: u64,
    hash: Vec<u8>,
    tree: Tree,
}

struct Inner {
    /// Tells stores apart in the committer.
    id: u64,
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    segments: Segments,
    writer: Mutex<Writer>,
    /// Set when writes reached the log but not sled: nothing more is written
    /// until the store is opened again (and the log applied again).
    poisoned: AtomicBool,
    /// Where the log ended after the last flushed commit (none: opened read-only).
    acknowledged: Option<Acknowledged>,
    /// The highest id handed out ([`SledBackend::next_id_above`]).
    last_id: AtomicU64,
    /// A store opened read-only: its index, rebuilt here, goes with it.
    _temp: Option<tempfile::TempDir>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // sled flushes in the background; a last flush makes the next open replay nothing.
        let _ = self.db.flush();
        if let Some(acknowledged) = &self.acknowledged {
            let _ = acknowledged.sync();
        }
    }
}

/// The embedded backend: one directory with sled's files and the log's segments in `log/`.
#[derive(Clone)]
pub struct SledBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

/// A sled write: the value, or a removal.
type Write = (Vec<u8>, Option<Vec<u8>>);

/// A batch made ready: its frame, its sled writes, and the ids of the items it queued.
type Prepared = (Vec<u8>, Vec<Write>, Vec<u64>);

/// A group's writes to one store, between the committer's phases.
pub(crate) struct Group {
    saved: Writer,
    /// Some frame was written.
    written: bool,
    /// Per batch: its ids once written, or why it was refused.
    outcomes: Vec<Result<Vec<u64>, StoreError>>,
    flushed: Vec<bool>,
    writes: Vec<Write>,
    /// Segments appended to.
    touched: Vec<u32>,
    /// Where the log ends after the group, and the head then.
    end: Mark,
    needs_sync: bool,
    failure: Option<StoreError>,
}

impl Group {
    pub(crate) fn needs_sync(&self) -> bool {
        self.needs_sync && self.failure.is_none()
    }

    /// Frames only of unflushed commits were written: they are synced after
    /// their callers are answered, so that sled, which flushes on its own, is
    /// not left ahead of the log for long.
    pub(crate) fn sync_later(&self) -> Option<u32> {
        (self.written && !self.needs_sync && self.failure.is_none()).then(|| self.touched.last().copied()).flatten()
    }
}

/// The same failure, for each batch of a group.
fn again(error: &StoreError) -> StoreError {
    match error {
        StoreError::Flush { path, source } => StoreError::Flush { path: path.clone(), source: Arc::clone(source) },
        StoreError::Corrupt { key, reason } => StoreError::Corrupt { key: key.clone(), reason: reason.clone() },
        other => StoreError::Flush { path: String::new(), source: Arc::new(std::io::Error::other(other.to_string())) },
    }
}

impl SledBackend {
    /// Opens (or creates) the store in `path`, with sled's page cache bounded to `cache_bytes`.
    ///
    /// The frames of the log that sled does not hold yet are applied to it. A
    /// frame cut short at the end of the last segment was never acknowledged
    /// and is cut away; a frame whose checksum fails, a segment that is
    /// missing or shorter than what sled or the `acknowledged` marker holds, or
    /// a store in another format is refused, never served. An index in an
    /// earlier layout, or none (sled's files removed), is rebuilt from the log.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledBackend, StoreError> {
        let db = open_sled(path, cache_bytes)?;
        let tree = (*db).clone();
        check_format(&tree, path)?;
        let log_dir = path.join("log");
        let holds_data = tree.get(APPLIED)?.is_some() || tree.get(HEAD)?.is_some();
        let mark = Acknowledged::read(path)?;
        if !log_dir.is_dir() {
            if holds_data || mark.is_some() {
                return Err(StoreError::Corrupt {
                    key: log_dir.display().to_string(),
                    reason: "the log's segments are missing, though the store holds data".to_owned(),
                });
            }
            std::fs::create_dir_all(&log_dir)
                .map_err(|e| StoreError::Flush { path: log_dir.display().to_string(), source: Arc::new(e) })?;
        }
        let segments = Segments::open(&log_dir)?;
        if segments.count() == 0 {
            if holds_data || mark.is_some() {
                return Err(StoreError::Corrupt {
                    key: log_dir.display().to_string(),
                    reason: "the log has no segment, though the store holds data".to_owned(),
                });
            }
            segments.begin()?;
        }
        if tree.get(INDEX_KEY)?.as_deref() != Some([INDEX_LAYOUT].as_slice()) {
            if holds_data {
                tracing::warn!(path = %path.display(), "sled's index is in an earlier layout: it is rebuilt from the log");
                clear_index(&tree)?;
            } else if segments.len(1)? > 0 {
                tracing::warn!(path = %path.display(), "sled's index is missing: it is rebuilt from the log");
            }
            tree.insert(INDEX_KEY, &[INDEX_LAYOUT])?;
        }
        replay(&tree, &segments, mark.as_ref(), Cut::Torn)?;
        db.flush()?;
        let acknowledged = Acknowledged::open(path)?;
        SledBackend::assemble(path, db, tree, segments, Some(acknowledged), None)
    }

    /// Opens the store in `path` for reading only: no byte of it changes
    /// (`egov audit verify`, `egov store check`). Its log is read in
    /// read-only files and its index rebuilt from it in a temporary
    /// directory; what witnesses the log's acknowledged end (sled's own files,
    /// read from a temporary copy, and the `acknowledged` marker) is checked
    /// against where the log ends: [`ReadOnly::problems`].
    pub fn open_read_only(path: &Path) -> Result<ReadOnly, StoreError> {
        let log_dir = path.join("log");
        if !log_dir.is_dir() {
            return Err(StoreError::Corrupt {
                key: log_dir.display().to_string(),
                reason: "the log's segments are missing".to_owned(),
            });
        }
        let segments = Segments::open_read_only(&log_dir)?;
        let temp = tempfile::Builder::new()
            .prefix("egov-check-")
            .tempdir()
            .map_err(|e| StoreError::Flush { path: "a temporary directory".to_owned(), source: Arc::new(e) })?;
        let db = open_sled(&temp.path().join("rebuilt"), 64 << 20)?;
        let tree = (*db).clone();
        tree.insert(FORMAT_KEY, &[codec::FORMAT])?;
        tree.insert(INDEX_KEY, &[INDEX_LAYOUT])?;
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let end = replay(&tree, &segments, None, Cut::Keep)?;
        if let Some(torn) = end.torn {
            notes.push(format!(
                "the log ends inside a frame ({} bytes after offset {} of segment {}): a write that never \
                 completed, which `egov serve` cuts away",
                torn, end.end, end.segment
            ));
        }
        let lost = |reason: String| StoreError::Corrupt {
            key: log_dir.display().to_string(),
            reason: format!("the store lost acknowledged messages: {reason}"),
        };
        let (sequence, hash) = head_of(&tree)?;
        let log_end = format!("the log ends at offset {} of segment {} (entry {sequence})", end.end, end.segment);
        match Acknowledged::read(path)? {
            Some(mark) if (mark.segment, mark.end) > (end.segment, end.end) => problems.push(lost(format!(
                "{log_end}, and its acknowledged end is offset {} of segment {} (entry {}, in {})",
                mark.end,
                mark.segment,
                mark.sequence,
                path.join(ACKNOWLEDGED_FILE).display()
            ))),
            Some(mark) if mark.sequence > sequence || (mark.sequence == sequence && mark.hash != hash) => problems
                .push(lost(format!(
                    "{log_end}, and {} names entry {} as acknowledged",
                    path.join(ACKNOWLEDGED_FILE).display(),
                    mark.sequence
                ))),
            Some(_) => {}
            None => notes.push(format!(
                "no marker of the acknowledged end ({}): a tail the log lost since sled's index was \
                 last written cannot be told from a log that ended there",
                path.join(ACKNOWLEDGED_FILE).display()
            )),
        }
        // sled's own files, read from a copy: what they held once was in the log.
        let mut index_error = None;
        let index = if path.join("db").exists() || path.join("conf").exists() {
            let copy = temp.path().join("index");
            copy_sled_files(path, &copy)?;
            match open_sled(&copy, 64 << 20) {
                Ok(copied) => {
                    let copied = (*copied).clone();
                    problems.extend(witnessed(&copied, &end, sequence, &hash, &log_end, &lost)?);
                    Some(copied)
                }
                Err(error) => {
                    index_error = Some(StoreError::Corrupt {
                        key: path.display().to_string(),
                        reason: format!(
                            "sled's index does not open ({error}); if the log is whole, \
                             `egov store rebuild-index` rebuilds it"
                        ),
                    });
                    None
                }
            }
        } else {
            notes.push(
                "sled's index is missing: what it held is not there to check the log's end against \
                 (`egov store rebuild-index` rebuilds it)"
                    .to_owned(),
            );
            None
        };
        let backend = SledBackend::assemble(path, db, tree, segments, None, Some(temp))?;
        Ok(ReadOnly { backend, problems, index_error, notes, index })
    }

    fn assemble(
        path: &Path,
        db: sled::Db,
        tree: sled::Tree,
        segments: Segments,
        acknowledged: Option<Acknowledged>,
        temp: Option<tempfile::TempDir>,
    ) -> Result<SledBackend, StoreError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let (sequence, hash) = head_of(&tree)?;
        let segment = segments.count();
        let end = segments.len(segment)?;
        let last_id = tree.get(IDS_KEY)?.map_or(0, |ids| u64_from(&ids));
        let merkle = Tree::restore(sequence, &SledNodes(&tree)).map_err(|error| StoreError::Corrupt {
            key: "tlog".to_owned(),
            reason: format!("the Merkle tree's right edge at entry {sequence} cannot be read: {error}"),
        })?;
        if sequence > 0 && merkle.root().as_slice() != hash.as_slice() {
            return Err(StoreError::Corrupt {
                key: "meta/log_head".to_owned(),
                reason: format!("the Merkle tree's stored nodes do not give the root recorded at entry {sequence}"),
            });
        }
        Ok(SledBackend {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                path: path.to_owned(),
                db,
                tree,
                segments,
                writer: Mutex::new(Writer { segment, end, sequence, hash, tree: merkle }),
                poisoned: AtomicBool::new(false),
                acknowledged,
                last_id: AtomicU64::new(last_id),
                _temp: temp,
            }),
        })
    }

    /// A new id above every id handed out before, even after sled's files were
    /// rebuilt (sled's own generator then starts again from 0).
    fn next_id_above(&self) -> Result<u64, StoreError> {
        let generated = self.inner.db.generate_id()?;
        let mut last = self.inner.last_id.load(Ordering::Relaxed);
        loop {
            let id = generated.max(last + 1);
            match self.inner.last_id.compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(id),
                Err(now) => last = now,
            }
        }
    }

    /// Rebuilds sled's index of the store in `path` from its log, in one step:
    /// sled's files are moved aside (to `index.old/`), the store is opened (which
    /// rebuilds the index and checks it against the `acknowledged` marker), its
    /// whole chain is checked, and the old files are removed. A log that ends
    /// before what the old index or the marker witness is refused first, and a
    /// failure puts the old files back. The rebuilt head: sequence, entries.
    pub fn rebuild_index(path: &Path, cache_bytes: u64) -> Result<u64, StoreError> {
        let io = |e: std::io::Error| StoreError::Flush { path: path.display().to_string(), source: Arc::new(e) };
        // A running participant holds sled's lock: refused, with nothing moved.
        if path.join("db").exists() {
            match open_sled(path, 8 << 20) {
                Ok(db) => drop(db),
                Err(StoreError::Corrupt { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let checked = SledBackend::open_read_only(path)?;
        if let Some(problem) = checked.problems.into_iter().next() {
            return Err(problem);
        }
        drop(checked.backend);
        let old = path.join("index.old");
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io)?;
        }
        std::fs::create_dir(&old).map_err(io)?;
        let sled_files = || -> std::io::Result<Vec<std::ffi::OsString>> {
            let mut names = Vec::new();
            for item in std::fs::read_dir(path)? {
                let name = item?.file_name();
                if is_sled_file(&name.to_string_lossy()) {
                    names.push(name);
                }
            }
            Ok(names)
        };
        for name in sled_files().map_err(io)? {
            std::fs::rename(path.join(&name), old.join(&name)).map_err(io)?;
        }
        let rebuilt = SledBackend::open(path, cache_bytes).and_then(|backend| {
            let store = crate::Store::with_backend(Arc::new(backend));
            store.verify(None)?;
            store.log_head()
        });
        match rebuilt {
            Ok(head) => {
                std::fs::remove_dir_all(&old).map_err(io)?;
                Ok(head)
            }
            Err(error) => {
                // Back as it was.
                for name in sled_files().map_err(io)? {
                    let at = path.join(&name);
                    if at.is_dir() { std::fs::remove_dir_all(&at) } else { std::fs::remove_file(&at) }.map_err(io)?;
                }
                for item in std::fs::read_dir(&old).map_err(io)? {
                    let name = item.map_err(io)?.file_name();
                    std::fs::rename(old.join(&name), path.join(&name)).map_err(io)?;
                }
                std::fs::remove_dir(&old).map_err(io)?;
                Err(error)
            }
        }
    }

    /// Checks sled's index against the log: an index rebuilt from the log in
    /// a temporary directory must equal it key by key. Every frame is read
    /// (and its CRC checked) on the way. The differences, at most `shown`
    /// described, then counted.
    fn check_index_against_log(&self, shown: usize) -> Result<Vec<String>, StoreError> {
        let temp = tempfile::Builder::new()
            .prefix("egov-check-")
            .tempdir()
            .map_err(|e| StoreError::Flush { path: "a temporary directory".to_owned(), source: Arc::new(e) })?;
        let db = open_sled(&temp.path().join("rebuilt"), 64 << 20)?;
        let rebuilt = (*db).clone();
        rebuilt.insert(FORMAT_KEY, &[codec::FORMAT])?;
        rebuilt.insert(INDEX_KEY, &[INDEX_LAYOUT])?;
        replay(&rebuilt, &self.inner.segments, None, Cut::Keep)?;
        compare_trees(&self.inner.tree, &rebuilt, shown)
    }

    /// The value sled points to (an index entry's empty value is its own).
    fn value_at(&self, key: &[u8], pointer: &[u8]) -> Result<Vec<u8>, StoreError> {
        if pointer.is_empty() || !by_position(key) {
            return Ok(pointer.to_vec());
        }
        self.inner.segments.read(pointer_position(key, pointer)?)
    }

    pub(crate) fn same(&self, other: &SledBackend) -> bool {
        self.inner.id == other.inner.id
    }

    fn read_entry(&self, position: Position, sequence: u64) -> Result<LogEntry, StoreError> {
        let bytes = self.inner.segments.read(position)?;
        let stored = StoredEntry::decode(bytes.as_slice()).map_err(|e| StoreError::Corrupt {
            key: format!("log/{sequence}"),
            reason: format!("it does not decode: {e}"),
        })?;
        Ok(stored.into())
    }

    /// Writes a group's batches to the log (one frame each), without syncing.
    pub(crate) fn write(&self, batches: Vec<(Batch, Durability)>) -> Group {
        let inner = &self.inner;
        let mut writer = match inner.writer.lock() {
            Ok(writer) => writer,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut group = Group {
            saved: writer.clone(),
            written: false,
            outcomes: Vec::with_capacity(batches.len()),
            flushed: Vec::with_capacity(batches.len()),
            writes: Vec::new(),
            touched: vec![writer.segment],
            end: Mark { segment: 0, end: 0, sequence: 0, hash: Vec::new() },
            needs_sync: false,
            failure: None,
        };
        if inner.poisoned.load(Ordering::Relaxed) {
            group.failure = Some(StoreError::Corrupt {
                key: inner.path.display().to_string(),
                reason: "an earlier write reached the log but not the index: reopen the store".to_owned(),
            });
        }
        let mut overlay = GroupView::default();
        // Frames not yet written, from `pending_at` in the current segment.
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_at = writer.end;
        for (batch, durability) in batches {
            group.flushed.push(durability == Durability::Flushed);
            if group.failure.is_some() {
                group.outcomes.push(Err(StoreError::Stopped));
                continue;
            }
            if writer.end >= SEGMENT_BYTES {
                // Finish the segment (durably: a later sync covers only the next one) and begin the next.
                let rolled = inner
                    .segments
                    .write_at(writer.segment, pending_at, &pending)
                    .and_then(|()| inner.segments.sync(writer.segment))
                    .and_then(|()| inner.segments.begin());
                match rolled {
                    Ok(segment) => {
                        stats::appended(pending.len());
                        pending.clear();
                        writer.segment = segment;
                        writer.end = 0;
                        pending_at = 0;
                        group.touched.push(segment);
                    }
                    Err(error) => {
                        group.failure = Some(error);
                        group.outcomes.push(Err(StoreError::Stopped));
                        continue;
                    }
                }
            }
            if batch.is_empty() {
                // Nothing to write: a flushed one only asks that what came before be durable.
                group.needs_sync |= durability == Durability::Flushed;
                group.outcomes.push(Ok(Vec::new()));
                continue;
            }
            match self.prepare(batch, &mut writer, &mut overlay) {
                Ok((frame, writes, ids)) => {
                    writer.end += frame.len() as u64;
                    pending.extend_from_slice(&frame);
                    group.writes.extend(writes);
                    group.needs_sync |= durability == Durability::Flushed;
                    group.outcomes.push(Ok(ids));
                }
                Err(error) => group.outcomes.push(Err(error)),
            }
        }
        if group.failure.is_none() && !pending.is_empty() {
            match inner.segments.write_at(writer.segment, pending_at, &pending) {
                Ok(()) => {
                    stats::appended(pending.len());
                    group.written = true;
                }
                Err(error) => group.failure = Some(error),
            }
        }
        group.writes.push((APPLIED.to_vec(), Some(applied_bytes(writer.segment, writer.end))));
        group.end =
            Mark { segment: writer.segment, end: writer.end, sequence: writer.sequence, hash: writer.hash.clone() };
        group
    }

    /// The file of `segment`, to sync unflushed frames after their callers were
    /// answered without holding on to the store.
    pub(crate) fn segment_file(&self, segment: u32) -> Option<Arc<std::fs::File>> {
        self.inner.segments.file(segment).ok()
    }

    /// Makes the group's frames durable.
    pub(crate) fn sync(&self, group: &mut Group) {
        if !group.needs_sync() {
            return;
        }
        let Some(&segment) = group.touched.last() else { return };
        stats::synced();
        let started = std::time::Instant::now();
        let synced = self.inner.segments.sync(segment);
        stats::flushed_in(started.elapsed());
        match synced {
            Err(error) => group.failure = Some(error),
            Ok(()) => {
                // Only now: the marker is never ahead of what the log holds durably.
                if let Some(acknowledged) = &self.inner.acknowledged
                    && let Err(error) = acknowledged.record(&group.end)
                {
                    tracing::warn!(%error, "the log's acknowledged end could not be recorded");
                }
            }
        }
    }

    /// Applies a written (and, if asked, synced) group to sled, or undoes it
    /// in the log if it failed; what each batch's caller is told.
    pub(crate) fn finish(&self, group: Group) -> Vec<Result<Vec<u64>, StoreError>> {
        let inner = &self.inner;
        let mut writer = match inner.writer.lock() {
            Ok(writer) => writer,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Group { saved, outcomes, flushed, writes, touched, failure, .. } = group;
        let failure = failure.or_else(|| {
            let mut batch = sled::Batch::default();
            for (key, value) in writes {
                match value {
                    Some(value) => batch.insert(key, value),
                    None => batch.remove(key),
                }
            }
            match inner.tree.apply_batch(batch) {
                Ok(()) => None,
                Err(error) => {
                    // The frames are in the log and will be applied when the store is opened again.
                    inner.poisoned.store(true, Ordering::Relaxed);
                    tracing::error!(path = %inner.path.display(), %error, "written to the log but not to sled: the store stops writing");
                    Some(StoreError::Sled(error))
                }
            }
        });
        match failure {
            None => outcomes
                .into_iter()
                .zip(flushed)
                .map(|(outcome, flushed)| {
                    if outcome.is_ok() {
                        stats::committed(flushed);
                    }
                    outcome
                })
                .collect(),
            Some(error) => {
                if !inner.poisoned.load(Ordering::Relaxed) {
                    // Nothing of the group stays in the log.
                    for segment in touched {
                        let len = if segment == saved.segment { saved.end } else { 0 };
                        if let Err(error) = inner.segments.truncate(segment, len) {
                            inner.poisoned.store(true, Ordering::Relaxed);
                            tracing::error!(path = %inner.path.display(), %error, "a failed write could not be undone: the store stops writing");
                        }
                    }
                    *writer = saved;
                }
                outcomes
                    .into_iter()
                    .map(|outcome| match outcome {
                        Ok(_) | Err(StoreError::Stopped) => Err(again(&error)),
                        refused => refused,
                    })
                    .collect()
            }
        }
    }

    /// One batch as a frame and the sled writes it makes, checked against
    /// what the store holds and what the group wrote before it, by the rules
    /// every backend applies ([`crate::batch::apply`]).
    fn prepare(&self, batch: Batch, writer: &mut Writer, overlay: &mut GroupView) -> Result<Prepared, StoreError> {
        let mut apply = SledApply {
            backend: self,
            group: overlay,
            writer: writer.clone(),
            versions: Vec::new(),
            changes: Overlay::default(),
            frame: FrameWriter::default(),
            entries: Vec::new(),
            writes: Vec::new(),
        };
        let ids = batch::apply(batch, &mut apply)?;
        let SledApply { writer: written, versions, changes, mut frame, entries, mut writes, .. } = apply;
        // The highest id handed out so far: after a rebuilt index, ids go on above it.
        writes.push((IDS_KEY.to_vec(), Some(self.inner.last_id.load(Ordering::Relaxed).to_be_bytes().to_vec())));
        let mut placed = Vec::with_capacity(entries.len() + writes.len());
        let entries = entries.into_iter().map(|(key, place)| (key, Some(place)));
        for (key, value) in entries.chain(writes) {
            match value {
                Some(value) => {
                    let at = frame.put(&key, &value);
                    placed.push((key, Some((value, at))));
                }
                None => {
                    frame.remove(&key);
                    placed.push((key, None));
                }
            }
        }
        let frame = frame.finish();
        let at = FrameAt { segment: writer.segment, at: writer.end, len: frame.len() as u32 };
        let writes = placed
            .into_iter()
            .map(|(key, value)| {
                let kept = value.map(|(value, body_at)| index_value(&key, &value, body_at, at));
                (key, kept)
            })
            .collect();
        writer.sequence = written.sequence;
        writer.hash = written.hash;
        writer.tree = written.tree;
        overlay.versions.extend(versions);
        overlay.outbox.items.extend(changes.items);
        overlay.outbox.slots.extend(changes.slots);
        Ok((frame, writes, ids))
    }
}

/// The embedded backend's primitives for one batch: what it writes goes to
/// its frame and its sled writes; what it reads is its own changes, then the
/// group's batches before it, then sled.
struct SledApply<'a> {
    backend: &'a SledBackend,
    group: &'a GroupView,
    /// The chain's head and where the frame goes.
    writer: Writer,
    versions: Vec<(Vec<u8>, u64)>,
    changes: Overlay,
    frame: FrameWriter,
    /// The log entries' places (`l/SEQUENCE`, see `index_value`) and index keys.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    writes: Vec<Write>,
}

impl SledApply<'_> {
    /// An outbox item as this batch sees it: its envelope's log entry, its slot and when it is due.
    fn waiting(&self, id: u64) -> Result<Option<(u64, String, i64)>, StoreError> {
        if let Some(item) = self.changes.items.get(&id).or_else(|| self.group.outbox.items.get(&id)) {
            return Ok(item.clone());
        }
        match self.backend.inner.tree.get(outbox_key(id))? {
            None => Ok(None),
            Some(bytes) => {
                let stored = StoredOutbox::decode(bytes.as_ref())
                    .map_err(|e| StoreError::Corrupt { key: format!("outbox/{id}"), reason: e.to_string() })?;
                Ok(Some((stored.entry, stored.slot, stored.next_attempt_ms)))
            }
        }
    }

    fn write_item(&mut self, item: &OutboxItem) {
        self.changes.items.insert(item.id, Some((item.entry, item.slot.clone(), item.next_attempt_ms)));
        self.writes.push((outbox_key(item.id), Some(StoredOutbox::of(item).encode_to_vec())));
    }
}

impl batch::Apply for SledApply<'_> {
    fn put(&mut self, key: String, expected_version: u64, value: Vec<u8>) -> Result<(), StoreError> {
        let stored = record_key(&key);
        let found = match self.group.versions.get(&stored) {
            Some(version) => *version,
            None => match self.backend.inner.tree.get(&stored)? {
                None => 0,
                Some(pointer) => pointer_version(&pointer),
            },
        };
        if found != expected_version {
            return Err(StoreError::Conflict { key, expected: expected_version, found });
        }
        self.versions.push((stored.clone(), expected_version + 1));
        self.writes.push((stored, Some(value)));
        Ok(())
    }

    fn index(&mut self, key: String, present: bool) -> Result<(), StoreError> {
        self.writes.push((record_key(&key), present.then(Vec::new)));
        Ok(())
    }

    fn head(&mut self) -> Result<u64, StoreError> {
        Ok(self.writer.sequence)
    }

    fn append(&mut self, entry: &LogEntry, keys: &[String]) -> Result<(), StoreError> {
        let bytes = StoredEntry::from(entry).encode_to_vec();
        let at = self.frame.entry(&bytes);
        // Segment, offset and length (see `index_value`).
        let mut place = self.writer.segment.to_be_bytes().to_vec();
        place.extend_from_slice(&(self.writer.end + (FRAME_HEADER + at) as u64).to_be_bytes());
        place.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        self.entries.push((entry_key(entry.sequence), place));
        for key in keys {
            self.entries.push((log_index_key(key, entry.sequence), Vec::new()));
        }
        // Integrated at once: one writer, so the tree's size is the sequence before this entry.
        if self.writer.tree.size() + 1 != entry.sequence {
            return Err(StoreError::Corrupt {
                key: format!("log/{}", entry.sequence),
                reason: format!(
                    "the Merkle tree holds {} entries, and this one is entry {}",
                    self.writer.tree.size(),
                    entry.sequence
                ),
            });
        }
        for (id, hash) in self.writer.tree.append(entry.leaf_hash()) {
            self.writes.push((node_key(id), Some(hash.to_vec())));
        }
        Ok(())
    }

    fn set_head(&mut self, sequence: u64) -> Result<(), StoreError> {
        let root = self.writer.tree.root();
        self.writer.sequence = sequence;
        self.writer.hash = root.to_vec();
        let mut head = sequence.to_be_bytes().to_vec();
        head.extend_from_slice(&root);
        self.writes.push((HEAD.to_vec(), Some(head)));
        Ok(())
    }

    fn in_slot(&mut self, slot: &str) -> Result<Option<batch::Waiting>, StoreError> {
        let key = slot_key(slot);
        let id = match self.changes.slots.get(&key).or_else(|| self.group.outbox.slots.get(&key)) {
            Some(id) => *id,
            None => self.backend.inner.tree.get(&key)?.map(|id| u64_from(&id)),
        };
        let Some(id) = id else { return Ok(None) };
        Ok(self.waiting(id)?.map(|(_, _, due_ms)| (id, due_ms)))
    }

    fn new_id(&mut self) -> Result<u64, StoreError> {
        self.backend.next_id_above()
    }

    fn put_item(&mut self, item: &OutboxItem, _replaces: bool) -> Result<(), StoreError> {
        if !item.slot.is_empty() {
            let key = slot_key(&item.slot);
            self.writes.push((key.clone(), Some(item.id.to_be_bytes().to_vec())));
            self.changes.slots.insert(key, Some(item.id));
        }
        self.write_item(item);
        Ok(())
    }

    fn update_item(&mut self, item: &OutboxItem) -> Result<(), StoreError> {
        // Gone, or replaced by a later envelope of its slot: the update was for what is no longer there.
        if self.waiting(item.id)?.map(|(entry, _, _)| entry) == Some(item.entry) {
            self.write_item(item);
        }
        Ok(())
    }

    fn remove_item(&mut self, id: u64, entry: u64) -> Result<(), StoreError> {
        let Some((stored, slot, _)) = self.waiting(id)? else { return Ok(()) };
        if stored != entry {
            // Replaced meanwhile by a later envelope of its slot: that one is still to send.
            return Ok(());
        }
        if !slot.is_empty() {
            let key = slot_key(&slot);
            self.changes.slots.insert(key.clone(), None);
            self.writes.push((key, None));
        }
        self.changes.items.insert(id, None);
        self.writes.push((outbox_key(id), None));
        Ok(())
    }

    fn remember(&mut self, key: &str, stored: StoredRemembered, _replace: bool) -> Result<(), StoreError> {
        // The embedded store has one writer: a first answer and a rewritten one are written alike.
        self.writes.push((seen_key(key), Some(stored.encode_to_vec())));
        Ok(())
    }
}

fn applied_bytes(segment: u32, end: u64) -> Vec<u8> {
    let mut bytes = segment.to_be_bytes().to_vec();
    bytes.extend_from_slice(&end.to_be_bytes());
    bytes
}

fn head_of(tree: &sled::Tree) -> Result<(u64, Vec<u8>), StoreError> {
    Ok(match tree.get(HEAD)? {
        Some(bytes) if bytes.len() == 40 => (u64_from(&bytes[..8]), bytes[8..].to_vec()),
        Some(bytes) => {
            return Err(StoreError::Corrupt {
                key: "meta/log_head".to_owned(),
                reason: format!("{} bytes, not 40", bytes.len()),
            });
        }
        None => (0, egov_tlog::EMPTY_ROOT.to_vec()),
    })
}

/// The Merkle tree's nodes in sled.
struct SledNodes<'a>(&'a sled::Tree);

impl NodeReader for SledNodes<'_> {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<egov_tlog::Hash>, egov_tlog::StoreError> {
        ids.iter()
            .map(|id| match self.0.get(node_key(*id))? {
                Some(hash) => <egov_tlog::Hash>::try_from(hash.as_ref())
                    .map_err(|_| format!("node {id:?} is not 32 bytes").into()),
                None => Err(format!("node {id:?} is missing").into()),
            })
            .collect()
    }
}

/// Opens sled in `path`, refusing damaged files and a store in format 1.
fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new().path(path).cache_capacity(cache_bytes).flush_every_ms(Some(1000));
    // sled 0.34 panics on some damaged files rather than returning an error:
    // catch it (quietly: the error says what happened) and refuse the store.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
    std::panic::set_hook(quiet);
    let db = opened
        .map_err(|panic| StoreError::Corrupt {
            key: path.display().to_string(),
            reason: format!(
                "sled could not recover it: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(panic.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
            ),
        })?
        .map_err(|error| match error {
            sled::Error::Corruption { .. } => {
                StoreError::Corrupt { key: path.display().to_string(), reason: format!("sled's files: {error}") }
            }
            other => StoreError::Sled(other),
        })?;
    if db.tree_names().iter().any(|name| [b"records".as_slice(), b"log", b"outbox"].contains(&name.as_ref())) {
        return Err(StoreError::Format {
            path: path.display().to_string(),
            found: "1 (sled trees of JSON records, envelopes in hex, before the log moved to segment files)".to_owned(),
            what_to_do: "keep it for audits with the build that wrote it, and start this build on an empty \
                         directory (see docs/storage.md)"
                .to_owned(),
        });
    }
    Ok(db)
}

/// Refuses a store in another format; marks an empty one.
fn check_format(tree: &sled::Tree, path: &Path) -> Result<(), StoreError> {
    match tree.get(FORMAT_KEY)? {
        Some(format) if format.as_ref() == [codec::FORMAT] => Ok(()),
        Some(format) if format.as_ref() == [2] => Err(StoreError::Format {
            path: path.display().to_string(),
            found: "2 (a hash-chained log, before the Merkle tree of format 3)".to_owned(),
            what_to_do: "keep it for audits with the build that wrote it (its `egov audit verify`), and start this \
                         build on an empty directory (see docs/storage.md)"
                .to_owned(),
        }),
        Some(format) => Err(StoreError::Format {
            path: path.display().to_string(),
            found: format!("{:?}", format.as_ref()),
            what_to_do: "open it with the build that wrote it".to_owned(),
        }),
        None if tree.is_empty() => {
            tree.insert(FORMAT_KEY, &[codec::FORMAT])?;
            Ok(())
        }
        None => Err(StoreError::Corrupt {
            key: path.display().to_string(),
            reason: "the store holds data but no format mark".to_owned(),
        }),
    }
}

/// Empties the index (all of it is derived from the log) but for the format mark.
fn clear_index(tree: &sled::Tree) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for key in tree.iter().keys() {
        let key = key?;
        if key.as_ref() != FORMAT_KEY {
            batch.remove(key);
        }
    }
    Ok(tree.apply_batch(batch)?)
}

/// Whether `name`, in a store's directory, is one of sled's files (the rest
/// is the log, its marker and the list of participants).
pub(crate) fn is_sled_file(name: &str) -> bool {
    name == "db" || name == "conf" || name == "blobs" || name.starts_with("snap.")
}

/// Copies sled's files from the store in `from` to `to`, reading them only.
fn copy_sled_files(from: &Path, to: &Path) -> Result<(), StoreError> {
    fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
        if from.is_dir() {
            std::fs::create_dir_all(to)?;
            for item in std::fs::read_dir(from)? {
                let item = item?;
                copy(&item.path(), &to.join(item.file_name()))?;
            }
            Ok(())
        } else {
            std::fs::copy(from, to).map(|_| ())
        }
    }
    let io = |e: std::io::Error| StoreError::Flush { path: from.display().to_string(), source: Arc::new(e) };
    std::fs::create_dir_all(to).map_err(io)?;
    for item in std::fs::read_dir(from).map_err(io)? {
        let item = item.map_err(io)?;
        if is_sled_file(&item.file_name().to_string_lossy()) {
            copy(&item.path(), &to.join(item.file_name())).map_err(io)?;
        }
    }
    Ok(())
}

/// What sled's own index (`copied`, not applied to) says was in the log
/// beyond where it ends now: the head, the frames applied, the entries'
/// places, the outbox items' entries, and every value's place.
fn witnessed(
    copied: &sled::Tree,
    end: &LogEnd,
    sequence: u64,
    hash: &[u8],
    log_end: &str,
    lost: &dyn Fn(String) -> StoreError,
) -> Result<Vec<StoreError>, StoreError> {
    let mut problems = Vec::new();
    if let Some(applied) = copied.get(APPLIED)? {
        let at = (u32::from_be_bytes(applied[..4].try_into().unwrap_or_default()), u64_from(&applied[4..]));
        if at > (end.segment, end.end) {
            problems.push(lost(format!(
                "{log_end}, and sled's index holds the frames up to offset {} of segment {}",
                at.1, at.0
            )));
        }
    }
    let (head, head_hash) = head_of(copied)?;
    if head > sequence {
        problems.push(lost(format!("{log_end}, and sled's index records entry {head} as its head (m/head)")));
    } else if head == sequence && head > 0 && head_hash != hash {
        problems.push(lost(format!("{log_end}, and sled's index records another hash for entry {head}")));
    }
    if let Some(last) = copied.scan_prefix(b"l/").keys().next_back() {
        let last = u64_from(&last?[2..]);
        if last > sequence {
            problems.push(lost(format!("{log_end}, and sled's index knows where entry {last} was")));
        }
    }
    for item in copied.scan_prefix(b"o/").values() {
        if let Ok(stored) = StoredOutbox::decode(item?.as_ref())
            && stored.entry > sequence
        {
            problems.push(lost(format!(
                "{log_end}, and outbox item {} in sled's index sends entry {}",
                stored.id, stored.entry
            )));
            break;
        }
    }
    if copied.get(INDEX_KEY)?.as_deref() == Some([INDEX_LAYOUT].as_slice()) {
        for prefix in [b"r/".as_slice(), b"s/", b"l/"] {
            for item in copied.scan_prefix(prefix) {
                let (key, pointer) = item?;
                let place = if key.starts_with(b"l/") {
                    Position::decode(&pointer).ok_or(())
                } else {
                    if pointer.is_empty() {
                        continue;
                    }
                    pointer_position(&key, &pointer).map_err(|_| ())
                };
                if let Ok(position) = place
                    && position.end() > (end.segment, end.end)
                {
                    problems.push(lost(format!(
                        "{log_end}, and sled's index has {} at offset {} of segment {}",
                        String::from_utf8_lossy(&key),
                        position.offset,
                        position.segment
                    )));
                    break;
                }
            }
        }
    }
    Ok(problems)
}

/// The differences between two indexes, key by key (at most `shown` described, then counted).
fn compare_trees(live: &sled::Tree, rebuilt: &sled::Tree, shown: usize) -> Result<Vec<String>, StoreError> {
    let mut differences = Vec::new();
    let mut count = 0usize;
    let mut note = |text: String| {
        count += 1;
        if count <= shown {
            differences.push(text);
        }
    };
    let mut a = live.iter().peekable();
    let mut b = rebuilt.iter().peekable();
    let name = |key: &[u8]| String::from_utf8_lossy(key).replace('\0', "\\0");
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                return Err(a
                    .next()
                    .and_then(Result::err)
                    .or_else(|| b.next().and_then(Result::err))
                    .map_or(StoreError::Stopped, StoreError::Sled));
            }
            (Some(Ok((x, _))), Some(Ok((y, _)))) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let (key, _) = a.next().and_then(Result::ok).unwrap_or_default();
                note(format!("{} is in the index but not written by the log", name(&key)));
            }
            std::cmp::Ordering::Greater => {
                let (key, _) = b.next().and_then(Result::ok).unwrap_or_default();
                note(format!("{} is written by the log but missing from the index", name(&key)));
            }
            std::cmp::Ordering::Equal => {
                let (key, x) = a.next().and_then(Result::ok).unwrap_or_default();
                let (_, y) = b.next().and_then(Result::ok).unwrap_or_default();
                if x != y {
                    note(format!("{} differs between the index and the log", name(&key)));
                }
            }
        }
    }
    if count > shown {
        differences.push(format!("... and {} more differences", count - shown));
    }
    Ok(differences)
}

/// A store opened read-only ([`SledBackend::open_read_only`]).
pub struct ReadOnly {
    /// Its log, and an index rebuilt from it (in a temporary directory).
    pub backend: SledBackend,
    /// Where the log ends before what was acknowledged (sled's own files or
    /// the marker witness it), or sled's files that do not open.
    pub problems: Vec<StoreError>,
    /// sled's own files do not open.
    pub index_error: Option<StoreError>,
    /// What could not be checked, and why.
    pub notes: Vec<String>,
    /// A copy of sled's own index, as it was.
    index: Option<sled::Tree>,
}

impl ReadOnly {
    /// Checks sled's own index (the copy, with the frames after the last it
    /// holds applied, as opening the store would) against the index rebuilt
    /// from the log. The differences, at most `shown` described.
    pub fn check_index(&self, shown: usize) -> Result<Vec<String>, StoreError> {
        let Some(index) = &self.index else { return Ok(Vec::new()) };
        if index.get(INDEX_KEY)?.as_deref() != Some([INDEX_LAYOUT].as_slice()) {
            return Ok(vec!["sled's index is in an earlier layout: `egov serve` rebuilds it from the log".to_owned()]);
        }
        if let Err(error) = replay(index, &self.backend.inner.segments, None, Cut::Keep) {
            return Ok(vec![error.to_string()]);
        }
        compare_trees(index, &self.backend.inner.tree, shown)
    }
}

/// What to do with a frame cut short at the end of the log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Cut it away (opening the store to serve it).
    Torn,
    /// Leave it (reading only).
    Keep,
}

/// Where the log's whole frames end, and how many bytes of a frame cut short follow.
#[derive(Debug)]
pub(crate) struct LogEnd {
    segment: u32,
    end: u64,
    torn: Option<u64>,
}

/// Applies to sled the frames of the log after the last one it holds (all of
/// them for an empty index). A log that ends before `acknowledged` says it
/// did lost acknowledged commits: refused, before anything is cut.
fn replay(tree: &sled::Tree, segments: &Segments, acknowledged: Option<&Mark>, cut: Cut) -> Result<LogEnd, StoreError> {
    let (mut segment, mut offset) = match tree.get(APPLIED)? {
        Some(bytes) if bytes.len() == 12 => {
            (u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]), u64_from(&bytes[4..]))
        }
        Some(bytes) => {
            return Err(StoreError::Corrupt {
                key: "meta/applied".to_owned(),
                reason: format!("{} bytes, not 12", bytes.len()),
            });
        }
        None => (1, 0),
    };
    let last = segments.count();
    let lost = |segment: u32, reason: String| StoreError::Corrupt {
        key: Segments::path_of(segments.dir(), segment).display().to_string(),
        reason: format!("the store lost acknowledged messages: {reason}"),
    };
    let marked = |segment: u32, end: u64| -> Result<(), StoreError> {
        match acknowledged {
            Some(mark) if (mark.segment, mark.end) > (segment, end) => Err(lost(
                segment,
                format!(
                    "the log ends at offset {end} of segment {segment}, and its acknowledged end is offset {} \
                     of segment {} (entry {}, in {})",
                    mark.end,
                    mark.segment,
                    mark.sequence,
                    segments.dir().parent().unwrap_or(segments.dir()).join(ACKNOWLEDGED_FILE).display()
                ),
            )),
            _ => Ok(()),
        }
    };
    if segment > last {
        return Err(lost(
            last,
            format!("the store holds writes up to segment {segment}, and the log ends at segment {last}"),
        ));
    }
    loop {
        let len = segments.len(segment)?;
        if len < offset {
            return Err(lost(
                segment,
                format!("the store holds writes up to offset {offset}, and the segment ends at {len}"),
            ));
        }
        let bytes = segments.read_from(segment, offset)?;
        let mut at = 0usize;
        while at < bytes.len() {
            let frame_at = offset + at as u64;
            match codec::read_frame(&bytes[at..]) {
                Frame::Whole(body, size) => {
                    let mut batch = sled::Batch::default();
                    let frame = FrameAt { segment, at: frame_at, len: size as u32 };
                    for item in codec::items(body) {
                        match item {
                            Some((start, Item::Put(key, value))) => {
                                batch.insert(key, index_value(key, value, start + 4 + key.len(), frame));
                            }
                            Some((_, Item::Remove(key))) => batch.remove(key),
                            Some((_, Item::Entry(_))) => {}
                            None => {
                                return Err(StoreError::Corrupt {
                                    key: format!(
                                        "{} at offset {frame_at}",
                                        Segments::path_of(segments.dir(), segment).display()
                                    ),
                                    reason: "a frame's item is malformed".to_owned(),
                                });
                            }
                        }
                    }
                    at += size;
                    batch.insert(APPLIED, applied_bytes(segment, offset + at as u64));
                    tree.apply_batch(batch)?;
                }
                Frame::Torn if segment == last => {
                    marked(segment, frame_at)?;
                    let torn = (bytes.len() - at) as u64;
                    if cut == Cut::Torn {
                        // A write that never completed, so never acknowledged: cut it away.
                        tracing::warn!(
                            segment,
                            offset = frame_at,
                            "the log ends inside a frame: the unfinished write is cut away"
                        );
                        segments.truncate(segment, frame_at)?;
                    }
                    return Ok(LogEnd { segment, end: frame_at, torn: Some(torn) });
                }
                Frame::Torn | Frame::Damaged => {
                    return Err(StoreError::Corrupt {
                        key: format!("{} at offset {frame_at}", Segments::path_of(segments.dir(), segment).display()),
                        reason: "a frame of the log does not match its checksum".to_owned(),
                    });
                }
            }
        }
        if segment >= last {
            let end = offset + at as u64;
            marked(segment, end)?;
            return Ok(LogEnd { segment, end, torn: None });
        }
        segment += 1;
        offset = 0;
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = record_key(key);
        self.inner.tree.get(&key)?.map(|pointer| self.value_at(&key, &pointer)).transpose()
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.tree.scan_prefix(record_key(prefix)) {
            let (key, pointer) = item?;
            let value = self.value_at(&key, &pointer)?;
            out.push((String::from_utf8_lossy(&key[2..]).into_owned(), value));
        }
        Ok(out)
    }

    fn keys_after(&self, prefix: &str, from: &str, limit: usize, descending: bool) -> Result<Vec<String>, StoreError> {
        use std::ops::Bound;
        let start = record_key(prefix);
        // The first key past every key that starts with the prefix; none when the prefix is all 0xFF.
        let end = upper_bound(&start);
        let (low, high) = match (from.is_empty(), descending) {
            (true, _) => (Bound::Included(start), end.map_or(Bound::Unbounded, Bound::Excluded)),
            (false, false) => (Bound::Excluded(record_key(from)), end.map_or(Bound::Unbounded, Bound::Excluded)),
            (false, true) => (Bound::Included(start), Bound::Excluded(record_key(from))),
        };
        let range = self.inner.tree.range::<Vec<u8>, _>((low, high));
        let keys = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<String, StoreError> {
            let (key, _) = item?;
            Ok(String::from_utf8_lossy(&key[2..]).into_owned())
        };
        if descending { range.rev().take(limit).map(keys).collect() } else { range.take(limit).map(keys).collect() }
    }

    fn remembered(&self, sender_id: &str, message_id: &str) -> Result<Option<Remembered>, StoreError> {
        let key = idempotency_key(sender_id, message_id);
        let stored_key = seen_key(&key);
        let Some(pointer) = self.inner.tree.get(&stored_key)? else { return Ok(None) };
        let bytes = self.value_at(&stored_key, &pointer)?;
        let stored = StoredRemembered::decode(bytes.as_ref())
            .map_err(|e| StoreError::Corrupt { key: format!("seen/{key}"), reason: e.to_string() })?;
        let envelope = match stored.entry {
            0 => Vec::new(),
            entry => self.log_entry(entry)?.map(|e| e.envelope).ok_or_else(|| StoreError::Corrupt {
                key: format!("seen/{key}"),
                reason: format!("it refers to log entry {entry}, which is not there"),
            })?,
        };
        Ok(Some(stored.into_remembered(&envelope)))
    }

    fn log_entries(&self) -> Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_> {
        let segments = &self.inner.segments;
        let iter = (1..=segments.count()).flat_map(move |segment| {
            let path = Segments::path_of(segments.dir(), segment).display().to_string();
            let bytes = match segments.read_from(segment, 0) {
                Ok(bytes) => bytes,
                Err(error) => return vec![Err(error)],
            };
            let mut out = Vec::new();
            let mut at = 0usize;
            while at < bytes.len() {
                let damaged = |reason: &str| StoreError::Corrupt {
                    key: format!("{path} at offset {at}"),
                    reason: reason.to_owned(),
                };
                let (body, size) = match codec::read_frame(&bytes[at..]) {
                    Frame::Whole(body, size) => (body, size),
                    Frame::Damaged => {
                        out.push(Err(damaged("a frame of the log does not match its checksum")));
                        // Its entries are still read: their hashes tell which one changed.
                        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
                        (&bytes[at + FRAME_HEADER..at + FRAME_HEADER + len], FRAME_HEADER + len)
                    }
                    // The end of the log: a write that never completed (cut away when the
                    // store opens to serve), or one being appended while this reads.
                    Frame::Torn if segment == segments.count() => break,
                    Frame::Torn => {
                        out.push(Err(damaged("the segment ends inside a frame, and another segment follows")));
                        break;
                    }
                };
                for item in codec::items(body) {
                    match item {
                        Some((_, Item::Entry(bytes))) => out.push(
                            StoredEntry::decode(bytes)
                                .map(LogEntry::from)
                                .map_err(|e| damaged(&format!("a log entry does not decode: {e}"))),
                        ),
                        Some(_) => {}
                        None => out.push(Err(damaged("a frame's item is malformed"))),
                    }
                }
                at += size;
            }
            out
        });
        Box::new(iter)
    }

    fn log_entry(&self, sequence: u64) -> Result<Option<LogEntry>, StoreError> {
        let Some(bytes) = self.inner.tree.get(entry_key(sequence))? else { return Ok(None) };
        let position = Position::decode(&bytes).ok_or_else(|| StoreError::Corrupt {
            key: format!("log/{sequence}"),
            reason: "its position does not decode".to_owned(),
        })?;
        self.read_entry(position, sequence).map(Some)
    }

    fn indexed_log(&self, key: &str, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let prefix = [b"x/".as_slice(), key.as_bytes(), b"\0"].concat();
        let mut out = Vec::new();
        for item in self.inner.tree.scan_prefix(&prefix).keys().take(limit) {
            let sequence = u64_from(&item?[prefix.len()..]);
            out.push(self.log_entry(sequence)?.ok_or_else(|| StoreError::Corrupt {
                key: format!("log/{sequence}"),
                reason: format!("indexed under {key}, but not in the log"),
            })?);
        }
        Ok(out)
    }

    fn log_tail(&self, count: usize) -> Result<Vec<LogEntry>, StoreError> {
        let (head, _) = head_of(&self.inner.tree)?;
        let first = head.saturating_sub(count as u64) + 1;
        let mut out = Vec::with_capacity(count.min(4096));
        for sequence in first..=head {
            match self.log_entry(sequence)? {
                Some(entry) => out.push(entry),
                None => {
                    return Err(StoreError::Corrupt {
                        key: format!("log/{sequence}"),
                        reason: "the log lost entries: it is missing from the log's index".to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn log_head(&self) -> Result<u64, StoreError> {
        Ok(head_of(&self.inner.tree)?.0)
    }

    fn tlog_size(&self) -> Result<u64, StoreError> {
        // Integrated in the committer: the tree holds every entry of the log.
        Ok(head_of(&self.inner.tree)?.0)
    }

    fn tlog_nodes(&self, ids: &[NodeId]) -> Result<Vec<egov_tlog::Hash>, StoreError> {
        SledNodes(&self.inner.tree)
            .read_nodes(ids)
            .map_err(|error| StoreError::Corrupt { key: "tlog".to_owned(), reason: error.to_string() })
    }

    fn due(&self, now_ms: i64, limit: usize, skip: &dyn Fn(u64) -> bool) -> Result<Vec<OutboxItem>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.tree.scan_prefix(b"o/") {
            let (key, bytes) = item?;
            if skip(u64_from(&key[2..])) {
                continue;
            }
            let corrupt =
                |reason: String| StoreError::Corrupt { key: format!("outbox/{}", u64_from(&key[2..])), reason };
            let stored = StoredOutbox::decode(bytes.as_ref()).map_err(|e| corrupt(e.to_string()))?;
            if stored.next_attempt_ms <= now_ms {
                let envelope = match stored.entry {
                    0 => Vec::new(),
                    entry => self
                        .log_entry(entry)?
                        .map(|e| e.envelope)
                        .ok_or_else(|| corrupt(format!("it refers to log entry {entry}, which is not there")))?,
                };
                out.push(stored.into_item(envelope));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn schedule(&self) -> Result<Vec<(u64, i64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.tree.scan_prefix(b"o/") {
            let (key, bytes) = item?;
            let stored = StoredOutbox::decode(bytes.as_ref()).map_err(|e| StoreError::Corrupt {
                key: format!("outbox/{}", u64_from(&key[2..])),
                reason: e.to_string(),
            })?;
            out.push((stored.id, stored.next_attempt_ms));
        }
        Ok(out)
    }

    fn in_outbox(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.inner.tree.contains_key(outbox_key(id))?)
    }

    fn check_index(&self, shown: usize) -> Result<Option<Vec<String>>, StoreError> {
        self.check_index_against_log(shown).map(Some)
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        self.next_id_above()
    }

    /// Hands the batch to the process's one committer thread: batches that
    /// arrive together share one sync (group commit).
    fn commit(&self, batch: Batch, durability: Durability) -> CommitFuture<'_> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            committer::submit(Job { store: self.clone(), batch, durability, reply })?;
            answer.await.map_err(|_| StoreError::Stopped)?
        })
    }
}

#[cfg(test)]
impl SledBackend {
    /// Changes log entry `sequence` in its segment as a careless tool would:
    /// the frame's checksum is made to match again, the entry's hash is not.
    pub(crate) fn rewrite_entry(&self, sequence: u64, change: impl FnOnce(&mut LogEntry)) {
        let position = Position::decode(&self.inner.tree.get(entry_key(sequence)).unwrap().unwrap()).unwrap();
        let mut entry = self.read_entry(position, sequence).unwrap();
        change(&mut entry);
        let bytes = StoredEntry::from(&entry).encode_to_vec();
        assert_eq!(bytes.len(), position.len as usize, "the change must keep the entry's length");
        self.inner.segments.write_at(position.segment, position.offset, &bytes).unwrap();
        // The frame that holds it: walk the segment from its start.
        let segment = self.inner.segments.read_from(position.segment, 0).unwrap();
        let mut at = 0usize;
        loop {
            let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
            if (at + FRAME_HEADER + len) as u64 > position.offset {
                let crc = crc32fast::hash(&segment[at + FRAME_HEADER..at + FRAME_HEADER + len]);
                self.inner.segments.write_at(position.segment, at as u64 + 4, &crc.to_le_bytes()).unwrap();
                return;
            }
            at += FRAME_HEADER + len;
        }
    }

    /// Drops entries from the log's index, as if the log had lost them.
    pub(crate) fn forget_entries(&self, sequences: std::ops::RangeInclusive<u64>) {
        for sequence in sequences {
            self.inner.tree.remove(entry_key(sequence)).unwrap();
        }
    }
}
