//! The admin service of a participant with an outbox: list it, retry an incident.

use std::sync::Arc;

use egov_proto::admin_service_server::{AdminService, AdminServiceServer};
use egov_proto::{
    Envelope, EnvelopeHeader, GetCountersRequest, GetCountersResponse, ListOutboxRequest, ListOutboxResponse,
    OutboxEntry, RetryOutboxRequest, RetryOutboxResponse,
};
use egov_store::{Batch, OutboxItem, Store};
use prost::Message;
use tonic::{Code, Request, Response, Status};

use crate::Refusal;
use crate::counters::Counters;
use crate::outbox::{Outbox, PARKED};

/// Serves `AdminService` over a participant's store and outbox.
#[derive(Debug, Clone)]
pub struct AdminServer {
    store: Store,
    outbox: Arc<Outbox>,
    clock: Arc<dyn crate::Clock>,
    counters: Arc<Counters>,
}

impl AdminServer {
    pub fn new(
        store: Store,
        outbox: Arc<Outbox>,
        clock: Arc<dyn crate::Clock>,
        counters: Arc<Counters>,
    ) -> AdminServer {
        AdminServer { store, outbox, clock, counters }
    }

    pub fn into_service(self) -> AdminServiceServer<AdminServer> {
        AdminServiceServer::new(self)
    }
}

fn entry(item: &OutboxItem) -> OutboxEntry {
    let header = Envelope::decode(item.envelope.as_slice())
        .ok()
        .and_then(|envelope| EnvelopeHeader::decode(envelope.header.as_slice()).ok())
        .unwrap_or_default();
    let incident = item.next_attempt_ms == PARKED;
    OutboxEntry {
        id: item.id,
        target: item.target.clone(),
        correlation_id: header.correlation_id,
        service_id: header.service_id,
        message_id: header.message_id,
        attempts: item.attempts,
        next_attempt_time_ms: if incident { 0 } else { item.next_attempt_ms },
        last_error: item.last_error.clone(),
        enqueued_time_ms: item.enqueued_ms,
        incident,
    }
}

fn store_status(error: egov_store::StoreError) -> Status {
    Refusal::new(Code::Unavailable, error.code(), error).into()
}

#[tonic::async_trait]
impl AdminService for AdminServer {
    async fn list_outbox(&self, request: Request<ListOutboxRequest>) -> Result<Response<ListOutboxResponse>, Status> {
        let incidents_only = request.into_inner().incidents_only;
        let entries = self
            .store
            .outbox()
            .map_err(store_status)?
            .iter()
            .map(entry)
            .filter(|entry| entry.incident || !incidents_only)
            .collect();
        Ok(Response::new(ListOutboxResponse { entries }))
    }

    async fn retry_outbox(
        &self,
        request: Request<RetryOutboxRequest>,
    ) -> Result<Response<RetryOutboxResponse>, Status> {
        let id = request.into_inner().id;
        let mut item =
            self.store.outbox().map_err(store_status)?.into_iter().find(|item| item.id == id).ok_or_else(|| {
                Refusal::new(Code::NotFound, "admin.unknown_outbox_item", format!("no outbox item {id}"))
            })?;
        item.attempts = 0;
        item.next_attempt_ms = self.clock.now_ms();
        let mut batch = Batch::new();
        batch.update_outbox(item.clone());
        self.store.commit(batch).await.map_err(store_status)?;
        self.outbox.kick();
        tracing::warn!(id, target = %item.target, "outbox item retried by hand");
        Ok(Response::new(RetryOutboxResponse { entry: Some(entry(&item)) }))
    }

    async fn get_counters(
        &self,
        _request: Request<GetCountersRequest>,
    ) -> Result<Response<GetCountersResponse>, Status> {
        Ok(Response::new(GetCountersResponse { counters: self.counters.snapshot().into_iter().collect() }))
    }
}
