//! Live pages: a page that shows what changes elsewhere (an application, a
//! list, the staff's queue, the incidents) opens one server-sent event
//! stream, `/live?page=PATH`, and the console tells it when what the page
//! shows has changed; the page's script then fetches the page once and
//! swaps its live regions (`data-live`). No loop runs in the page.
//!
//! What feeds the stream: for an application known to the workstation, its
//! `WatchApplication` stream (an event for each change); for the rest (an
//! application received at the provider's office, a registration, the
//! staff's queue, the lists, the incidents) the console reads what the page
//! shows at most every [`EVERY`] and tells the page when it differs.

use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query;
use axum::response::sse::{Event, KeepAlive, Sse};
use egov_proto::WatchApplicationRequest;
use egov_proto::admin_service_client::AdminServiceClient;
use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_runtime::ids;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};

use crate::{App, Ctx};

/// How often the console reads what a page shows that no stream feeds.
const EVERY: Duration = Duration::from_millis(700);

#[derive(serde::Deserialize, Default)]
pub struct Live {
    #[serde(default)]
    page: String,
}

/// What a page shows that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watched {
    /// An application's page (the operator's or the testers'): its id.
    Application(String),
    /// A registration's page at the ARM.
    Registration(String),
    /// The staff's queue.
    Queue,
    /// The lists of applications (and the SLA report).
    Applications,
    /// The incidents.
    Incidents,
}

pub(crate) fn watched(page: &str) -> Option<Watched> {
    let id =
        |prefix: &str| page.strip_prefix(prefix).filter(|id| !id.is_empty() && !id.contains('/')).map(str::to_owned);
    if let Some(id) = id("/operator/applications/").or_else(|| id("/applications/")) {
        return Some(Watched::Application(id));
    }
    if let Some(id) = id("/staff/registrations/") {
        return Some(Watched::Registration(id));
    }
    match page {
        "/staff" => Some(Watched::Queue),
        "/applications" | "/operator" | "/sla" => Some(Watched::Applications),
        "/incidents" => Some(Watched::Incidents),
        _ => None,
    }
}

/// The event stream of `page`: an event `changed` each time what it shows has changed.
pub async fn events(ctx: Ctx, Query(live): Query<Live>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (changed, told) = mpsc::channel::<()>(1);
    if let Some(watched) = watched(&live.page) {
        tokio::spawn(watch(Arc::clone(&ctx.app), watched, changed));
    }
    let stream = ReceiverStream::new(told).map(|()| Ok(Event::default().event("changed").data("changed")));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn watch(app: Arc<App>, watched: Watched, changed: mpsc::Sender<()>) {
    // The page was drawn before the stream opened: what changed in between is told first.
    let tell = |changed: &mpsc::Sender<()>| changed.try_send(()).is_ok() || !changed.is_closed();
    if let Watched::Application(id) = &watched
        && let Ok(channel) = app.channel(&app.config.topology.workstation, ids::SC_WORKSTATION)
    {
        let mut workstation =
            WorkstationServiceClient::new(channel).max_decoding_message_size(egov_client::MAX_MESSAGE_BYTES);
        let request = WatchApplicationRequest { application_id: id.clone() };
        if let Ok(stream) = workstation.watch_application(request).await {
            let mut stream = stream.into_inner();
            loop {
                tokio::select! {
                    () = changed.closed() => return,
                    next = stream.message() => match next {
                        // The first answer is the state now, each next one a change.
                        Ok(Some(_)) => {
                            if !tell(&changed) {
                                return;
                            }
                        }
                        // Ended, or the workstation went away: the page has what it shows.
                        Ok(None) | Err(_) => return,
                    },
                }
            }
        }
    }
    // No stream to follow: read what the page shows, and tell it when it differs.
    let mut last = None;
    loop {
        let now = fingerprint(&app, &watched).await;
        if now != last && !tell(&changed) {
            return;
        }
        last = now;
        tokio::select! {
            () = changed.closed() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// A hash of what the page of `watched` shows; none where it cannot be read.
async fn fingerprint(app: &App, watched: &Watched) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    match watched {
        Watched::Application(id) => {
            let staff = crate::applications::staff_client(app).ok()?;
            staff.registration_of(id).await.ok()?.encode_to_vec().hash(&mut hasher);
        }
        Watched::Registration(id) => {
            let staff = crate::applications::staff_client(app).ok()?;
            staff.registration(id).await.ok()?.encode_to_vec().hash(&mut hasher);
        }
        Watched::Queue => {
            let staff = crate::applications::staff_client(app).ok()?;
            for registration in staff.queue("").await.ok()? {
                registration.encode_to_vec().hash(&mut hasher);
            }
        }
        Watched::Applications => {
            // The first page of the whole list: what the list's page shows unless paged on.
            let every = egov_proto::ApplicationListQuery::default();
            for application in crate::applications::first_page(app, &every).await.ok()? {
                application.encode_to_vec().hash(&mut hasher);
            }
        }
        Watched::Incidents => {
            for (_, address, member) in crate::incidents::participants(app) {
                let Ok(channel) = app.channel(address, member) else { continue };
                let request = egov_proto::ListOutboxRequest { incidents_only: false };
                if let Ok(answer) = AdminServiceClient::new(channel).list_outbox(request).await {
                    for entry in answer.into_inner().entries {
                        (entry.id, entry.attempts, entry.incident, entry.last_error).hash(&mut hasher);
                    }
                }
            }
        }
    }
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_that_changes_is_watched() {
        assert_eq!(watched("/operator/applications/a-1"), Some(Watched::Application("a-1".to_owned())));
        assert_eq!(watched("/applications/a-1"), Some(Watched::Application("a-1".to_owned())));
        assert_eq!(watched("/staff/registrations/RSHEP-1"), Some(Watched::Registration("RSHEP-1".to_owned())));
        assert_eq!(watched("/staff"), Some(Watched::Queue));
        assert_eq!(watched("/applications"), Some(Watched::Applications));
        assert_eq!(watched("/incidents"), Some(Watched::Incidents));
        for still in ["/", "/regulation", "/operator/new", "/applications/a-1/x", "/applications/"] {
            assert_eq!(watched(still), None, "{still}");
        }
    }
}
