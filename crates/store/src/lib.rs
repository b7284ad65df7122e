//! Durable state on sled: versioned records (compare-and-set), the message
//! log as a hash chain, the idempotency index and the outbox. Every write goes
//! through [`Store::commit`], which applies a [`Batch`] atomically and returns
//! only once sled has flushed it to disk.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("record {key} changed meanwhile: expected version {expected}, found {found}")]
    Conflict { key: String, expected: u64, found: u64 },
    #[error("{key} is damaged: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("record {key} does not encode: {reason}")]
    Encode { key: String, reason: String },
    #[error("the store's committer has stopped")]
    Stopped,
    #[error("{path}: flush failed")]
    Flush {
        /// The store or file that could not be made durable.
        path: String,
        #[source]
        source: Arc<std::io::Error>,
    },
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Sled(_) => "store.io",
            StoreError::Conflict { .. } => "store.conflict",
            StoreError::Corrupt { .. } => "store.corrupt",
            StoreError::Encode { .. } => "store.encode",
            StoreError::Stopped => "store.stopped",
            StoreError::Flush { .. } => "store.io",
        }
    }
}

/// A stored record with its version (1 for the first write).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// One entry of the message log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub sequence: u64,
    pub time_ms: i64,
    /// "received", "sent" or "refused".
    pub direction: String,
    /// The envelope as carried (a serialised `egov.v1.Envelope`).
    #[serde(with = "hex")]
    pub envelope: Vec<u8>,
    /// Free text: a refusal's reason code, a delivery target.
    pub note: String,
    #[serde(with = "hex")]
    pub previous_hash: Vec<u8>,
    #[serde(with = "hex")]
    pub hash: Vec<u8>,
}

impl LogEntry {
    /// SHA-256 over the previous hash and the entry's fields, each length-prefixed.
    pub fn compute_hash(&self) -> Vec<u8> {
        let mut hasher = Sha256::new();
        for field in [
            self.previous_hash.as_slice(),
            &self.sequence.to_be_bytes(),
            &self.time_ms.to_be_bytes(),
            self.direction.as_bytes(),
            &self.envelope,
            self.note.as_bytes(),
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field);
        }
        hasher.finalize().to_vec()
    }
}

/// A message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: u64,
    /// Who it goes to (a member id).
    pub target: String,
    /// The envelope (a serialised `egov.v1.Envelope`).
    #[serde(with = "hex")]
    pub envelope: Vec<u8>,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: String,
    pub enqueued_ms: i64,
}

/// What a receiver remembers of a message it processed, to answer a resend
/// with the same answer and to refuse the same id with other bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    #[serde(with = "hex")]
    pub digest: Vec<u8>,
    #[serde(with = "hex")]
    pub response: Vec<u8>,
}

#[derive(Debug, Clone)]
struct LogHead {
    sequence: u64,
    hash: Vec<u8>,
}

