//! Durable state: versioned records (compare-and-set), the message log as
//! an RFC 9162 Merkle tree with signed checkpoints, the idempotency index and the outbox. Every write goes
//! through [`Store::commit`], which applies a [`Batch`] atomically and returns
//! only once it is on disk.
//!
//! The embedded backend ([`SledBackend`]) keeps the log in append-only
//! segment files and everything else in sled, written in format 2
//! ([`codec`]; `docs/storage.md`). [`PostgresBackend`] keeps it in a
//! PostgreSQL database that several replicas of a participant share
//! (`docs/scale-out.md`).
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use egov_tlog::{Checkpoint, Hash, NodeId, NodeReader, NoteSigner, VerifierKey};
use serde::de::DeserializeOwned;
use thiserror::Error;

mod batch;
pub mod codec;
mod committer;
mod postgres_backend;
mod postgres_connect;
pub mod postgres_server;
mod segments;
mod sled_backend;
pub mod stats;
mod witness;

pub(crate) use batch::idempotency_key;
pub use batch::{Answer, Batch, EntryRef};
pub use postgres_backend::PostgresBackend;
pub use postgres_connect::{PostgresSettings, redact};
pub use sled_backend::{ReadOnly, SledBackend};
pub use witness::{COSIGNED_PREFIX, Cosigned, WITNESSED_LATEST_PREFIX, WitnessRefusal};

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
    #[error("{path} is in store format {found}, and this build reads format {}: {what_to_do}", codec::FORMAT)]
    Format { path: String, found: String, what_to_do: String },
    /// A database schema migrated by a newer build than this one (`docs/scale-out.md`, rolling upgrades).
    #[error(
        "schema {schema} is at version {found}, and this build knows versions up to {known}: a newer build \
         migrated it. Run that build (or a newer one) on it, or give this build another schema or database; \
         nothing was changed"
    )]
    Schema { schema: String, found: i64, known: i64 },
    /// A schema older than this build's, opened by a tool that migrates nothing.
    #[error(
        "schema {schema} is at version {found}, and this build reads version {known}: migrate it first with \
         `egov store migrate` (this command changes no schema)"
    )]
    Unmigrated { schema: String, found: i64, known: i64 },
    /// A database address that cannot be used as it is written (not a transient failure:
    /// nothing waits for it to pass). It never shows the password.
    #[error("bad database address {reason}")]
    Address { reason: String },
    #[error("the store's committer has stopped")]
    Stopped,
    #[error("the database is unavailable: {reason}")]
    Unavailable { reason: String },
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
            StoreError::Format { .. } | StoreError::Schema { .. } | StoreError::Unmigrated { .. } => "store.format",
            StoreError::Stopped => "store.stopped",
            StoreError::Unavailable { .. } | StoreError::Address { .. } => "store.unavailable",
            StoreError::Flush { .. } => "store.io",
        }
    }
}

/// A stored record with its version (1 for the first write).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// One entry of the message log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub sequence: u64,
    pub time_ms: i64,
    /// "received", "sent", "delivered" or "refused".
    pub direction: String,
    /// The envelope as carried (a serialised `egov.v1.Envelope`).
    pub envelope: Vec<u8>,
    /// Free text: a refusal's reason code, a delivery target.
    pub note: String,
}

impl LogEntry {
    /// The bytes of the entry's leaf in its participant's Merkle tree, at leaf index `sequence - 1`:
    /// the time (8 bytes, big-endian, signed), the direction, the envelope and the note, each preceded by
    /// its length as 8 bytes big-endian (`docs/storage.md`). The sequence is not in them: the leaf's index
    /// is the entry's position, bound by the tree; so a commit can hash its entries before it is given
    /// their sequence numbers (PostgreSQL sequences at the end of the commit).
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.envelope.len() + self.note.len() + self.direction.len() + 40);
        for field in [&self.time_ms.to_be_bytes()[..], self.direction.as_bytes(), &self.envelope, self.note.as_bytes()]
        {
            bytes.extend_from_slice(&(field.len() as u64).to_be_bytes());
            bytes.extend_from_slice(field);
        }
        bytes
    }

    /// The entry's RFC 9162 leaf hash: `SHA-256(0x00 || leaf bytes)`.
    pub fn leaf_hash(&self) -> egov_tlog::Hash {
        egov_tlog::leaf_hash(&self.leaf_bytes())
    }
}

/// Where checkpoints are kept: `tlog/checkpoint/SIZE` (20 digits), the signed note's text.
pub const CHECKPOINT_PREFIX: &str = "tlog/checkpoint/";
/// The size of the latest checkpoint published.
const LATEST_CHECKPOINT: &str = "tlog/latest";

/// A backend's stored nodes, as the tlog crate reads them.
struct Nodes<'a>(&'a dyn Backend);

impl NodeReader for Nodes<'_> {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, egov_tlog::StoreError> {
        self.0.tlog_nodes(ids).map_err(Into::into)
    }
}

/// Where a witness keeps the checkpoints it cosigned: `tlog/witnessed/ORIGIN/SIZE` (the cosigned note).
pub const WITNESSED_PREFIX: &str = "tlog/witnessed/";
/// Where a witness keeps the evidence of a split view it refused to cosign: `tlog/split/ORIGIN/SIZE-ROOT`
/// (ROOT: the first 8 bytes of the refused checkpoint's root, hex; the two notes, the one it cosigned before and the one it was shown, as a JSON array).
pub const SPLIT_PREFIX: &str = "tlog/split/";

/// What [`Store::witness`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witnessed {
    /// Nothing new to cosign (no checkpoint, or the one cosigned last).
    Nothing,
    /// The log's checkpoint of this size was consistent with the last one cosigned, and is cosigned.
    Cosigned(u64),
}

/// The checkpoint `note` opened with the first of `keys` (a log's keys over time) that signed it.
pub fn open_with_any(note: &str, keys: &[VerifierKey]) -> Result<egov_tlog::VerifiedCheckpoint, String> {
    let mut last = String::from("no key to check its signature with");
    for key in keys {
        match egov_tlog::open_checkpoint(note.as_bytes(), key.name(), key, &[]) {
            Ok(opened) => return Ok(opened),
            Err(error) => last = format!("its signature does not verify with {}: {error}", key.name()),
        }
    }
    Err(last)
}

fn tlog_error(error: egov_tlog::StoreError) -> StoreError {
    StoreError::Corrupt { key: "tlog".to_owned(), reason: error.to_string() }
}

/// A message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: u64,
    /// Who it goes to (a member id).
    pub target: String,
    /// The envelope (a serialised `egov.v1.Envelope`).
    pub envelope: Vec<u8>,
    /// The log entry that holds the envelope, which the item then does not
    /// store again (0: the item holds it).
    pub entry: u64,
    /// Messages of one slot replace each other while they wait (empty: none).
    pub slot: String,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: String,
    pub enqueued_ms: i64,
}

