//! The synchronous channel: the gateway calls the registry the route names
//! and returns its countersigned answer (the look-ups of process 3).

use std::sync::Arc;
use std::time::Duration;

use egov_envelope::countersign;
use egov_proto::{CheckPowerOfAttorneyRequest, Envelope, LookupPersonRequest, SendSyncResponse};
use egov_runtime::receive::Opaque;
use egov_runtime::status::is_retryable;
use egov_runtime::{Outcome, Received, Refusal, Service, ids};
use tonic::{Code, Status};

use crate::Gateway;

/// The field of `SendSyncResponse` that carries the registry's answer.
const ANSWER_FIELD: u32 = 1;
/// How long one call to a registry may take before it is retried.
const REGISTRY_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Calls to a registry for one request, the first included.
const REGISTRY_ATTEMPTS: u32 = 4;

impl Gateway {
    /// Countersigns the request, calls the registry, checks and countersigns its answer.
    pub(crate) async fn send_sync(&self, received: Arc<Received<Opaque>>) -> Result<Outcome<SendSyncResponse>, Status> {
        let context = self.receiver.context();
        let mut routed = received.envelope.clone();
        countersign(&mut routed, &context.signer).map_err(Refusal::from)?;
        let service = &received.service;
        let request_out_us = egov_runtime::monitor::now_us();
        let answer = self.call_registry_patiently(service, &routed).await;
        egov_runtime::monitor::note_onward(request_out_us);
        let mut answer = answer.map_err(|status| {
            if status.code() == Code::Unavailable || status.code() == Code::DeadlineExceeded {
                Refusal::new(
                    status.code(),
                    "gateway.recipient_unavailable",
                    format!("{}: {}", service.recipient, status.message()),
                )
                .into()
            } else {
                status
            }
        })?;
        self.receiver.open_answer::<Opaque>(&service.id, received.header(), &answer, false)?;
        countersign(&mut answer, &context.signer).map_err(Refusal::from)?;
        let mut outcome = Outcome::new(SendSyncResponse { envelope: Some(answer.clone()) });
        outcome.log_received_as(routed, service.recipient.clone());
        outcome.log_answer(received.sender_id(), &answer, context.now_ms(), ANSWER_FIELD);
        Ok(outcome)
    }

    async fn call_registry(&self, service: &Service, routed: Envelope) -> Result<Envelope, Status> {
        let answer = match service.recipient.as_str() {
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
            Refusal::new(Code::Internal, "envelope.bad_answer", "the recipient answered without an envelope").into()
        })
    }

    /// Calls the registry, retrying what may pass (unavailable, no answer in time) with backoff.
    async fn call_registry_patiently(&self, service: &Service, routed: &Envelope) -> Result<Envelope, Status> {
        let mut attempt = 1;
        loop {
            let call = self.call_registry(service, routed.clone());
            let status = match tokio::time::timeout(REGISTRY_CALL_TIMEOUT, call).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded(format!(
                    "{} did not answer within {REGISTRY_CALL_TIMEOUT:?}",
                    service.recipient
                )),
            };
            if attempt >= REGISTRY_ATTEMPTS || !is_retryable(&status) {
                return Err(status);
            }
            self.receiver.context().counters.add("registry_retries", 1);
            tracing::info!(recipient = %service.recipient, attempt, "registry call failed, retrying: {}", status.message());
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            attempt += 1;
        }
    }
}