enum Op {
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

/// Writes applied together by [`Store::commit`]: all or none.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
    log: Vec<(i64, String, Vec<u8>, String)>,
    enqueue: Vec<OutboxItem>,
    dequeue: Vec<u64>,
    update: Vec<OutboxItem>,
    remember: Vec<(String, Remembered)>,
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
        let record = Versioned { version: expected_version + 1, value };
        let value =
            serde_json::to_vec(&record).map_err(|e| StoreError::Encode { key: key.clone(), reason: e.to_string() })?;
        self.ops.push(Op::Put { key, expected_version, value });
        Ok(())
    }

    /// Adds (`present`) or removes the index entry `key`, which
    /// [`Store::index_entries`] lists by prefix. An index entry has no version: it is
    /// derived from a versioned record written in the same batch.
    pub fn index(&mut self, key: impl Into<String>, present: bool) {
        self.ops.push(Op::Index { key: key.into(), present });
    }

    /// Appends an envelope to the message log.
    pub fn log(&mut self, time_ms: i64, direction: &str, envelope: Vec<u8>, note: impl Into<String>) {
        self.log.push((time_ms, direction.to_owned(), envelope, note.into()));
    }

    /// Appends an envelope to the message log before every entry added so far.
    pub fn log_first(&mut self, time_ms: i64, direction: &str, envelope: Vec<u8>, note: impl Into<String>) {
        self.log.insert(0, (time_ms, direction.to_owned(), envelope, note.into()));
    }

    /// Adds a message to the outbox; its id is assigned at commit.
    pub fn enqueue(&mut self, target: impl Into<String>, envelope: Vec<u8>, now_ms: i64) {
        self.enqueue.push(OutboxItem {
            id: 0,
            target: target.into(),
            envelope,
            attempts: 0,
            next_attempt_ms: now_ms,
            last_error: String::new(),
            enqueued_ms: now_ms,
        });
    }

    /// Removes a delivered message from the outbox.
    pub fn dequeue(&mut self, id: u64) {
        self.dequeue.push(id);
    }

    /// Replaces an outbox item (a new schedule, a parked incident).
    pub fn update_outbox(&mut self, item: OutboxItem) {
        self.update.push(item);
    }

    /// Remembers the answer to `(sender, message_id)`.
    pub fn remember(&mut self, sender_id: &str, message_id: &str, digest: Vec<u8>, response: Vec<u8>) {
        self.remember.push((idempotency_key(sender_id, message_id), Remembered { digest, response }));
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("puts", &self.ops.len())
            .field("log", &self.log.len())
            .field("enqueue", &self.enqueue.len())
            .field("dequeue", &self.dequeue)
            .field("update", &self.update.len())
            .field("remember", &self.remember.len())
            .finish()
    }
}

fn idempotency_key(sender_id: &str, message_id: &str) -> String {
    format!("{sender_id}\u{0}{message_id}")
}

/// What a participant needs of its storage, whatever holds it: records
/// with a version to compare and set, the hash-chained message log, the
/// idempotency index, the outbox, and an atomic, durable commit of a batch of
/// all of them. [`SledBackend`] is the embedded one; a database shared by
/// several gateway replicas would be another (a later step).
pub trait Backend: Send + Sync + 'static {
    /// The stored bytes of a record (a serialised [`Versioned`]).
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    fn remembered(&self, sender_id: &str, message_id: &str) -> Result<Option<Remembered>, StoreError>;
    /// The message log, oldest first.
    fn log_entries(&self) -> Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_>;
    /// The last `count` entries of the log, oldest first.
    fn log_tail(&self, count: usize) -> Result<Vec<LogEntry>, StoreError>;
    /// The head the store records: the last entry's sequence and hash.
    fn log_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Outbox items due at `now_ms`, oldest first, at most `limit`.
    fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;
    fn in_outbox(&self, id: u64) -> Result<bool, StoreError>;
    /// A new unique number (monotonic, never reused across restarts).
    fn next_id(&self) -> Result<u64, StoreError>;
    /// Applies `batch` atomically and durably; the ids given to the enqueued outbox items.
    fn commit(
        &self,
        batch: Batch,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u64>, StoreError>> + Send + '_>>;
}

