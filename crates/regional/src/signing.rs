//! The signatures of the provider's officials on the documents the ARM
//! drafts: the head signs the exact bytes of the drafted result (action 3),
//! and the specialist who decided condition 2 signs the exact bytes of the
//! refusal the ARM formed for violations in the documents (process 8:
//! paragraph 8, the document is formed with the EDS of the provider's
//! official).

use std::sync::Arc;

use egov_proto::{ServiceResult, SignResultResponse};
use egov_regulation::{Event, Follows};
use egov_runtime::{Outcome, Received, Refusal};
use prost::Message;
use tonic::{Code, Status};

use crate::Regional;
use crate::record::registration_key;

impl Regional {
    pub(crate) async fn sign_result(
        &self,
        received: Arc<Received<ServiceResult>>,
    ) -> Result<Outcome<SignResultResponse>, Status> {
        let stored = self.load(&received.body.registration_id)?;
        let before = stored.value.clone();
        let mut record = stored.value;
        received.correlate(&record.application_id)?;
        let current = record.instance.current.clone().unwrap_or_default();
        // The step signed: process 8's refusal where the application waits on
        // it, the head's signature on the result otherwise (the transition
        // refuses a signature where neither waits).
        let refusal = self.steps.refusal_notice.as_ref().filter(|step| step.id == current);
        let sign = refusal.unwrap_or(&self.steps.sign_result);
        if current == sign.id && received.envelope.body != record.draft_result {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.draft_mismatch",
                "the signed bytes are not the drafted result",
            )
            .into());
        }
        if refusal.is_some() && received.sender_role() == sign.actor {
            let check = &self.steps.check_documents;
            let decided_by = record.instance.record(&check.id).map(|r| r.actor_id.clone()).unwrap_or_default();
            if received.sender_id() != decided_by {
                return Err(Refusal::new(
                    Code::PermissionDenied,
                    "regional.not_the_deciding_official",
                    format!(
                        "the refusal of {} is signed by the official who decided {} ({decided_by}), not {}",
                        sign.id,
                        check.id,
                        received.sender_id()
                    ),
                )
                .into());
            }
        }
        let now_ms = received.event_ms;
        let event = Event {
            step_id: sign.id.clone(),
            actor_role: received.sender_role().to_owned(),
            actor_id: received.sender_id().to_owned(),
            branch: None,
            detail: received.verified.key_id.clone(),
        };
        let transition = self.advance(&record.instance, &event, now_ms)?;
        record.instance = transition.instance;
        // Process 8's signed refusal is the result where the route does not go
        // on to the draft: it goes back at once, the ARM's signature on the
        // progress report being the transport's.
        let mut signed_result = None;
        let goes_on_to_draft = match &transition.follows {
            Follows::Step { step_id, .. } => self.definition.reaches(step_id, &self.steps.draft_result.id),
            Follows::End { .. } => false,
        };
        if refusal.is_some() && goes_on_to_draft {
            record.draft_result.clear();
        } else {
            record.signed_result = received.envelope.encode_to_vec();
            if refusal.is_some() {
                signed_result = Some(received.envelope.clone());
            }
        }
        let mut outcome = Outcome::new(SignResultResponse { registration: Some(self.to_registration(&record)?) });
        outcome.put(registration_key(&record.registration_id), stored.version, &record)?;
        self.requeue(&mut outcome, Some(&before), &record, None)?;
        self.send_progress(&mut outcome, &record, signed_result, now_ms);
        tracing::info!(registration_id = %record.registration_id, step = %sign.id, "signed by the provider's official");
        Ok(outcome)
    }
}
