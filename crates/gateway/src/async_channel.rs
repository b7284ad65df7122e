//! The asynchronous channel: the gateway takes a message (process 6, and the
//! provider's progress and result), answers with its countersigned receipt,
//! and its outbox pushes the message to the recipient's inbox (process 7 at
//! the ARM, progress at the workstation).

use std::sync::Arc;

use egov_envelope::countersign;
use egov_proto::{AsyncReceipt, DeliverRequest, DeliveryStatus, Envelope, SendAsyncResponse};
use egov_runtime::outbox::{Attempt, Courier};
use egov_runtime::receive::Opaque;
use egov_runtime::status::is_retryable;
use egov_runtime::{Outcome, Received, Refusal, idempotency};
use egov_store::{Batch, OutboxItem};
use prost::Message;
use tonic::Status;

use crate::Gateway;
use crate::journal::{DeliveryRecord, status_key};

impl Gateway {
    /// Countersigns the message, records it on delivery and queues it for the
    /// recipient; answers with the gateway's signed receipt for what it took.
    pub(crate) async fn send_async(
        &self,
        received: Arc<Received<Opaque>>,
    ) -> Result<Outcome<SendAsyncResponse>, Status> {
        let context = self.receiver.context();
        let mut routed = received.envelope.clone();
        countersign(&mut routed, &context.signer).map_err(Refusal::from)?;
        let now_ms = context.now_ms();
        let header = received.header();
        let recipient = received.service.recipient.clone();
        let receipt = AsyncReceipt {
            message_id: header.message_id.clone(),
            digest: idempotency::digest(&received.envelope),
            accepted_time_ms: received.event_ms,
        };
        let mut outcome = Outcome::new(SendAsyncResponse {
            message_id: header.message_id.clone(),
            correlation_id: header.correlation_id.clone(),
            accepted_time_ms: received.event_ms,
            receipt: Some(self.receiver.reply(&received, &receipt)),
        });
        let record = DeliveryRecord {
            recipient: recipient.clone(),
            status: DeliveryStatus::OnDelivery as i32,
            status_time_ms: now_ms,
            attempts: 0,
            last_error: String::new(),
        };
        outcome.put(status_key(&header.sender_id, &header.message_id), 0, &record)?;
        outcome.log_received_as(routed, recipient.clone());
        outcome.queue_received(&recipient, now_ms);
        Ok(outcome)
    }
}

/// Pushes accepted asynchronous messages to the recipients' inboxes.
pub(crate) struct Delivery {
    gateway: Arc<Gateway>,
}

impl Delivery {
    pub(crate) fn new(gateway: Arc<Gateway>) -> Delivery {
        Delivery { gateway }
    }

    fn status_update(&self, item: &OutboxItem, status: DeliveryStatus, attempts: u32, error: &str) -> Batch {
        let mut batch = Batch::new();
        let Some(header) = egov_envelope::header_of_stored(&item.envelope) else {
            tracing::error!(id = item.id, "queued envelope does not decode: delivery status not recorded");
            return batch;
        };
        let key = status_key(&header.sender_id, &header.message_id);
        let version = match self.gateway.store.get::<DeliveryRecord>(&key) {
            Ok(record) => record.map_or(0, |record| record.version),
            Err(error) => {
                tracing::error!(id = item.id, %error, "delivery status not readable: not recorded");
                return batch;
            }
        };
        let record = DeliveryRecord {
            recipient: item.target.clone(),
            status: status as i32,
            status_time_ms: self.gateway.receiver.context().now_ms(),
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
        let keys = egov_runtime::receive::log_keys(&envelope, "delivered");
        let request_out_us = egov_runtime::monitor::now_us();
        let delivered = inbox.deliver(DeliverRequest { envelope: Some(envelope.clone()) }).await;
        let monitor = &self.gateway.receiver.context().monitor;
        monitor.sent(
            "InboxService/Deliver",
            &item.target,
            &envelope,
            request_out_us,
            delivered.as_ref().map(|answer| answer.get_ref().encoded_len()),
        );
        match delivered {
            Ok(_) => {
                let mut batch = self.status_update(item, DeliveryStatus::Delivered, item.attempts + 1, "");
                let now_ms = self.gateway.receiver.context().now_ms();
                batch.log(now_ms, "delivered", item.envelope.clone(), item.target.clone(), keys);
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

    /// The status and the `delivered` entry: lost in a crash, the envelope is
    /// delivered again and the recipient answers the resend as before.
    fn delivery_is_bookkeeping(&self) -> bool {
        true
    }
}
