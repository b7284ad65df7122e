//! What became of the messages the gateway took: each asynchronous message's
//! delivery status, and the message log by application or by recipient.

use egov_proto::{
    DeliveryStatus, Envelope, GetMessageStatusRequest, GetMessageStatusResponse, GetMessagesRequest,
    GetMessagesResponse, LoggedMessage,
};
use egov_runtime::Refusal;
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::Code;

use crate::Gateway;

/// The delivery state of an asynchronous message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    pub(crate) recipient: String,
    pub(crate) status: i32,
    pub(crate) status_time_ms: i64,
    pub(crate) attempts: u32,
    pub(crate) last_error: String,
}

pub(crate) fn status_key(sender_id: &str, message_id: &str) -> String {
    format!("status/{sender_id}\u{0}{message_id}")
}

impl Gateway {
    pub(crate) fn message_status(
        &self,
        request: &GetMessageStatusRequest,
    ) -> Result<GetMessageStatusResponse, Refusal> {
        egov_runtime::ids::check_id("sender id", &request.sender_id)?;
        egov_runtime::ids::check_id("message id", &request.message_id)?;
        let record = self
            .store
            .get::<DeliveryRecord>(&status_key(&request.sender_id, &request.message_id))?
            .ok_or_else(|| {
                Refusal::new(
                    Code::NotFound,
                    "gateway.unknown_message",
                    format!("no asynchronous message {} from {}", request.message_id, request.sender_id),
                )
            })?
            .value;
        Ok(GetMessageStatusResponse {
            status: record.status,
            status_time_ms: record.status_time_ms,
            attempts: record.attempts,
            last_error: record.last_error,
        })
    }

    pub(crate) fn messages(&self, request: &GetMessagesRequest) -> Result<GetMessagesResponse, Refusal> {
        if request.correlation_id.is_empty() == request.recipient_id.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "gateway.bad_query",
                "give exactly one of correlation_id and recipient_id",
            ));
        }
        let limit = if request.limit == 0 { 100 } else { request.limit.min(1000) } as usize;
        // Read from the log's index: the cost is what is returned, not the log's length.
        let key = if request.correlation_id.is_empty() {
            egov_runtime::ids::check_id("recipient id", &request.recipient_id)?;
            format!("recipient/{}", request.recipient_id)
        } else {
            egov_runtime::ids::check_id("correlation id", &request.correlation_id)?;
            format!("application/{}", request.correlation_id)
        };
        let mut messages = Vec::new();
        for entry in self.store.indexed_log(&key, limit)? {
            // The log holds only envelopes that were admitted: one that does not decode is damage.
            let corrupt = |error: &dyn std::fmt::Display| {
                Refusal::new(
                    Code::DataLoss,
                    "store.corrupt",
                    format!("log entry {} does not decode: {error}", entry.sequence),
                )
            };
            let envelope = Envelope::decode(entry.envelope.as_slice()).map_err(|error| corrupt(&error))?;
            let header = egov_envelope::decode_header(&envelope.header).map_err(|error| corrupt(&error))?;
            let status = self
                .store
                .get::<DeliveryRecord>(&status_key(&header.sender_id, &header.message_id))?
                .map_or(DeliveryStatus::Unspecified as i32, |record| record.value.status);
            messages.push(LoggedMessage {
                sequence: entry.sequence,
                logged_time_ms: entry.time_ms,
                envelope: Some(envelope),
                status,
            });
        }
        Ok(GetMessagesResponse { messages })
    }
}
