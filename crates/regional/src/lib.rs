//! The regional e-government gateway's workstation (ARM RSHEP): registers the
//! applications the gateway delivers (process 7), keeps the staff queue, runs
//! the provider's steps (action 1, condition 2, process 8, actions 2-4) and
//! sends the head-signed result back to the State Corporation.
#![forbid(unsafe_code)]

use std::sync::Arc;

use egov_envelope::{Checks, Verified, services};
use egov_proto::inbox_service_server::{InboxService, InboxServiceServer};
use egov_proto::regional_gateway_service_server::{RegionalGatewayService, RegionalGatewayServiceServer};
use egov_proto::{
    Application, ApplicationDelivery, ApplicationProgress, ApplicationSubmission, Decision, DeliverRequest,
    DeliverResponse, Envelope, GetRegistrationRequest, GetRegistrationResponse, ListQueueRequest, ListQueueResponse,
    MessageType, Notice, PerformStaffActionRequest, PerformStaffActionResponse, Registration, ServiceResult,
    SignResultRequest, SignResultResponse, StaffAction,
};
use egov_regulation::definition::Labelled;
use egov_regulation::instance::term_deadlines;
use egov_regulation::{Branch, Calendar, Definition, Event, Instance, TransitionError, apply};
use egov_runtime::idempotency::resent;
use egov_runtime::ids::roles;
use egov_runtime::outbox::Outbox;
use egov_runtime::{Context, Expect, Refusal, convert, ids};
use egov_store::{Batch, Store};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::{Code, Request, Response, Status};

/// A registration as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RegistrationRecord {
    registration_id: String,
    application_id: String,
    instance: Instance,
    /// The `ApplicationDelivery` as received.
    #[serde(with = "hex")]
    delivery: Vec<u8>,
    refusal_ground: Option<String>,
    #[serde(with = "hex")]
    draft_result: Vec<u8>,
    /// The head-signed result envelope.
    #[serde(with = "hex")]
    signed_result: Vec<u8>,
    due_ms: Option<i64>,
}

fn registration_key(registration_id: &str) -> String {
    format!("registration/{registration_id}")
}

fn application_key(application_id: &str) -> String {
    format!("application/{application_id}")
}

fn notice(label: &Labelled) -> Notice {
    Notice { code: label.code.clone(), text_kk: label.kk.clone(), text_ru: label.ru.clone(), text_en: label.en.clone() }
}

/// The regional gateway ARM.
#[derive(Debug)]
struct Regional {
    context: Context,
    definition: Arc<Definition>,
    store: Store,
    outbox: Arc<Outbox>,
}

/// The ARM's two gRPC services: the inbox the gateway delivers to and the staff's service.
#[derive(Debug, Clone)]
pub struct RegionalServer {
    regional: Arc<Regional>,
}

impl RegionalServer {
    pub fn new(context: Context, definition: Arc<Definition>, store: Store, outbox: Arc<Outbox>) -> RegionalServer {
        RegionalServer { regional: Arc::new(Regional { context, definition, store, outbox }) }
    }

    pub fn inbox_service(&self) -> InboxServiceServer<RegionalServer> {
        InboxServiceServer::new(self.clone()).max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn staff_service(&self) -> RegionalGatewayServiceServer<RegionalServer> {
        RegionalGatewayServiceServer::new(self.clone())
    }
}

impl Regional {
    fn calendar(&self) -> &'static Calendar {
        Calendar::kazakhstan()
    }

    fn step_for(&self, effect: &str) -> Result<&egov_regulation::Step, Refusal> {
        self.definition.step_by_effect(effect).ok_or_else(|| {
            Refusal::new(
                Code::Internal,
                "regulation.missing_effect",
                format!("the definition has no step with effect {effect}"),
            )
        })
    }

    fn load(&self, registration_id: &str) -> Result<egov_store::Versioned<RegistrationRecord>, Refusal> {
        self.store.get::<RegistrationRecord>(&registration_key(registration_id)).map_err(Refusal::from)?.ok_or_else(
            || {
                Refusal::new(
                    Code::NotFound,
                    "regional.unknown_registration",
                    format!("no registration {registration_id}"),
                )
            },
        )
    }

