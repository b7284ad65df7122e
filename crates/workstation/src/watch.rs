//! Following an application: `WatchApplication` streams its state now and
//! after each change, until it ends or the caller goes away, so that clients
//! wait on the workstation instead of polling it.

use std::sync::Arc;
use std::time::Duration;

use egov_proto::WatchApplicationResponse;
use egov_runtime::Refusal;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::Workstation;

/// How long a watch waits for a change before it reads the record again
/// anyway (what the outbox changes, the gateway's receipt, is not announced).
const RECHECK: Duration = Duration::from_millis(250);

/// The stream a watcher reads.
pub(crate) type Watch = ReceiverStream<Result<WatchApplicationResponse, Status>>;

/// The applications being watched, each with the signal its watchers wait on.
#[derive(Debug, Default)]
pub(crate) struct Watched(std::sync::Mutex<std::collections::HashMap<String, watch::Sender<()>>>);

impl Watched {
    fn subscribe(&self, application_id: &str) -> watch::Receiver<()> {
        let mut watched = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        watched.entry(application_id.to_owned()).or_insert_with(|| watch::channel(()).0).subscribe()
    }

    fn notify(&self, application_id: &str) {
        let watched = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(signal) = watched.get(application_id) {
            signal.send_replace(());
        }
    }

    /// Forgets an application nobody watches any more.
    fn release(&self, application_id: &str) {
        let mut watched = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if watched.get(application_id).is_some_and(|signal| signal.receiver_count() == 0) {
            watched.remove(application_id);
        }
    }
}

impl Workstation {
    /// Tells the watchers of `application_id` (if any) that it changed.
    pub(crate) fn changed(&self, application_id: &str) {
        self.watched.notify(application_id);
    }

    /// The application's state now, then after each change, until it ends.
    pub(crate) fn watch(self: &Arc<Self>, application_id: String) -> Result<Watch, Refusal> {
        let mut signal = self.watched.subscribe(&application_id);
        let first = match self.load(&application_id) {
            Ok(first) => first,
            Err(refusal) => {
                drop(signal);
                self.watched.release(&application_id);
                return Err(refusal);
            }
        };
        let (sender, receiver) = mpsc::channel(16);
        let workstation = Arc::clone(self);
        tokio::spawn(async move {
            workstation.follow(&application_id, first, &mut signal, &sender).await;
            drop(signal);
            workstation.watched.release(&application_id);
        });
        Ok(ReceiverStream::new(receiver))
    }

    /// Sends `first`, then each new version, until the application ends or the watcher leaves.
    async fn follow(
        &self,
        application_id: &str,
        first: egov_store::Versioned<crate::record::ApplicationRecord>,
        signal: &mut watch::Receiver<()>,
        sender: &mpsc::Sender<Result<WatchApplicationResponse, Status>>,
    ) {
        let mut version = first.version;
        let mut application = self.to_application(&first.value);
        loop {
            let ended = !application.outcome.is_empty();
            if sender.send(Ok(WatchApplicationResponse { application: Some(application) })).await.is_err() || ended {
                return;
            }
            let next = loop {
                tokio::select! {
                    () = sender.closed() => return,
                    // A change, or a recheck: read it again.
                    _ = tokio::time::timeout(RECHECK, signal.changed()) => {}
                }
                match self.load(application_id) {
                    Ok(stored) if stored.version != version => break stored,
                    Ok(_) => continue,
                    Err(refusal) => {
                        let _ = sender.send(Err(refusal.into())).await;
                        return;
                    }
                }
            };
            version = next.version;
            application = self.to_application(&next.value);
        }
    }
}
