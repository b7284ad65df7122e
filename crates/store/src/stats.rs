//! What the process's stores have written since it started, for the bench
//! and the metrics: commits by durability, groups, `fdatasync`s and bytes.

use std::sync::atomic::{AtomicU64, Ordering};

static FLUSHED: AtomicU64 = AtomicU64::new(0);
static UNFLUSHED: AtomicU64 = AtomicU64::new(0);
static GROUPS: AtomicU64 = AtomicU64::new(0);
static SYNCS: AtomicU64 = AtomicU64::new(0);
static LOG_BYTES: AtomicU64 = AtomicU64::new(0);

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
    }
}

pub(crate) fn committed(flushed: bool) {
    if flushed { &FLUSHED } else { &UNFLUSHED }.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn group() {
    GROUPS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn synced() {
    SYNCS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn appended(bytes: usize) {
    LOG_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}