    fn due_ms(&self, instance: &Instance) -> Option<i64> {
        term_deadlines(&self.definition, instance, self.calendar()).into_iter().find_map(|(_, deadline)| deadline)
    }

    /// The provider's part of the path, from registration on.
    fn progress(&self, record: &RegistrationRecord, signed_result: Option<Envelope>) -> ApplicationProgress {
        ApplicationProgress {
            application_id: record.application_id.clone(),
            registration_id: record.registration_id.clone(),
            path: record.instance.path.iter().map(|step| convert::step_to_proto(&self.definition, step)).collect(),
            due_time_ms: record.due_ms.unwrap_or(0),
            signed_result,
        }
    }

    /// Queues a progress message to the State Corporation in `batch`.
    fn queue_progress(
        &self,
        batch: &mut Batch,
        record: &RegistrationRecord,
        signed_result: Option<Envelope>,
        event_ms: i64,
    ) {
        let message_type = if signed_result.is_some() { MessageType::Response } else { MessageType::Notification };
        let progress = self.progress(record, signed_result);
        let envelope = self.context.seal(
            &record.application_id,
            services::APPLICATION_PROGRESS,
            ids::SC_WORKSTATION,
            message_type,
            event_ms,
            &progress,
        );
        let bytes = envelope.encode_to_vec();
        batch.log(self.context.now_ms(), "sent", bytes.clone(), ids::GATEWAY);
        batch.enqueue(ids::GATEWAY, bytes, self.context.now_ms());
    }

    fn to_registration(&self, record: &RegistrationRecord) -> Registration {
        let delivery = ApplicationDelivery::decode(record.delivery.as_slice()).unwrap_or_default();
        let mut application = Application {
            application_id: record.application_id.clone(),
            service_code: delivery.service_code.clone(),
            applicant_iin: delivery.applicant.as_ref().map(|p| p.iin.clone()).unwrap_or_default(),
            registration_id: record.registration_id.clone(),
            due_time_ms: record.due_ms.unwrap_or(0),
            ..Application::default()
        };
        convert::instance_fields(&self.definition, &record.instance, &mut application);
        // The ARM's part ends when the result is sent.
        let sent = self
            .definition
            .step_by_effect("send-result")
            .is_some_and(|step| record.instance.record(&step.id).is_some());
        let next_actor = record
            .instance
            .current
            .as_deref()
            .and_then(|id| self.definition.step(id))
            .filter(|_| !sent)
            .map(|step| step.actor.clone())
            .unwrap_or_default();
        Registration {
            application: Some(application),
            applicant: delivery.applicant,
            representative: delivery.representative,
            documents: delivery
                .documents
                .into_iter()
                .map(|mut document| {
                    document.content.clear();
                    document
                })
                .collect(),
            draft_result: record.draft_result.clone(),
            signed_result: Envelope::decode(record.signed_result.as_slice())
                .ok()
                .filter(|_| !record.signed_result.is_empty()),
            next_actor,
        }
    }

    /// Commits `batch` and wakes the outbox worker.
    async fn commit(&self, batch: Batch) -> Result<(), Refusal> {
        self.store.commit(batch).await.map_err(Refusal::from)?;
        self.outbox.kick();
        Ok(())
    }

