//! After each step the ARM reports the provider's part of the path to the
//! State Corporation, and with action 4 the head-signed result.

use egov_envelope::services;
use egov_proto::{ApplicationProgress, Envelope, MessageType};
use egov_regulation::instance::term_deadlines;
use egov_runtime::{Outcome, convert, ids};

use crate::Regional;

/// How long a report between the first and the last may wait for a later one
/// to replace it (operational time). The simulator's choice, not the
/// regulation's: the regulation's terms are working days, and the State
/// Corporation sees the provider's steps this much later at most.
pub const PROGRESS_COALESCING_MS: i64 = 200;
use crate::record::RegistrationRecord;

impl Regional {
    /// The provider's term (the one that ends with sending the result) ends at this deadline.
    pub(crate) fn due_ms(&self, instance: &egov_regulation::Instance) -> Option<i64> {
        let send_result = &self.steps.send_result.id;
        term_deadlines(&self.definition, instance, self.calendar())
            .into_iter()
            .filter(|(id, _)| self.definition.terms.iter().any(|t| &t.id == id && &t.to == send_result))
            .find_map(|(_, deadline)| deadline)
    }

    /// Sends the progress of `record` (and the signed result, with action 4) back
    /// through the gateway, in place of an earlier report not sent yet.
    pub(crate) fn send_progress<A>(
        &self,
        outcome: &mut Outcome<A>,
        record: &RegistrationRecord,
        signed_result: Option<Envelope>,
        event_ms: i64,
    ) {
        if record.instance.channel.is_some() {
            // Received at the provider's office: the State Corporation has no part in it.
            return;
        }
        let signed_result_sent = signed_result.is_some();
        let message_type = if signed_result_sent { MessageType::Response } else { MessageType::Notification };
        let progress = ApplicationProgress {
            application_id: record.application_id.clone(),
            registration_id: record.registration_id.clone(),
            path: record.instance.path.iter().map(|step| convert::step_to_proto(&self.definition, step)).collect(),
            due_time_ms: record.due_ms.unwrap_or(0),
            signed_result,
            sequence: record.instance.path.len() as u64,
        };
        let context = self.receiver.context();
        let envelope = context.seal(
            &record.application_id,
            services::APPLICATION_PROGRESS,
            ids::SC_WORKSTATION,
            message_type,
            event_ms,
            &progress,
        );
        // Coalesced: a report of this application still waiting in the outbox is
        // replaced by this one, which holds all of it. The first report (the
        // registration, which the State Corporation waits for) and one with the
        // result or the end go at once; a report between them waits up to
        // `PROGRESS_COALESCING_MS`, so a run of staff steps makes one report.
        let now_ms = context.now_ms();
        let at_once = signed_result_sent || record.instance.has_ended() || record.instance.path.len() <= 1;
        let due_ms = if at_once { now_ms } else { now_ms + PROGRESS_COALESCING_MS };
        outcome.send_latest(&format!("progress/{}", record.application_id), ids::GATEWAY, &envelope, now_ms, due_ms);
    }
}
