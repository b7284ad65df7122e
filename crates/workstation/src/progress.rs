//! The provider's progress as the regional gateway ARM reports it through the
//! gateway, and with action 4 the head-signed result (or, after a negative
//! documents check, process 8's refusal signed by the ARM).

use std::sync::Arc;

use egov_proto::{ApplicationProgress, DeliverResponse, ServiceResult};
use egov_regulation::{Effect, Event};
use egov_runtime::receive::Carried;
use egov_runtime::{Context, Outcome, Received, Refusal, convert};
use prost::Message;
use tonic::{Code, Status};

use crate::Workstation;
use crate::record::{ApplicationRecord, application_key, invalid, result_key};

impl Workstation {
    pub(crate) async fn receive_progress(
        &self,
        received: Arc<Received<ApplicationProgress>>,
    ) -> Result<Outcome<DeliverResponse>, Status> {
        let progress = &received.body;
        received.correlate(&progress.application_id)?;
        let stored = self.load(received.correlation_id())?;
        let before = self.to_application(&stored.value);
        let mut record = stored.value;
        let mut outcome = Outcome::new(DeliverResponse {
            message_id: received.header().message_id.clone(),
            accepted_time_ms: self.receiver.context().now_ms(),
        });
        if progress.sequence != 0 && progress.sequence <= record.progress_sequence {
            // An older report than one applied already (the ARM sends its latest
            // one in place of those still waiting; an older one can still arrive
            // after a newer one, delivered again after a restart): nothing to apply.
            return Ok(outcome);
        }
        for remote in &progress.path {
            if record.instance.record(&remote.step_id).is_some() {
                continue;
            }
            if record.instance.current.as_deref() != Some(remote.step_id.as_str()) {
                break;
            }
            let remote_record = convert::step_from_proto(remote);
            let event = Event {
                step_id: remote_record.step_id.clone(),
                actor_role: remote_record.actor.clone(),
                actor_id: remote_record.actor_id.clone(),
                branch: remote_record.branch,
                detail: remote_record.detail.clone(),
            };
            if let Some(handed) = &remote_record.hand_over {
                // The step began with a hand-over (action 3: the executor to the head).
                let handing =
                    Event { actor_role: handed.role.clone(), actor_id: handed.actor_id.clone(), ..event.clone() };
                record.instance =
                    egov_regulation::hand_over(&self.definition, &record.instance, &handing, handed.at_ms)
                        .map_err(Refusal::from)?;
            }
            record.instance = self
                .advance(&record.instance, &event, remote_record.ended_ms.max(record.instance.current_since_ms))?
                .instance;
            if let Some(last) = record.instance.path.last_mut() {
                *last = remote_record;
            }
        }
        if let Some(ahead) = progress.path.iter().find(|remote| record.instance.record(&remote.step_id).is_none()) {
            // The provider is ahead of what this workstation has recorded (process 6's
            // receipt not yet in): refuse for now; the gateway delivers it again.
            return Err(Refusal::new(
                Code::Aborted,
                "workstation.progress_ahead",
                format!(
                    "{} reported before {} was recorded here",
                    ahead.step_id,
                    record.instance.current.clone().unwrap_or_default()
                ),
            )
            .into());
        }
        record.registration_id =
            Some(progress.registration_id.clone()).filter(|id| !id.is_empty()).or(record.registration_id);
        if progress.due_time_ms != 0 {
            record.due_ms = Some(progress.due_time_ms);
        }
        record.progress_sequence = record.progress_sequence.max(progress.sequence);
        if let Some(result) = &received.carried {
            record.result_notice = self.check_result(result, &record)?.notice;
            let key = result_key(&record.application_id);
            if self.store.get::<serde_bytes::ByteBuf>(&key).map_err(Refusal::from)?.is_none() {
                outcome.put(key, 0, &serde_bytes::Bytes::new(&result.envelope.encode_to_vec()))?;
            }
        }
        outcome.put(application_key(&record.application_id), stored.version, &record)?;
        for (key, present) in self.relist(Some(&before), &record) {
            outcome.index(key, present);
        }
        Ok(outcome)
    }

    /// The result must be signed, for this application, by the role of the
    /// definition's signing step, or, for the refusal for violations in the
    /// documents (process 8) where the provider's part ended there, by the
    /// role of that step and, where that role is an official's (paragraph 8:
    /// with the EDS of the provider's official), by the official who decided
    /// the documents check (`workstation.wrong_result_signer` otherwise).
    /// The result's signature was verified by the pipeline ([`Received::carried`]).
    fn check_result(&self, result: &Carried, record: &ApplicationRecord) -> Result<ServiceResult, Refusal> {
        let bad = |message: String| invalid("workstation.bad_result", message);
        let Carried { envelope: result, verified } = result;
        let refusal_notice = self.definition.step_by_effect(Effect::RefusalNotice);
        let (signer_role, signer_id) = match refusal_notice {
            Some(step)
                if record.instance.record(&self.steps.sign_result.id).is_none()
                    && record.instance.record(&step.id).is_some() =>
            {
                // The official who decided the documents check, where an official signs the refusal.
                let decided_by = step
                    .handed_over_by
                    .is_some()
                    .then(|| self.definition.step_by_effect(Effect::CheckDocuments))
                    .flatten()
                    .and_then(|check| record.instance.record(&check.id))
                    .map(|check| check.actor_id.as_str());
                (&step.actor, decided_by)
            }
            _ => (&self.steps.sign_result.actor, None),
        };
        if verified.sender_role.as_str() != signer_role || signer_id.is_some_and(|id| id != verified.header.sender_id) {
            return Err(invalid(
                "workstation.wrong_result_signer",
                format!(
                    "the result is signed by {} ({}), not by the {signer_role}{}",
                    verified.header.sender_id,
                    verified.sender_role,
                    signer_id.map(|id| format!(" {id} who decided the documents check")).unwrap_or_default()
                ),
            ));
        }
        let body: ServiceResult = Context::body(result, verified)?;
        if body.application_id != record.application_id {
            return Err(bad(format!("the result is for application {}", body.application_id)));
        }
        Ok(body)
    }
}
