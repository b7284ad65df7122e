//! Paragraph 3: an application received at the provider's office. The office
//! employee receives and registers it (action 1 of the channel that starts
//! there) after the same checks as the State Corporation's counter: the IINs,
//! each attached document, the checklist (an incomplete package is refused
//! with the applicant's signed notice). The provider's steps follow as for an
//! application the State Corporation sent, within the channel's term, and the
//! result is handed out at the office (the channel's own final step). Nothing
//! of it is reported to the State Corporation.

use std::sync::Arc;

use egov_proto::{ApplicationDelivery, OfficeReception, PersonRecord, ReceiveAtOfficeResponse};
use egov_regulation::Instance;
use egov_regulation::instance::to_local;
use egov_runtime::status::NOTICE_KEY;
use egov_runtime::{Outcome, Received, Refusal, counter};
use prost::Message;
use tonic::{Code, Status};

use crate::Regional;
use crate::record::{application_key, channel_entry, delivery_key, registration_key};

/// The reason codes of the provider office's counter.
const COUNTER: counter::Codes = counter::Codes {
    unknown_kind: "regional.unknown_document_kind",
    bad_hash: "regional.bad_document_hash",
    hash_mismatch: "regional.document_hash_mismatch",
    bad_document: "regional.bad_document",
};

/// How long before the reception the applicant may have come (the queue at
/// the office; the simulator's bound on a stated arrival time).
const ARRIVAL_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

impl Regional {
    pub(crate) async fn receive_at_office(
        &self,
        received: Arc<Received<OfficeReception>>,
    ) -> Result<Outcome<ReceiveAtOfficeResponse>, Status> {
        let reception = &received.body;
        received.correlate(&reception.application_id)?;
        let channel = self.steps.office_channel.as_ref().ok_or_else(|| {
            Refusal::new(
                Code::FailedPrecondition,
                "regional.no_office_channel",
                "the definition receives no applications at the provider's office",
            )
        })?;
        if reception.service_code != self.definition.service.code {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.unknown_service",
                format!("service {:?} is not {}", reception.service_code, self.definition.service.code),
            )
            .into());
        }
        let now_ms = received.event_ms;
        let today = to_local(self.calendar(), now_ms).map(|time| time.date_naive()).ok_or_else(|| {
            Refusal::new(Code::FailedPrecondition, "regional.no_calendar", "the calendar has no data for today")
        })?;
        let representative_iin = reception.representative.as_ref().map(|r| r.iin.as_str());
        counter::check_people(&reception.applicant_iin, representative_iin, today)?;
        let arrived_ms = match reception.arrived_time_ms {
            0 => now_ms,
            at if at <= now_ms && now_ms - at <= ARRIVAL_WINDOW_MS => at,
            at => {
                return Err(Refusal::new(
                    Code::InvalidArgument,
                    "regional.bad_arrival_time",
                    format!("the applicant's arrival ({at} ms) is after the reception or more than a day before it"),
                )
                .into());
            }
        };
        counter::check_attached(&self.definition, &reception.documents, &COUNTER)?;
        let missing = counter::missing(&self.definition, &reception.documents, reception.representative.is_some());
        if !missing.is_empty() {
            let codes: Vec<&str> = missing.iter().map(|d| d.code.as_str()).collect();
            let refusal = Refusal::new(
                Code::FailedPrecondition,
                "regional.incomplete_package",
                format!("the package lacks: {} (refused at the office; nothing is registered)", codes.join(", ")),
            );
            return Err(match counter::incomplete_package_notice(&self.definition, &missing) {
                Some(notice) => {
                    refusal.with_binary(NOTICE_KEY, self.receiver.reply(&received, &notice).encode_to_vec())
                }
                None => refusal,
            }
            .into());
        }
        let application_id = received.correlation_id().to_owned();
        let instance = Instance::start_in_channel(&self.definition, &channel.id, arrived_ms).map_err(Refusal::from)?;
        let record =
            self.registered(&application_id, instance, received.sender_role(), received.sender_id(), now_ms)?;
        let registration_id = record.registration_id.clone();
        // The office's signed reception stands where the State Corporation's
        // submission does: it carries the documents.
        let delivery = ApplicationDelivery {
            application_id: application_id.clone(),
            service_code: reception.service_code.clone(),
            applicant: Some(PersonRecord { iin: reception.applicant_iin.clone(), ..PersonRecord::default() }),
            representative: reception.representative.clone(),
            power_of_attorney: None,
            documents: Vec::new(),
            operator_submission: Some(received.envelope.clone()),
            path: Vec::new(),
        };
        let delivery_bytes = delivery.encode_to_vec();
        let registration = self.registration_of(&record, delivery.clone())?;
        let mut outcome = Outcome::new(ReceiveAtOfficeResponse { registration: Some(registration) });
        outcome.put(application_key(&application_id), 0, &registration_id)?;
        outcome.put(registration_key(&registration_id), 0, &record)?;
        outcome.put(delivery_key(&registration_id), 0, &serde_bytes::Bytes::new(&delivery_bytes))?;
        outcome.index(channel_entry(&channel.id, &registration_id), true);
        self.requeue(&mut outcome, None, &record, Some(&delivery))?;
        tracing::info!(%registration_id, %application_id, "received at the provider's office (action 1)");
        Ok(outcome)
    }
}
