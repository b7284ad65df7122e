//! A batch of writes, and the rules by which every backend applies one.
//!
//! A [`Batch`] says what a commit changes: records (compare and set), index
//! entries, log entries, outbox items, remembered answers. The rules that
//! turn it into stored state are the same on every backend and live here,
//! once ([`apply`]): the sequence numbers of the new log entries, outbox items
//! and remembered answers that refer to a log entry of the same batch rather
//! than holding its bytes again, the replacement of a message waiting in its
//! slot, the conditional update and removal of an item. A backend only
//! implements the primitives of [`Apply`], each against what it holds.
//!
//! A log entry is referred to by the [`EntryRef`] [`Batch::log`] returns, so
//! an envelope that is logged and queued, or logged and carried in an answer,
//! is stored once per participant by construction.

use serde::Serialize;

use crate::codec::{self, StoredRemembered};
use crate::{LogEntry, OutboxItem, StoreError};

/// A log entry of a batch, as [`Batch::log`] and [`Batch::log_first`] return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef(Place);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The entry logged before all the others ([`Batch::log_first`]).
    First,
    /// The n-th entry of [`Batch::log`].
    At(usize),
}

impl EntryRef {
    /// The entry [`Batch::log_first`] logs (what a call received), whether or
    /// not it is logged yet: a handler refers to it before the pipeline logs it.
    pub const FIRST: EntryRef = EntryRef(Place::First);
}

/// A remembered answer: its bytes, or its bytes around a log entry of the same batch.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The answer's bytes.
    Bytes(Vec<u8>),
    /// `before + envelope of entry + after`: the answer carries that envelope.
    Carrying { before: Vec<u8>, entry: EntryRef, after: Vec<u8> },
}

pub(crate) enum Op {
    Put {
        key: String,
        expected_version: u64,
        value: Vec<u8>,
    },
    /// An index entry: written or removed without a version (it is derived from a versioned record).
    Index {
        key: String,
        present: bool,
    },
}

/// A log entry to append.
pub(crate) struct NewEntry {
    pub time_ms: i64,
    pub direction: String,
    pub envelope: Vec<u8>,
    pub note: String,
    /// The keys it is indexed under.
    pub keys: Vec<String>,
}

impl NewEntry {
    fn new(time_ms: i64, direction: &str, envelope: Vec<u8>, note: impl Into<String>, keys: Vec<String>) -> NewEntry {
        NewEntry { time_ms, direction: direction.to_owned(), envelope, note: note.into(), keys }
    }
}

/// An outbox item to add: its envelope is a log entry of the batch, or its own bytes.
pub(crate) struct NewItem {
    pub target: String,
    pub entry: Option<EntryRef>,
    pub envelope: Vec<u8>,
    pub slot: String,
    pub due_ms: i64,
}

