//! The provider's steps, each signed by the member who does it: the office
//! accepts (action 1), the specialist checks the documents (condition 2;
//! a "no" leads to the refusal, process 8, which the ARM forms itself), the
//! executor drafts the result (action 2), the office sends it (action 4).
//! The head's signature (action 3) is `signing`.

use egov_proto::{Decision, PerformStaffActionResponse, ServiceResult, StaffAction};
use egov_regulation::definition::Labelled;
use egov_regulation::{Branch, Effect, Event, Follows, TransitionError};
use egov_runtime::{Outcome, Received, Refusal};
use prost::Message;
use tonic::{Code, Status};

use crate::Regional;
use crate::record::{RegistrationRecord, registration_key};

fn notice(label: &Labelled) -> egov_proto::Notice {
    egov_proto::Notice {
        code: label.code.clone(),
        text_kk: label.kk.clone(),
        text_ru: label.ru.clone(),
        text_en: label.en.clone(),
    }
}

impl Regional {
    /// A staff step other than the head's signature.
    pub(crate) async fn staff_action(
        &self,
        received: Received<StaffAction>,
    ) -> Result<Outcome<PerformStaffActionResponse>, Status> {
        let action = &received.body;
        let stored = self.load(&action.registration_id)?;
        let before = stored.value.clone();
        let mut record = stored.value;
        received.correlate(&record.application_id)?;
        let now_ms = received.event_ms;
        let step = self
            .definition
            .step(&action.step_id)
            .ok_or_else(|| Refusal::from(TransitionError::UnknownStep { step: action.step_id.clone() }))?;
        if step.effect == Some(Effect::SignResult) {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.use_sign_result",
                "the head signs the result with SignResult",
            )
            .into());
        }
        let branch = match Decision::try_from(action.decision) {
            Ok(Decision::Yes) => Some(Branch::Yes),
            Ok(Decision::No) => Some(Branch::No),
            Ok(Decision::Unspecified) => None,
            Err(_) => {
                return Err(Refusal::new(
                    Code::InvalidArgument,
                    "regional.unknown_decision",
                    format!("decision {} is not one of the enum's values", action.decision),
                )
                .into());
            }
        };
        let mut detail = action.comment.clone();
        if step.id == self.steps.check_documents.id && branch == Some(Branch::No) {
            let ground = self.definition.refusal_ground(&action.refusal_ground).ok_or_else(|| {
                Refusal::new(
                    Code::InvalidArgument,
                    "regional.unknown_refusal_ground",
                    format!("refusal ground {:?} is not one of the definition's", action.refusal_ground),
                )
            })?;
            record.refusal_ground = Some(ground.code.clone());
            detail = ground.code.clone();
        } else if !action.refusal_ground.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.unexpected_refusal_ground",
                "a refusal ground goes only with a negative documents check",
            )
            .into());
        }
        let event = Event {
            step_id: action.step_id.clone(),
            actor_role: received.sender_role().to_owned(),
            actor_id: received.sender_id().to_owned(),
            branch,
            detail,
        };
        let transition = self.advance(&record.instance, &event, now_ms)?;
        record.instance = transition.instance;
        // Process 8 after a negative check is the ARM's own step.
        self.run_automatic(&mut record, transition.follows, now_ms)?;
        let mut signed_result = None;
        if step.id == self.steps.draft_result.id {
            record.draft_result = self.draft(&record, now_ms)?.encode_to_vec();
        } else if step.id == self.steps.send_result.id {
            signed_result = Some(record.signed_result()?.ok_or_else(|| {
                Refusal::new(Code::FailedPrecondition, "regional.result_not_signed", "the result is not signed yet")
            })?);
        }
        let mut outcome =
            Outcome::new(PerformStaffActionResponse { registration: Some(self.to_registration(&record)?) });
        outcome.put(registration_key(&record.registration_id), stored.version, &record)?;
        self.requeue(&mut outcome, Some(&before), &record);
        self.send_progress(&mut outcome, &record, signed_result, now_ms);
        tracing::info!(registration_id = %record.registration_id, step = %action.step_id, "staff step done");
        Ok(outcome)
    }

    /// Runs the steps the ARM itself does (the refusal of process 8), while one follows.
    fn run_automatic(&self, record: &mut RegistrationRecord, mut follows: Follows, now_ms: i64) -> Result<(), Refusal> {
        while let Follows::Step { step_id, effect: Some(Effect::RefusalNotice), actor } = follows {
            let event = Event {
                step_id,
                actor_role: actor,
                actor_id: self.receiver.context().member_id().to_owned(),
                branch: None,
                detail: record.refusal_ground.clone().unwrap_or_default(),
            };
            let transition = self.advance(&record.instance, &event, now_ms)?;
            record.instance = transition.instance;
            follows = transition.follows;
        }
        Ok(())
    }

    /// Action 2: the result document the head is to sign.
    fn draft(&self, record: &RegistrationRecord, now_ms: i64) -> Result<ServiceResult, Refusal> {
        let delivery = self.delivery(record)?;
        let outcome = record.instance.decided.clone().unwrap_or_default();
        let draft_step = &self.steps.draft_result.id;
        let notice = match &record.refusal_ground {
            Some(ground) => self.definition.refusal_ground(ground).map(notice),
            None => self.definition.notices.iter().find(|n| n.step.as_deref() == Some(draft_step.as_str())).map(notice),
        };
        Ok(ServiceResult {
            application_id: record.application_id.clone(),
            registration_id: record.registration_id.clone(),
            service_code: delivery.service_code,
            applicant_iin: delivery.applicant.map(|p| p.iin).unwrap_or_default(),
            outcome,
            refusal_ground: record.refusal_ground.clone().unwrap_or_default(),
            notice,
            decided_time_ms: now_ms,
            provider: self.definition.service.provider.clone(),
        })
    }
}
