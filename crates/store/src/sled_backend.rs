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
//! - `m/format`, `m/head` (the last entry's sequence and hash), `m/applied`
//!   (the segment and offset after the last frame applied).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message as _;

use crate::codec::{
    self, FRAME_HEADER, Frame, FrameWriter, Item, Position, StoredEntry, StoredOutbox, StoredRemembered, u64_from,
};
use crate::committer::{self, Job};
use crate::segments::{SEGMENT_BYTES, Segments};
use crate::{
    Backend, Batch, CommitFuture, Durability, LogEntry, Op, OutboxItem, Remembered, StoreError, idempotency_key, stats,
};

const HEAD: &[u8] = b"m/head";
const APPLIED: &[u8] = b"m/applied";
const FORMAT_KEY: &[u8] = b"m/format";

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

fn seen_key(key: &str) -> Vec<u8> {
    [b"s/".as_slice(), key.as_bytes()].concat()
}

/// Whether sled keeps only where a key's value is in the segments (records
/// and remembered answers: large, written often) rather than the value.
fn by_position(key: &[u8]) -> bool {
    key.starts_with(b"r/") || key.starts_with(b"s/")
}

/// What sled keeps for a write of `value` at `key`, which the segments hold at `position`.
fn index_value(key: &[u8], value: &[u8], position: Position) -> Vec<u8> {
    if !by_position(key) || value.is_empty() {
        return value.to_vec();
    }
    let mut pointer = Vec::with_capacity(24);
    if key.starts_with(b"r/") {
        pointer.extend_from_slice(&codec::version_of(value).unwrap_or(u64::MAX).to_be_bytes());
    }
    pointer.extend_from_slice(&position.encode());
    pointer
}