/// Writes applied together by [`crate::Store::commit`]: all or none.
#[derive(Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    first: Option<NewEntry>,
    log: Vec<NewEntry>,
    enqueue: Vec<NewItem>,
    /// Id, and the log entry of the envelope that was sent.
    dequeue: Vec<(u64, u64)>,
    update: Vec<OutboxItem>,
    remember: Vec<(String, Vec<u8>, Answer)>,
    /// Remembered answers completed: the message was remembered before.
    rewrite_remembered: Vec<(String, Vec<u8>, Answer)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Writes `value` at `key` if the stored version is `expected_version`
    /// (0: the key must not exist yet). The new version is `expected_version + 1`.
    pub fn put<T: Serialize>(
        &mut self,
        key: impl Into<String>,
        expected_version: u64,
        value: &T,
    ) -> Result<(), StoreError> {
        let key = key.into();
        let value = codec::encode_record(&key, expected_version + 1, value)?;
        self.ops.push(Op::Put { key, expected_version, value });
        Ok(())
    }

    /// Adds (`present`) or removes the index entry `key`, which
    /// [`crate::Store::index_entries`] lists by prefix. An index entry has no version: it is
    /// derived from a versioned record written in the same batch.
    pub fn index(&mut self, key: impl Into<String>, present: bool) {
        self.ops.push(Op::Index { key: key.into(), present });
    }

    /// Appends an envelope to the message log, indexed under each of `keys`
    /// ([`crate::Store::indexed_log`] lists the entries of a key).
    pub fn log(
        &mut self,
        time_ms: i64,
        direction: &str,
        envelope: Vec<u8>,
        note: impl Into<String>,
        keys: Vec<String>,
    ) -> EntryRef {
        self.log.push(NewEntry::new(time_ms, direction, envelope, note, keys));
        EntryRef(Place::At(self.log.len() - 1))
    }

    /// [`Batch::log`], before every other entry of the batch (what a call
    /// received comes before what handling it sent): [`EntryRef::FIRST`].
    pub fn log_first(
        &mut self,
        time_ms: i64,
        direction: &str,
        envelope: Vec<u8>,
        note: impl Into<String>,
        keys: Vec<String>,
    ) -> EntryRef {
        self.first = Some(NewEntry::new(time_ms, direction, envelope, note, keys));
        EntryRef::FIRST
    }

    /// Queues the envelope of log entry `entry` for `target`, due at `due_ms`;
    /// its id is assigned at commit.
    pub fn enqueue(&mut self, target: impl Into<String>, entry: EntryRef, due_ms: i64) {
        self.enqueue.push(NewItem {
            target: target.into(),
            entry: Some(entry),
            envelope: Vec::new(),
            slot: String::new(),
            due_ms,
        });
    }

    /// Queues `bytes` for `target`, not logged (a notification the outbox
    /// sends, whose item says all there is to send).
    pub fn enqueue_unlogged(&mut self, target: impl Into<String>, bytes: Vec<u8>, due_ms: i64) {
        self.enqueue.push(NewItem { target: target.into(), entry: None, envelope: bytes, slot: String::new(), due_ms });
    }

    /// Like [`Batch::enqueue`], but in place of the message of the same `slot`
    /// that still waits in the outbox, if there is one: it keeps its id and the
    /// earlier of the two due times, and gets this envelope.
    pub fn enqueue_latest(&mut self, slot: &str, target: impl Into<String>, entry: EntryRef, due_ms: i64) {
        self.enqueue.push(NewItem {
            target: target.into(),
            entry: Some(entry),
            envelope: Vec::new(),
            slot: slot.to_owned(),
            due_ms,
        });
    }

    /// Removes a delivered message from the outbox, unless another envelope
    /// took its place meanwhile ([`Batch::enqueue_latest`]): that one is still to send.
    pub fn dequeue(&mut self, item: &OutboxItem) {
        self.dequeue.push((item.id, item.entry));
    }

    /// Replaces an outbox item (a new schedule, a parked incident), unless it
    /// left the outbox or another envelope took its place meanwhile.
    pub fn update_outbox(&mut self, item: OutboxItem) {
        self.update.push(item);
    }

    /// Remembers the answer to `(sender, message_id)`. The first answer to a
    /// message is remembered once: a batch that remembers what another writer
    /// remembered meanwhile (a replica that took the same message) is refused
    /// as a conflict on the PostgreSQL backend.
    pub fn remember(&mut self, sender_id: &str, message_id: &str, digest: Vec<u8>, answer: Answer) {
        self.remember.push((idempotency_key(sender_id, message_id), digest, answer));
    }

    /// Replaces the answer remembered for `(sender, message_id)`, which was
    /// remembered before ([`Batch::remember`]): a later step completed it.
    pub fn rewrite_remembered(&mut self, sender_id: &str, message_id: &str, digest: Vec<u8>, answer: Answer) {
        self.rewrite_remembered.push((idempotency_key(sender_id, message_id), digest, answer));
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
            && self.first.is_none()
            && self.log.is_empty()
            && self.enqueue.is_empty()
            && self.dequeue.is_empty()
            && self.update.is_empty()
            && self.remember.is_empty()
            && self.rewrite_remembered.is_empty()
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("puts", &self.ops.len())
            .field("log", &(self.log.len() + usize::from(self.first.is_some())))
            .field("enqueue", &self.enqueue.len())
            .field("dequeue", &self.dequeue)
            .field("update", &self.update.len())
            .field("remember", &self.remember.len())
            .field("rewrite_remembered", &self.rewrite_remembered.len())
            .finish()
    }
}

pub(crate) fn idempotency_key(sender_id: &str, message_id: &str) -> String {
    format!("{sender_id}\u{0}{message_id}")
}

/// The item waiting in a slot: its id and when it is due.
pub(crate) type Waiting = (u64, i64);

