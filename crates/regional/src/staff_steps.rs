//! The provider's steps, each signed by the member who does it: the office
//! accepts (action 1), the specialist checks the documents (condition 2;
//! a "no" leads to the refusal for violations in the documents, process 8,
//! which the ARM forms, signs and sends back itself), the executor decides and
//! drafts the result (action 2: the permission, or the reasoned refusal on
//! the grounds of paragraph 10) and hands it to the head (action 3), the office
//! sends it (action 4). The head's signature (action 3) is `signing`.

use std::sync::Arc;

use egov_envelope::services;
use egov_proto::{Decision, Envelope, MessageType, PerformStaffActionResponse, ServiceResult, StaffAction};
use egov_regulation::definition::Labelled;
use egov_regulation::{Branch, Effect, Event, Follows, TransitionError};
use egov_runtime::{Outcome, Received, Refusal, ids};
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
        received: Arc<Received<StaffAction>>,
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
        if step.effect == Some(Effect::SignResult) {
            return self.hand_over(received, stored.version, before, record);
        }
        if step.effect == Some(Effect::RefusalNotice) && step.handed_over_by.is_some() {
            // Process 8 ends with the official's signature on the refusal, not with a staff step.
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.use_sign_result",
                format!("the refusal of {} is signed with SignResult by the official who decided", step.id),
            )
            .into());
        }
        let mut detail = action.comment.clone();
        let channel = record.instance.channel.clone();
        if let Some(ground) = self.refusal_ground(&step.id, channel.as_deref(), branch, &action.refusal_ground)? {
            record.refusal_ground = Some(ground.clone());
            detail = ground;
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
        let mut signed_result = self.run_automatic(&mut record, transition.follows, now_ms)?;
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
        self.requeue(&mut outcome, Some(&before), &record, None)?;
        self.send_progress(&mut outcome, &record, signed_result, now_ms);
        tracing::info!(registration_id = %record.registration_id, step = %action.step_id, "staff step done");
        Ok(outcome)
    }

    /// The refusal ground a step's decision gives: one of the step's own (or
    /// those the application's channel lends it) with a "no" at a step that
    /// has grounds, none otherwise. A ground the definition does not have is
    /// unknown; one of another step, or one given where none goes, is
    /// unexpected; a "no" without one where the step has grounds is missing.
    fn refusal_ground(
        &self,
        step_id: &str,
        channel: Option<&str>,
        branch: Option<Branch>,
        given: &str,
    ) -> Result<Option<String>, Refusal> {
        let invalid = |reason, message: String| Refusal::new(Code::InvalidArgument, reason, message);
        let grounds = self.definition.grounds_in(step_id, channel);
        let listed = || grounds.iter().map(|g| g.code.as_str()).collect::<Vec<_>>().join(", ");
        if !given.is_empty() && !self.definition.refusal_grounds.iter().any(|ground| ground.code == given) {
            return Err(invalid(
                "regional.unknown_refusal_ground",
                format!("refusal ground {given:?} is not in the definition; those of {step_id}: {}", listed()),
            ));
        }
        if branch != Some(Branch::No) || grounds.is_empty() {
            if given.is_empty() {
                return Ok(None);
            }
            return Err(invalid(
                "regional.unexpected_refusal_ground",
                format!("a refusal ground goes only with a \"no\" at a step that has grounds, not at {step_id}"),
            ));
        }
        if given.is_empty() {
            return Err(invalid(
                "regional.missing_refusal_ground",
                format!("a \"no\" at {step_id} needs one of its refusal grounds: {}", listed()),
            ));
        }
        match grounds.iter().find(|ground| ground.code == given) {
            Some(ground) => Ok(Some(ground.code.clone())),
            None => Err(invalid(
                "regional.unexpected_refusal_ground",
                format!("refusal ground {given:?} is another step's; those of {step_id}: {}", listed()),
            )),
        }
    }

    /// The hand-over that begins the signing step (action 3: the executor hands
    /// the drafted result to the head). Recorded with the registration; the
    /// step's record carries it once the head has signed.
    fn hand_over(
        &self,
        received: Arc<Received<StaffAction>>,
        version: u64,
        before: RegistrationRecord,
        mut record: RegistrationRecord,
    ) -> Result<Outcome<PerformStaffActionResponse>, Status> {
        let action = &received.body;
        let sign = &self.steps.sign_result;
        // Who may act comes first: the step's own actor (the head) is told how
        // to sign; anyone but the one who hands over may not act at all.
        let role = received.sender_role();
        if sign.handed_over_by.as_deref() != Some(role) {
            if role == sign.actor {
                return Err(Refusal::new(
                    Code::InvalidArgument,
                    "regional.use_sign_result",
                    "the head signs the result with SignResult",
                )
                .into());
            }
            return Err(Refusal::from(TransitionError::WrongActor {
                step: sign.id.clone(),
                expected: sign.handed_over_by.clone().unwrap_or_else(|| sign.actor.clone()),
                found: role.to_owned(),
            })
            .into());
        }
        if action.decision != Decision::Unspecified as i32 || !action.refusal_ground.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.unexpected_decision",
                format!("the hand-over of {} takes no decision and no refusal ground", sign.id),
            )
            .into());
        }
        let event = Event {
            step_id: action.step_id.clone(),
            actor_role: received.sender_role().to_owned(),
            actor_id: received.sender_id().to_owned(),
            branch: None,
            detail: action.comment.clone(),
        };
        record.instance = egov_regulation::hand_over(&self.definition, &record.instance, &event, received.event_ms)
            .map_err(Refusal::from)?;
        let mut outcome =
            Outcome::new(PerformStaffActionResponse { registration: Some(self.to_registration(&record)?) });
        outcome.put(registration_key(&record.registration_id), version, &record)?;
        self.requeue(&mut outcome, Some(&before), &record, None)?;
        tracing::info!(registration_id = %record.registration_id, step = %sign.id, "result handed to the head");
        Ok(outcome)
    }

    /// Runs the steps the ARM itself does (the refusal of process 8), while one
    /// follows. Where the definition has the ARM hand process 8's message to
    /// an official who signs it (`handed_over_by`: paragraph 8, the document is
    /// formed with the EDS of the provider's official), the ARM forms the
    /// refusal as the draft to sign and hands it over; the step then waits on
    /// the official (`sign_result`). Where the ARM does the step itself and the
    /// route does not go on to the draft of the result, the ARM forms the
    /// refusal message, signs it, and returns it as the result.
    fn run_automatic(
        &self,
        record: &mut RegistrationRecord,
        mut follows: Follows,
        now_ms: i64,
    ) -> Result<Option<Envelope>, Refusal> {
        let mut refusal_step = None;
        while let Follows::Step { step_id, effect: Some(Effect::RefusalNotice), actor } = follows {
            let me = self.receiver.context().member_id().to_owned();
            let by_arm = |role: &str| Event {
                step_id: step_id.clone(),
                actor_role: role.to_owned(),
                actor_id: me.clone(),
                branch: None,
                detail: record.refusal_ground.clone().unwrap_or_default(),
            };
            let handed_over_by = self.definition.step(&step_id).and_then(|step| step.handed_over_by.clone());
            if let Some(by) = handed_over_by {
                let event = by_arm(&by);
                record.instance = egov_regulation::hand_over(&self.definition, &record.instance, &event, now_ms)?;
                record.draft_result = self.result(record, &step_id, now_ms)?.encode_to_vec();
                return Ok(None);
            }
            let transition = self.advance(&record.instance, &by_arm(&actor), now_ms)?;
            record.instance = transition.instance;
            follows = transition.follows;
            refusal_step = Some(step_id);
        }
        let Some(refusal_step) = refusal_step else { return Ok(None) };
        let current = record.instance.current.as_deref().unwrap_or_default();
        if self.definition.reaches(current, &self.steps.draft_result.id) {
            // The executor drafts the reasoned refusal (a regulation whose route goes on to the draft).
            return Ok(None);
        }
        let result = self.result(record, &refusal_step, now_ms)?;
        let envelope = self.receiver.context().seal(
            &record.application_id,
            services::REFUSAL_NOTICE,
            ids::SC_WORKSTATION,
            MessageType::Response,
            now_ms,
            &result,
        );
        record.signed_result = envelope.encode_to_vec();
        Ok(Some(envelope))
    }

    /// Action 2: the result document the head is to sign.
    fn draft(&self, record: &RegistrationRecord, now_ms: i64) -> Result<ServiceResult, Refusal> {
        self.result(record, &self.steps.draft_result.id, now_ms)
    }

    /// The result as decided at `step_id` (action 2's draft, or process 8's
    /// refusal): the outcome, the refusal ground, and the step's notice for the
    /// outcome with the ground's wording appended in each language.
    pub(crate) fn result(
        &self,
        record: &RegistrationRecord,
        step_id: &str,
        now_ms: i64,
    ) -> Result<ServiceResult, Refusal> {
        let delivery = self.delivery(record)?;
        let outcome = record.instance.decided.clone().unwrap_or_default();
        let ground = record.refusal_ground.as_deref().and_then(|code| self.definition.refusal_ground(code));
        let notice = match (self.definition.notice_for_ground(step_id, &outcome, ground), ground) {
            (Some(label), Some(ground)) => Some(egov_proto::Notice {
                code: label.code.clone(),
                text_kk: format!("{} {}.", label.kk, ground.kk),
                text_ru: format!("{} {}.", label.ru, ground.ru),
                text_en: format!("{} {}.", label.en, ground.en),
            }),
            (Some(label), None) => Some(notice(label)),
            (None, Some(ground)) => Some(notice(ground)),
            (None, None) => None,
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
