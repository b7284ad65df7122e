//! Process 9: the operator hands the result over to the applicant.

use egov_proto::{IssueResultResponse, ResultPickup};
use egov_runtime::{Outcome, Received, Refusal};
use tonic::{Code, Status};

use crate::Workstation;
use crate::record::{application_key, result_key};

impl Workstation {
    pub(crate) async fn issue(&self, received: Received<ResultPickup>) -> Result<Outcome<IssueResultResponse>, Status> {
        let pickup = &received.body;
        self.session(&pickup.session_id, received.sender_id())?;
        received.correlate(&pickup.application_id)?;
        let stored = self.load(&pickup.application_id)?;
        let mut record = stored.value;
        // Before the result arrives the answer is that it has not, whatever step the provider is at.
        let not_ready = || {
            Refusal::new(Code::FailedPrecondition, "workstation.result_not_ready", "the signed result has not arrived")
        };
        let result = self.stored_envelope("result", &result_key(&record.application_id))?;
        if result.is_none() && !record.instance.has_ended() {
            return Err(not_ready().into());
        }
        let mut event = Self::event(&self.steps.issue_result, received.sender_id(), None, "");
        event.actor_role = received.sender_role().to_owned();
        record.instance = self.advance(&record.instance, &event, received.event_ms)?.instance;
        let result = result.ok_or_else(not_ready)?;
        let mut outcome =
            Outcome::new(IssueResultResponse { application: Some(self.to_application(&record)), result: Some(result) });
        outcome.put(application_key(&record.application_id), stored.version, &record)?;
        tracing::info!(application_id = %record.application_id, outcome = ?record.instance.outcome, "result handed out (process 9)");
        Ok(outcome)
    }
}
