//! Following an application: `WatchApplication` streams its state now and
//! after each change, until it ends or the caller goes away, so that clients
//! wait on the workstation instead of polling it.

use std::sync::Arc;
use std::time::Duration;

use egov_proto::WatchApplicationResponse;
use egov_runtime::Refusal;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::Workstation;

/// How long a watch waits for a change before it reads the record again
/// anyway (what the outbox changes, the gateway's receipt, is not announced).
const RECHECK: Duration = Duration::from_millis(250);

/// The stream a watcher reads.
pub(crate) type Watch = ReceiverStream<Result<WatchApplicationResponse, Status>>;

impl Workstation {
    /// Tells the watchers of `application_id` that it changed.
    pub(crate) fn changed(&self, application_id: &str) {
        // No watcher is not an error.
        let _ = self.changes.send(application_id.to_owned());
    }

    /// The application's state now, then after each change, until it ends.
    pub(crate) fn watch(self: &Arc<Self>, application_id: String) -> Result<Watch, Refusal> {
        let mut changes = self.changes.subscribe();
        let first = self.load(&application_id)?;
        let (sender, receiver) = mpsc::channel(16);
        let workstation = Arc::clone(self);
        tokio::spawn(async move {
            let mut version = first.version;
            let mut application = workstation.to_application(&first.value);
            loop {
                let ended = !application.outcome.is_empty();
                let answer = WatchApplicationResponse { application: Some(application) };
                if sender.send(Ok(answer)).await.is_err() || ended {
                    return;
                }
                // The next change of this application (or a recheck), or the caller leaving.
                let next = loop {
                    tokio::select! {
                        () = sender.closed() => return,
                        change = tokio::time::timeout(RECHECK, changes.recv()) => match change {
                            Ok(Ok(id)) if id != application_id => continue,
                            Ok(Err(broadcast::error::RecvError::Closed)) => return,
                            // This one, a lagging receiver, or a recheck: read it again.
                            _ => {}
                        },
                    }
                    match workstation.load(&application_id) {
                        Ok(stored) if stored.version != version => break stored,
                        Ok(_) => continue,
                        Err(refusal) => {
                            let _ = sender.send(Err(refusal.into())).await;
                            return;
                        }
                    }
                };
                version = next.version;
                application = workstation.to_application(&next.value);
            }
        });
        Ok(ReceiverStream::new(receiver))
    }
}