/// A participant's store: typed access over a [`Backend`].
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// The embedded sled store in `path` (see [`SledBackend::open`]).
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Arc::new(SledBackend::open(path, cache_bytes)?)))
    }

    pub fn with_backend(backend: Arc<dyn Backend>) -> Store {
        Store { backend }
    }

    /// A record with its version.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>, StoreError> {
        self.backend.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, Versioned<T>)>, StoreError> {
        self.backend.scan(prefix)?.into_iter().map(|(key, bytes)| Ok((key.clone(), decode(&key, &bytes)?))).collect()
    }

    /// The index entries under `prefix`: the rest of each key after it, in key order.
    pub fn index_entries(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.backend.scan(prefix)?.into_iter().map(|(key, _)| key[prefix.len()..].to_owned()).collect())
    }

    /// What was remembered for `(sender, message_id)`.
    pub fn remembered(&self, sender_id: &str, message_id: &str) -> Result<Option<Remembered>, StoreError> {
        self.backend.remembered(sender_id, message_id)
    }

    /// The message log, oldest first.
    pub fn log_entries(&self) -> Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_> {
        self.backend.log_entries()
    }

    /// Outbox items due at `now_ms`, oldest first, at most `limit`.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.backend.due(now_ms, limit)
    }

    /// The whole outbox.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.backend.due(i64::MAX, usize::MAX)
    }

    /// Whether outbox item `id` is still waiting.
    pub fn in_outbox(&self, id: u64) -> Result<bool, StoreError> {
        self.backend.in_outbox(id)
    }

    /// A new unique number (monotonic, never reused across restarts).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.backend.next_id()
    }

    /// Applies `batch` atomically, then makes it durable; returns only then.
    /// The ids given to the enqueued outbox items, in order.
    pub async fn commit(&self, batch: Batch) -> Result<Vec<u64>, StoreError> {
        self.backend.commit(batch).await
    }

    /// Checks the hash chain of the message log (its last `tail` entries, or
    /// all of them) against the head the store records, and that every outbox
    /// item decodes. Returns the number of log entries checked, or the first problem.
    pub fn verify(&self, tail: Option<usize>) -> Result<usize, StoreError> {
        let (checked, problems) = self.chain_problems(tail)?;
        match problems.into_iter().next() {
            None => Ok(checked),
            Some(problem) => Err(problem),
        }
    }

    /// [`Store::verify`], with every problem of the chain rather than the
    /// first (an audit must not let one break hide another).
    pub fn chain_problems(&self, tail: Option<usize>) -> Result<(usize, Vec<StoreError>), StoreError> {
        let corrupt = |key: String, reason: String| StoreError::Corrupt { key, reason };
        let entries: Vec<LogEntry> = match tail {
            None => self.log_entries().collect::<Result<_, _>>()?,
            Some(count) => self.backend.log_tail(count)?,
        };
        let mut problems = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let key = format!("log/{}", entry.sequence);
            if entry.hash != entry.compute_hash() {
                problems.push(corrupt(key.clone(), "its hash does not match its content".to_owned()));
            }
            let follows = match index.checked_sub(1).map(|previous| &entries[previous]) {
                Some(previous) => entry.sequence == previous.sequence + 1 && entry.previous_hash == previous.hash,
                // Checking all of it: the first entry starts the chain.
                None if tail.is_none() => entry.sequence == 1 && entry.previous_hash == vec![0; 32],
                None => true,
            };
            if !follows {
                problems.push(corrupt(key, "it does not follow the entry before it in the chain".to_owned()));
            }
        }
        match (self.backend.log_head()?, entries.last()) {
            (None, None) => {}
            (Some((sequence, hash)), Some(last)) if sequence == last.sequence && hash == last.hash => {}
            (head, last) => {
                problems.push(corrupt(
                    "meta/log_head".to_owned(),
                    format!(
                        "the recorded head (entry {}) is not the last entry of the log (entry {}): the log lost entries or the head is damaged",
                        head.map_or(0, |(sequence, _)| sequence),
                        last.map_or(0, |l| l.sequence)
                    ),
                ));
            }
        }
        self.outbox()?;
        Ok((entries.len(), problems))
    }
}

/// The file that could not be made durable, and why (shared by every batch of the group).
type FlushFailure = (String, Arc<std::io::Error>);

/// The embedded backend: one sled database in one directory.
#[derive(Clone)]
pub struct SledBackend {
    /// Tells stores apart in the committer (one flush per store per group).
    id: u64,
    db: sled::Db,
    records: sled::Tree,
    log: sled::Tree,
    outbox: sled::Tree,
    seen: sled::Tree,
    meta: sled::Tree,
    /// `log-head` beside sled's files.
    marker: Arc<std::path::PathBuf>,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend").finish_non_exhaustive()
    }
}

const LOG_HEAD: &[u8] = b"log_head";

/// The value of an index entry: the key is the information.
const INDEX_ENTRY: &[u8] = b"";