    /// Process 7: verifies the delivered application (and the operator's EDS inside it) and registers it.
    async fn register(&self, envelope: Envelope) -> Result<DeliverResponse, Refusal> {
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::APPLICATION_SUBMIT],
                message_types: &[MessageType::Request],
                senders: &[roles::SC_WORKSTATION],
                via_gateway: true,
            },
        )?;
        if let Some(answer) = resent::<DeliverResponse>(&self.store, &verified, &envelope)? {
            return Ok(answer);
        }
        let delivery: ApplicationDelivery = Context::body(&envelope, &verified)?;
        self.check_operator_signature(&delivery, &verified)?;
        let application_id = verified.header.correlation_id.clone();
        if self.store.get::<String>(&application_key(&application_id)).map_err(Refusal::from)?.is_some() {
            return Err(Refusal::new(
                Code::AlreadyExists,
                "regional.already_registered",
                format!("application {application_id} is already registered"),
            ));
        }
        let now_ms = self.context.event_time(&verified);
        let register = self.step_for("register")?;
        let registration_id = format!("RSHEP-{:010}", self.store.next_id().map_err(Refusal::from)?);
        let instance = Instance::start_at_step(&self.definition, &register.id, now_ms).map_err(Refusal::from)?;
        let event = Event {
            step_id: register.id.clone(),
            actor_role: register.actor.clone(),
            actor_id: self.context.member_id().to_owned(),
            branch: None,
            detail: registration_id.clone(),
        };
        let instance = apply(&self.definition, &instance, &event, now_ms, self.calendar()).map_err(Refusal::from)?;
        let mut record = RegistrationRecord {
            registration_id: registration_id.clone(),
            application_id: application_id.clone(),
            instance,
            delivery: envelope.body.clone(),
            refusal_ground: None,
            draft_result: Vec::new(),
            signed_result: Vec::new(),
            due_ms: None,
        };
        record.due_ms = self.due_ms(&record.instance);
        let response =
            DeliverResponse { message_id: verified.header.message_id.clone(), accepted_time_ms: self.context.now_ms() };
        let mut batch = Batch::new();
        batch.put(application_key(&application_id), 0, &registration_id).map_err(Refusal::from)?;
        batch.put(registration_key(&registration_id), 0, &record).map_err(Refusal::from)?;
        batch.log(self.context.now_ms(), "received", envelope.encode_to_vec(), "");
        self.queue_progress(&mut batch, &record, None, now_ms);
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            response.encode_to_vec(),
        );
        self.commit(batch).await?;
        tracing::info!(%registration_id, %application_id, "registered (process 7)");
        Ok(response)
    }

    /// The operator's EDS on the submission travels inside the delivery; the ARM checks it too.
    fn check_operator_signature(&self, delivery: &ApplicationDelivery, carrier: &Verified) -> Result<(), Refusal> {
        let bad = |message: String| Refusal::new(Code::InvalidArgument, "regional.bad_operator_signature", message);
        let submission = delivery
            .operator_submission
            .as_ref()
            .ok_or_else(|| bad("the operator's signed submission is missing".to_owned()))?;
        let checks = Checks { freshness_window_ms: None, ..self.context.checks.clone() };
        let verified =
            self.context.open(submission, &checks).map_err(|e| bad(format!("operator's submission refused: {e}")))?;
        let sign_step = self.step_for("sign-submission")?;
        if verified.sender_role.as_str() != sign_step.actor || verified.header.service_id != services::FORM_SUBMIT {
            return Err(bad(format!(
                "the submission is signed by {} ({}), not by an operator",
                verified.header.sender_id, verified.sender_role
            )));
        }
        let body: ApplicationSubmission = Context::body(submission, &verified)?;
        if body.application_id != carrier.header.correlation_id
            || verified.header.correlation_id != carrier.header.correlation_id
        {
            return Err(bad("the operator's submission is for another application".to_owned()));
        }
        Ok(())
    }

    /// A staff step other than the head's signature.
    async fn staff_action(&self, envelope: Envelope) -> Result<Registration, Refusal> {
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::STAFF_ACTION],
                message_types: &[MessageType::Request],
                senders: roles::PROVIDER_STAFF,
                via_gateway: false,
            },
        )?;
        if let Some(answer) = resent::<PerformStaffActionResponse>(&self.store, &verified, &envelope)? {
            return answer
                .registration
                .ok_or_else(|| Refusal::new(Code::Internal, "store.corrupt", "stored answer is empty"));
        }
        let action: StaffAction = Context::body(&envelope, &verified)?;
        let stored = self.load(&action.registration_id)?;
        let mut record = stored.value;
        let now_ms = self.context.event_time(&verified);
        let step = self
            .definition
            .step(&action.step_id)
            .ok_or_else(|| Refusal::from(TransitionError::UnknownStep { step: action.step_id.clone() }))?;
        let effect = step.effect.as_deref().unwrap_or_default();
        if effect == "sign-result" {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.use_sign_result",
                "the head signs the result with SignResult",
            ));
        }
        let branch = match Decision::try_from(action.decision).unwrap_or(Decision::Unspecified) {
            Decision::Unspecified => None,
            Decision::Yes => Some(Branch::Yes),
            Decision::No => Some(Branch::No),
        };
        let mut detail = action.comment.clone();
        if effect == "check-documents" && branch == Some(Branch::No) {
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
            ));
        }
        let event = Event {
            step_id: action.step_id.clone(),
            actor_role: verified.sender_role.as_str().to_owned(),
            actor_id: verified.header.sender_id.clone(),
            branch,
            detail,
        };
        record.instance =
            apply(&self.definition, &record.instance, &event, now_ms, self.calendar()).map_err(Refusal::from)?;
        // Automatic steps of the ARM that follow (process 8 after a negative check).
        self.run_automatic(&mut record, now_ms)?;
        let mut signed_result = None;
        match effect {
            "draft-result" => record.draft_result = self.draft(&record, now_ms).encode_to_vec(),
            "send-result" => {
                signed_result = Some(Envelope::decode(record.signed_result.as_slice()).map_err(|e| {
                    Refusal::new(Code::Internal, "store.corrupt", format!("stored signed result does not decode: {e}"))
                })?);
            }
            _ => {}
        }
        let registration = self.to_registration(&record);
        let response = PerformStaffActionResponse { registration: Some(registration.clone()) };
        let mut batch = Batch::new();
        batch.put(registration_key(&record.registration_id), stored.version, &record).map_err(Refusal::from)?;
        batch.log(self.context.now_ms(), "received", envelope.encode_to_vec(), "");
        self.queue_progress(&mut batch, &record, signed_result, now_ms);
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            response.encode_to_vec(),
        );
        self.commit(batch).await?;
        tracing::info!(registration_id = %record.registration_id, step = %action.step_id, "staff step done");
        Ok(registration)
    }

    /// Runs the steps the ARM itself does, while the current step is one.
    fn run_automatic(&self, record: &mut RegistrationRecord, now_ms: i64) -> Result<(), Refusal> {
        while let Some(step) = record.instance.current.as_deref().and_then(|id| self.definition.step(id)) {
            if step.effect.as_deref() != Some("refusal-notice") {
                break;
            }
            let event = Event {
                step_id: step.id.clone(),
                actor_role: step.actor.clone(),
                actor_id: self.context.member_id().to_owned(),
                branch: None,
                detail: record.refusal_ground.clone().unwrap_or_default(),
            };
            record.instance =
                apply(&self.definition, &record.instance, &event, now_ms, self.calendar()).map_err(Refusal::from)?;
        }
        Ok(())
    }

    /// Action 2: the result document the head is to sign.
    fn draft(&self, record: &RegistrationRecord, now_ms: i64) -> ServiceResult {
        let delivery = ApplicationDelivery::decode(record.delivery.as_slice()).unwrap_or_default();
        let outcome = record.instance.decided.clone().unwrap_or_default();
        let notice = match &record.refusal_ground {
            Some(ground) => self.definition.refusal_ground(ground).map(notice),
            None => self.definition.step_by_effect("draft-result").and_then(|step| {
                self.definition.notices.iter().find(|n| n.step.as_deref() == Some(step.id.as_str())).map(notice)
            }),
        };
        ServiceResult {
            application_id: record.application_id.clone(),
            registration_id: record.registration_id.clone(),
            service_code: delivery.service_code,
            applicant_iin: delivery.applicant.map(|p| p.iin).unwrap_or_default(),
            outcome,
            refusal_ground: record.refusal_ground.clone().unwrap_or_default(),
            notice,
            decided_time_ms: now_ms,
            provider: self.definition.service.provider.clone(),
        }
    }

    /// Action 3: the head signs the exact draft bytes.
    async fn sign_result(&self, envelope: Envelope) -> Result<Registration, Refusal> {
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::RESULT_SIGN],
                message_types: &[MessageType::Request],
                senders: roles::PROVIDER_STAFF,
                via_gateway: false,
            },
        )?;
        if let Some(answer) = resent::<SignResultResponse>(&self.store, &verified, &envelope)? {
            return answer
                .registration
                .ok_or_else(|| Refusal::new(Code::Internal, "store.corrupt", "stored answer is empty"));
        }
        let result: ServiceResult = Context::body(&envelope, &verified)?;
        let stored = self.load(&result.registration_id)?;
        let mut record = stored.value;
        let sign = self.step_for("sign-result")?;
        if record.instance.current.as_deref() == Some(sign.id.as_str()) && envelope.body != record.draft_result {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.draft_mismatch",
                "the signed bytes are not the drafted result",
            ));
        }
        let now_ms = self.context.event_time(&verified);
        let event = Event {
            step_id: sign.id.clone(),
            actor_role: verified.sender_role.as_str().to_owned(),
            actor_id: verified.header.sender_id.clone(),
            branch: None,
            detail: verified.key_id.clone(),
        };
        record.instance =
            apply(&self.definition, &record.instance, &event, now_ms, self.calendar()).map_err(Refusal::from)?;
        record.signed_result = envelope.encode_to_vec();
        let registration = self.to_registration(&record);
        let response = SignResultResponse { registration: Some(registration.clone()) };
        let mut batch = Batch::new();
        batch.put(registration_key(&record.registration_id), stored.version, &record).map_err(Refusal::from)?;
        batch.log(self.context.now_ms(), "received", envelope.encode_to_vec(), "");
        self.queue_progress(&mut batch, &record, None, now_ms);
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            response.encode_to_vec(),
        );
        self.commit(batch).await?;
        tracing::info!(registration_id = %record.registration_id, "result signed by the head (action 3)");
        Ok(registration)
    }
}

