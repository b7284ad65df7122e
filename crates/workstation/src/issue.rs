//! Process 9: the operator hands the result over to the applicant whose
//! ticket of the electronic queue was called to them (`queue`, `CallNext`).

use std::sync::Arc;

use egov_proto::{IssueResultResponse, ResultPickup};
use egov_runtime::{Outcome, Received};
use tonic::Status;

use crate::Workstation;
use crate::record::{application_key, result_key};

impl Workstation {
    pub(crate) async fn issue(
        &self,
        received: Arc<Received<ResultPickup>>,
    ) -> Result<Outcome<IssueResultResponse>, Status> {
        let pickup = &received.body;
        self.session(&pickup.session_id, received.sender_id())?;
        received.correlate(&pickup.application_id)?;
        let stored = self.load(&pickup.application_id)?;
        let before = self.to_application(&stored.value);
        let mut record = stored.value;
        // Before the result arrives the answer is that it has not, whatever step the provider is at.
        let result = self.stored_envelope("result", &result_key(&record.application_id))?;
        if result.is_none() && !record.instance.has_ended() {
            return Err(self.result_not_ready(&record, received.event_ms).into());
        }
        let mut event = Self::event(&self.steps.issue_result, received.sender_id(), None, "");
        event.actor_role = received.sender_role().to_owned();
        // The transition refuses what has ended before any ticket is asked for.
        let mut instance = self.advance(&record.instance, &event, received.event_ms)?.instance;
        let Some(result) = result else { return Err(self.result_not_ready(&record, received.event_ms).into()) };
        let ticket = self.serve_ticket(&mut record, received.sender_id(), received.event_ms)?;
        if let Some(process_9) = instance.path.last_mut() {
            let waited_minutes = ticket.waited_ms.unwrap_or(0) / 60_000;
            let window = ticket.called.as_ref().map(|call| call.window.as_str()).unwrap_or_default();
            let window = if window.is_empty() { String::new() } else { format!(", window {window}") };
            process_9.detail = format!("ticket {}{window}, waited {waited_minutes} min", ticket.number);
        }
        record.instance = instance;
        let mut outcome =
            Outcome::new(IssueResultResponse { application: Some(self.to_application(&record)), result: Some(result) });
        outcome.put(application_key(&record.application_id), stored.version, &record)?;
        for (key, present) in self.relist(Some(&before), &record) {
            outcome.index(key, present);
        }
        tracing::info!(
            application_id = %record.application_id, outcome = ?record.instance.outcome, ticket = %ticket.number,
            waited_ms = ticket.waited_ms.unwrap_or(0), "result handed out (process 9)"
        );
        Ok(outcome)
    }
}