/// The version a record's pointer names (`u64::MAX`: not a record).
fn pointer_version(pointer: &[u8]) -> u64 {
    if pointer.len() == 24 { u64_from(&pointer[..8]) } else { u64::MAX }
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

/// Where the committer appends, and the chain's head.
#[derive(Debug, Clone)]
struct Writer {
    segment: u32,
    end: u64,
    sequence: u64,
    hash: Vec<u8>,
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
}

impl Drop for Inner {
    fn drop(&mut self) {
        // sled flushes in the background; a last flush makes the next open replay nothing.
        let _ = self.db.flush();
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
    /// missing or shorter than what sled holds, or a store in another format
    /// is refused, never served.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledBackend, StoreError> {
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
                found: "1 (sled trees of JSON records, envelopes in hex, before the log moved to segment files)"
                    .to_owned(),
                what_to_do: "keep it for audits with the build that wrote it, and start this build on an empty \
                             directory (see docs/storage.md)"
                    .to_owned(),
            });
        }
        let tree = (*db).clone();
        match tree.get(FORMAT_KEY)? {
            Some(format) if format.as_ref() == [codec::FORMAT] => {}
            Some(format) => {
                return Err(StoreError::Format {
                    path: path.display().to_string(),
                    found: format!("{:?}", format.as_ref()),
                    what_to_do: "open it with the build that wrote it".to_owned(),
                });
            }
            None if tree.is_empty() => {
                tree.insert(FORMAT_KEY, &[codec::FORMAT])?;
            }
            None => {
                return Err(StoreError::Corrupt {
                    key: path.display().to_string(),
                    reason: "the store holds data but no format mark".to_owned(),
                });
            }
        }
        let log_dir = path.join("log");
        let holds_data = tree.get(APPLIED)?.is_some() || tree.get(HEAD)?.is_some();
        if !log_dir.is_dir() {
            if holds_data {
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
            if holds_data {
                return Err(StoreError::Corrupt {
                    key: log_dir.display().to_string(),
                    reason: "the log has no segment, though the store holds data".to_owned(),
                });
            }
            segments.begin()?;
            db.flush()?;
        }
        replay(&tree, &segments)?;
        let (sequence, hash) = head_of(&tree)?;
        let segment = segments.count();
        let writer = Writer { segment, end: segments.len(segment)?, sequence, hash };
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(SledBackend {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                path: path.to_owned(),
                db,
                tree,
                segments,
                writer: Mutex::new(writer),
                poisoned: AtomicBool::new(false),
            }),
        })
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
        if let Err(error) = synced {
            group.failure = Some(error);
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
    /// what the store holds and what the group wrote before it.
    fn prepare(&self, batch: Batch, writer: &mut Writer, overlay: &mut GroupView) -> Result<Prepared, StoreError> {
        let tree = &self.inner.tree;
        let Batch { ops, log, enqueue, dequeue, update, mut remember, rewrite_remembered } = batch;
        // The embedded store has one writer: a rewritten answer is written as any other.
        remember.extend(rewrite_remembered);
        let mut writes: Vec<Write> = Vec::new();
        let mut versions: Vec<(Vec<u8>, u64)> = Vec::new();
        for op in &ops {
            if let Op::Put { key, expected_version, .. } = op {
                let stored = record_key(key);
                let found = match overlay.versions.get(&stored) {
                    Some(version) => *version,
                    None => match tree.get(&stored)? {
                        None => 0,
                        Some(pointer) => pointer_version(&pointer),
                    },
                };
                if found != *expected_version {
                    return Err(StoreError::Conflict { key: key.clone(), expected: *expected_version, found });
                }
                versions.push((stored, expected_version + 1));
            }
        }
        let mut frame = FrameWriter::default();
        let mut sequence = writer.sequence;
        let mut hash = writer.hash.clone();
        // The envelopes this batch logs, by sequence, for the items that refer to them.
        let mut logged: Vec<(u64, &[u8])> = Vec::with_capacity(log.len());
        let mut entries = Vec::with_capacity(log.len());
        for (time_ms, direction, envelope, note, keys) in &log {
            sequence += 1;
            let mut entry = LogEntry {
                sequence,
                time_ms: *time_ms,
                direction: direction.clone(),
                envelope: envelope.clone(),
                note: note.clone(),
                previous_hash: hash,
                hash: Vec::new(),
            };
            entry.hash = entry.compute_hash();
            hash = entry.hash.clone();
            let bytes = StoredEntry::from(&entry).encode_to_vec();
            let at = frame.entry(&bytes);
            let position = Position {
                segment: writer.segment,
                offset: writer.end + (FRAME_HEADER + at) as u64,
                len: bytes.len() as u32,
            };
            entries.push((entry_key(sequence), position.encode().to_vec()));
            for key in keys {
                entries.push((log_index_key(key, sequence), Vec::new()));
            }
            logged.push((sequence, envelope.as_slice()));
        }
        for (key, value) in entries {
            writes.push((key, Some(value)));
        }
        if !log.is_empty() {
            let mut head = sequence.to_be_bytes().to_vec();
            head.extend_from_slice(&hash);
            writes.push((HEAD.to_vec(), Some(head)));
        }
        for op in ops {
            match op {
                Op::Put { key, value, .. } => writes.push((record_key(&key), Some(value))),
                Op::Index { key, present: true } => writes.push((record_key(&key), Some(Vec::new()))),
                Op::Index { key, present: false } => writes.push((record_key(&key), None)),
            }
        }
        // The outbox as this batch sees it: its own changes, the group's batches
        // before it, then sled. An item: its envelope's log entry and its slot.
        let mut changes = Overlay::default();
        let waiting = |id: u64, changes: &Overlay| -> Result<Option<(u64, String, i64)>, StoreError> {
            if let Some(item) = changes.items.get(&id).or_else(|| overlay.outbox.items.get(&id)) {
                return Ok(item.clone());
            }
            match tree.get(outbox_key(id))? {
                None => Ok(None),
                Some(bytes) => {
                    let stored = StoredOutbox::decode(bytes.as_ref())
                        .map_err(|e| StoreError::Corrupt { key: format!("outbox/{id}"), reason: e.to_string() })?;
                    Ok(Some((stored.entry, stored.slot, stored.next_attempt_ms)))
                }
            }
        };
        let mut ids = Vec::with_capacity(enqueue.len());
        for mut item in enqueue {
            item.entry =
                logged.iter().find(|(_, envelope)| *envelope == item.envelope.as_slice()).map_or(0, |(s, _)| *s);
            let slot_key = slot_key(&item.slot);
            let replaces = if item.slot.is_empty() {
                None
            } else {
                match changes.slots.get(&slot_key).or_else(|| overlay.outbox.slots.get(&slot_key)) {
                    Some(id) => *id,
                    None => tree.get(&slot_key)?.map(|id| u64_from(&id)),
                }
            };
            item.id = match replaces.map(|id| waiting(id, &changes).map(|w| (id, w))).transpose()? {
                Some((id, Some((_, _, due_ms)))) => {
                    // It keeps the earlier due time: a stream of reports does not hold it back.
                    item.next_attempt_ms = item.next_attempt_ms.min(due_ms);
                    id
                }
                _ => self.inner.db.generate_id()?,
            };
            if !item.slot.is_empty() {
                writes.push((slot_key.clone(), Some(item.id.to_be_bytes().to_vec())));
                changes.slots.insert(slot_key, Some(item.id));
            }
            ids.push(item.id);
            changes.items.insert(item.id, Some((item.entry, item.slot.clone(), item.next_attempt_ms)));
            writes.push((outbox_key(item.id), Some(StoredOutbox::of(&item).encode_to_vec())));
        }
        for item in update {
            // Gone, or replaced by a later envelope of its slot: the update was for what is no longer there.
            if waiting(item.id, &changes)?.map(|(entry, _, _)| entry) != Some(item.entry) {
                continue;
            }
            changes.items.insert(item.id, Some((item.entry, item.slot.clone(), item.next_attempt_ms)));
            writes.push((outbox_key(item.id), Some(StoredOutbox::of(&item).encode_to_vec())));
        }
        for (id, entry) in dequeue {
            let Some((stored, slot, _)) = waiting(id, &changes)? else { continue };
            if stored != entry {
                // Replaced meanwhile by a later envelope of its slot: that one is still to send.
                continue;
            }
            if !slot.is_empty() {
                let slot_key = slot_key(&slot);
                changes.slots.insert(slot_key.clone(), None);
                writes.push((slot_key, None));
            }
            changes.items.insert(id, None);
            writes.push((outbox_key(id), None));
        }
        for (key, Remembered { digest, response }) in remember {
            let spliced =
                logged.iter().filter(|(_, envelope)| envelope.len() >= 64).find_map(|(sequence, envelope)| {
                    codec::find(&response, envelope).map(|at| (*sequence, at, envelope.len()))
                });
            let stored = match spliced {
                Some((entry, at, len)) => StoredRemembered {
                    digest,
                    prefix: response[..at].to_vec(),
                    entry,
                    suffix: response[at + len..].to_vec(),
                },
                None => StoredRemembered { digest, prefix: response, entry: 0, suffix: Vec::new() },
            };
            writes.push((seen_key(&key), Some(stored.encode_to_vec())));
        }
        let mut indexed = Vec::with_capacity(writes.len());
        for (key, value) in writes {
            match value {
                Some(value) => {
                    let at = frame.put(&key, &value);
                    let position = Position {
                        segment: writer.segment,
                        offset: writer.end + (FRAME_HEADER + at) as u64,
                        len: value.len() as u32,
                    };
                    let kept = index_value(&key, &value, position);
                    indexed.push((key, Some(kept)));
                }
                None => {
                    frame.remove(&key);
                    indexed.push((key, None));
                }
            }
        }
        let writes = indexed;
        let frame = frame.finish();
        writer.sequence = sequence;
        writer.hash = hash;
        overlay.versions.extend(versions);
        overlay.outbox.items.extend(changes.items);
        overlay.outbox.slots.extend(changes.slots);
        Ok((frame, writes, ids))
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
        None => (0, vec![0; 32]),
    })
}

/// Applies to sled the frames of the log after the last one it holds.
fn replay(tree: &sled::Tree, segments: &Segments) -> Result<(), StoreError> {
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
                    let body_at = offset + (at + FRAME_HEADER) as u64;
                    for item in codec::items(body) {
                        match item {
                            Some((start, Item::Put(key, value))) => {
                                let position = Position {
                                    segment,
                                    offset: body_at + (start + 4 + key.len()) as u64,
                                    len: value.len() as u32,
                                };
                                batch.insert(key, index_value(key, value, position));
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
                    // A write that never completed, so never acknowledged: cut it away.
                    tracing::warn!(
                        segment,
                        offset = frame_at,
                        "the log ends inside a frame: the unfinished write is cut away"
                    );
                    segments.truncate(segment, frame_at)?;
                    break;
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
            return Ok(());
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
                    Frame::Torn => {
                        out.push(Err(damaged("the log ends inside a frame")));
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

    fn log_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let (sequence, hash) = head_of(&self.inner.tree)?;
        Ok((sequence > 0).then_some((sequence, hash)))
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

    fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.inner.db.generate_id()?)
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
