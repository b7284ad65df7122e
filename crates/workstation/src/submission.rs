//! Process 5: the operator confirms the form with their EDS; process 6: the
//! workstation sends the application on through the gateway's asynchronous
//! channel, and records the gateway's receipt when it comes.

use std::sync::Arc;

use egov_envelope::services;
use egov_proto::{ApplicationDelivery, ApplicationSubmission, Envelope, MessageType, SubmitApplicationResponse};
use egov_regulation::definition::Labelled;
use egov_runtime::outbox::Receipt;
use egov_runtime::receive::Handled;
use egov_runtime::status::NOTICE_KEY;
use egov_runtime::{Outcome, Received, Refusal, convert, counter, idempotency, ids};
use egov_store::{Answer, Batch, OutboxItem};
use prost::Message;
use tonic::{Code, Status};

use crate::record::{ApplicationRecord, application_key, receipt_key};
use crate::{RECEIPT_WAIT, Workstation};

/// The reason codes of the State Corporation's counter.
const COUNTER: counter::Codes = counter::Codes {
    unknown_kind: "workstation.unknown_document_kind",
    bad_hash: "workstation.bad_document_hash",
    hash_mismatch: "workstation.document_hash_mismatch",
    bad_document: "workstation.bad_document",
};

impl Workstation {
    /// Processes 5 and 6: the signed submission, queued for the gateway.
    pub(crate) async fn submit(
        &self,
        received: Arc<Received<ApplicationSubmission>>,
    ) -> Result<Outcome<SubmitApplicationResponse>, Status> {
        let submission = &received.body;
        let context = self.receiver.context();
        let stored = self.operators_application(&received, &submission.session_id, &submission.application_id)?;
        let before = self.to_application(&stored.value);
        let mut record = stored.value;
        let mut event =
            Self::event(&self.steps.sign_submission, received.sender_id(), None, received.verified.key_id.clone());
        event.actor_role = received.sender_role().to_owned();
        let now_ms = received.event_ms;
        record.instance = self.advance(&record.instance, &event, now_ms)?.instance;
        counter::check_attached(&self.definition, &submission.documents, &COUNTER)?;
        let missing = counter::missing(&self.definition, &submission.documents, record.representative.is_some());
        if !missing.is_empty() {
            return Err(self.refuse_incomplete(&received, &missing).into());
        }
        record.submission = Some((received.sender_id().to_owned(), received.header().message_id.clone()));
        let delivery = ApplicationDelivery {
            application_id: record.application_id.clone(),
            service_code: record.service_code.clone(),
            applicant: record.applicant.clone(),
            representative: record.representative.clone(),
            power_of_attorney: record.power_of_attorney.clone(),
            // The documents travel once, in the operator's signed submission.
            documents: Vec::new(),
            operator_submission: Some(received.envelope.clone()),
            path: record.instance.path.iter().map(|step| convert::step_to_proto(&self.definition, step)).collect(),
        };
        let message = context.seal(
            &record.application_id,
            services::APPLICATION_SUBMIT,
            ids::REGIONAL,
            MessageType::Request,
            now_ms,
            &delivery,
        );
        self.check_route_carries(&message)?;
        let mut outcome = Outcome::new(self.submit_response(&record)?);
        outcome.put(application_key(&record.application_id), stored.version, &record)?;
        for (key, present) in self.relist(Some(&before), &record) {
            outcome.index(key, present);
        }
        outcome.send(ids::GATEWAY, &message, context.now_ms());
        tracing::info!(application_id = %record.application_id, "submission signed (process 5), queued for the gateway");
        Ok(outcome)
    }

    /// What is acknowledged here must reach the ARM: the message of process 6
    /// must be within the gateway's limit for its service (the table of services).
    fn check_route_carries(&self, message: &Envelope) -> Result<(), Refusal> {
        let context = self.receiver.context();
        let limit = self
            .receiver
            .service(services::APPLICATION_SUBMIT)
            .and_then(|service| service.max_body_bytes)
            .unwrap_or(context.checks.max_body_bytes);
        if message.body.len() > limit {
            return Err(Refusal::new(
                Code::ResourceExhausted,
                "envelope.too_large",
                format!(
                    "the application would travel on as {} bytes, over the limit of {limit} of {}: attach smaller scans",
                    message.body.len(),
                    services::APPLICATION_SUBMIT
                ),
            ));
        }
        Ok(())
    }

