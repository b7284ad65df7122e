//! What the process's stores have written since it started, for the bench
//! and the metrics: commits by durability, groups, `fdatasync`s and bytes,
//! the round trips to PostgreSQL, and the histograms of the groups' sizes and of the flushes' latency.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Commits per group the committer wrote (1 to 256).
static GROUP_SIZES: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(exponential_buckets(1.0, 2.0, 9)));
/// Seconds one `fdatasync` of a segment took (50 µs to 1.6 s).
static FLUSH_SECONDS: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(exponential_buckets(0.00005, 2.0, 16)));

/// The histogram of the groups' sizes, in commits (the metrics register it).
pub fn group_sizes() -> Histogram {
    GROUP_SIZES.clone()
}

/// The histogram of the flushes' latency, in seconds (the metrics register it).
pub fn flush_seconds() -> Histogram {
    FLUSH_SECONDS.clone()
}

pub(crate) fn flushed_in(elapsed: std::time::Duration) {
    FLUSH_SECONDS.observe(elapsed.as_secs_f64());
}

static FLUSHED: AtomicU64 = AtomicU64::new(0);
static UNFLUSHED: AtomicU64 = AtomicU64::new(0);
static GROUPS: AtomicU64 = AtomicU64::new(0);
static SYNCS: AtomicU64 = AtomicU64::new(0);
static LOG_BYTES: AtomicU64 = AtomicU64::new(0);
static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);
static COMMIT_ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);
static POSTGRES_COMMITS: AtomicU64 = AtomicU64::new(0);

/// Counts since the process started (every store of the process together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Commits whose caller waited for the disk.
    pub flushed_commits: u64,
    /// Commits whose caller did not (they became durable with a later group).
    pub unflushed_commits: u64,
    /// Groups the committer wrote.
    pub groups: u64,
    /// `fdatasync` calls on the log's segments.
    pub syncs: u64,
    /// Bytes appended to the logs' segments.
    pub log_bytes: u64,
    /// Round trips to PostgreSQL: each time a connection waited for the answers of what it sent
    /// (a pipeline of statements is one), for reads and commits alike.
    pub postgres_round_trips: u64,
    /// Those of them made for a commit: its pipeline, and the preparation of statements and the
    /// reservation of outbox ids it needed first (`docs/storage.md`).
    pub postgres_commit_round_trips: u64,
    /// Commits acknowledged by PostgreSQL (also counted in `flushed_commits` or `unflushed_commits`).
    pub postgres_commits: u64,
}

impl Stats {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            flushed_commits: self.flushed_commits - earlier.flushed_commits,
            unflushed_commits: self.unflushed_commits - earlier.unflushed_commits,
            groups: self.groups - earlier.groups,
            syncs: self.syncs - earlier.syncs,
            log_bytes: self.log_bytes - earlier.log_bytes,
            postgres_round_trips: self.postgres_round_trips - earlier.postgres_round_trips,
            postgres_commit_round_trips: self.postgres_commit_round_trips - earlier.postgres_commit_round_trips,
            postgres_commits: self.postgres_commits - earlier.postgres_commits,
        }
    }
}

pub fn stats() -> Stats {
    Stats {
        flushed_commits: FLUSHED.load(Ordering::Relaxed),
        unflushed_commits: UNFLUSHED.load(Ordering::Relaxed),
        groups: GROUPS.load(Ordering::Relaxed),
        syncs: SYNCS.load(Ordering::Relaxed),
        log_bytes: LOG_BYTES.load(Ordering::Relaxed),
        postgres_round_trips: ROUND_TRIPS.load(Ordering::Relaxed),
        postgres_commit_round_trips: COMMIT_ROUND_TRIPS.load(Ordering::Relaxed),
        postgres_commits: POSTGRES_COMMITS.load(Ordering::Relaxed),
    }
}

pub(crate) fn committed(flushed: bool) {
    if flushed { &FLUSHED } else { &UNFLUSHED }.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn group(commits: usize) {
    GROUPS.fetch_add(1, Ordering::Relaxed);
    GROUP_SIZES.observe(commits as f64);
}

pub(crate) fn synced() {
    SYNCS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn appended(bytes: usize) {
    LOG_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// A wait for PostgreSQL's answers; `commit`: made for a commit.
pub(crate) fn round_trip(commit: bool) {
    ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    if commit {
        COMMIT_ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    }
}

/// A commit PostgreSQL acknowledged.
pub(crate) fn postgres_committed() {
    POSTGRES_COMMITS.fetch_add(1, Ordering::Relaxed);
}