impl SledBackend {
    /// Opens (or creates) the store in `path`, with sled's page cache bounded to `cache_bytes`.
    ///
    /// The head of the message log is also kept beside sled, in `log-head`,
    /// written after every flush: a store that comes back with fewer entries
    /// than were acknowledged (a truncated or damaged file that sled recovered
    /// by dropping its tail) is refused, never served.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledBackend, StoreError> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        // sled 0.34 panics on some damaged files rather than returning an error:
        // catch it (quietly: the error says what happened) and refuse the store.
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
        std::panic::set_hook(quiet);
        let db = opened.map_err(|panic| StoreError::Corrupt {
            key: path.display().to_string(),
            reason: format!(
                "sled could not recover it: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(panic.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
            ),
        })??;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let store = SledBackend {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            records: db.open_tree("records")?,
            log: db.open_tree("log")?,
            outbox: db.open_tree("outbox")?,
            seen: db.open_tree("seen")?,
            meta: db.open_tree("meta")?,
            marker: Arc::new(path.join("log-head")),
            db,
        };
        store.check_marker()?;
        Ok(store)
    }

    fn head(&self) -> Result<(u64, Vec<u8>), StoreError> {
        Ok(match self.meta.get(LOG_HEAD)? {
            Some(bytes) if bytes.len() == 40 => (u64_from(&bytes[..8]), bytes[8..].to_vec()),
            _ => (0, vec![0; 32]),
        })
    }

    /// The log head written beside sled must not be ahead of sled's.
    fn check_marker(&self) -> Result<(), StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { key: self.marker.display().to_string(), reason };
        let marker = match std::fs::read(&*self.marker) {
            Ok(marker) => marker,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // Written when the store is created, before anything is acknowledged:
                // once a store holds data, the marker is the only guard against a tail
                // that sled dropped, so it may not go missing.
                let (sequence, _) = self.head()?;
                if sequence > 0 || !self.records.is_empty() {
                    return Err(corrupt(format!(
                        "the file is missing, though the store holds data (its log ends at entry {sequence}): \
                         entries sled dropped could not be told from none"
                    )));
                }
                return self.make_durable().map_err(|(path, source)| StoreError::Flush { path, source });
            }
            Err(error) => {
                return Err(StoreError::Flush { path: self.marker.display().to_string(), source: Arc::new(error) });
            }
        };
        if marker.len() != 40 {
            return Err(corrupt(format!("{} bytes, not 40", marker.len())));
        }
        let acknowledged = u64_from(&marker[..8]);
        let (sequence, hash) = self.head()?;
        if acknowledged > sequence {
            return Err(corrupt(format!(
                "the store lost acknowledged messages: the log ended at entry {acknowledged} and now ends at entry {sequence}"
            )));
        }
        if acknowledged == sequence && marker[8..] != hash[..] {
            return Err(corrupt(format!("log entry {sequence} is not the one acknowledged")));
        }
        Ok(())
    }

    /// Flushes sled, then records the log head beside it; on failure, the
    /// file that could not be made durable and why.
    fn make_durable(&self) -> Result<(), FlushFailure> {
        use std::io::Write as _;
        let failed = |path: &Path, error: std::io::Error| (path.display().to_string(), Arc::new(error));
        let sled_dir = self.marker.parent().unwrap_or(&self.marker);
        self.db.flush().map_err(|e| failed(sled_dir, e.into()))?;
        let (sequence, hash) = self.head().map_err(|e| failed(sled_dir, std::io::Error::other(e)))?;
        let mut bytes = sequence.to_be_bytes().to_vec();
        bytes.extend_from_slice(&hash);
        let io = |e: std::io::Error| failed(&self.marker, e);
        let mut file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&*self.marker).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_data().map_err(io)
    }

    fn log_entry(key: &[u8], bytes: &[u8]) -> Result<LogEntry, StoreError> {
        decode(&format!("log/{}", u64_from(key)), bytes)
    }

    /// Writes `batch` in one sled transaction, without flushing.
    fn apply(&self, batch: Batch) -> Result<Vec<u64>, StoreError> {
        let mut enqueue = batch.enqueue;
        for item in &mut enqueue {
            item.id = self.db.generate_id()?;
        }
        let ids: Vec<u64> = enqueue.iter().map(|item| item.id).collect();
        let result = (&self.records, &self.log, &self.outbox, &self.seen, &self.meta).transaction(
            |(records, log, outbox, seen, meta)| {
                for op in &batch.ops {
                    let (key, expected_version, value) = match op {
                        Op::Put { key, expected_version, value } => (key, expected_version, value),
                        Op::Index { key, present: true } => {
                            records.insert(key.as_bytes(), INDEX_ENTRY)?;
                            continue;
                        }
                        Op::Index { key, present: false } => {
                            records.remove(key.as_bytes())?;
                            continue;
                        }
                    };
                    let found = match records.get(key.as_bytes())? {
                        None => 0,
                        Some(bytes) => version_of(&bytes),
                    };
                    if found != *expected_version {
                        return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                            key: key.clone(),
                            expected: *expected_version,
                            found,
                        }));
                    }
                    records.insert(key.as_bytes(), value.as_slice())?;
                }
                if !batch.log.is_empty() {
                    let mut head = match meta.get(LOG_HEAD)? {
                        None => LogHead { sequence: 0, hash: vec![0; 32] },
                        Some(bytes) => LogHead { sequence: u64_from(&bytes[..8]), hash: bytes[8..].to_vec() },
                    };
                    for (time_ms, direction, envelope, note) in &batch.log {
                        let mut entry = LogEntry {
                            sequence: head.sequence + 1,
                            time_ms: *time_ms,
                            direction: direction.clone(),
                            envelope: envelope.clone(),
                            note: note.clone(),
                            previous_hash: head.hash.clone(),
                            hash: Vec::new(),
                        };
                        entry.hash = entry.compute_hash();
                        let bytes = serde_json::to_vec(&entry).map_err(|e| {
                            ConflictableTransactionError::Abort(StoreError::Encode {
                                key: format!("log/{}", entry.sequence),
                                reason: e.to_string(),
                            })
                        })?;
                        log.insert(&entry.sequence.to_be_bytes(), bytes)?;
                        head = LogHead { sequence: entry.sequence, hash: entry.hash };
                    }
                    let mut head_bytes = head.sequence.to_be_bytes().to_vec();
                    head_bytes.extend_from_slice(&head.hash);
                    meta.insert(LOG_HEAD, head_bytes)?;
                }
                for item in &enqueue {
                    let bytes = serde_json::to_vec(item).map_err(|e| {
                        ConflictableTransactionError::Abort(StoreError::Encode {
                            key: format!("outbox/{}", item.id),
                            reason: e.to_string(),
                        })
                    })?;
                    outbox.insert(&item.id.to_be_bytes(), bytes)?;
                }
                for item in &batch.update {
                    let bytes = serde_json::to_vec(item).map_err(|e| {
                        ConflictableTransactionError::Abort(StoreError::Encode {
                            key: format!("outbox/{}", item.id),
                            reason: e.to_string(),
                        })
                    })?;
                    outbox.insert(&item.id.to_be_bytes(), bytes)?;
                }
                for id in &batch.dequeue {
                    outbox.remove(&id.to_be_bytes())?;
                }
                for (key, remembered) in &batch.remember {
                    let bytes = serde_json::to_vec(remembered).map_err(|e| {
                        ConflictableTransactionError::Abort(StoreError::Encode {
                            key: key.clone(),
                            reason: e.to_string(),
                        })
                    })?;
                    seen.insert(key.as_bytes(), bytes)?;
                }
                Ok(())
            },
        );
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(error)) => return Err(error),
            Err(TransactionError::Storage(error)) => return Err(StoreError::Sled(error)),
        }
        Ok(ids)
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.records.get(key.as_bytes())?.map(|bytes| bytes.to_vec()))
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.records.scan_prefix(prefix.as_bytes()) {
            let (key, bytes) = item?;
            out.push((String::from_utf8_lossy(&key).into_owned(), bytes.to_vec()));
        }
        Ok(out)
    }

    fn remembered(&self, sender_id: &str, message_id: &str) -> Result<Option<Remembered>, StoreError> {
        let key = idempotency_key(sender_id, message_id);
        match self.seen.get(key.as_bytes())? {
            None => Ok(None),
            Some(bytes) => decode(&key, &bytes).map(Some),
        }
    }

    fn log_entries(&self) -> Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_> {
        Box::new(self.log.iter().map(|item| {
            let (key, bytes) = item?;
            SledBackend::log_entry(&key, &bytes)
        }))
    }

    fn log_tail(&self, count: usize) -> Result<Vec<LogEntry>, StoreError> {
        let mut last = Vec::with_capacity(count.min(4096));
        for item in self.log.iter().rev().take(count) {
            let (key, bytes) = item?;
            last.push(SledBackend::log_entry(&key, &bytes)?);
        }
        last.reverse();
        Ok(last)
    }

    fn log_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(match self.meta.get(LOG_HEAD)? {
            None => None,
            Some(bytes) if bytes.len() == 40 => Some((u64_from(&bytes[..8]), bytes[8..].to_vec())),
            Some(bytes) => {
                return Err(StoreError::Corrupt {
                    key: "meta/log_head".to_owned(),
                    reason: format!("{} bytes, not 40", bytes.len()),
                });
            }
        })
    }

    fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let mut out = Vec::new();
        for item in self.outbox.iter() {
            let (key, bytes) = item?;
            let item: OutboxItem = decode(&format!("outbox/{}", u64_from(&key)), &bytes)?;
            if item.next_attempt_ms <= now_ms {
                out.push(item);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn in_outbox(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.outbox.contains_key(id.to_be_bytes())?)
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Hands the batch to the process's one committer thread (the `committer`
    /// module): batches that arrive together share one flush (group commit).
    fn commit(
        &self,
        batch: Batch,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u64>, StoreError>> + Send + '_>> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            committer::submit(committer::Job { store: self.clone(), batch, reply })?;
            answer.await.map_err(|_| StoreError::Stopped)?
        })
    }
}

