//! How things are laid out on disk (format 3): records with a fixed binary
//! header, the store's own items as prost messages, and the frames of the
//! message log's segment files. `docs/storage.md` describes the same layout
//! for someone reading the files without this code.

use serde::{Serialize, de::DeserializeOwned};

use crate::{LogEntry, OutboxItem, Remembered, StoreError};

/// The store format this build reads and writes.
pub const FORMAT: u8 = 3;

/// A record: `FORMAT` (1 byte), its version (8 bytes, big-endian), then the
/// value as MessagePack with field names (new fields with `#[serde(default)]`
/// read old records).
pub(crate) fn encode_record<T: Serialize>(key: &str, version: u64, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(256);
    bytes.push(FORMAT);
    bytes.extend_from_slice(&version.to_be_bytes());
    rmp_serde::encode::write_named(&mut bytes, value)
        .map_err(|e| StoreError::Encode { key: key.to_owned(), reason: e.to_string() })?;
    Ok(bytes)
}

/// A record's version, from its header alone.
pub(crate) fn version_of(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [FORMAT, version @ ..] if version.len() >= 8 => Some(u64_from(&version[..8])),
        _ => None,
    }
}

pub(crate) fn decode_record<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<(u64, T), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { key: key.to_owned(), reason };
    let version = version_of(bytes).ok_or_else(|| {
        corrupt(format!(
            "the record's header is not format {FORMAT} ({} bytes, first {:?})",
            bytes.len(),
            bytes.first()
        ))
    })?;
    let value = rmp_serde::from_slice(&bytes[9..]).map_err(|e| corrupt(e.to_string()))?;
    Ok((version, value))
}

/// A log entry as stored in a segment.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StoredEntry {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(int64, tag = "2")]
    pub time_ms: i64,
    #[prost(string, tag = "3")]
    pub direction: String,
    #[prost(bytes = "vec", tag = "4")]
    pub envelope: Vec<u8>,
    #[prost(string, tag = "5")]
    pub note: String,
    // Tags 6 and 7 held the hash chain (format 2): not used again.
}

impl From<StoredEntry> for LogEntry {
    fn from(e: StoredEntry) -> LogEntry {
        LogEntry {
            sequence: e.sequence,
            time_ms: e.time_ms,
            direction: e.direction,
            envelope: e.envelope,
            note: e.note,
        }
    }
}

impl From<&LogEntry> for StoredEntry {
    fn from(e: &LogEntry) -> StoredEntry {
        StoredEntry {
            sequence: e.sequence,
            time_ms: e.time_ms,
            direction: e.direction.clone(),
            envelope: e.envelope.clone(),
            note: e.note.clone(),
        }
    }
}

/// An outbox item as stored: its envelope is the log entry `entry`, or
/// inline when it was not logged in the batch that queued it.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StoredOutbox {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub target: String,
    #[prost(uint64, tag = "3")]
    pub entry: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub envelope: Vec<u8>,
    #[prost(uint32, tag = "5")]
    pub attempts: u32,
    #[prost(int64, tag = "6")]
    pub next_attempt_ms: i64,
    #[prost(string, tag = "7")]
    pub last_error: String,
    #[prost(int64, tag = "8")]
    pub enqueued_ms: i64,
    #[prost(string, tag = "9")]
    pub slot: String,
}

impl StoredOutbox {
    pub(crate) fn of(item: &OutboxItem) -> StoredOutbox {
        StoredOutbox {
            id: item.id,
            target: item.target.clone(),
            entry: item.entry,
            envelope: if item.entry == 0 { item.envelope.clone() } else { Vec::new() },
            attempts: item.attempts,
            next_attempt_ms: item.next_attempt_ms,
            last_error: item.last_error.clone(),
            enqueued_ms: item.enqueued_ms,
            slot: item.slot.clone(),
        }
    }

    /// The item, with `envelope` read from the log when it is a reference.
    pub(crate) fn into_item(self, envelope: Vec<u8>) -> OutboxItem {
        OutboxItem {
            id: self.id,
            target: self.target,
            entry: self.entry,
            slot: self.slot,
            envelope: if self.entry == 0 { self.envelope } else { envelope },
            attempts: self.attempts,
            next_attempt_ms: self.next_attempt_ms,
            last_error: self.last_error,
            enqueued_ms: self.enqueued_ms,
        }
    }
}

/// A remembered answer as stored. When the answer carries an envelope this
/// store logged in the same commit, only the bytes around it are kept and
/// the envelope is log entry `entry`: the answer is `prefix + envelope + suffix`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StoredRemembered {
    #[prost(bytes = "vec", tag = "1")]
    pub digest: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub prefix: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub entry: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub suffix: Vec<u8>,
}

impl StoredRemembered {
    pub(crate) fn into_remembered(self, envelope: &[u8]) -> Remembered {
        let mut response = self.prefix;
        if self.entry != 0 {
            response.extend_from_slice(envelope);
            response.extend_from_slice(&self.suffix);
        }
        Remembered { digest: self.digest, response }
    }
}

/// Where a value's bytes are (segment, offset in it, length), and the frame
/// that holds them (its offset and whole length, header included): a read
/// reads the frame and checks its CRC before it hands out the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
    pub frame_at: u64,
    pub frame_len: u32,
}

/// The length of an encoded [`Position`].
pub(crate) const POSITION_BYTES: usize = 28;

