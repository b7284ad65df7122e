//! The admin service of every participant: its operational monitoring
//! records, its counters, and, for a participant with an outbox, the outbox
//! listed, an incident retried and the message log of one application read.

use std::sync::Arc;

use egov_proto::admin_service_server::{AdminService, AdminServiceServer};
use egov_proto::{
    Envelope, GetCountersRequest, GetCountersResponse, ListOutboxRequest, ListOutboxResponse, LogRecord, OutboxEntry,
    QueryLogRequest, QueryLogResponse, QueryMonitoringRequest, QueryMonitoringResponse, RetryOutboxRequest,
    RetryOutboxResponse,
};
use egov_store::{Batch, OutboxItem, Store};
use prost::Message;
use tonic::{Code, Request, Response, Status};

use crate::Refusal;
use crate::counters::Counters;
use crate::monitor::Monitor;
use crate::outbox::{Outbox, PARKED};

/// Serves `AdminService` over a participant's records, and its store and outbox where it has them.
#[derive(Debug, Clone)]
pub struct AdminServer {
    state: Option<(Store, Arc<Outbox>)>,
    clock: Arc<dyn crate::Clock>,
    counters: Arc<Counters>,
    monitor: Monitor,
}

impl AdminServer {
    /// `state`: the participant's store and outbox; none for the registries.
    pub fn new(
        state: Option<(Store, Arc<Outbox>)>,
        clock: Arc<dyn crate::Clock>,
        counters: Arc<Counters>,
        monitor: Monitor,
    ) -> AdminServer {
        AdminServer { state, clock, counters, monitor }
    }

    fn state(&self) -> Result<(&Store, &Arc<Outbox>), Status> {
        let (store, outbox) = self.state.as_ref().ok_or_else(|| {
            Refusal::new(
                Code::FailedPrecondition,
                "admin.no_outbox",
                "this participant keeps no state and has no outbox",
            )
        })?;
        Ok((store, outbox))
    }

    pub fn into_service(self) -> AdminServiceServer<AdminServer> {
        AdminServiceServer::new(self)
    }
}

fn entry(item: &OutboxItem) -> OutboxEntry {
    let header = egov_envelope::header_of_stored(&item.envelope).unwrap_or_default();
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

/// A store's failure: damage is `DATA_LOSS` (never retried), the rest as [`Refusal`] maps it.
fn store_status(error: egov_store::StoreError) -> Status {
    Refusal::from(error).into()
}

#[tonic::async_trait]
impl AdminService for AdminServer {
    async fn list_outbox(&self, request: Request<ListOutboxRequest>) -> Result<Response<ListOutboxResponse>, Status> {
        let incidents_only = request.into_inner().incidents_only;
        let (store, _) = self.state()?;
        let entries = store
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
        let (store, outbox) = self.state()?;
        let mut item =
            store.outbox().map_err(store_status)?.into_iter().find(|item| item.id == id).ok_or_else(|| {
                Refusal::new(Code::NotFound, "admin.unknown_outbox_item", format!("no outbox item {id}"))
            })?;
        item.attempts = 0;
        item.next_attempt_ms = self.clock.now_ms();
        let mut batch = Batch::new();
        batch.update_outbox(item.clone());
        store.commit(batch).await.map_err(store_status)?;
        outbox.kick();
        tracing::warn!(id, target = %item.target, "outbox item retried by hand");
        Ok(Response::new(RetryOutboxResponse { entry: Some(entry(&item)) }))
    }

    async fn get_counters(
        &self,
        _request: Request<GetCountersRequest>,
    ) -> Result<Response<GetCountersResponse>, Status> {
        Ok(Response::new(GetCountersResponse { counters: self.counters.snapshot().into_iter().collect() }))
    }

    async fn query_monitoring(
        &self,
        request: Request<QueryMonitoringRequest>,
    ) -> Result<Response<QueryMonitoringResponse>, Status> {
        let query = request.into_inner();
        for (what, id) in [("service id", &query.service_id), ("correlation id", &query.correlation_id)] {
            if !id.is_empty() {
                crate::ids::check_id(what, id)?;
            }
        }
        if query.to_time_us != 0 && query.to_time_us < query.from_time_us {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "admin.bad_time_range",
                format!("the range ends ({}) before it starts ({})", query.to_time_us, query.from_time_us),
            )
            .into());
        }
        if !self.monitor.is_on() {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                "admin.monitoring_off",
                "operational monitoring is off here (monitor.keep = 0)",
            )
            .into());
        }
        Ok(Response::new(QueryMonitoringResponse { records: self.monitor.query(&query) }))
    }

    async fn query_log(&self, request: Request<QueryLogRequest>) -> Result<Response<QueryLogResponse>, Status> {
        let query = request.into_inner();
        if query.correlation_id.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "admin.bad_query",
                "give the application's id (correlation_id) whose log entries to read",
            )
            .into());
        }
        crate::ids::check_id("correlation id", &query.correlation_id)?;
        let (store, _) = self.state()?;
        let limit = if query.limit == 0 { 1000 } else { query.limit.min(1000) } as usize;
        // The receive pipeline indexes every entry under its application (`receive::log_keys`).
        let logged =
            store.indexed_log(&format!("application/{}", query.correlation_id), limit).map_err(store_status)?;
        let mut entries = Vec::with_capacity(logged.len());
        for entry in logged {
            let envelope = Envelope::decode(entry.envelope.as_slice()).map_err(|error| {
                Status::from(Refusal::new(
                    Code::DataLoss,
                    "store.corrupt",
                    format!("log entry {} does not decode: {error}", entry.sequence),
                ))
            })?;
            let hash = hex::encode(entry.leaf_hash());
            entries.push(LogRecord {
                sequence: entry.sequence,
                logged_time_ms: entry.time_ms,
                direction: entry.direction,
                note: entry.note,
                envelope: Some(envelope),
                hash,
            });
        }
        Ok(Response::new(QueryLogResponse { entries }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_in_the_store_is_data_loss_never_a_code_to_retry() {
        let status =
            store_status(egov_store::StoreError::Corrupt { key: "log/7".to_owned(), reason: "checksum".to_owned() });
        assert_eq!(status.code(), Code::DataLoss);
        assert!(status.message().starts_with("store.corrupt: "), "{}", status.message());
        assert!(!crate::status::is_retryable(&status));
    }
}