/// The one thread that writes and flushes every store of the process.
///
/// sled 0.34 shares one lock between all its databases in a process, and a
/// flush holds it while it waits for pending writes; flushes run concurrently
/// from many tasks can starve sled's own I/O threads and deadlock. So all
/// transactions and flushes happen here, one after the other: a group of
/// batches that arrived together is written, then each store touched is
/// flushed once, and only then is anyone answered.
mod committer {
    use std::sync::OnceLock;
    use std::sync::mpsc::{Receiver, Sender, channel};

    use std::sync::Arc;

    use super::{Batch, SledBackend, StoreError};

    pub(super) struct Job {
        pub(super) store: SledBackend,
        pub(super) batch: Batch,
        pub(super) reply: tokio::sync::oneshot::Sender<Result<Vec<u64>, StoreError>>,
    }

    /// The most batches written before one flush.
    const GROUP: usize = 256;

    static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();

    pub(super) fn submit(job: Job) -> Result<(), StoreError> {
        let queue = QUEUE.get_or_init(|| {
            let (sender, receiver) = channel();
            std::thread::Builder::new().name("egov-store-committer".to_owned()).spawn(move || run(receiver)).ok()?;
            Some(sender)
        });
        queue.as_ref().ok_or(StoreError::Stopped)?.send(job).map_err(|_| StoreError::Stopped)
    }

