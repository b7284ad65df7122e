//! The one thread that writes every store of the process.
//!
//! A group of batches that arrived together is written: for each store
//! touched, each batch becomes one frame appended to the log's current
//! segment. Then each store whose group holds a flushed commit makes its
//! segment durable with one `fdatasync` (the stores' syncs run at the same
//! time), the writes are applied to sled, and only then is anyone answered.
//! A group of unflushed commits only is synced after its callers are
//! answered. sled itself is never flushed here: the segments are the store's
//! write-ahead log, and sled is replayed from them on open.
//!
//! One thread, because sled 0.34 shares one lock between all its databases
//! in a process: writes from many tasks at once starve its own I/O threads.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::sled_backend::{Group, SledBackend};
use crate::{Batch, Durability, StoreError, stats};

pub(crate) struct Job {
    pub(crate) store: SledBackend,
    pub(crate) batch: Batch,
    pub(crate) durability: Durability,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<Vec<u64>, StoreError>>,
}

/// The most batches written before one sync.
const GROUP: usize = 512;

static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();

pub(crate) fn submit(job: Job) -> Result<(), StoreError> {
    let queue = QUEUE.get_or_init(|| {
        let (sender, receiver) = channel();
        std::thread::Builder::new().name("egov-store-committer".to_owned()).spawn(move || run(receiver)).ok()?;
        Some(sender)
    });
    queue.as_ref().ok_or(StoreError::Stopped)?.send(job).map_err(|_| StoreError::Stopped)
}

type Reply = tokio::sync::oneshot::Sender<Result<Vec<u64>, StoreError>>;

/// One store's batches of a group, with their callers.
type StoreJobs = (SledBackend, Vec<(Batch, Durability)>, Vec<Reply>);

fn run(receiver: Receiver<Job>) {
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        stats::group(jobs.len());
        // By store, in the order they came.
        let mut by_store: Vec<StoreJobs> = Vec::new();
        for Job { store, batch, durability, reply } in jobs {
            match by_store.iter_mut().find(|(s, _, _)| s.same(&store)) {
                Some((_, batches, replies)) => {
                    batches.push((batch, durability));
                    replies.push(reply);
                }
                None => by_store.push((store, vec![(batch, durability)], vec![reply])),
            }
        }
        let mut written: Vec<(SledBackend, Group, Vec<Reply>)> = by_store
            .into_iter()
            .map(|(store, batches, replies)| {
                let group = store.write(batches);
                (store, group, replies)
            })
            .collect();
        let syncing = written.iter().filter(|(_, group, _)| group.needs_sync()).count();
        if syncing > 1 {
            std::thread::scope(|scope| {
                for (store, group, _) in written.iter_mut().filter(|(_, group, _)| group.needs_sync()) {
                    scope.spawn(move || store.sync(group));
                }
            });
        } else {
            for (store, group, _) in written.iter_mut() {
                store.sync(group);
            }
        }
        let mut later = Vec::new();
        for (store, group, replies) in written {
            if let Some(file) = group.sync_later().and_then(|segment| store.segment_file(segment)) {
                later.push(file);
            }
            let outcomes = store.finish(group);
            // Let go of the store before answering: the caller may close and reopen it at once.
            drop(store);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        for file in later {
            stats::synced();
            if let Err(error) = file.sync_data() {
                tracing::warn!(%error, "unflushed commits could not be synced; the next flushed commit syncs them");
            }
        }
    }
}