/// What a backend does for [`apply`], each primitive against what it holds
/// and what the same commit did before (the embedded backend's group commit
/// applies several batches at once: each sees the ones before it).
pub(crate) trait Apply {
    /// Writes `value` at `key` if its stored version is `expected_version`, else [`StoreError::Conflict`].
    fn put(&mut self, key: String, expected_version: u64, value: Vec<u8>) -> Result<(), StoreError>;
    /// Writes or removes an index entry.
    fn index(&mut self, key: String, present: bool) -> Result<(), StoreError>;
    /// The sequence the batch's entries follow: the log's last one (0: empty) where the backend
    /// sequences at once (sled, one writer), or a provisional base where it sequences at the end of
    /// the commit (PostgreSQL: the entries and what refers to them are renumbered then).
    fn head(&mut self) -> Result<u64, StoreError>;
    /// Appends an entry, indexed under `keys`.
    fn append(&mut self, entry: &LogEntry, keys: &[String]) -> Result<(), StoreError>;
    /// Records the log's new last sequence, after the batch's entries.
    fn set_head(&mut self, sequence: u64) -> Result<(), StoreError>;
    /// The item waiting in `slot`, if one does.
    fn in_slot(&mut self, slot: &str) -> Result<Option<Waiting>, StoreError>;
    /// A new outbox id.
    fn new_id(&mut self) -> Result<u64, StoreError>;
    /// Writes an outbox item: a new one, or (`replaces`) the one waiting in its slot, which keeps its id.
    fn put_item(&mut self, item: &OutboxItem, replaces: bool) -> Result<(), StoreError>;
    /// Replaces item `item.id` if it still holds the envelope of entry `item.entry`.
    fn update_item(&mut self, item: &OutboxItem) -> Result<(), StoreError>;
    /// Removes item `id` if it still holds the envelope of entry `entry`, and frees its slot.
    fn remove_item(&mut self, id: u64, entry: u64) -> Result<(), StoreError>;
    /// Stores a remembered answer: a first one (refused as a conflict where another
    /// writer remembered the same message meanwhile), or one that replaces it.
    fn remember(&mut self, key: &str, stored: StoredRemembered, replace: bool) -> Result<(), StoreError>;
}

/// Applies `batch` through `to`, by the rules of the module's documentation;
/// the ids given to the enqueued items, in order.
pub(crate) fn apply(batch: Batch, to: &mut dyn Apply) -> Result<Vec<u64>, StoreError> {
    let Batch { ops, first, log, enqueue, dequeue, update, remember, rewrite_remembered } = batch;
    for op in ops {
        match op {
            Op::Put { key, expected_version, value } => to.put(key, expected_version, value)?,
            Op::Index { key, present } => to.index(key, present)?,
        }
    }
    // The entries in order, with their sequences: the first one, then the others.
    let has_first = first.is_some();
    let mut sequences = Vec::with_capacity(log.len() + 1);
    let entries: Vec<NewEntry> = first.into_iter().chain(log).collect();
    if !entries.is_empty() {
        let mut sequence = to.head()?;
        for NewEntry { time_ms, direction, envelope, note, keys } in entries {
            sequence += 1;
            let entry = LogEntry { sequence, time_ms, direction, envelope, note };
            to.append(&entry, &keys)?;
            sequences.push(sequence);
        }
        to.set_head(sequence)?;
    }
    let sequence_of = |entry: EntryRef| -> Result<u64, StoreError> {
        let at = match entry.0 {
            Place::First if has_first => Some(0),
            Place::First => None,
            Place::At(n) => Some(n + usize::from(has_first)),
        };
        at.and_then(|at| sequences.get(at).copied()).ok_or_else(|| StoreError::Encode {
            key: "batch".to_owned(),
            reason: format!("{entry:?} refers to a log entry the batch does not log"),
        })
    };
    let mut ids = Vec::with_capacity(enqueue.len());
    for NewItem { target, entry, envelope, slot, due_ms } in enqueue {
        let mut item = OutboxItem {
            id: 0,
            target,
            entry: entry.map(sequence_of).transpose()?.unwrap_or(0),
            envelope,
            slot,
            attempts: 0,
            next_attempt_ms: due_ms,
            last_error: String::new(),
            enqueued_ms: due_ms,
        };
        let waiting = if item.slot.is_empty() { None } else { to.in_slot(&item.slot)? };
        match waiting {
            Some((id, waiting_due_ms)) => {
                // It keeps the earlier due time: a stream of reports does not hold it back.
                item.id = id;
                item.next_attempt_ms = item.next_attempt_ms.min(waiting_due_ms);
                to.put_item(&item, true)?;
            }
            None => {
                item.id = to.new_id()?;
                to.put_item(&item, false)?;
            }
        }
        ids.push(item.id);
    }
    for item in update {
        to.update_item(&item)?;
    }
    for (id, entry) in dequeue {
        to.remove_item(id, entry)?;
    }
    let stored = |digest: Vec<u8>, answer: Answer| -> Result<StoredRemembered, StoreError> {
        Ok(match answer {
            Answer::Bytes(response) => StoredRemembered { digest, prefix: response, entry: 0, suffix: Vec::new() },
            Answer::Carrying { before, entry, after } => {
                StoredRemembered { digest, prefix: before, entry: sequence_of(entry)?, suffix: after }
            }
        })
    };
    for (key, digest, answer) in remember {
        to.remember(&key, stored(digest, answer)?, false)?;
    }
    for (key, digest, answer) in rewrite_remembered {
        to.remember(&key, stored(digest, answer)?, true)?;
    }
    Ok(ids)
}
