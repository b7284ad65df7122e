//! Action 3: the head signs the exact bytes of the drafted result.

use egov_proto::{ServiceResult, SignResultResponse};
use egov_regulation::Event;
use egov_runtime::{Outcome, Received, Refusal};
use prost::Message;
use tonic::{Code, Status};

use crate::Regional;
use crate::record::registration_key;

impl Regional {
    pub(crate) async fn sign_result(
        &self,
        received: Received<ServiceResult>,
    ) -> Result<Outcome<SignResultResponse>, Status> {
        let stored = self.load(&received.body.registration_id)?;
        let before = stored.value.clone();
        let mut record = stored.value;
        received.correlate(&record.application_id)?;
        let sign = &self.steps.sign_result;
        if record.instance.current.as_deref() == Some(sign.id.as_str()) && received.envelope.body != record.draft_result
        {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.draft_mismatch",
                "the signed bytes are not the drafted result",
            )
            .into());
        }
        let now_ms = received.event_ms;
        let event = Event {
            step_id: sign.id.clone(),
            actor_role: received.sender_role().to_owned(),
            actor_id: received.sender_id().to_owned(),
            branch: None,
            detail: received.verified.key_id.clone(),
        };
        record.instance = self.advance(&record.instance, &event, now_ms)?.instance;
        record.signed_result = received.envelope.encode_to_vec();
        let mut outcome = Outcome::new(SignResultResponse { registration: Some(self.to_registration(&record)?) });
        outcome.put(registration_key(&record.registration_id), stored.version, &record)?;
        self.requeue(&mut outcome, Some(&before), &record);
        self.send_progress(&mut outcome, &record, None, now_ms);
        tracing::info!(registration_id = %record.registration_id, "result signed by the head (action 3)");
        Ok(outcome)
    }
}