    /// The answer to a submission: the application and, once process 6 is
    /// done, the gateway's receipt.
    fn submit_response(&self, record: &ApplicationRecord) -> Result<SubmitApplicationResponse, Refusal> {
        Ok(SubmitApplicationResponse {
            application: Some(self.to_application(record)),
            gateway_receipt: self.stored_envelope("gateway receipt", &receipt_key(&record.application_id))?,
        })
    }

    /// [`Workstation::submit_response`] with the receipt being written in the same commit.
    fn submit_response_with(
        &self,
        record: &ApplicationRecord,
        receipt: Option<&Envelope>,
    ) -> SubmitApplicationResponse {
        SubmitApplicationResponse { application: Some(self.to_application(record)), gateway_receipt: receipt.cloned() }
    }

    /// Waits a while for process 6 to be done, then answers what is
    /// remembered for the submission: the gateway's receipt completes the
    /// remembered answer once, so a resend gets what the first call got.
    pub(crate) async fn with_receipt(
        &self,
        handled: Handled<SubmitApplicationResponse>,
    ) -> Result<SubmitApplicationResponse, Refusal> {
        let Some(&queued) = handled.queued.first() else { return Ok(handled.answer) };
        self.outbox.wait_sent(queued, RECEIPT_WAIT).await;
        let header = &handled.header;
        Ok(idempotency::answer_of(&self.store, &header.sender_id, &header.message_id)?.unwrap_or(handled.answer))
    }

    /// The refusal at the counter of a package that lacks `missing`: nothing
    /// is stored or sent, and the application stays at the submission step.
    /// The applicant's notice (the definition's `counter.incomplete-package`,
    /// with the missing documents in each language) travels in the status's
    /// `egov-notice-bin`, signed by the workstation as its answer to the
    /// operator's submission. A definition without that notice gives none.
    fn refuse_incomplete(&self, received: &Received<ApplicationSubmission>, missing: &[&Labelled]) -> Refusal {
        let codes: Vec<&str> = missing.iter().map(|d| d.code.as_str()).collect();
        let refusal = Refusal::new(
            Code::FailedPrecondition,
            "workstation.incomplete_package",
            format!("the package lacks: {} (refused at reception; nothing is sent)", codes.join(", ")),
        );
        match counter::incomplete_package_notice(&self.definition, missing) {
            Some(notice) => refusal.with_binary(NOTICE_KEY, self.receiver.reply(received, &notice).encode_to_vec()),
            None => refusal,
        }
    }

    /// Process 6 is done when the gateway has taken the message: records its
    /// receipt (verified by the courier: [`egov_runtime::outbox::check_receipt`])
    /// and completes the submission's remembered answer with it, in the commit
    /// that takes the message out of the outbox. Writes that cannot be made
    /// keep the message in the outbox, or park it as an incident with the reason.
    pub(crate) fn record_receipt(&self, item: &OutboxItem, receipt: &Receipt) -> Result<Batch, Refusal> {
        let mut batch = Batch::new();
        self.receipt_writes(&mut batch, receipt).inspect_err(|refusal| {
            tracing::error!(id = item.id, reason = refusal.reason, "gateway receipt not recorded: {}", refusal.message);
        })?;
        Ok(batch)
    }

    fn receipt_writes(&self, batch: &mut Batch, receipt: &Receipt) -> Result<(), Refusal> {
        let stored = self.load(&receipt.correlation_id)?;
        let before = self.to_application(&stored.value);
        let mut record = stored.value;
        let send = &self.steps.send_application;
        if record.instance.current.as_deref() != Some(send.id.as_str()) {
            return Ok(());
        }
        let detail = format!("gateway message {}", receipt.message_id);
        record.instance = self
            .advance(
                &record.instance,
                &Self::event(send, self.receiver.context().member_id(), None, detail),
                receipt.accepted_time_ms.max(record.instance.current_since_ms),
            )?
            .instance;
        batch.put(
            receipt_key(&record.application_id),
            0,
            &serde_bytes::Bytes::new(&receipt.envelope.encode_to_vec()),
        )?;
        batch.put(application_key(&record.application_id), stored.version, &record)?;
        for (key, present) in self.relist(Some(&before), &record) {
            batch.index(key, present);
        }
        if let Some((sender_id, message_id)) = &record.submission
            && let Some(remembered) = self.store.remembered(sender_id, message_id)?
        {
            let answer = self.submit_response_with(&record, Some(&receipt.envelope));
            batch.rewrite_remembered(sender_id, message_id, remembered.digest, Answer::Bytes(answer.encode_to_vec()));
        }
        Ok(())
    }
}
