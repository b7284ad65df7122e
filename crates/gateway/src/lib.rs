//! The e-government gateway (SHEP): verifies the sender's signature, checks
//! the sender's right to the service, countersigns, logs durably and routes,
//! synchronously to the registries and asynchronously (through its outbox) to
//! the regional gateway ARM and the State Corporation workstation.
#![forbid(unsafe_code)]

mod routes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long one call to a registry may take before it is retried.
const REGISTRY_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Calls to a registry for one request, the first included.
const REGISTRY_ATTEMPTS: u32 = 4;

use egov_envelope::{Verified, countersign};
use egov_proto::gateway_service_server::{GatewayService, GatewayServiceServer};
use egov_proto::inbox_service_client::InboxServiceClient;
use egov_proto::individuals_service_client::IndividualsServiceClient;
use egov_proto::notary_service_client::NotaryServiceClient;
use egov_proto::{
    CheckPowerOfAttorneyRequest, DeliverRequest, DeliveryStatus, Envelope, EnvelopeHeader, GetMessageStatusRequest,
    GetMessageStatusResponse, GetMessagesRequest, GetMessagesResponse, LoggedMessage, LookupPersonRequest,
    SendAsyncRequest, SendAsyncResponse, SendSyncRequest, SendSyncResponse,
};
use egov_runtime::idempotency::resent;
use egov_runtime::outbox::{Attempt, Courier, Outbox};
use egov_runtime::status::is_retryable;
use egov_runtime::{Context, Refusal, ids};
use egov_store::{Batch, OutboxItem, Store};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

pub use routes::{Channel as RouteChannel, Route, RouteError, Routes};

/// Where the gateway finds each recipient.
#[derive(Debug, Clone)]
pub struct Recipients {
    pub individuals: IndividualsServiceClient<Channel>,
    pub notary: NotaryServiceClient<Channel>,
    /// Inboxes of the asynchronous recipients, by member id.
    pub inboxes: HashMap<String, InboxServiceClient<Channel>>,
}

/// The delivery state of an asynchronous message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeliveryRecord {
    recipient: String,
    status: i32,
    status_time_ms: i64,
    attempts: u32,
    last_error: String,
}

/// The gateway's state, shared by its gRPC service and its delivery worker.
#[derive(Debug)]
struct Gateway {
    context: Context,
    routes: Routes,
    recipients: Recipients,
    store: Store,
}

/// The gateway's gRPC service.
#[derive(Debug, Clone)]
pub struct GatewayServer {
    gateway: Arc<Gateway>,
    outbox: Arc<Outbox>,
}

impl GatewayServer {
    /// The service and its delivery worker, which the caller spawns.
    pub fn new(
        context: Context,
        routes: Routes,
        recipients: Recipients,
        store: Store,
        outbox: Arc<Outbox>,
    ) -> (GatewayServer, impl std::future::Future<Output = ()> + Send + 'static) {
        let gateway = Arc::new(Gateway { context, routes, recipients, store });
        let worker = Arc::clone(&outbox).run(Arc::new(Delivery { gateway: Arc::clone(&gateway) }));
        (GatewayServer { gateway, outbox }, worker)
    }

    pub fn into_service(self) -> GatewayServiceServer<GatewayServer> {
        GatewayServiceServer::new(self).max_decoding_message_size(64 * 1024 * 1024)
    }
}

fn status_key(sender_id: &str, message_id: &str) -> String {
    format!("status/{sender_id}\u{0}{message_id}")
}

impl Gateway {
    /// Verifies the sender and checks its right to the service over `channel`.
    fn admit(&self, envelope: &Envelope, channel: RouteChannel) -> Result<(Verified, &Route), Refusal> {
        let verified = self.context.open(envelope, &self.context.checks)?;
        egov_runtime::server::record_ids(&verified.header.correlation_id, &verified.header.message_id);
        let route = self.routes.authorise(&verified, envelope.body.len(), channel)?;
        Ok((verified, route))
    }

    async fn call_registry(&self, route: &Route, routed: Envelope) -> Result<Envelope, Status> {
        let answer = match route.recipient.as_str() {
            ids::INDIVIDUALS => {
                let mut client = self.recipients.individuals.clone();
                client.lookup_person(LookupPersonRequest { envelope: Some(routed) }).await?.into_inner().envelope
            }
            ids::NOTARY => {
                let mut client = self.recipients.notary.clone();
                client
                    .check_power_of_attorney(CheckPowerOfAttorneyRequest { envelope: Some(routed) })
                    .await?
                    .into_inner()
                    .envelope
            }
            other => {
                return Err(Refusal::new(
                    Code::Unimplemented,
                    "gateway.no_sync_endpoint",
                    format!("no synchronous endpoint is known for {other}"),
                )
                .into());
            }
        };
        answer.ok_or_else(|| {
            Refusal::new(Code::Internal, "gateway.bad_answer", "the recipient answered without an envelope").into()
        })
    }