/// What a receiver remembers of a message it processed, to answer a resend
/// with the same answer and to refuse the same id with other bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub digest: Vec<u8>,
    pub response: Vec<u8>,
}

/// How long a commit's caller waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Until the batch is on disk (`fdatasync`): what is acknowledged to anyone.
    Flushed,
    /// Until the batch is applied, not until it is on disk: it becomes durable
    /// with the next flushed commit of the same store, or is lost with a crash
    /// before it. Only for writes whose loss costs one more idempotent resend.
    Unflushed,
}

/// A future a backend's commit returns.
pub type CommitFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u64>, StoreError>> + Send + 'a>>;

/// What a participant needs of its storage, whatever holds it: records
/// with a version to compare and set, the message log and its Merkle tree, the
/// idempotency index, the outbox, and an atomic, durable commit of a batch of
/// all of them. [`SledBackend`] is the embedded one; [`PostgresBackend`]
/// is a database that several replicas of a participant share.
pub trait Backend: Send + Sync + 'static {
    /// The stored bytes of a record (format 2: header, then the value; see [`codec`]).
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// At most `limit` keys that start with `prefix`, whole, in key order
    /// (`descending`: the reverse), after `from` (a whole key; empty: from the
    /// first, or the last when descending), without their values: a range read
    /// that costs what it returns ([`Store::index_page`]).
    fn keys_after(&self, prefix: &str, from: &str, limit: usize, descending: bool) -> Result<Vec<String>, StoreError>;
    fn remembered(&self, sender_id: &str, message_id: &str) -> Result<Option<Remembered>, StoreError>;
    /// The message log, oldest first.
    fn log_entries(&self) -> Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_>;
    /// One entry of the log.
    fn log_entry(&self, sequence: u64) -> Result<Option<LogEntry>, StoreError>;
    /// The entries indexed under `key`, oldest first, at most `limit`.
    fn indexed_log(&self, key: &str, limit: usize) -> Result<Vec<LogEntry>, StoreError>;
    /// The last `count` entries of the log, oldest first.
    fn log_tail(&self, count: usize) -> Result<Vec<LogEntry>, StoreError>;
    /// The last entry's sequence (0: the log is empty).
    fn log_head(&self) -> Result<u64, StoreError>;
    /// How many entries the Merkle tree holds (integrated): the first entries of the log.
    fn tlog_size(&self) -> Result<u64, StoreError>;
    /// Stored nodes of the Merkle tree, in the order of `ids` (one round trip on a database).
    fn tlog_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;
    /// Folds the entries committed since the last time into the Merkle tree, where the backend
    /// integrates apart from its commits (PostgreSQL); the tree's size then.
    fn integrate(&self) -> Result<u64, StoreError> {
        self.tlog_size()
    }
    /// Outbox items due at `now_ms`, oldest first, at most `limit`, leaving out
    /// (before their envelopes are read) those `skip` names. By id: on PostgreSQL each
    /// connection reserves its ids in blocks, so oldest first among one connection's items.
    fn due(&self, now_ms: i64, limit: usize, skip: &dyn Fn(u64) -> bool) -> Result<Vec<OutboxItem>, StoreError>;
    /// Each outbox item's id and when it is next due (its `next_attempt_ms`), without its envelope.
    fn schedule(&self) -> Result<Vec<(u64, i64)>, StoreError>;
    fn in_outbox(&self, id: u64) -> Result<bool, StoreError>;
    /// A new unique number (monotonic, never reused across restarts).
    fn next_id(&self) -> Result<u64, StoreError>;
    /// Applies `batch` atomically; returns when it is as durable as asked,
    /// with the ids given to the enqueued outbox items.
    fn commit(&self, batch: Batch, durability: Durability) -> CommitFuture<'_>;
    /// Whether other processes write the same state (replicas on one database):
    /// the log may then grow while it is read.
    fn shared(&self) -> bool {
        false
    }
    /// Checks the index the backend keeps against its log (at most `shown`
    /// differences described); `None` where the backend keeps no index apart
    /// from the log (PostgreSQL holds both in one transaction).
    fn check_index(&self, _shown: usize) -> Result<Option<Vec<String>>, StoreError> {
        Ok(None)
    }
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
    /// The embedded store in `path` (see [`SledBackend::open`]).
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Arc::new(SledBackend::open(path, cache_bytes)?)))
    }

    /// Schema `schema` of the PostgreSQL database at `url` (see [`PostgresBackend::open`]).
    pub fn open_postgres(url: &str, schema: &str) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Arc::new(PostgresBackend::open(url, schema)?)))
    }

    /// Schema `schema` of the PostgreSQL database at `url`, used with `settings` (see [`PostgresBackend::open_with`]).
    pub fn open_postgres_with(url: &str, schema: &str, settings: &PostgresSettings) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Arc::new(PostgresBackend::open_with(url, schema, settings)?)))
    }

    /// The embedded store in `path`, read only: no byte of it changes (see
    /// [`SledBackend::open_read_only`]). The store, and what its witnesses say.
    pub fn open_read_only(path: &Path) -> Result<(Store, ReadOnly), StoreError> {
        let checked = SledBackend::open_read_only(path)?;
        Ok((Store::with_backend(Arc::new(checked.backend.clone())), checked))
    }

    /// Rebuilds the embedded store's index in `path` from its log (see
    /// [`SledBackend::rebuild_index`]); the head's sequence.
    pub fn rebuild_index(path: &Path, cache_bytes: u64) -> Result<u64, StoreError> {
        SledBackend::rebuild_index(path, cache_bytes)
    }

    /// The last entry's sequence (0: the log is empty).
    pub fn log_head(&self) -> Result<u64, StoreError> {
        self.backend.log_head()
    }

    /// How many entries the Merkle tree holds (integrated).
    pub fn tree_size(&self) -> Result<u64, StoreError> {
        self.backend.tlog_size()
    }

    /// [`Backend::integrate`]: the tree's size after it.
    pub fn integrate(&self) -> Result<u64, StoreError> {
        self.backend.integrate()
    }

    /// The Merkle tree's root at `size` (at most [`Store::tree_size`]), from the stored nodes.
    pub fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        egov_tlog::root_at(size, &Nodes(&*self.backend)).map_err(tlog_error)
    }

    /// The inclusion proof of log entry `sequence` (leaf `sequence - 1`) in the tree of `size` entries.
    pub fn inclusion_proof(&self, sequence: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        let index = sequence.checked_sub(1).ok_or_else(|| tlog_error("there is no entry 0".into()))?;
        egov_tlog::inclusion_proof(index, size, &Nodes(&*self.backend)).map_err(|e| tlog_error(e.into()))
    }

    /// The consistency proof from the tree of `from` entries to that of `to` entries.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
        egov_tlog::consistency_proof(from, to, &Nodes(&*self.backend)).map_err(|e| tlog_error(e.into()))
    }

    /// The checkpoints published ([`Store::publish_checkpoint`]), smallest first: size and note.
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let stored: Vec<(String, Versioned<String>)> = self.scan(CHECKPOINT_PREFIX)?;
        Ok(stored
            .into_iter()
            .map(|(key, note)| (key[CHECKPOINT_PREFIX.len()..].parse().unwrap_or(0), note.value))
            .collect())
    }

    /// This store's participant as a witness of `log`, a store of the same process: the log's latest
    /// checkpoint (one of `log_keys`, the log's keys, all of one origin), shown with the consistency proof
    /// from the last one this witness cosigned, through the same check as a call of `WitnessService`
    /// ([`Store::add_checkpoint`]), cosigned with `cosigner` at `timestamp` (seconds). A checkpoint that is
    /// not consistent with the last one (a split view, a smaller tree, a failed proof) is not cosigned: both
    /// notes are kept as evidence under [`SPLIT_PREFIX`] and the witness answers `store.corrupt`.
    pub async fn witness(
        &self,
        log: &Store,
        log_keys: &[VerifierKey],
        cosigner: &NoteSigner,
        timestamp: u64,
    ) -> Result<Witnessed, StoreError> {
        let Some((size, note)) = log.latest_checkpoint()? else { return Ok(Witnessed::Nothing) };
        let origin = open_with_any(&note, log_keys).map_err(|e| tlog_error(e.into()))?.checkpoint().origin.clone();
        let known = self.witnessed_size(&origin)?;
        let proof = if known > 0 && known < size { log.consistency_proof(known, size)? } else { Vec::new() };
        match self.add_checkpoint(known, &proof, note.as_bytes(), log_keys, cosigner, timestamp).await {
            Ok(cosigned) if cosigned.new => Ok(Witnessed::Cosigned(size)),
            Ok(_) => Ok(Witnessed::Nothing),
            Err(WitnessRefusal::Store(error)) => Err(error),
            Err(refusal) => Err(StoreError::Corrupt {
                key: format!("{SPLIT_PREFIX}{origin}/{size}"),
                reason: format!("the log {origin} shows a checkpoint this witness will not cosign: {refusal}"),
            }),
        }
    }

    /// The latest checkpoint published: size and note (read by key, not by listing them all).
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let Some(latest) = self.get::<u64>(LATEST_CHECKPOINT)? else { return Ok(None) };
        let key = format!("{CHECKPOINT_PREFIX}{:020}", latest.value);
        let note: Versioned<String> = self.get(&key)?.ok_or_else(|| StoreError::Corrupt {
            key: LATEST_CHECKPOINT.to_owned(),
            reason: format!("it names checkpoint {}, which is not there", latest.value),
        })?;
        Ok(Some((latest.value, note.value)))
    }

    /// Integrates what is committed, then signs a checkpoint of the tree (origin: the signer's name)
    /// and stores it under `tlog/checkpoint/SIZE`, unless the latest one has the same size or the
    /// tree is empty. The checkpoint published, if one was.
    pub async fn publish_checkpoint(&self, signer: &NoteSigner) -> Result<Option<Checkpoint>, StoreError> {
        let size = self.integrate()?;
        let latest: Option<Versioned<u64>> = self.get(LATEST_CHECKPOINT)?;
        if size == 0 || latest.as_ref().is_some_and(|latest| latest.value >= size) {
            return Ok(None);
        }
        let checkpoint = Checkpoint::new(signer.name(), size, self.root_at(size)?);
        let note = checkpoint.sign(signer).map_err(|e| tlog_error(e.to_string().into()))?.to_string();
        let mut batch = Batch::new();
        batch.put(format!("{CHECKPOINT_PREFIX}{size:020}"), 0, &note)?;
        batch.put(LATEST_CHECKPOINT, latest.map_or(0, |latest| latest.version), &size)?;
        match self.commit(batch).await {
            Ok(_) => Ok(Some(checkpoint)),
            // Another replica published meanwhile.
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// [`Backend::check_index`].
    pub fn check_index(&self, shown: usize) -> Result<Option<Vec<String>>, StoreError> {
        self.backend.check_index(shown)
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

    /// Every key under `prefix`, in key order, each with whether it is an index
    /// entry ([`Batch::index`], no value) rather than a record.
    pub fn keys(&self, prefix: &str) -> Result<Vec<(String, bool)>, StoreError> {
        Ok(self.backend.scan(prefix)?.into_iter().map(|(key, value)| (key, value.is_empty())).collect())
    }

    /// The index entries under `prefix`: the rest of each key after it, in key order.
    pub fn index_entries(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.backend.scan(prefix)?.into_iter().map(|(key, _)| key[prefix.len()..].to_owned()).collect())
    }

    /// One page of the index entries under `prefix`: at most `limit` of them,
    /// in key order (`descending`: the reverse), after the entry `after` (the
    /// rest of a key after `prefix`, as this returns it; empty: from the first,
    /// or from the last when descending). A bounded range read on both
    /// backends, whatever the number of entries under the prefix: a list reads
    /// a page of its index and continues from the page's last entry.
    pub fn index_page(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
        descending: bool,
    ) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = if after.is_empty() { String::new() } else { format!("{prefix}{after}") };
        Ok(self
            .backend
            .keys_after(prefix, &from, limit, descending)?
            .into_iter()
            .map(|key| key[prefix.len()..].to_owned())
            .collect())
    }

    /// What was remembered for `(sender, message_id)`.
    pub fn remembered(&self, sender_id: &str, message_id: &str) -> Result<Option<Remembered>, StoreError> {
        self.backend.remembered(sender_id, message_id)
    }

    /// The message log, oldest first.
    pub fn log_entries(&self) -> Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_> {
        self.backend.log_entries()
    }

    /// The log entries indexed under `key` ([`Batch::log`]), oldest first, at most `limit`.
    pub fn indexed_log(&self, key: &str, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.backend.indexed_log(key, limit)
    }

    /// One entry of the log, by its sequence number.
    pub fn log_entry(&self, sequence: u64) -> Result<Option<LogEntry>, StoreError> {
        self.backend.log_entry(sequence)
    }

    /// Outbox items due at `now_ms`, oldest first, at most `limit`.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.backend.due(now_ms, limit, &|_| false)
    }

    /// [`Store::due`], leaving out the items `skip` names (those on their way
    /// already) before their envelopes are read.
    pub fn due_except(
        &self,
        now_ms: i64,
        limit: usize,
        skip: &dyn Fn(u64) -> bool,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.backend.due(now_ms, limit, skip)
    }

    /// The whole outbox.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.backend.due(i64::MAX, usize::MAX, &|_| false)
    }

    /// Each item's id and when it is next due, without reading the envelopes.
    pub fn schedule(&self) -> Result<Vec<(u64, i64)>, StoreError> {
        self.backend.schedule()
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
        self.backend.commit(batch, Durability::Flushed).await
    }

    /// Returns once every commit made before it is durable (the unflushed ones
    /// included): a shutdown's last word to the store. Writes nothing.
    pub async fn settle(&self) -> Result<(), StoreError> {
        self.commit(Batch::new()).await.map(|_| ())
    }

    /// Applies `batch` atomically and returns without waiting for the disk
    /// (see [`Durability::Unflushed`]): for a write whose loss in a crash only
    /// means one more idempotent resend (an outbox's bookkeeping, a login).
    pub async fn commit_unflushed(&self, batch: Batch) -> Result<Vec<u64>, StoreError> {
        self.backend.commit(batch, Durability::Unflushed).await
    }

    /// Checks the message log (its last `tail` entries, or all of them)
    /// against its Merkle tree and the head the store records, and that every
    /// outbox item decodes. Returns the number of log entries checked, or the first problem.
    pub fn verify(&self, tail: Option<usize>) -> Result<usize, StoreError> {
        let (checked, problems) = self.log_problems(tail, &[])?;
        match problems.into_iter().next() {
            None => Ok(checked),
            Some(problem) => Err(problem),
        }
    }

    /// [`Store::verify`], with every problem rather than the first (an audit
    /// must not let one break hide another). Each entry follows the one
    /// before it by sequence, and its leaf hash is the tree's stored leaf;
    /// checking all of it, the tree is built again from the entries and its
    /// root compared with the stored tree's and with every checkpoint's, and
    /// (with `log_key`) each checkpoint's signature is checked.
    pub fn log_problems(
        &self,
        tail: Option<usize>,
        log_keys: &[VerifierKey],
    ) -> Result<(usize, Vec<StoreError>), StoreError> {
        let corrupt = |key: String, reason: String| StoreError::Corrupt { key, reason };
        let mut problems = Vec::new();
        // The head first, then the entries up to it: on a database that replicas write
        // while this one checks, what they append after the head was read is left for later.
        // Where the store has one writer, an entry past the head is damage, reported below.
        // What is committed is integrated first (PostgreSQL): an entry changed since its commit is refused there.
        let size = match self.backend.integrate() {
            Ok(size) => size,
            Err(problem @ StoreError::Corrupt { .. }) => {
                problems.push(problem);
                self.backend.tlog_size()?
            }
            Err(error) => return Err(error),
        };
        let head = self.backend.log_head()?;
        let shared = self.backend.shared();
        if size > head {
            problems.push(corrupt(
                "tlog/size".to_owned(),
                format!("the Merkle tree holds {size} entries, and the log's head is entry {head}"),
            ));
        }
        let mut checkpoints = Vec::new();
        if tail.is_none() {
            for (at, note) in self.checkpoints()? {
                let key = format!("{CHECKPOINT_PREFIX}{at}");
                let parsed = match log_keys {
                    [] => egov_tlog::SignedNote::parse(note.as_bytes())
                        .map_err(|error| error.to_string())
                        .and_then(|note| Checkpoint::parse(note.text()).map_err(|error| error.to_string())),
                    keys => open_with_any(&note, keys).map(|opened| opened.checkpoint().clone()),
                };
                match parsed {
                    Ok(checkpoint) if checkpoint.size == at => checkpoints.push(checkpoint),
                    Ok(checkpoint) => problems.push(corrupt(key, format!("it says size {}", checkpoint.size))),
                    Err(reason) => problems.push(corrupt(key, reason)),
                }
            }
        }
        checkpoints.sort_by_key(|checkpoint| checkpoint.size);
        let mut checkpoints = checkpoints.into_iter().peekable();
        let entries: Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_> = match tail {
            None => self.log_entries(),
            Some(count) => Box::new(self.backend.log_tail(count)?.into_iter().map(Ok)),
        };
        // The tree built again from the entries (checking all of them), and the leaves to compare.
        let mut rebuilt = egov_tlog::Tree::new();
        let mut rebuilt_root_at_size = (size == 0).then_some(egov_tlog::EMPTY_ROOT);
        let mut leaves: Vec<(u64, Hash)> = Vec::new();
        let compare = |leaves: &mut Vec<(u64, Hash)>, problems: &mut Vec<StoreError>| -> Result<(), StoreError> {
            let ids: Vec<NodeId> = leaves.iter().map(|(sequence, _)| NodeId::leaf(sequence - 1)).collect();
            let stored = self.backend.tlog_nodes(&ids)?;
            for ((sequence, leaf), stored) in leaves.drain(..).zip(stored) {
                if leaf != stored {
                    problems.push(corrupt(
                        format!("log/{sequence}"),
                        "its content does not match its leaf hash in the Merkle tree: it changed after it was \
                         integrated"
                            .to_owned(),
                    ));
                }
            }
            Ok(())
        };
        let mut previous: Option<u64> = None;
        let mut checked = 0usize;
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                // A damaged frame: reported, and the entries it still holds are checked.
                Err(problem @ StoreError::Corrupt { .. }) => {
                    problems.push(problem);
                    continue;
                }
                Err(error) => return Err(error),
            };
            if shared && entry.sequence > head {
                continue;
            }
            checked += 1;
            let key = format!("log/{}", entry.sequence);
            let follows = match previous {
                Some(sequence) => entry.sequence == sequence + 1,
                // Checking all of it: the first entry is entry 1.
                None if tail.is_none() => entry.sequence == 1,
                None => true,
            };
            if !follows {
                problems.push(corrupt(
                    key,
                    format!(
                        "it does not follow the entry before it (entry {}): the log lost or reordered entries",
                        previous.unwrap_or(0)
                    ),
                ));
            }
            let leaf = entry.leaf_hash();
            if tail.is_none() {
                rebuilt.append(leaf);
                if rebuilt.size() == size {
                    rebuilt_root_at_size = Some(rebuilt.root());
                }
                while let Some(checkpoint) = checkpoints.next_if(|c| c.size <= rebuilt.size()) {
                    if checkpoint.size == rebuilt.size() && checkpoint.root != rebuilt.root() {
                        problems.push(corrupt(
                            format!("{CHECKPOINT_PREFIX}{}", checkpoint.size),
                            "its root is not the root of the log's first entries: the log or the checkpoint \
                             changed"
                                .to_owned(),
                        ));
                    }
                }
            }
            if (1..=size).contains(&entry.sequence) {
                leaves.push((entry.sequence, leaf));
                if leaves.len() >= 1024 {
                    compare(&mut leaves, &mut problems)?;
                }
            }
            previous = Some(entry.sequence);
        }
        compare(&mut leaves, &mut problems)?;
        for checkpoint in checkpoints {
            problems.push(corrupt(
                format!("{CHECKPOINT_PREFIX}{}", checkpoint.size),
                format!("it covers {} entries, and the log holds {}", checkpoint.size, previous.unwrap_or(0)),
            ));
        }
        if tail.is_none() {
            let stored = self.root_at(size);
            match (stored, rebuilt_root_at_size) {
                (Ok(stored), Some(rebuilt)) if stored == rebuilt => {}
                (stored, _) => problems.push(corrupt(
                    "tlog".to_owned(),
                    format!(
                        "the stored Merkle tree's root at size {size} is not the root of the log's first {size} \
                         entries{}",
                        stored.err().map(|e| format!(" ({e})")).unwrap_or_default()
                    ),
                )),
            }
        }
        if previous.unwrap_or(0) != head {
            problems.push(corrupt(
                "meta/log_head".to_owned(),
                format!(
                    "the recorded head (entry {head}) is not the last entry of the log (entry {}): the log lost \
                     entries or the head is damaged",
                    previous.unwrap_or(0)
                ),
            ));
        }
        self.outbox()?;
        Ok((checked, problems))
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<Versioned<T>, StoreError> {
    let (version, value) = codec::decode_record(key, bytes)?;
    Ok(Versioned { version, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a test's store lives, on either backend: opening it again finds what was committed.
    trait Place {
        fn open(&self) -> Store;
    }

    struct SledPlace(tempfile::TempDir);

    impl Place for SledPlace {
        fn open(&self) -> Store {
            Store::open(self.0.path(), 8 << 20).unwrap()
        }
    }

    struct PostgresPlace {
        /// Stopped and removed with the place.
        _server: postgres_server::PostgresServer,
        url: String,
    }

    impl Place for PostgresPlace {
        fn open(&self) -> Store {
            Store::open_postgres(&self.url, "participant").unwrap()
        }
    }

    fn sled_place() -> SledPlace {
        SledPlace(tempfile::tempdir().unwrap())
    }

    /// A throwaway server; without PostgreSQL's programs the test fails, saying how to install them.
    fn postgres_place() -> PostgresPlace {
        let server = postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
        let url = server.database("store_test").unwrap();
        PostgresPlace { _server: server, url }
    }

    /// A test of what every backend guarantees, run on sled and on PostgreSQL.
    macro_rules! on_both_backends {
        ($($test:ident),* $(,)?) => {$(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sled() {
                    super::$test(&super::sled_place()).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$test(&super::postgres_place()).await
                }
            }
        )*};
    }

    on_both_backends!(
        compare_and_set_refuses_a_stale_version_and_changes_nothing,
        log_is_sequenced_and_integrated_into_a_merkle_tree_that_survives_reopening,
        outbox_items_come_due_and_leave_when_dequeued,
        a_later_message_of_a_slot_replaces_one_still_waiting_and_survives_the_earlier_ones_delivery,
        envelopes_answers_and_records_come_back_whole,
        index_entries_are_listed_by_prefix_in_key_order,
        index_pages_are_bounded_range_reads_either_way,
    );

    async fn compare_and_set_refuses_a_stale_version_and_changes_nothing(place: &dyn Place) {
        let store = place.open();
        let mut batch = Batch::new();
        batch.put("a", 0, &"first").unwrap();
        store.commit(batch).await.unwrap();
        let mut stale = Batch::new();
        stale.put("a", 0, &"second").unwrap();
        stale.log(1, "received", vec![1, 2, 3], "", Vec::new());
        let error = store.commit(stale).await.unwrap_err();
        assert_eq!(error.code(), "store.conflict");
        let record: Versioned<String> = store.get("a").unwrap().unwrap();
        assert_eq!((record.version, record.value.as_str()), (1, "first"));
        assert_eq!(store.log_entries().count(), 0, "an aborted batch logs nothing");
        let mut next = Batch::new();
        next.put("a", 1, &"second").unwrap();
        store.commit(next).await.unwrap();
        let record: Versioned<String> = store.get("a").unwrap().unwrap();
        assert_eq!((record.version, record.value.as_str()), (2, "second"));
    }

    async fn log_is_sequenced_and_integrated_into_a_merkle_tree_that_survives_reopening(place: &dyn Place) {
        {
            let store = place.open();
            let mut batch = Batch::new();
            batch.log(10, "received", vec![1], "a", Vec::new());
            batch.log(11, "sent", vec![2], "b", Vec::new());
            store.commit(batch).await.unwrap();
        }
        let store = place.open();
        let mut batch = Batch::new();
        batch.log(12, "received", vec![3], "c", Vec::new());
        store.commit(batch).await.unwrap();
        let entries: Vec<LogEntry> = store.log_entries().collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(store.verify(None).unwrap(), 3);
        assert_eq!(store.verify(Some(2)).unwrap(), 2);
        // The tree holds the three entries' leaves, in order (leaf i = entry i + 1).
        assert_eq!(store.tree_size().unwrap(), 3);
        let leaves: Vec<Hash> = entries.iter().map(LogEntry::leaf_hash).collect();
        let root = store.root_at(3).unwrap();
        assert_eq!(root, egov_tlog::root_from_leaf_hashes(&leaves));
        let proof = store.inclusion_proof(2, 3).unwrap();
        egov_tlog::verify_inclusion(&leaves[1], 1, 3, &proof, &root).unwrap();
        assert!(egov_tlog::verify_inclusion(&leaves[0], 1, 3, &proof, &root).is_err());
        let consistency = store.consistency_proof(2, 3).unwrap();
        egov_tlog::verify_consistency(2, 3, &store.root_at(2).unwrap(), &root, &consistency).unwrap();
        // A checkpoint, signed and stored; one of the same size is not published again.
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let signer = NoteSigner::ed25519("egov/test", key).unwrap();
        let checkpoint = store.publish_checkpoint(&signer).await.unwrap().unwrap();
        assert_eq!((checkpoint.size, checkpoint.root), (3, root));
        assert!(store.publish_checkpoint(&signer).await.unwrap().is_none());
        let (_, note) = store.checkpoints().unwrap().pop().unwrap();
        egov_tlog::open_checkpoint(note.as_bytes(), "egov/test", &signer.verifier(), &[]).unwrap();
        assert_eq!(store.log_problems(None, &[signer.verifier()]).unwrap().1.len(), 0);
        assert_eq!(store.log_entry(2).unwrap().unwrap().note, "b");
    }

    async fn envelopes_answers_and_records_come_back_whole(place: &dyn Place) {
        let envelope: Vec<u8> = (0..200u8).collect();
        let mut answer = vec![1, 2, 3];
        answer.extend_from_slice(&envelope);
        let ids = {
            let store = place.open();
            let mut batch = Batch::new();
            batch.put("a", 0, &"first").unwrap();
            let entry = batch.log(1, "received", envelope.clone(), "", vec!["application/a-1".to_owned()]);
            batch.enqueue("gateway", entry, 1);
            let before = answer[..3].to_vec();
            batch.remember("sender", "m-1", vec![7; 32], Answer::Carrying { before, entry, after: Vec::new() });
            store.commit(batch).await.unwrap()
        };
        // Opened again: everything read back from where it was kept.
        let store = place.open();
        let item = &store.outbox().unwrap()[0];
        assert_eq!((item.id, item.entry, &item.envelope), (ids[0], 1, &envelope), "the item refers to entry 1");
        let remembered = store.remembered("sender", "m-1").unwrap().unwrap();
        assert_eq!((remembered.digest, remembered.response), (vec![7; 32], answer), "byte for byte");
        assert!(store.remembered("sender", "m-2").unwrap().is_none());
        let indexed = store.indexed_log("application/a-1", 10).unwrap();
        assert_eq!(indexed.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![1]);
        assert_eq!(indexed[0].envelope, envelope);
        assert!(store.next_id().unwrap() > 0);
    }

    async fn index_entries_are_listed_by_prefix_in_key_order(place: &dyn Place) {
        let store = place.open();
        let mut batch = Batch::new();
        for key in ["queue/b", "queue/a", "queue/c", "queued", "other/a"] {
            batch.index(key, true);
        }
        batch.put("queue-record", 0, &1u32).unwrap();
        store.commit(batch).await.unwrap();
        let mut batch = Batch::new();
        batch.index("queue/c", false);
        store.commit(batch).await.unwrap();
        assert_eq!(store.index_entries("queue/").unwrap(), vec!["a".to_owned(), "b".to_owned()]);
        let records: Vec<(String, Versioned<u32>)> = store.scan("queue-").unwrap();
        assert_eq!(records.len(), 1);
    }

    async fn index_pages_are_bounded_range_reads_either_way(place: &dyn Place) {
        let store = place.open();
        let mut batch = Batch::new();
        // Zero-padded, so that key order is number order; neighbours that share the prefix's bytes.
        for n in 0..25u32 {
            batch.index(format!("list/by-start/{:016}/app-{n}", 1000 + n), true);
        }
        for key in ["list/by-start", "list/by-starts/x", "list/by-stars/x", "list/a", "lisu/by-start/0"] {
            batch.index(key, true);
        }
        batch.put("list/by-start-record", 0, &1u32).unwrap();
        store.commit(batch).await.unwrap();
        let prefix = "list/by-start/";
        let page =
            |after: &str, limit: usize, descending: bool| store.index_page(prefix, after, limit, descending).unwrap();
        let entry = |n: u32| format!("{:016}/app-{n}", 1000 + n);

        // Forward, ten at a time, each page after the last entry of the one before: all 25, once each.
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let got = page(&after, 10, false);
            assert!(got.len() <= 10);
            let Some(last) = got.last() else { break };
            after = last.clone();
            seen.extend(got);
        }
        assert_eq!(seen, (0..25).map(entry).collect::<Vec<_>>());
        // Backward, from the end, and before an entry.
        assert_eq!(page("", 3, true), vec![entry(24), entry(23), entry(22)]);
        assert_eq!(page(&entry(2), 5, true), vec![entry(1), entry(0)], "stops at the prefix's first entry");
        assert_eq!(page(&entry(22), 2, false), vec![entry(23), entry(24)], "stops at the prefix's last entry");
        assert!(page(&entry(24), 5, false).is_empty());
        assert!(page(&entry(0), 5, true).is_empty());
        // An entry that is gone still marks where the page starts.
        let mut batch = Batch::new();
        batch.index(format!("list/by-start/{}", entry(10)), false);
        store.commit(batch).await.unwrap();
        assert_eq!(page(&entry(10), 2, false), vec![entry(11), entry(12)]);
        assert_eq!(page(&entry(10), 2, true), vec![entry(9), entry(8)]);
        assert_eq!(page("", 0, false), Vec::<String>::new());
        // Opened again, read from where it was kept.
        drop(store);
        let store = place.open();
        assert_eq!(store.index_page(prefix, "", 1, true).unwrap(), vec![entry(24)]);
        assert_eq!(store.index_page("list/", "by-start/", 1, false).unwrap(), vec![format!("by-start/{}", entry(0))]);
    }

    #[tokio::test]
    async fn verify_finds_a_changed_entry_and_a_lost_tail() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(SledBackend::open(dir.path(), 8 << 20).unwrap());
        let store = Store::with_backend(backend.clone());
        for n in 0..5u8 {
            let mut batch = Batch::new();
            batch.log(i64::from(n), "received", vec![n], "", Vec::new());
            store.commit(batch).await.unwrap();
        }
        assert_eq!(store.verify(None).unwrap(), 5);
        assert_eq!(store.verify(Some(2)).unwrap(), 2);
        backend.rewrite_entry(3, |entry| entry.envelope = vec![99]);
        let error = store.verify(None).unwrap_err();
        assert!(error.to_string().contains("log/3") && error.to_string().contains("hash"), "{error}");
        assert_eq!(error.code(), "store.corrupt");
        backend.forget_entries(3..=5);
        let error = store.verify(Some(10)).unwrap_err();
        assert!(error.to_string().contains("lost entries"), "{error}");
    }

    async fn outbox_items_come_due_and_leave_when_dequeued(place: &dyn Place) {
        let store = place.open();
        let mut batch = Batch::new();
        batch.enqueue_unlogged("gateway", vec![9], 100);
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
        assert_eq!(due[0].id, ids[0]);
        let mut batch = Batch::new();
        batch.dequeue(&store.due(500, 10).unwrap()[0]);
        store.commit(batch).await.unwrap();
        assert!(store.outbox().unwrap().is_empty());
    }

    async fn a_later_message_of_a_slot_replaces_one_still_waiting_and_survives_the_earlier_ones_delivery(
        place: &dyn Place,
    ) {
        let store = place.open();
        let send = async |envelope: Vec<u8>| {
            let mut batch = Batch::new();
            let entry = batch.log(1, "sent", envelope, "gateway", Vec::new());
            batch.enqueue_latest("progress/a-1", "gateway", entry, 1);
            store.commit(batch).await.unwrap()[0]
        };
        let first = send(vec![1; 80]).await;
        let taken = store.due(1, 10).unwrap().remove(0);
        // While the first is on its way, a second replaces it: same item, the new envelope.
        let second = send(vec![2; 80]).await;
        assert_eq!(first, second);
        assert_eq!(store.outbox().unwrap().len(), 1);
        assert_eq!(store.outbox().unwrap()[0].envelope, vec![2; 80]);
        // The first's delivery neither removes nor reschedules the second.
        let mut retry = taken.clone();
        retry.next_attempt_ms = 1_000;
        let mut batch = Batch::new();
        batch.update_outbox(retry);
        batch.dequeue(&taken);
        store.commit(batch).await.unwrap();
        let waiting = store.due(1, 10).unwrap();
        assert_eq!(waiting.len(), 1, "the latest is still to send, and due");
        let mut batch = Batch::new();
        batch.dequeue(&waiting[0]);
        store.commit(batch).await.unwrap();
        assert!(store.outbox().unwrap().is_empty());
        // The slot is free again: the next message gets an item of its own.
        let third = send(vec![3; 80]).await;
        assert_ne!(third, first);
    }

    #[tokio::test]
    async fn envelopes_are_stored_once_and_read_back_whole_and_the_index_is_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let envelope: Vec<u8> = (0..200u8).collect();
        let mut answer = vec![1, 2, 3];
        answer.extend_from_slice(&envelope);
        answer.extend_from_slice(&[4, 5]);
        let ids = {
            let store = Store::open(dir.path(), 8 << 20).unwrap();
            let mut batch = Batch::new();
            batch.put("a", 0, &"first").unwrap();
            let entry = batch.log(1, "received", envelope.clone(), "", Vec::new());
            batch.enqueue("gateway", entry, 1);
            let (before, after) = (answer[..3].to_vec(), answer[answer.len() - 2..].to_vec());
            batch.remember("sender", "m-1", vec![7; 32], Answer::Carrying { before, entry, after });
            store.commit(batch).await.unwrap()
        };
        let check = |store: &Store| {
            let item = &store.outbox().unwrap()[0];
            assert_eq!((item.id, item.entry, &item.envelope), (ids[0], 1, &envelope), "the item refers to entry 1");
            let remembered = store.remembered("sender", "m-1").unwrap().unwrap();
            assert_eq!(remembered.response, answer, "the answer comes back byte for byte");
            let record: Versioned<String> = store.get("a").unwrap().unwrap();
            assert_eq!((record.version, record.value.as_str()), (1, "first"));
            assert_eq!(store.verify(None).unwrap(), 1);
        };
        check(&Store::open(dir.path(), 8 << 20).unwrap());
        // The envelope is in the segment once: the item and the answer refer to it.
        let segment = std::fs::read(dir.path().join("log/0000000001.seg")).unwrap();
        let copies = segment.windows(envelope.len()).filter(|w| *w == envelope.as_slice()).count();
        assert_eq!(copies, 1);
        // sled's files gone: the log is applied again from its first frame.
        for item in std::fs::read_dir(dir.path()).unwrap() {
            let path = item.unwrap().path();
            if path.file_name().unwrap() != "log" {
                std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path)).unwrap();
            }
        }
        check(&Store::open(dir.path(), 8 << 20).unwrap());
    }

    #[tokio::test]
    async fn a_frame_cut_short_at_the_end_is_cut_away_and_the_store_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 8 << 20).unwrap();
            let mut batch = Batch::new();
            batch.log(1, "received", vec![1; 64], "", Vec::new());
            store.commit(batch).await.unwrap();
        }
        // A write that never completed: half a frame after the last one.
        let path = dir.path().join("log/0000000001.seg");
        let mut bytes = std::fs::read(&path).unwrap();
        let whole = bytes.len();
        let half = bytes[..whole / 2].to_vec();
        bytes.extend_from_slice(&half);
        std::fs::write(&path, &bytes).unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, whole);
        let mut batch = Batch::new();
        batch.log(2, "received", vec![2; 64], "", Vec::new());
        store.commit(batch).await.unwrap();
        assert_eq!(store.verify(None).unwrap(), 2);
    }

    #[test]
    fn a_store_in_format_1_is_refused_naming_its_format_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What the previous build wrote: sled trees of JSON records.
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("records")
                .unwrap()
                .insert("application/a-1", br#"{"version":1,"value":{}}"#.as_slice())
                .unwrap();
            db.flush().unwrap();
        }
        let error = Store::open(dir.path(), 8 << 20).unwrap_err();
        assert_eq!(error.code(), "store.format");
        let said = error.to_string();
        assert!(
            said.contains("format 1") && said.contains("reads format 3") && said.contains("empty directory"),
            "{said}"
        );
        assert!(!dir.path().join("log").exists(), "a refused store is left as it was");
    }

    #[test]
    fn a_store_in_format_2_with_its_hash_chain_is_refused_naming_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(b"m/format", &[2u8]).unwrap();
            db.flush().unwrap();
        }
        let error = Store::open(dir.path(), 8 << 20).unwrap_err();
        assert_eq!(error.code(), "store.format");
        let said = error.to_string();
        assert!(
            said.contains("format 2") && said.contains("hash-chained") && said.contains("empty directory"),
            "{said}"
        );
    }

    #[tokio::test]
    async fn the_audit_finds_a_reordered_pair_and_a_forged_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(SledBackend::open(dir.path(), 8 << 20).unwrap());
        let store = Store::with_backend(backend.clone());
        let signer = NoteSigner::ed25519("egov/test", ed25519_dalek::SigningKey::from_bytes(&[7; 32])).unwrap();
        for n in 0..4u8 {
            let mut batch = Batch::new();
            batch.log(i64::from(n), "received", vec![n], "", Vec::new());
            store.commit(batch).await.unwrap();
        }
        store.publish_checkpoint(&signer).await.unwrap().unwrap();
        assert!(store.log_problems(None, &[signer.verifier()]).unwrap().1.is_empty());
        // A checkpoint signed by another key, and one whose root is not the log's.
        let forger = NoteSigner::ed25519("egov/test", ed25519_dalek::SigningKey::from_bytes(&[8; 32])).unwrap();
        let forged = Checkpoint::new("egov/test", 2, store.root_at(2).unwrap()).sign(&forger).unwrap().to_string();
        let wrong_root = Checkpoint::new("egov/test", 3, [9; 32]).sign(&signer).unwrap().to_string();
        let mut batch = Batch::new();
        batch.put(format!("{CHECKPOINT_PREFIX}{:020}", 2), 0, &forged).unwrap();
        batch.put(format!("{CHECKPOINT_PREFIX}{:020}", 3), 0, &wrong_root).unwrap();
        store.commit(batch).await.unwrap();
        let problems = store.log_problems(None, &[signer.verifier()]).unwrap().1;
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(said.iter().any(|p| p.contains("checkpoint/2") && p.contains("signature")), "{said:?}");
        assert!(said.iter().any(|p| p.contains("checkpoint/3") && p.contains("root")), "{said:?}");
        // Entries 2 and 3 swapped (each keeps its number): both leaves differ from the tree's.
        let (second, third) = (store.log_entry(2).unwrap().unwrap(), store.log_entry(3).unwrap().unwrap());
        backend.rewrite_entry(2, |entry| (entry.time_ms, entry.envelope) = (third.time_ms, third.envelope.clone()));
        backend.rewrite_entry(3, |entry| (entry.time_ms, entry.envelope) = (second.time_ms, second.envelope.clone()));
        let said: Vec<String> = store.log_problems(None, &[]).unwrap().1.iter().map(ToString::to_string).collect();
        for key in ["log/2", "log/3"] {
            assert!(said.iter().any(|p| p.contains(key) && p.contains("leaf hash")), "{key}: {said:?}");
        }
    }

    #[tokio::test]
    async fn a_witness_cosigns_a_consistent_log_and_keeps_the_evidence_of_a_split_view() {
        let (dir, fork_dir, witness_dir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (log, fork, witness) = (
            Store::open(dir.path(), 8 << 20).unwrap(),
            Store::open(fork_dir.path(), 8 << 20).unwrap(),
            Store::open(witness_dir.path(), 8 << 20).unwrap(),
        );
        let signer = NoteSigner::ed25519("egov/log", ed25519_dalek::SigningKey::from_bytes(&[7; 32])).unwrap();
        let cosigner =
            NoteSigner::cosigner_v1("egov/witness", ed25519_dalek::SigningKey::from_bytes(&[9; 32])).unwrap();
        let append = async |store: &Store, bytes: &[u8]| {
            for byte in bytes {
                let mut batch = Batch::new();
                batch.log(1, "received", vec![*byte], "", Vec::new());
                store.commit(batch).await.unwrap();
            }
            store.publish_checkpoint(&signer).await.unwrap();
        };
        let keys = [signer.verifier()];
        append(&log, &[1, 2]).await;
        assert_eq!(witness.witness(&log, &keys, &cosigner, 100).await.unwrap(), Witnessed::Cosigned(2));
        assert_eq!(witness.witness(&log, &keys, &cosigner, 101).await.unwrap(), Witnessed::Nothing);
        append(&log, &[3, 4, 5]).await;
        assert_eq!(witness.witness(&log, &keys, &cosigner, 102).await.unwrap(), Witnessed::Cosigned(5));
        let (_, cosigned) = witness.scan::<String>(WITNESSED_PREFIX).unwrap().pop().unwrap();
        let opened = egov_tlog::open_checkpoint(
            cosigned.value.as_bytes(),
            "egov/log",
            &signer.verifier(),
            &[cosigner.verifier()],
        )
        .unwrap();
        assert_eq!(opened.cosignatures().len(), 1, "the witness's cosignature verifies");
        // The same key signs another history of the same size: refused, and the two notes kept.
        append(&fork, &[1, 2, 3, 4, 9]).await;
        let error = witness.witness(&fork, &keys, &cosigner, 103).await.unwrap_err();
        assert!(error.to_string().contains("split view"), "{error}");
        let split: Vec<(String, Versioned<Vec<String>>)> = witness.scan(SPLIT_PREFIX).unwrap();
        let notes = &split[0].1.value;
        let opened: Vec<_> = notes
            .iter()
            .map(|note| egov_tlog::open_checkpoint(note.as_bytes(), "egov/log", &signer.verifier(), &[]).unwrap())
            .collect();
        let view = egov_tlog::detect_split_view(&opened[0], &opened[1]).unwrap();
        view.verify(&signer.verifier()).unwrap();
    }

    /// Removes sled's files from the store in `dir` (the index; the log and its marker stay).
    fn remove_index(dir: &Path) {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            if sled_backend::is_sled_file(&path.file_name().unwrap().to_string_lossy()) {
                std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path)).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_damaged_frame_is_never_served_wherever_it_is_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        for n in 1..=3u8 {
            let mut batch = Batch::new();
            batch.put(format!("record-{n}"), 0, &format!("value {n}")).unwrap();
            batch.log(i64::from(n), "received", vec![n; 300], "", Vec::new());
            store.commit(batch).await.unwrap();
        }
        // A byte flipped in the middle of the first frame (not the last one), its CRC left as it was.
        let path = dir.path().join("log/0000000001.seg");
        let mut bytes = std::fs::read(&path).unwrap();
        let first = 8 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        bytes[first / 2] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        // Read through the index (the page cache holds the changed bytes): refused, never served.
        let entry = store.log_entry(1).unwrap_err();
        assert_eq!(entry.code(), "store.corrupt", "{entry}");
        assert!(entry.to_string().contains("does not match its checksum"), "{entry}");
        assert_eq!(store.get::<String>("record-1").unwrap_err().code(), "store.corrupt");
        // The frames after it are whole.
        assert_eq!(store.log_entry(2).unwrap().unwrap().envelope, vec![2; 300]);
        assert_eq!(store.get::<String>("record-3").unwrap().unwrap().value, "value 3");
        // The whole check reads every frame: the index against the log finds it too.
        let problems = store.log_problems(None, &[]).unwrap().1;
        assert!(problems.iter().any(|p| p.to_string().contains("does not match its checksum")), "{problems:?}");
    }

    #[tokio::test]
    async fn a_rebuilt_index_over_a_log_that_lost_its_tail_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first_ids = {
            let store = Store::open(dir.path(), 8 << 20).unwrap();
            let mut ids = Vec::new();
            for n in 1..=3u8 {
                let mut batch = Batch::new();
                let entry = batch.log(i64::from(n), "received", vec![n; 100], "", Vec::new());
                batch.enqueue("gateway", entry, 0);
                ids.extend(store.commit(batch).await.unwrap());
            }
            // An id handed out, then used in a commit (as a registration number is).
            let id = store.next_id().unwrap();
            let mut batch = Batch::new();
            batch.put(format!("registration/{id}"), 0, &id).unwrap();
            store.commit(batch).await.unwrap();
            ids.push(id);
            ids
        };
        // sled's files gone: the index is rebuilt from the log, and ids go on above the highest.
        remove_index(dir.path());
        {
            let store = Store::open(dir.path(), 8 << 20).unwrap();
            assert_eq!(store.outbox().unwrap().len(), 3);
            let next = store.next_id().unwrap();
            assert!(first_ids.iter().all(|id| next > *id), "{next} after {first_ids:?}");
        }
        // The log's last commit cut (one byte), sled's files gone too: nothing in the log itself
        // tells, the `acknowledged` marker does. Refused at open and by the rebuild, changing nothing.
        remove_index(dir.path());
        let path = dir.path().join("log/0000000001.seg");
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 1).unwrap();
        let refused = Store::rebuild_index(dir.path(), 8 << 20).unwrap_err();
        assert!(refused.to_string().contains("lost acknowledged messages"), "{refused}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len - 1, "nothing is cut");
        assert!(!dir.path().join("db").exists(), "no index is made");
        let refused = Store::open(dir.path(), 8 << 20).unwrap_err();
        assert_eq!(refused.code(), "store.corrupt");
        assert!(refused.to_string().contains("lost acknowledged messages"), "{refused}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len - 1, "nothing is cut");
    }
}
