//! Durable state: versioned records (compare-and-set), the message log as
//! a hash chain, the idempotency index and the outbox. Every write goes
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

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
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

pub(crate) use batch::idempotency_key;
pub use batch::{Answer, Batch, EntryRef};
pub use postgres_backend::PostgresBackend;
pub use postgres_connect::{PostgresSettings, redact};
pub use sled_backend::{ReadOnly, SledBackend};

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
    pub previous_hash: Vec<u8>,
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
/// with a version to compare and set, the hash-chained message log, the
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
    /// The head the store records: the last entry's sequence and hash.
    fn log_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Outbox items due at `now_ms`, oldest first, at most `limit`, leaving out
    /// (before their envelopes are read) those `skip` names.
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

    /// The head the store records: the last entry's sequence and hash.
    pub fn log_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.backend.log_head()
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

    /// The log entries indexed under `key` ([`Batch::log_indexed`]), oldest first, at most `limit`.
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
        let mut problems = Vec::new();
        // The head first, then the entries up to it: on a database that replicas write
        // while this one checks, what they append after the head was read is left for later.
        // Where the store has one writer, an entry past the head is damage, reported below.
        let head = self.backend.log_head()?;
        let up_to = head.as_ref().map_or(0, |(sequence, _)| *sequence);
        let shared = self.backend.shared();
        // The entries one at a time (the whole log may not fit in memory): each is checked
        // against the one before it.
        let entries: Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_> = match tail {
            None => self.log_entries(),
            Some(count) => Box::new(self.backend.log_tail(count)?.into_iter().map(Ok)),
        };
        let mut previous: Option<(u64, Vec<u8>)> = None;
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
            if shared && entry.sequence > up_to {
                // Its head row is always there: no head read means none appended yet (sequence 0).
                continue;
            }
            checked += 1;
            let key = format!("log/{}", entry.sequence);
            if entry.hash != entry.compute_hash() {
                problems.push(corrupt(key.clone(), "its hash does not match its content".to_owned()));
            }
            let follows = match &previous {
                Some((sequence, hash)) => entry.sequence == sequence + 1 && entry.previous_hash == *hash,
                // Checking all of it: the first entry starts the chain.
                None if tail.is_none() => entry.sequence == 1 && entry.previous_hash == vec![0; 32],
                None => true,
            };
            if !follows {
                problems.push(corrupt(key, "it does not follow the entry before it in the chain".to_owned()));
            }
            previous = Some((entry.sequence, entry.hash));
        }
        match (head, previous) {
            (None, None) => {}
            (Some((sequence, hash)), Some(last)) if sequence == last.0 && hash == last.1 => {}
            (head, last) => {
                problems.push(corrupt(
                    "meta/log_head".to_owned(),
                    format!(
                        "the recorded head (entry {}) is not the last entry of the log (entry {}): the log lost entries or the head is damaged",
                        head.map_or(0, |(sequence, _)| sequence),
                        last.map_or(0, |l| l.0)
                    ),
                ));
            }
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
        log_is_a_hash_chain_that_survives_reopening,
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

    async fn log_is_a_hash_chain_that_survives_reopening(place: &dyn Place) {
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
        assert_eq!(entries[0].previous_hash, vec![0; 32]);
        for pair in entries.windows(2) {
            assert_eq!(pair[1].previous_hash, pair[0].hash);
        }
        for entry in &entries {
            assert_eq!(entry.hash, entry.compute_hash());
        }
        assert_eq!(store.verify(None).unwrap(), 3);
        assert_eq!(store.verify(Some(2)).unwrap(), 2);
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
            said.contains("format 1") && said.contains("reads format 2") && said.contains("empty directory"),
            "{said}"
        );
        assert!(!dir.path().join("log").exists(), "a refused store is left as it was");
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
        let problems = store.chain_problems(None).unwrap().1;
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
