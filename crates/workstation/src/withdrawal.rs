//! The operator withdraws an application whose form was opened but which was
//! never submitted (a client that lost its session, an applicant who left).
//! The regulation has no such step: this is the simulator's assumption, and
//! the application ends with the outcome "withdrawn". Once submitted
//! (process 5), it is the provider's and cannot be withdrawn here.

use std::sync::Arc;

use egov_proto::{ApplicationWithdrawal, WithdrawApplicationResponse};
use egov_regulation::instance::withdraw;
use egov_runtime::{Outcome, Received, Refusal};
use tonic::{Code, Status};

use crate::Workstation;
use crate::record::application_key;

impl Workstation {
    pub(crate) async fn withdraw(
        &self,
        received: Arc<Received<ApplicationWithdrawal>>,
    ) -> Result<Outcome<WithdrawApplicationResponse>, Status> {
        let withdrawal = &received.body;
        let stored = self.operators_application(&received, &withdrawal.session_id, &withdrawal.application_id)?;
        let before = self.to_application(&stored.value);
        let mut record = stored.value;
        let submission = &self.steps.sign_submission;
        if let Some(current) = record.instance.current.as_deref()
            && current != submission.id
        {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                "workstation.not_withdrawable",
                format!(
                    "application {} is at {current}: only one that waits for its submission ({}) can be withdrawn",
                    record.application_id, submission.id
                ),
            )
            .into());
        }
        record.instance = withdraw(&record.instance, received.event_ms).map_err(Refusal::from)?.instance;
        record.withdrawal_reason = Some(withdrawal.reason.clone());
        let mut outcome = Outcome::new(WithdrawApplicationResponse { application: Some(self.to_application(&record)) });
        outcome.put(application_key(&record.application_id), stored.version, &record)?;
        for (key, present) in self.relist(Some(&before), &record) {
            outcome.index(key, present);
        }
        tracing::info!(application_id = %record.application_id, "withdrawn before submission");
        Ok(outcome)
    }
}