    /// Calls the registry, retrying what may pass (unavailable, no answer in time) with backoff.
    async fn call_registry_patiently(&self, route: &Route, routed: &Envelope) -> Result<Envelope, Status> {
        let mut attempt = 1;
        loop {
            let status =
                match tokio::time::timeout(REGISTRY_CALL_TIMEOUT, self.call_registry(route, routed.clone())).await {
                    Ok(Ok(answer)) => return Ok(answer),
                    Ok(Err(status)) => status,
                    Err(_) => Status::deadline_exceeded(format!(
                        "{} did not answer within {REGISTRY_CALL_TIMEOUT:?}",
                        route.recipient
                    )),
                };
            if attempt >= REGISTRY_ATTEMPTS || !is_retryable(&status) {
                return Err(status);
            }
            self.context.counters.add("registry_retries", 1);
            tracing::info!(recipient = %route.recipient, attempt, "registry call failed, retrying: {}", status.message());
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            attempt += 1;
        }
    }

    /// Checks a registry's answer: signed by the route's recipient, for the same application, to the asker.
    fn check_answer(&self, request: &EnvelopeHeader, route: &Route, answer: &Envelope) -> Result<(), Refusal> {
        let bad = |message: String| Refusal::new(Code::Internal, "gateway.bad_answer", message);
        let verified = self
            .context
            .open(answer, &self.context.checks)
            .map_err(|e| bad(format!("{}'s answer refused: {e}", route.recipient)))?;
        let header = &verified.header;
        if header.sender_id != route.recipient
            || header.correlation_id != request.correlation_id
            || header.recipient_id != request.sender_id
        {
            return Err(bad(format!(
                "answer from {} for {} to {} does not match the request",
                header.sender_id, header.correlation_id, header.recipient_id
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl GatewayService for GatewayServer {
    async fn send_sync(&self, request: Request<SendSyncRequest>) -> Result<Response<SendSyncResponse>, Status> {
        let gateway = &self.gateway;
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        let (verified, route) = gateway.admit(&envelope, RouteChannel::Sync)?;
        if let Some(answer) = resent::<SendSyncResponse>(&gateway.store, &verified, &envelope)? {
            return Ok(Response::new(answer));
        }
        let mut routed = envelope.clone();
        countersign(&mut routed, &gateway.context.signer).map_err(Refusal::from)?;
        let received_ms = gateway.context.now_ms();
        let mut answer = gateway.call_registry_patiently(route, &routed).await.map_err(|status| {
            if status.code() == Code::Unavailable || status.code() == Code::DeadlineExceeded {
                Refusal::new(
                    status.code(),
                    "gateway.recipient_unavailable",
                    format!("{}: {}", route.recipient, status.message()),
                )
                .into()
            } else {
                status
            }
        })?;
        gateway.check_answer(&verified.header, route, &answer)?;
        countersign(&mut answer, &gateway.context.signer).map_err(Refusal::from)?;
        let response = SendSyncResponse { envelope: Some(answer.clone()) };
        let mut batch = Batch::new();
        batch.log(received_ms, "received", routed.encode_to_vec(), route.recipient.clone());
        batch.log(gateway.context.now_ms(), "sent", answer.encode_to_vec(), verified.header.sender_id.clone());
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            response.encode_to_vec(),
        );
        gateway.store.commit(batch).await.map_err(Refusal::from)?;
        Ok(Response::new(response))
    }

    async fn send_async(&self, request: Request<SendAsyncRequest>) -> Result<Response<SendAsyncResponse>, Status> {
        let gateway = &self.gateway;
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        let (verified, route) = gateway.admit(&envelope, RouteChannel::Async)?;
        if let Some(answer) = resent::<SendAsyncResponse>(&gateway.store, &verified, &envelope)? {
            return Ok(Response::new(answer));
        }
        let mut routed = envelope.clone();
        countersign(&mut routed, &gateway.context.signer).map_err(Refusal::from)?;
        let now_ms = gateway.context.now_ms();
        let header = &verified.header;
        let response = SendAsyncResponse {
            message_id: header.message_id.clone(),
            correlation_id: header.correlation_id.clone(),
            accepted_time_ms: gateway.context.event_time(&verified),
            receipt: Some(routed.clone()),
        };
        let record = DeliveryRecord {
            recipient: route.recipient.clone(),
            status: DeliveryStatus::OnDelivery as i32,
            status_time_ms: now_ms,
            attempts: 0,
            last_error: String::new(),
        };
        let routed_bytes = routed.encode_to_vec();
        let mut batch = Batch::new();
        batch.log(now_ms, "received", routed_bytes.clone(), route.recipient.clone());
        batch.enqueue(route.recipient.clone(), routed_bytes, now_ms);
        batch.put(status_key(&header.sender_id, &header.message_id), 0, &record).map_err(Refusal::from)?;
        batch.remember(
            &header.sender_id,
            &header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            response.encode_to_vec(),
        );
        gateway.store.commit(batch).await.map_err(Refusal::from)?;
        self.outbox.kick();
        Ok(Response::new(response))
    }

    async fn get_message_status(
        &self,
        request: Request<GetMessageStatusRequest>,
    ) -> Result<Response<GetMessageStatusResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .gateway
            .store
            .get::<DeliveryRecord>(&status_key(&request.sender_id, &request.message_id))
            .map_err(Refusal::from)?
            .ok_or_else(|| {
                Refusal::new(
                    Code::NotFound,
                    "gateway.unknown_message",
                    format!("no asynchronous message {} from {}", request.message_id, request.sender_id),
                )
            })?
            .value;
        Ok(Response::new(GetMessageStatusResponse {
            status: record.status,
            status_time_ms: record.status_time_ms,
            attempts: record.attempts,
            last_error: record.last_error,
        }))
    }

    async fn get_messages(
        &self,
        request: Request<GetMessagesRequest>,
    ) -> Result<Response<GetMessagesResponse>, Status> {
        let request = request.into_inner();
        if request.correlation_id.is_empty() == request.recipient_id.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "gateway.bad_query",
                "give exactly one of correlation_id and recipient_id",
            )
            .into());
        }
        let limit = if request.limit == 0 { 100 } else { request.limit.min(1000) } as usize;
        let mut messages = Vec::new();
        for entry in self.gateway.store.log_entries() {
            let entry = entry.map_err(Refusal::from)?;
            let Ok(envelope) = Envelope::decode(entry.envelope.as_slice()) else { continue };
            let Ok(header) = EnvelopeHeader::decode(envelope.header.as_slice()) else { continue };
            let wanted = if request.correlation_id.is_empty() {
                entry.direction == "received" && header.recipient_id == request.recipient_id
            } else {
                header.correlation_id == request.correlation_id
            };
            if !wanted {
                continue;
            }
            let status = self
                .gateway
                .store
                .get::<DeliveryRecord>(&status_key(&header.sender_id, &header.message_id))
                .ok()
                .flatten()
                .map_or(DeliveryStatus::Unspecified as i32, |record| record.value.status);
            messages.push(LoggedMessage {
                sequence: entry.sequence,
                logged_time_ms: entry.time_ms,
                envelope: Some(envelope),
                status,
            });
            if messages.len() >= limit {
                break;
            }
        }
        Ok(Response::new(GetMessagesResponse { messages }))
    }
}

/// Pushes accepted asynchronous messages to the recipients' inboxes.
struct Delivery {
    gateway: Arc<Gateway>,
}

impl Delivery {
    fn status_update(&self, item: &OutboxItem, status: DeliveryStatus, attempts: u32, error: &str) -> Batch {
        let mut batch = Batch::new();
        let Ok(envelope) = Envelope::decode(item.envelope.as_slice()) else { return batch };
        let Ok(header) = EnvelopeHeader::decode(envelope.header.as_slice()) else { return batch };
        let key = status_key(&header.sender_id, &header.message_id);
        let version = self.gateway.store.get::<DeliveryRecord>(&key).ok().flatten().map_or(0, |record| record.version);
        let record = DeliveryRecord {
            recipient: item.target.clone(),
            status: status as i32,
            status_time_ms: self.gateway.context.now_ms(),
            attempts,
            last_error: error.to_owned(),
        };
        if let Err(error) = batch.put(key, version, &record) {
            tracing::error!(%error, "delivery status not recorded");
        }
        batch
    }
}

impl Courier for Delivery {
    async fn attempt(&self, item: &OutboxItem) -> Attempt {
        let Some(inbox) = self.gateway.recipients.inboxes.get(&item.target) else {
            let error = format!("no inbox is known for {}", item.target);
            return Attempt::Stopped(
                self.status_update(item, DeliveryStatus::DeliveryStopped, item.attempts + 1, &error),
                error,
            );
        };
        let envelope = match Envelope::decode(item.envelope.as_slice()) {
            Ok(envelope) => envelope,
            Err(error) => {
                let error = format!("stored envelope does not decode: {error}");
                return Attempt::Stopped(
                    self.status_update(item, DeliveryStatus::DeliveryStopped, item.attempts + 1, &error),
                    error,
                );
            }
        };
        let mut inbox = inbox.clone();
        match inbox.deliver(DeliverRequest { envelope: Some(envelope) }).await {
            Ok(_) => {
                let mut batch = self.status_update(item, DeliveryStatus::Delivered, item.attempts + 1, "");
                batch.log(self.gateway.context.now_ms(), "delivered", item.envelope.clone(), item.target.clone());
                Attempt::Delivered(batch)
            }
            Err(status) if is_retryable(&status) => {
                Attempt::Retry(format!("{:?}: {}", status.code(), status.message()))
            }
            Err(status) => {
                let error = format!("{:?}: {}", status.code(), status.message());
                Attempt::Stopped(
                    self.status_update(item, DeliveryStatus::DeliveryStopped, item.attempts + 1, &error),
                    error,
                )
            }
        }
    }

    fn parked(&self, item: &OutboxItem, error: &str) -> Batch {
        self.status_update(item, DeliveryStatus::NotDelivered, item.attempts, error)
    }
}
