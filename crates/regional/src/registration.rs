//! Process 7: the ARM registers the application the gateway delivers, after
//! checking the operator's signature on the submission inside it (process 5),
//! and the provider's term starts.

use std::sync::Arc;

use egov_envelope::services;
use egov_proto::{ApplicationDelivery, ApplicationSubmission, DeliverResponse};
use egov_regulation::{Event, Instance};
use egov_runtime::receive::Carried;
use egov_runtime::{Context, Outcome, Received, Refusal};
use tonic::{Code, Status};

use crate::Regional;
use crate::record::{RegistrationRecord, application_key, delivery_key, registration_key};

impl Regional {
    pub(crate) async fn register(
        &self,
        received: Arc<Received<ApplicationDelivery>>,
    ) -> Result<Outcome<DeliverResponse>, Status> {
        let context = self.receiver.context();
        let delivery = &received.body;
        received.correlate(&delivery.application_id)?;
        self.check_operator_signature(&received)?;
        let application_id = received.correlation_id().to_owned();
        let now_ms = received.event_ms;
        let register = &self.steps.register;
        let instance = Instance::start_at_step(&self.definition, &register.id, now_ms).map_err(Refusal::from)?;
        let record = self.registered(&application_id, instance, &register.actor, context.member_id(), now_ms)?;
        let registration_id = record.registration_id.clone();
        let mut outcome = Outcome::new(DeliverResponse {
            message_id: received.header().message_id.clone(),
            accepted_time_ms: context.now_ms(),
        });
        outcome.put(application_key(&application_id), 0, &registration_id)?;
        outcome.put(registration_key(&registration_id), 0, &record)?;
        outcome.put(delivery_key(&registration_id), 0, &serde_bytes::Bytes::new(&received.envelope.body))?;
        self.requeue(&mut outcome, None, &record, Some(delivery))?;
        self.send_progress(&mut outcome, &record, None, now_ms);
        tracing::info!(%registration_id, %application_id, "registered (process 7)");
        Ok(outcome)
    }

    /// A new registration of `application_id`, refused if it has one already:
    /// its number, and `instance` after its first step, done by `actor_id` at
    /// `now_ms` (process 7 by the ARM; action 1 by the office employee for an
    /// application received at the office), with the provider's term set.
    pub(crate) fn registered(
        &self,
        application_id: &str,
        instance: Instance,
        actor_role: &str,
        actor_id: &str,
        now_ms: i64,
    ) -> Result<RegistrationRecord, Refusal> {
        if self.store.get::<String>(&application_key(application_id))?.is_some() {
            return Err(Refusal::new(
                Code::AlreadyExists,
                "regional.already_registered",
                format!("application {application_id} is already registered"),
            ));
        }
        let registration_id = format!("RSHEP-{:010}", self.store.next_id()?);
        let event = Event {
            step_id: instance.current.clone().unwrap_or_default(),
            actor_role: actor_role.to_owned(),
            actor_id: actor_id.to_owned(),
            branch: None,
            detail: registration_id.clone(),
        };
        let instance = self.advance(&instance, &event, now_ms)?.instance;
        let due_ms = self.due_ms(&instance);
        Ok(RegistrationRecord {
            registration_id,
            application_id: application_id.to_owned(),
            instance,
            refusal_ground: None,
            draft_result: Vec::new(),
            signed_result: Vec::new(),
            due_ms,
        })
    }

    /// The operator's EDS on the submission travels inside the delivery: the
    /// pipeline verified it ([`Received::carried`]); the ARM checks who signed what.
    fn check_operator_signature(&self, carrier: &Received<ApplicationDelivery>) -> Result<(), Refusal> {
        let bad = |message: String| Refusal::new(Code::InvalidArgument, "regional.bad_operator_signature", message);
        let Carried { envelope: submission, verified } =
            carrier.carried.as_ref().ok_or_else(|| bad("the operator's signed submission is missing".to_owned()))?;
        if verified.sender_role.as_str() != self.steps.sign_submission.actor
            || verified.header.service_id != services::FORM_SUBMIT
        {
            return Err(bad(format!(
                "the submission is signed by {} ({}), not by an operator",
                verified.header.sender_id, verified.sender_role
            )));
        }
        let body: ApplicationSubmission = Context::body(submission, verified)?;
        if body.application_id != carrier.correlation_id() || verified.header.correlation_id != carrier.correlation_id()
        {
            return Err(bad("the operator's submission is for another application".to_owned()));
        }
        Ok(())
    }
}