#[tonic::async_trait]
impl InboxService for RegionalServer {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        Ok(Response::new(self.regional.register(envelope).await?))
    }
}

#[tonic::async_trait]
impl RegionalGatewayService for RegionalServer {
    async fn list_queue(&self, request: Request<ListQueueRequest>) -> Result<Response<ListQueueResponse>, Status> {
        let actor = request.into_inner().actor;
        let regional = &self.regional;
        let records = regional.store.scan::<RegistrationRecord>("registration/").map_err(Refusal::from)?;
        let registrations = records
            .into_iter()
            .map(|(_, record)| regional.to_registration(&record.value))
            .filter(|registration| {
                !registration.next_actor.is_empty() && (actor.is_empty() || registration.next_actor == actor)
            })
            .collect();
        Ok(Response::new(ListQueueResponse { registrations }))
    }

    async fn get_registration(
        &self,
        request: Request<GetRegistrationRequest>,
    ) -> Result<Response<GetRegistrationResponse>, Status> {
        let registration_id = request.into_inner().registration_id;
        let record = self.regional.load(&registration_id)?;
        Ok(Response::new(GetRegistrationResponse { registration: Some(self.regional.to_registration(&record.value)) }))
    }

    async fn perform_staff_action(
        &self,
        request: Request<PerformStaffActionRequest>,
    ) -> Result<Response<PerformStaffActionResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        let registration = self.regional.staff_action(envelope).await?;
        Ok(Response::new(PerformStaffActionResponse { registration: Some(registration) }))
    }

    async fn sign_result(&self, request: Request<SignResultRequest>) -> Result<Response<SignResultResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        let registration = self.regional.sign_result(envelope).await?;
        Ok(Response::new(SignResultResponse { registration: Some(registration) }))
    }
}