    fn run(receiver: Receiver<Job>) {
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            while group.len() < GROUP {
                match receiver.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            let mut written = Vec::with_capacity(group.len());
            for Job { store, batch, reply } in group {
                let result = store.apply(batch);
                written.push((store, reply, result));
            }
            let mut flushed: Vec<(u64, Result<(), super::FlushFailure>)> = Vec::new();
            for (store, _, result) in &written {
                if result.is_ok() && !flushed.iter().any(|(id, _)| *id == store.id) {
                    flushed.push((store.id, store.make_durable()));
                }
            }
            for (store, reply, result) in written {
                let outcome = match (result, flushed.iter().find(|(id, _)| *id == store.id)) {
                    (Ok(ids), Some((_, Ok(())))) => Ok(ids),
                    (Ok(_), Some((_, Err((path, source))))) => {
                        Err(StoreError::Flush { path: path.clone(), source: Arc::clone(source) })
                    }
                    (Ok(ids), None) => Ok(ids),
                    (Err(error), _) => Err(error),
                };
                // Let go of the store before answering: the caller may close and reopen it at once.
                drop(store);
                let _ = reply.send(outcome);
            }
        }
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}

fn version_of(bytes: &[u8]) -> u64 {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u64,
    }
    serde_json::from_slice::<VersionOnly>(bytes).map(|v| v.version).unwrap_or(u64::MAX)
}