impl Position {
    pub(crate) fn encode(&self) -> [u8; POSITION_BYTES] {
        let mut bytes = [0u8; POSITION_BYTES];
        bytes[..4].copy_from_slice(&self.segment.to_be_bytes());
        bytes[4..12].copy_from_slice(&self.offset.to_be_bytes());
        bytes[12..16].copy_from_slice(&self.len.to_be_bytes());
        bytes[16..24].copy_from_slice(&self.frame_at.to_be_bytes());
        bytes[24..].copy_from_slice(&self.frame_len.to_be_bytes());
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Position> {
        let u32_at = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let position = (bytes.len() == POSITION_BYTES).then(|| Position {
            segment: u32_at(0),
            offset: u64_from(&bytes[4..12]),
            len: u32_at(12),
            frame_at: u64_from(&bytes[16..24]),
            frame_len: u32_at(24),
        })?;
        // The value lies inside its frame's body.
        let body_at = position.frame_at + FRAME_HEADER as u64;
        let frame_end = position.frame_at + u64::from(position.frame_len);
        (position.offset >= body_at && position.offset + u64::from(position.len) <= frame_end).then_some(position)
    }

    /// Where the value ends in its segment.
    pub(crate) fn end(&self) -> (u32, u64) {
        (self.segment, self.frame_at + u64::from(self.frame_len))
    }
}

/// One item of a frame.
pub(crate) enum Item<'a> {
    /// A log entry (a [`StoredEntry`]).
    Entry(&'a [u8]),
    /// A write to the index (sled): key and value.
    Put(&'a [u8], &'a [u8]),
    /// A removal from the index.
    Remove(&'a [u8]),
}

const ENTRY: u8 = 1;
const PUT: u8 = 2;
const REMOVE: u8 = 3;

/// The frame header: body length (u32 LE), then CRC-32 of the body (u32 LE).
pub(crate) const FRAME_HEADER: usize = 8;
/// An item's header: kind (1 byte), then its length (u32 LE).
pub(crate) const ITEM_HEADER: usize = 5;

/// Builds one frame: every write of one commit, the log entries with them.
#[derive(Default)]
pub(crate) struct FrameWriter {
    body: Vec<u8>,
}

impl FrameWriter {
    /// Adds a log entry; its offset within the body.
    pub(crate) fn entry(&mut self, entry: &[u8]) -> usize {
        self.body.push(ENTRY);
        self.body.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        let at = self.body.len();
        self.body.extend_from_slice(entry);
        at
    }

    /// Adds a write; the offset of its value within the body.
    pub(crate) fn put(&mut self, key: &[u8], value: &[u8]) -> usize {
        self.body.push(PUT);
        self.body.extend_from_slice(&((4 + key.len() + value.len()) as u32).to_le_bytes());
        self.body.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.body.extend_from_slice(key);
        let at = self.body.len();
        self.body.extend_from_slice(value);
        at
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.body.push(REMOVE);
        self.body.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.body.extend_from_slice(key);
    }

    /// The frame's bytes: header, then body.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut frame = Vec::with_capacity(FRAME_HEADER + self.body.len());
        frame.extend_from_slice(&(self.body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&self.body).to_le_bytes());
        frame.extend_from_slice(&self.body);
        frame
    }
}

/// What is at some offset of a segment.
pub(crate) enum Frame<'a> {
    /// A whole frame whose checksum matches: its body and its length with the header.
    Whole(&'a [u8], usize),
    /// The file ends inside the frame (a write that never completed).
    Torn,
    /// The frame is there but its checksum does not match.
    Damaged,
}

pub(crate) fn read_frame(bytes: &[u8]) -> Frame<'_> {
    if bytes.len() < FRAME_HEADER {
        return Frame::Torn;
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let Some(body) = bytes.get(FRAME_HEADER..FRAME_HEADER + len) else { return Frame::Torn };
    if crc32fast::hash(body) != crc {
        return Frame::Damaged;
    }
    Frame::Whole(body, FRAME_HEADER + len)
}

/// The items of a frame's body, each with its offset in the body; `None` for a malformed item.
pub(crate) fn items(body: &[u8]) -> impl Iterator<Item = Option<(usize, Item<'_>)>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let parsed = (|| {
            let kind = *body.get(at)?;
            let len = u32::from_le_bytes(body.get(at + 1..at + ITEM_HEADER)?.try_into().ok()?) as usize;
            let start = at + ITEM_HEADER;
            let content = body.get(start..start + len)?;
            let item = match kind {
                ENTRY => Item::Entry(content),
                PUT => {
                    let key_len = u32::from_le_bytes(content.get(..4)?.try_into().ok()?) as usize;
                    let key = content.get(4..4 + key_len)?;
                    Item::Put(key, &content[4 + key_len..])
                }
                REMOVE => Item::Remove(content),
                _ => return None,
            };
            Some((start, start + len, item))
        })();
        match parsed {
            Some((start, end, item)) => {
                at = end;
                Some(Some((start, item)))
            }
            None => {
                at = body.len();
                Some(None)
            }
        }
    })
}

pub(crate) fn u64_from(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    let n = bytes.len().min(8);
    array[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(array)
}

/// The least byte string greater than every one that starts with `prefix`; none
/// when every byte of it is 0xFF (nothing is past it).
pub(crate) fn upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}