fn u64_from(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    let n = bytes.len().min(8);
    array[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn compare_and_set_refuses_a_stale_version_and_changes_nothing() {
        let (_dir, store) = open();
        let mut batch = Batch::new();
        batch.put("a", 0, &"first").unwrap();
        store.commit(batch).await.unwrap();
        let mut stale = Batch::new();
        stale.put("a", 0, &"second").unwrap();
        stale.log(1, "received", vec![1, 2, 3], "");
        let error = store.commit(stale).await.unwrap_err();
        assert_eq!(error.code(), "store.conflict");
        let record: Versioned<String> = store.get("a").unwrap().unwrap();
        assert_eq!((record.version, record.value.as_str()), (1, "first"));
        assert_eq!(store.log_entries().count(), 0, "an aborted batch logs nothing");
    }

    #[tokio::test]
    async fn log_is_a_hash_chain_that_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 8 << 20).unwrap();
            let mut batch = Batch::new();
            batch.log(10, "received", vec![1], "a");
            batch.log(11, "sent", vec![2], "b");
            store.commit(batch).await.unwrap();
        }
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let mut batch = Batch::new();
        batch.log(12, "received", vec![3], "c");
        store.commit(batch).await.unwrap();
        let entries: Vec<LogEntry> = store.log_entries().collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(entries[0].previous_hash, vec![0; 32]);
        for pair in entries.windows(2) {
            assert_eq!(pair[1].previous_hash, pair[0].hash);
        }
        for entry in &entries {
            assert_eq!(entry.hash, entry.compute_hash());
        }
    }

    #[tokio::test]
    async fn verify_finds_a_changed_entry_and_a_lost_tail() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(SledBackend::open(dir.path(), 8 << 20).unwrap());
        let store = Store::with_backend(backend.clone());
        for n in 0..5u8 {
            let mut batch = Batch::new();
            batch.log(i64::from(n), "received", vec![n], "");
            store.commit(batch).await.unwrap();
        }
        assert_eq!(store.verify(None).unwrap(), 5);
        assert_eq!(store.verify(Some(2)).unwrap(), 2);
        let mut third: LogEntry =
            serde_json::from_slice(&backend.log.get(3u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        third.envelope = vec![99];
        backend.log.insert(3u64.to_be_bytes(), serde_json::to_vec(&third).unwrap()).unwrap();
        let error = store.verify(None).unwrap_err();
        assert!(error.to_string().contains("log/3") && error.to_string().contains("hash"), "{error}");
        assert_eq!(error.code(), "store.corrupt");
        backend.log.remove(3u64.to_be_bytes()).unwrap();
        backend.log.remove(4u64.to_be_bytes()).unwrap();
        backend.log.remove(5u64.to_be_bytes()).unwrap();
        let error = store.verify(Some(10)).unwrap_err();
        assert!(error.to_string().contains("lost entries"), "{error}");
    }

    #[tokio::test]
    async fn outbox_items_come_due_and_leave_when_dequeued() {
        let (_dir, store) = open();
        let mut batch = Batch::new();
        batch.enqueue("gateway", vec![9], 100);
        let ids = store.commit(batch).await.unwrap();
        assert_eq!(store.due(99, 10).unwrap().len(), 0);
        let due = store.due(100, 10).unwrap();
        assert_eq!(due.len(), 1);
        let mut later = due[0].clone();
        later.attempts += 1;
        later.next_attempt_ms = 500;
        let mut batch = Batch::new();
        batch.update_outbox(later);
        store.commit(batch).await.unwrap();
        assert_eq!(store.due(499, 10).unwrap().len(), 0);
        assert_eq!(store.due(500, 10).unwrap()[0].attempts, 1);
        let mut batch = Batch::new();
        batch.dequeue(ids[0]);
        store.commit(batch).await.unwrap();
        assert!(store.outbox().unwrap().is_empty());
    }
}
